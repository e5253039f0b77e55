"""Imports TensorFlow quietly: only training-side modules call this, never at package import."""

from __future__ import annotations

import os


def import_tensorflow():
    """Returns the `tensorflow` module with its C++ start-up chatter turned down."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
