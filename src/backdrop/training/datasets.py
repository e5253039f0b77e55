"""The batches a training run reads: training and validation, and the unaugmented export data.

Both are `data.loader.RecordBatches` (numpy and OpenCV, no TensorFlow), so they feed Keras on
any backend. Threads make batches ahead of the training step (the loader's own `prefetch`, not
Keras's workers): OpenCV lets go of Python's lock, and on this project's 2-core VM threads
beat worker processes, which copy each batch back (benchmarks/README.md, "An input pipeline
without TensorFlow").
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from backdrop.data import loader
from backdrop.data.pipeline_config import PipelineConfig
from backdrop.training.config import TrainConfig, TrainingError


def _folder_examples(config: TrainConfig) -> tuple[list[bytes], list[bytes]]:
    """Reads folder datasets into serialized records, split by the same hash as prepare."""
    from backdrop.data.prepare import encode_in_memory
    from backdrop.data.readers import create_reader

    readers = [
        create_reader("portrait", p, mask_encoding=config.mask_encoding)
        for p in config.portrait_folders
    ]
    readers += [create_reader("voc", p) for p in config.voc_folders]
    splits = encode_in_memory(readers, max(config.input_shape), config.validation_fraction)
    if not splits["train"]:
        raise TrainingError("the folder datasets gave no training samples; check their paths")
    if not splits["validation"]:  # tiny folders: validate on the training samples, and say so
        print("warning: no validation samples; validating on the training samples")
        splits["validation"] = splits["train"]
    return splits["train"], splits["validation"]


# Threads making batches ahead: the cores, up to 8 (2 on this project's VM; a GPU machine's 16
# cores feed the device with 8).
LOADER_THREADS = min(8, os.cpu_count() or 1)


def make_datasets(config: TrainConfig, replicas: int = 1):
    """Training and validation batches for `config` (records or folder datasets).

    Returns:
        `(train, validation, count)`: two `RecordBatches` and the training examples per epoch.
        The training batches' epoch is set by the caller (`train.epoch`): batch i of epoch e
        is the same function of (seed, e, i) in every run, restored ones included.
    """
    settings = PipelineConfig(
        input_shape=config.input_shape,
        batch_size=config.batch_size * replicas,
        augment=config.augment,
        background_folders=config.background_folders,
        background_probability=config.background_probability,
        copy_paste_probability=config.copy_paste_probability,
        zoom_out_probability=config.zoom_out_probability,
        whole_frame_probability=config.whole_frame_probability,
        crop_aspect=config.crop_aspect,
        source_repeats=config.source_repeats,
        source_weights=config.source_weights,
        cache=config.cache,
        seed=config.seed,
        drop_remainder=replicas > 1,
    )
    threads = {"prefetch": LOADER_THREADS}
    if config.records:
        train, count = loader.record_batches(config.records, "train", settings, True, **threads)
        validation, _ = loader.record_batches(
            config.records, "validation", settings, False, **threads
        )
        return train, validation, count
    if not (config.portrait_folders or config.voc_folders):
        raise TrainingError("no training data: give records (-r) or folder datasets (-p/-c)")
    train_examples, validation_examples = _folder_examples(config)
    train, count = loader.memory_batches(train_examples, settings, True, **threads)
    validation, _ = loader.memory_batches(validation_examples, settings, False, **threads)
    return train, validation, count


def fit_data(batches, completed: int, epochs: int):
    """What Keras's `fit` reads for epochs `completed + 1` to `epochs`, and its steps per epoch.

    Under JAX (and any backend but TensorFlow), `batches` itself: a PyDataset whose epoch is set
    so that `fit`'s first `on_epoch_end` moves it to `completed + 1`. Under TensorFlow, the same
    batches (`batches.batch(epoch, index)`, the one function that makes them) carried by tf.data:
    each made by `numpy_function` in tf.data's parallel map, epoch after epoch in one stream, with
    `steps_per_epoch` cutting it. Keras's own PyDataset path on TensorFlow trained the Attention
    U-Net at half the images per second (benchmarks/README.md, "Training under JAX and under
    TensorFlow"); this one matches batches already in memory.
    """
    from backdrop.tf_setup import keras_backend

    if keras_backend() != "tensorflow":
        batches.epoch = completed
        return batches, None
    import tensorflow as tf

    def make(epoch, index):
        return batches.batch(int(epoch), int(index))

    count = len(batches)
    pairs = tf.data.Dataset.range(completed + 1, epochs + 1).flat_map(
        lambda epoch: tf.data.Dataset.range(count).map(lambda index: (epoch, index))
    )
    return _numpy_batches(batches, pairs, make), count


def evaluation_data(batches):
    """The validation batches as `fit` reads them: `batches` itself, or on TensorFlow the same
    batches carried by tf.data (`fit_data`)."""
    from backdrop.tf_setup import keras_backend

    if keras_backend() != "tensorflow":
        return batches
    import tensorflow as tf

    pairs = tf.data.Dataset.range(len(batches)).map(lambda index: (tf.constant(0, tf.int64), index))
    return _numpy_batches(batches, pairs, lambda epoch, index: batches.batch(0, int(index)))


def _numpy_batches(batches, pairs, make):
    import tensorflow as tf

    height, width = batches.config.input_shape
    size = batches.config.batch_size if batches.config.drop_remainder else None
    shapes = [(size, height, width, 3), (size, height, width, 2)]
    if batches.weights is not None:
        shapes.append((size,))

    def one(epoch, index):
        made = tf.numpy_function(make, [epoch, index], [tf.float32] * len(shapes))
        return tuple(tf.ensure_shape(part, shape) for part, shape in zip(made, shapes, strict=True))

    threads = batches.prefetch or 1
    return pairs.map(one, num_parallel_calls=threads, deterministic=True).prefetch(threads)


def export_data(config: TrainConfig, calibration_count: int = 200, validation_count: int = 300):
    """Calibration images (training split) and validation pairs at the input size, unaugmented."""
    plain = dataclasses.replace(config, augment=False, background_folders=(), source_weights=())
    train_data, validation_data, _ = make_datasets(plain)
    train_data.epoch = 1  # as the first epoch of training reads it
    calibration = []
    for index in range(len(train_data)):
        calibration += list(train_data[index][0])
        if len(calibration) >= calibration_count:
            break
    validation = []
    for index in range(len(validation_data)):
        batch, targets = validation_data[index][:2]
        images = np.rint(batch * 255).astype(np.uint8)
        validation += list(zip(images, targets, strict=True))
        if len(validation) >= validation_count:
            break
    return calibration[:calibration_count], validation[:validation_count]
