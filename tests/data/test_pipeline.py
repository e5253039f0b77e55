"""Input pipeline: augmentation keeps image and mask aligned; background replacement blends."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backdrop.data.pipeline import (
    PipelineConfig,
    augment_geometry,
    memory_dataset,
    replace_background,
)
from backdrop.data.records import encode_example


def patterned_example(height=96, width=128):
    """A mask of stripes and blocks, with the image's red channel equal to the mask."""
    mask = np.zeros((height, width), np.float32)
    mask[:, ::16] = 1
    mask[20:50, 30:90] = 1
    mask[::11, :] = 1
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = mask * 255
    image[..., 1] = 80
    return {
        "image": tf.constant(image),
        "mask": tf.constant(mask[..., None]),
        "ignore": tf.zeros((height, width, 1)),
    }


def test_augmentation_keeps_image_and_mask_aligned():
    example = patterned_example()
    for seed in range(8):
        tf.random.set_seed(seed)
        image, mask, ignore = augment_geometry(example, (64, 64))
        valid = ignore.numpy()[..., 0] == 0
        red, truth = image.numpy()[..., 0][valid], mask.numpy()[..., 0][valid]
        # Bilinear sampling blurs both identically: the red channel equals the mask everywhere.
        np.testing.assert_allclose(red, truth, atol=1e-4)
        assert 0.05 < truth.mean() < 0.95, "the crop keeps some of the pattern"


def test_pixels_from_outside_the_image_are_ignored():
    example = patterned_example()
    ignored = []
    for seed in range(10):
        tf.random.set_seed(seed)
        _, _, ignore = augment_geometry(example, (64, 64))
        ignored.append(ignore.numpy().mean())
    assert max(ignored) > 0, "rotations bring in border pixels, which must be ignored"
    assert max(ignored) < 0.3


def test_background_replacement_keeps_the_person_and_blends_soft_edges():
    image = tf.fill((4, 4, 3), 1.0)
    background = tf.zeros((4, 4, 3))
    mask = tf.constant([[1.0, 0.5, 0.0, 0.0]] * 4)[..., None]
    replaced = replace_background(image, mask, background, probability=1.0).numpy()
    np.testing.assert_allclose(replaced[:, 0], 1.0)
    np.testing.assert_allclose(replaced[:, 1], 0.5)
    np.testing.assert_allclose(replaced[:, 2:], 0.0)
    kept = replace_background(image, mask, background, probability=0.0).numpy()
    np.testing.assert_allclose(kept, 1.0)


def test_memory_dataset_batches_with_known_cardinality():
    rng = np.random.default_rng(0)
    examples = [
        encode_example(
            f"s{i}",
            "test",
            rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
            np.ones((40, 50), np.float32),
            None,
            "png",
        )
        for i in range(10)
    ]
    dataset = memory_dataset(examples, PipelineConfig((32, 32), batch_size=4), training=True)
    assert dataset.cardinality().numpy() == 3
    images, targets = next(iter(dataset))
    assert images.shape == (4, 32, 32, 3) and targets.shape == (4, 32, 32, 2)
    assert 0 <= images.numpy().min() and images.numpy().max() <= 1
