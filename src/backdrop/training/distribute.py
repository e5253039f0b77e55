"""tf.distribute strategy selection: one device, the GPUs of a machine, or several machines."""

from __future__ import annotations

import json
import os

from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()


def select_strategy(kind: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `kind`.

    "auto" picks MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy when this
    machine has several GPUs, else the default (one device). "mirrored" without GPUs mirrors over
    the logical CPU devices, which is how the tests run the distributed path.
    """
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
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker"
        and task.get("index", 0) == 0
        and "chief" not in json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    )
