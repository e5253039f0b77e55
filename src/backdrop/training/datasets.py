"""The batches a training run reads: training and validation, and the unaugmented export data."""

from __future__ import annotations

import dataclasses

import numpy as np

from backdrop.data import pipeline
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


def make_datasets(config: TrainConfig, replicas: int = 1):
    """Training and validation batches for `config` (records or folder datasets)."""
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
    if config.records:
        train, count = pipeline.record_dataset(
            config.records, "train", settings, True, config.number_of_examples
        )
        validation, _ = pipeline.record_dataset(
            config.records,
            "validation",
            settings,
            False,
            max(1, round(config.number_of_examples * 0.1)),
        )
        return train, validation, count
    if not (config.portrait_folders or config.voc_folders):
        raise TrainingError("no training data: give records (-r) or folder datasets (-p/-c)")
    train_examples, validation_examples = _folder_examples(config)
    train, count = pipeline.memory_dataset(train_examples, settings, True)
    validation, _ = pipeline.memory_dataset(validation_examples, settings, False)
    return train, validation, count


def export_data(config: TrainConfig, calibration_count: int = 200, validation_count: int = 300):
    """Calibration images (training split) and validation pairs at the input size, unaugmented."""
    plain = dataclasses.replace(config, augment=False, background_folders=(), source_weights=())
    train_data, validation_data, _ = make_datasets(plain)
    calibration = []
    for batch, _ in train_data:
        calibration += list(batch.numpy())
        if len(calibration) >= calibration_count:
            break
    validation = []
    for batch, targets in validation_data:
        images = np.rint(batch.numpy() * 255).astype(np.uint8)
        validation += list(zip(images, targets.numpy(), strict=True))
        if len(validation) >= validation_count:
            break
    return calibration[:calibration_count], validation[:validation_count]
