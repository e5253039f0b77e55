"""TensorFlow and Keras imported quietly: only training-side modules call this, never at package
import. Keras runs on TensorFlow or JAX (`KERAS_BACKEND`); TensorFlow itself is imported only
where a step needs it: export (the TFLite converter) and the RVM teacher."""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Turns TensorFlow's C++ start-up chatter down, whether it is imported now or by Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow():
    """Returns the `tensorflow` module with its C++ start-up chatter turned down."""
    quiet_tensorflow()
    import tensorflow as tf

    return tf


def keras_backend() -> str:
    """The backend Keras runs on ("tensorflow", "jax", ...), without importing Keras twice."""
    quiet_tensorflow()
    import keras

    return keras.backend.backend()
