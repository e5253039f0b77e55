"""tf.data input pipeline: records -> augmented (image, target) batches for Keras.

Every element is `(image, target)`: `image` `(H, W, 3)` float32 RGB in [0, 1], `target`
`(H, W, 2)` float32 with the person mask in channel 0 and the ignore mask (1 = ignore) in
channel 1, so losses and metrics can leave ignore pixels out.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path

from backdrop.data import records
from backdrop.data.augment import (
    augment_geometry,
    background_dataset,
    copy_paste,
    element_seeds,
    jitter_colour,
    replace_background,
    split_seed,
)
from backdrop.data.pipeline_config import PipelineConfig
from backdrop.data.records_metadata import METADATA, load_metadata, shard_paths
from backdrop.data.tfrecord import check_shards
from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()


def resize_example(example: dict, input_shape: tuple[int, int]):
    """Validation path: stretch the whole frame to the input (bilinear; ignore nearest)."""
    image = tf.image.resize(tf.cast(example["image"], tf.float32) / 255.0, input_shape)
    mask = tf.image.resize(example["mask"], input_shape)
    ignore = tf.image.resize(example["ignore"], input_shape, method="nearest")
    return tf.clip_by_value(image, 0.0, 1.0), tf.concat([mask, ignore], axis=-1)


def repeat_sources(dataset, serialized, count: int, repeats: Sequence[tuple[str, int]]):
    """Adds `times - 1` more copies of each named source's examples; returns `(dataset, count)`.

    `dataset` holds the parsed examples, `serialized` the same records unparsed: they are
    counted from their source field alone, without decoding an image, in one pass for all
    sources.
    """
    repeats = [(source, times) for source, times in repeats if times != 1]
    if not repeats:
        return dataset, count
    found_per_source = collections.Counter(
        name.decode() for name in serialized.map(records.parse_source).as_numpy_iterator()
    )
    extra = 0
    for source, times in repeats:
        name = source.encode()
        of_source = dataset.filter(lambda e, n=name: tf.equal(e["source"], n))
        found = found_per_source[source]
        if found == 0:
            raise ValueError(f"no training examples of source {source!r} to repeat")
        dataset = dataset.concatenate(of_source.repeat(times - 1))
        extra += found * (times - 1)
    return dataset, count + extra


def source_weight(source, weights: Sequence[tuple[str, float]]):
    """The loss weight of an example of `source` (a scalar string tensor); 1 if not named."""
    weight = tf.constant(1.0)
    for name, value in weights:
        weight = tf.where(tf.equal(source, name), tf.constant(value, tf.float32), weight)
    return weight


def build_dataset(serialized: tf.data.Dataset, count: int, config: PipelineConfig, training: bool):
    """Turns a dataset of serialized records into batches.

    Args:
        serialized: Serialized `tf.train.Example`s in Backdrop's schema.
        count: Number of examples (sets the dataset's cardinality for Keras' progress bar).
        training: Shuffle and augment (per `config`) when True; else stretch-resize only.

    Returns:
        `(dataset, count)`: count is the examples per epoch, with repeated sources counted.
    """
    dataset = serialized.map(records.parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    if config.cache:
        dataset = dataset.cache()
    if training and config.source_repeats:
        dataset, count = repeat_sources(dataset, serialized, count, config.source_repeats)
    scenes = dataset  # the other examples that copy-paste pastes people over
    if training and config.shuffle_buffer:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    shape, seed = config.input_shape, config.seed
    weighted = training and bool(config.source_weights)

    def with_weight(example, image, target):
        if not weighted:
            return image, target
        return image, target, source_weight(example["source"], config.source_weights)

    if not (training and config.augment):
        dataset = dataset.map(lambda e: with_weight(e, *resize_example(e, shape)), tf.data.AUTOTUNE)
    else:
        # One seed per example, split into one per stage: new choices every epoch, and the
        # same run again for the same config.seed.
        streams = {"example": dataset, "seed": element_seeds(seed)}
        crop = {
            "crop_aspect": config.crop_aspect,
            "whole_frame_probability": config.whole_frame_probability,
        }
        if config.copy_paste_probability > 0:
            streams["scene"] = tf.data.Dataset.zip(
                scenes.repeat()
                .skip(1)  # without shuffling, still never the example itself
                .shuffle(max(1, config.shuffle_buffer), seed=seed),
                element_seeds(None if seed is None else seed + 2),
            ).map(
                lambda e, scene_seed: augment_geometry(e, shape, scene_seed, **crop),
                tf.data.AUTOTUNE,
            )
        if config.background_folders and config.background_probability > 0:
            streams["background"] = background_dataset(config.background_folders, shape, seed)

        def augment(inputs):
            geometry_seed, paste_seed, background_seed, colour_seed = split_seed(inputs["seed"], 4)
            image, mask, ignore = augment_geometry(inputs["example"], shape, geometry_seed, **crop)
            if "scene" in inputs:
                image, mask, ignore = copy_paste(
                    (image, mask, ignore),
                    inputs["scene"],
                    config.copy_paste_probability,
                    paste_seed,
                )
            if "background" in inputs:
                image = replace_background(
                    image,
                    mask,
                    inputs["background"],
                    config.background_probability,
                    background_seed,
                )
            target = tf.concat([mask, ignore], axis=-1)
            return with_weight(inputs["example"], jitter_colour(image, colour_seed), target)

        dataset = tf.data.Dataset.zip(streams).map(augment, tf.data.AUTOTUNE)
    if config.drop_remainder and count < config.batch_size:
        raise ValueError(f"{count} examples cannot fill one batch of {config.batch_size}")
    return dataset.batch(config.batch_size, config.drop_remainder).prefetch(tf.data.AUTOTUNE), count


def record_dataset(
    folder: str | Path, split: str, config: PipelineConfig, training: bool, fallback_count=None
):
    """Batches from the shards of one split of a `backdrop prepare` folder.

    Returns:
        `(dataset, count)`. The count comes from metadata.json, or `fallback_count` for records
        written by other tools (no metadata).
    """
    folder = Path(folder)
    if (folder / METADATA).is_file():
        shards = load_metadata(folder)["splits"][split]["shards"]
        paths = shard_paths(folder, split)
        # Damaged, missing or short shards are one line here, not TensorFlow's DataLossError
        # in the middle of an epoch.
        check_shards(paths, [shard["count"] for shard in shards], str(folder / METADATA))
        count = sum(shard["count"] for shard in shards)
    else:
        paths = sorted(folder.glob(f"{split}*.tfrecord"))
        if not paths or fallback_count is None:
            load_metadata(folder)  # raises with the message that names the fix
        check_shards(paths)
        count = fallback_count
    if count == 0:
        raise ValueError(f"the {split} split of {folder} is empty; prepare more data")
    serialized = tf.data.TFRecordDataset([str(p) for p in paths], num_parallel_reads=len(paths))
    return build_dataset(serialized, count, config, training)


def memory_dataset(examples: Sequence[bytes], config: PipelineConfig, training: bool):
    """Batches from serialized examples held in memory (the folder-dataset path).

    Returns:
        `(dataset, count)` as `build_dataset`.
    """
    if not examples:
        raise ValueError("no examples to train on")
    serialized = tf.data.Dataset.from_tensor_slices(tf.constant(list(examples), tf.string))
    return build_dataset(serialized, len(examples), config, training)
