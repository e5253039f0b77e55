"""Data parallelism: one device, every device of a machine, or several machines.

Under TensorFlow, a tf.distribute strategy; under JAX, `keras.distribution.DataParallel`. Either
way training sees an object with `num_replicas_in_sync` (the global batch is that many times
`--batch-size`) and `scope()`, inside which the model and optimizer are made.
"""

from __future__ import annotations

import contextlib
import json
import os

from backdrop.tf_setup import keras_backend

KINDS = ("auto", "none", "mirrored", "multiworker")


class JaxDataParallel:
    """`keras.distribution.DataParallel` over every device JAX sees, in the shape training uses.

    "multiworker" first joins JAX's multi-process set-up (`keras.distribution.initialize`: one
    process per machine, addresses from `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
    `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`, or a cluster JAX
    detects by itself); then the devices are every machine's.
    """

    def __init__(self, multiworker: bool = False):
        import keras

        if multiworker:
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        self.distribution = keras.distribution.DataParallel(devices=devices)
        self.num_replicas_in_sync = len(devices)
        keras.distribution.set_distribution(self.distribution)

    def scope(self):
        return self.distribution.scope()


class OneDevice:
    """No distribution: what JAX training uses on one device."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def select_strategy(kind: str):
    """The data parallelism for `kind` ("auto", "none", "mirrored" or "multiworker").

    "auto" picks several machines when TF_CONFIG (TensorFlow) or KERAS_DISTRIBUTION_JOB_ADDRESSES
    (JAX) is set, every device when this machine has several GPUs, else one device. "mirrored"
    without GPUs spreads over the CPU devices (TensorFlow's logical ones; JAX's with
    `XLA_FLAGS=--xla_force_host_platform_device_count=N`), which is how the tests run it.
    """
    if kind not in KINDS:
        raise ValueError(f"--distribute must be one of {', '.join(KINDS)}, got {kind!r}")
    if keras_backend() == "jax":
        return _jax_strategy(kind)
    return _tf_strategy(kind)


def _jax_strategy(kind: str):
    import jax

    if kind == "auto":
        several = "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ
        gpus = [d for d in jax.devices() if d.platform != "cpu"]
        kind = "multiworker" if several else "mirrored" if len(gpus) > 1 else "none"
    if kind == "none":
        return OneDevice()
    return JaxDataParallel(multiworker=kind == "multiworker")


def _tf_strategy(kind: str):
    from backdrop.tf_setup import import_tensorflow

    tf = import_tensorflow()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        kind = (
            "multiworker" if "TF_CONFIG" in os.environ else "mirrored" if len(gpus) > 1 else "none"
        )
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Whether this worker writes checkpoints (always, outside multi-worker training)."""
    if keras_backend() == "jax":
        import jax

        return jax.process_index() == 0
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker"
        and task.get("index", 0) == 0
        and "chief" not in json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    )
