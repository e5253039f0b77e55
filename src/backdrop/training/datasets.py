"""The batches a training run reads: training and validation, and the unaugmented export data.

Both are `data.loader.RecordBatches` (numpy and OpenCV, no TensorFlow), so they feed Keras on
any backend. Two threads make batches ahead of the training step (the loader's own `prefetch`,
not Keras's workers): OpenCV lets go of Python's lock, and on this project's 2-core VM threads
beat worker processes, which copy each batch back (benchmarks/README.md, "An input pipeline
without TensorFlow").
"""

from __future__ import annotations

import dataclasses

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


LOADER_THREADS = 2


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
