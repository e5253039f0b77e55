"""Input pipeline: augmentation keeps image and mask aligned; background replacement blends."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from backdrop.data.augment import (
    _random_resized_crop,
    augment_geometry,
    copy_paste,
    replace_background,
    split_seed,
)
from backdrop.data.pipeline import memory_dataset
from backdrop.data.pipeline_config import PipelineConfig
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


def random_examples(count, source="test"):
    """`count` records of random images with random masks."""
    rng = np.random.default_rng(0)
    return [
        encode_example(
            f"s{i}",
            source,
            rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
            (rng.random((40, 50)) > 0.5).astype(np.float32),
            None,
            "png",
        )
        for i in range(count)
    ]


def test_memory_dataset_batches_with_known_cardinality():
    examples = random_examples(10)
    dataset, count = memory_dataset(examples, PipelineConfig((32, 32), batch_size=4), True)
    assert count == 10
    assert dataset.cardinality().numpy() == 3
    images, targets = next(iter(dataset))
    assert images.shape == (4, 32, 32, 3) and targets.shape == (4, 32, 32, 2)
    assert 0 <= images.numpy().min() and images.numpy().max() <= 1


def test_copy_paste_puts_the_person_over_another_scene_and_keeps_both_labelled():
    person = tf.constant([[1.0, 1.0, 0.0, 0.0]] * 4)[..., None]  # left half
    other_person = tf.constant([[0.0, 1.0, 1.0, 0.0]] * 4)[..., None]
    other_ignore = tf.constant([[0.0, 0.0, 0.0, 1.0]] * 4)[..., None]
    parts = (tf.fill((4, 4, 3), 1.0), person, tf.zeros((4, 4, 1)))
    other = (tf.fill((4, 4, 3), 0.25), other_person, other_ignore)
    image, mask, ignore = (t.numpy()[0, :, 0] for t in copy_paste(parts, other, probability=1.0))
    np.testing.assert_allclose(image, [1.0, 1.0, 0.25, 0.25])  # the pasted person covers
    np.testing.assert_allclose(mask, [1.0, 1.0, 1.0, 0.0])  # the union of both people
    np.testing.assert_allclose(ignore, [0.0, 0.0, 0.0, 1.0])  # from the image that shows
    kept = copy_paste(parts, other, probability=0.0)
    np.testing.assert_allclose(kept[1].numpy(), person.numpy())


def encoded(count, source, value):
    return [
        encode_example(
            f"{source}{i}",
            source,
            np.full((40, 50, 3), value, np.uint8),
            np.ones((40, 50), np.float32),
            None,
            "png",
        )
        for i in range(count)
    ]


def test_repeated_sources_appear_that_many_times_per_epoch():
    examples = encoded(3, "portrait", 200) + encoded(5, "coco", 20)
    config = PipelineConfig(
        (16, 16), batch_size=1, augment=False, source_repeats=(("portrait", 3), ("coco", 1))
    )
    dataset, count = memory_dataset(examples, config, training=True)
    assert count == 3 * 3 + 5 and dataset.cardinality().numpy() == count
    means = [float(images.numpy().mean()) for images, _ in dataset]
    assert sum(m > 0.5 for m in means) == 9 and sum(m < 0.5 for m in means) == 5


def test_repeating_a_source_that_is_absent_is_an_error():
    config = PipelineConfig((16, 16), source_repeats=(("davis", 2),))
    try:
        memory_dataset(encoded(2, "portrait", 1), config, training=True)
    except ValueError as error:
        assert "davis" in str(error)
    else:
        raise AssertionError("an absent source must be reported")


def test_two_repeated_sources_are_both_counted():
    examples = encoded(3, "portrait", 200) + encoded(5, "coco", 20) + encoded(2, "davis", 100)
    config = PipelineConfig(
        (16, 16), batch_size=1, augment=False, source_repeats=(("portrait", 2), ("coco", 3))
    )
    dataset, count = memory_dataset(examples, config, training=True)
    assert count == 3 * 2 + 5 * 3 + 2 and dataset.cardinality().numpy() == count
    assert len(list(dataset)) == count


def test_copy_paste_pipeline_yields_union_masks():
    """People on the left in some examples, on the right in others: pasted pairs cover both."""
    examples = []
    tf.random.set_seed(0)
    for i in range(16):
        mask = np.zeros((40, 40), np.float32)
        mask[:, :20] = 1
        mask = mask if i % 2 else mask[:, ::-1]
        image = np.dstack([mask * 255] * 3).astype(np.uint8)
        examples.append(encode_example(f"s{i}", "portrait", image, mask, None, "png"))
    coverage = {}
    for probability in (0.0, 1.0):
        config = PipelineConfig((16, 16), batch_size=16, copy_paste_probability=probability)
        _, targets = next(iter(memory_dataset(examples, config, training=True)[0]))
        coverage[probability] = targets.numpy()[..., 0].mean()
    assert 0.35 < coverage[0.0] < 0.65  # half the frame on average
    assert coverage[1.0] > coverage[0.0] + 0.15  # opposite-side pairs cover the frame


def test_augmentation_changes_every_epoch_and_repeats_for_the_same_seed():
    examples = random_examples(8, "portrait")
    config = PipelineConfig((16, 16), batch_size=8, seed=3, copy_paste_probability=0.5)
    dataset, _ = memory_dataset(examples, config, training=True)
    first, second = (next(iter(dataset))[0].numpy() for _ in range(2))
    assert not np.allclose(first, second), "each epoch draws new augmentation"
    again = next(iter(memory_dataset(examples, config, training=True)[0]))[0].numpy()
    np.testing.assert_array_equal(first, again)


def test_random_choices_of_one_example_are_independent():
    """Crop, flip and colour used to share one op seed, so their draws were the same number."""
    draws = [
        float(tf.random.stateless_uniform([], seed)) for seed in split_seed(tf.constant([5, 7]), 5)
    ]
    assert len(set(draws)) == 5
    example = patterned_example()
    same = augment_geometry(example, (64, 64), tf.constant([1, 2]))
    again = augment_geometry(example, (64, 64), tf.constant([1, 2]))
    other = augment_geometry(example, (64, 64), tf.constant([3, 4]))
    np.testing.assert_array_equal(same[1].numpy(), again[1].numpy())
    assert not np.array_equal(same[1].numpy(), other[1].numpy())


def _box_aspects(crop_aspect: str, seeds=range(40)) -> list[float]:
    """Height / width of a 40x20 px box in a 96x128 frame after cropping to 64x64."""
    frame = np.zeros((96, 128, 1), np.float32)
    frame[28:68, 54:74] = 1  # h / w = 2 in the source
    aspects = []
    for seed in seeds:
        crop = _random_resized_crop(
            tf.constant(frame), (64, 64), tf.constant([seed, 1]), 0.0, crop_aspect
        )
        ys, xs = np.nonzero(crop.numpy()[..., 0] > 0.5)
        if len(ys) and ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63:
            aspects.append((np.ptp(ys) + 1) / (np.ptp(xs) + 1))  # the whole box is in the crop
    assert len(aspects) >= 10
    return aspects


def test_input_shaped_crops_keep_proportions_and_frame_shaped_crops_stretch_like_the_runtime():
    # Stretching the whole 96x128 frame to 64x64 makes the box 2 x 128/96 = 2.67 times as tall
    # as wide; square crops keep its 2 (both up to the +-15% aspect jitter and rounding).
    assert abs(np.median(_box_aspects("input")) - 2.0) < 0.25
    assert abs(np.median(_box_aspects("frame")) - 8 / 3) < 0.3


def test_crop_aspect_reaches_the_training_pipeline_and_is_checked():
    examples = random_examples(8, "portrait")
    batches = {
        aspect: next(iter(memory_dataset(examples, config, training=True)[0]))[1].numpy()
        for aspect, config in (
            (aspect, PipelineConfig((16, 24), batch_size=8, seed=3, crop_aspect=aspect))
            for aspect in ("input", "frame")
        )
    }
    assert not np.array_equal(batches["input"], batches["frame"])
    with pytest.raises(ValueError, match="crop_aspect must be one of input, frame"):
        PipelineConfig(crop_aspect="square")


def test_whole_frame_probability_sets_how_often_the_example_is_the_whole_frame():
    frame = tf.constant(patterned_example()["mask"])
    whole = _random_resized_crop(frame, (64, 64), tf.constant([0, 0]), 1.0).numpy()

    def whole_share(probability: float) -> float:
        crops = [
            _random_resized_crop(frame, (64, 64), tf.constant([seed, 5]), probability).numpy()
            for seed in range(40)
        ]
        return np.mean([np.array_equal(crop, whole) for crop in crops])

    assert whole_share(1.0) == 1.0
    assert whole_share(0.0) == 0.0
    assert 0.25 < whole_share(0.5) < 0.75
    with pytest.raises(ValueError, match="whole_frame_probability"):
        PipelineConfig(whole_frame_probability=1.5)


def test_source_weights_weigh_each_training_example_by_its_source():
    examples = encoded(3, "portrait", 200) + encoded(4, "pseudo", 20)
    config = PipelineConfig((16, 16), batch_size=1, source_weights=(("pseudo", 0.25),))
    dataset, _ = memory_dataset(examples, config, training=True)
    pairs = [(float(i.numpy().mean()), float(w.numpy()[0])) for i, _, w in dataset]
    # Dark pictures are the pseudo-labelled ones (colour jitter moves brightness a little).
    assert sorted(w for m, w in pairs if m < 0.5) == [0.25] * 4
    assert sorted(w for m, w in pairs if m > 0.5) == [1.0] * 3
    validation, _ = memory_dataset(examples, config, training=False)
    assert len(next(iter(validation))) == 2  # validation stays unweighted
    with pytest.raises(ValueError, match="must be >= 0"):
        PipelineConfig((16, 16), source_weights=(("pseudo", -1.0),))


def test_soft_targets_stay_soft_from_records_to_batches():
    """Teacher labels are probabilities: nothing thresholds them on the way in."""
    mask = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (40, 1))
    example = encode_example("soft", "pseudo", np.zeros((40, 50, 3), np.uint8), mask, None, "png")
    config = PipelineConfig((40, 50), batch_size=1, augment=False)
    dataset, _ = memory_dataset([example], config, training=False)
    _, targets = next(iter(dataset))
    values = np.unique(np.round(targets.numpy()[0, ..., 0], 2))
    assert len(values) > 40 and values.min() == 0 and values.max() == 1
