"""Export runs on TensorFlow, whatever backend trained the model.

The TFLite converter needs a Keras model built on the TensorFlow backend, and a Keras process
has one backend for its life. Under JAX (`KERAS_BACKEND=jax`), an export step therefore runs in a
child process started with `KERAS_BACKEND=tensorflow`: it loads the checkpoint the JAX run wrote
(a `.keras` file reads the same on either backend), exports, and hands back its result. Under
TensorFlow it runs in the calling process, as before.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")


def on_tensorflow(function: Callable[..., Result], *args, **kwargs) -> Result:
    """`function(*args, **kwargs)` with Keras on TensorFlow: here if it is already, else in a
    child process (`function` a module-level function; arguments and result are pickled across,
    exceptions too). The child prints to the same terminal.

    Raises:
        RuntimeError: TensorFlow is not installed here (a JAX-only machine trains; export where
            TensorFlow is).
    """
    from backdrop.tf_setup import keras_backend

    if keras_backend() == "tensorflow":
        return function(*args, **kwargs)
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError(
            "export needs TensorFlow, which this machine lacks: copy the checkpoint to a machine "
            'with `pip install "backdrop[tf]"` and run `backdrop export` there'
        )
    # The child reads KERAS_BACKEND as it starts ("spawn": a fresh interpreter, nothing of this
    # process's Keras in it), so it is set only around the start.
    before = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        pool = multiprocessing.get_context("spawn").Pool(1)
    finally:
        if before is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = before
    with pool:
        return pool.apply(function, args, kwargs)
