"""transforms.py: training's augmentation in numpy/OpenCV (TensorFlow's image ops as references)."""

from __future__ import annotations

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from backdrop.data import transforms

SHAPE = (64, 64)


def blob_example(seed=0, height=96, width=128):
    """Random blobs as the person mask, the image's red channel 255 * mask, the top rows ignored."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 6)
    mask = (noise > np.quantile(noise, 0.7)).astype(np.float32)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[..., 0] = mask * 255
    ignore = np.zeros((height, width, 1), np.float32)
    ignore[:10] = 1
    return image, mask[..., None], ignore


def smooth_image(seed=0, height=96, width=128):
    """A blurred random picture: bilinear sampling conventions differ on it by little."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32) * 255
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3), 0, 255).astype(np.uint8)


def augment_fully(example, scene, background, seed):
    """Every transform in the training pipeline's order, from one generator."""
    rng = np.random.default_rng(seed)
    parts = transforms.augment_geometry(*example, SHAPE, rng)
    other = transforms.augment_geometry(*scene, SHAPE, rng)
    image, mask, ignore = transforms.copy_paste(parts, other, 0.5, rng)
    backdrop = transforms.background_crop(background, SHAPE, rng)
    image = transforms.replace_background(image, mask, backdrop, 0.5, rng)
    return transforms.jitter_colour(image, rng), mask, ignore


def assert_same_distribution(ours, theirs):
    """Two samples of one statistic agree in mean, spread and shape (two-sample KS test)."""
    count = len(ours)
    # The means differ by under 4 standard errors of their difference (p < 1e-4 for one law).
    error = math.sqrt((ours.var() + theirs.var()) / count)
    assert abs(ours.mean() - theirs.mean()) < 4 * error
    assert ours.std() == pytest.approx(theirs.std(), rel=0.15)
    # The largest gap between the two ECDFs: over 1.95 * sqrt(2 / n) has p < 0.001.
    grid = np.sort(np.concatenate([ours, theirs]))
    gaps = np.searchsorted(np.sort(ours), grid, "right") - np.searchsorted(
        np.sort(theirs), grid, "right"
    )
    assert np.abs(gaps).max() / count < 1.95 * math.sqrt(2 / count)


def test_the_same_seed_repeats_and_other_seeds_differ():
    example, scene = blob_example(0), blob_example(1)
    background = smooth_image(2, 80, 60)
    first = augment_fully(example, scene, background, 7)
    again = augment_fully(example, scene, background, 7)
    other = augment_fully(example, scene, background, 8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_outputs_have_the_input_shape_dtypes_and_ranges():
    example, scene = blob_example(0), blob_example(1)
    for seed in range(20):
        image, mask, ignore = augment_fully(example, scene, smooth_image(2, 50, 200), seed)
        assert image.shape == (*SHAPE, 3) and mask.shape == ignore.shape == (*SHAPE, 1)
        assert image.dtype == mask.dtype == ignore.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        assert 0 <= mask.min() and mask.max() <= 1
        assert set(np.unique(ignore)) <= {0.0, 1.0}


def test_geometry_keeps_image_and_mask_aligned():
    image, mask, ignore = blob_example()
    for seed in range(10):
        out, out_mask, out_ignore = transforms.augment_geometry(
            image, mask[..., 0], ignore, SHAPE, np.random.default_rng(seed), crop_aspect="frame"
        )
        kept = out_ignore[..., 0] == 0
        # One warp moves both: the red channel is the mask wherever a pixel counts.
        np.testing.assert_allclose(out[..., 0][kept], out_mask[..., 0][kept], atol=1e-4)
        assert 0.02 < out_mask[kept].mean() < 0.98, "the crop keeps some of the blobs"


def test_pixels_from_outside_the_crop_are_ignore():
    white = np.full((96, 128, 3), 255, np.uint8)
    mask, ignore = np.ones((96, 128), np.float32), np.zeros((96, 128), np.float32)
    ignored = []
    for seed in range(30):
        image, out_mask, out_ignore = transforms.augment_geometry(
            white, mask, ignore, SHAPE, np.random.default_rng(seed)
        )
        kept = out_ignore[..., 0] == 0
        # A pixel that blends in any of the zeros from outside is ignore; the rest are whole.
        assert image[kept].min() > 0.998 and out_mask[kept].min() > 0.998
        ignored.append(1 - kept.mean())
    assert max(ignored) > 0.02, "rotations and zooms bring in pixels from outside"
    assert min(ignored) == 0, "some draws stay inside the crop"


def test_a_whole_frame_without_rotation_is_the_validation_stretch():
    image, (mask, ignore) = smooth_image(), blob_example()[1:]
    mask = cv2.GaussianBlur(mask, (0, 0), 2)[..., None]  # soft, as sampling conventions allow
    still = {"max_degrees": 0.0, "max_scale": 0.0, "flip_probability": 0.0}
    out = transforms.augment_geometry(
        image, mask, ignore, SHAPE, np.random.default_rng(0), whole_frame_probability=1, **still
    )
    stretched = transforms.resize_example(image, mask, ignore, SHAPE)
    # Crops sample with aligned corners, the stretch with half-pixel centres: close, not equal.
    assert np.abs(out[0] - stretched[0]).mean() < 0.005
    assert np.abs(out[1] - stretched[1]).mean() < 0.01
    assert (out[2] != stretched[2]).mean() < 0.02


def test_crop_rotation_zoom_and_flip_land_where_tensorflows_do():
    tf = pytest.importorskip("tensorflow")
    height, width = 96, 128
    # Bilinear sampling is exact on a linear ramp, however often it samples: TensorFlow's two
    # steps and the one warp agree wherever both see inside the crop.
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.stack([xs / width, ys / height, (xs + ys) / (width + height)], -1)
    image = np.round(ramp * 255).astype(np.uint8)
    mask, ignore = ramp[..., :1], np.zeros((height, width, 1), np.float32)
    stack = tf.concat([tf.constant(image, tf.float32) / 255, mask, tf.ones_like(mask)], -1)
    flips = []
    for seed in range(12):
        box, degrees, scale, flip = transforms.draw_geometry(
            np.random.default_rng(seed), (height, width), SHAPE, whole_frame_probability=0.0
        )
        angle = degrees * math.pi / 180
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        cx, cy = (SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2
        rotate = [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0, 0]
        expected = tf.image.crop_and_resize(stack[None], [box], [0], SHAPE)
        expected = tf.raw_ops.ImageProjectiveTransformV3(
            images=expected,
            transforms=tf.constant([rotate], tf.float32),
            output_shape=SHAPE,
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )[0].numpy()
        expected = expected[:, ::-1] if flip else expected
        out, out_mask, out_ignore = transforms.apply_geometry(
            image, mask, ignore, SHAPE, box, degrees, scale, flip
        )
        inside = expected[..., 4] >= 0.999
        assert (out_ignore[..., 0] == 0)[inside].mean() > 0.98
        assert (out_ignore[..., 0] == 1)[~inside].all()
        both = inside & (out_ignore[..., 0] == 0)
        np.testing.assert_allclose(out[both], expected[..., :3][both], atol=3e-3)
        np.testing.assert_allclose(out_mask[both], expected[..., 3:4][both], atol=1e-4)
        flips.append(flip)
    assert any(flips) and not all(flips)


def test_colour_matches_tensorflows_adjustments():
    tf = pytest.importorskip("tensorflow")
    picture = np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)
    for brightness, contrast, saturation, hue in [(0.1, 1.2, 0.8, 0.03), (-0.15, 0.75, 1.3, -0.04)]:
        expected = tf.image.adjust_brightness(picture, brightness)
        expected = tf.image.adjust_contrast(expected, contrast)
        expected = tf.image.adjust_saturation(expected, saturation)
        expected = tf.image.adjust_hue(expected, hue)
        ours = transforms.adjust_colour(picture, brightness, contrast, saturation, hue)
        np.testing.assert_allclose(ours, tf.clip_by_value(expected, 0, 1).numpy(), atol=1e-5)


def _box_aspects(crop_aspect: str, seeds=range(40)) -> list[float]:
    """Height / width of a 40x20 px box in a 96x128 frame after cropping to 64x64."""
    frame = np.zeros((96, 128, 1), np.float32)
    frame[28:68, 54:74] = 1  # h / w = 2 in the source
    image, ignore = np.zeros((96, 128, 3), np.uint8), np.zeros_like(frame)
    still = {"max_degrees": 0.0, "max_scale": 0.0, "flip_probability": 0.0}
    aspects = []
    for seed in seeds:
        crop = transforms.augment_geometry(
            image,
            frame,
            ignore,
            SHAPE,
            np.random.default_rng(seed),
            crop_aspect,
            whole_frame_probability=0.0,
            **still,
        )[1]
        ys, xs = np.nonzero(crop[..., 0] > 0.5)
        if len(ys) and ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63:
            aspects.append((np.ptp(ys) + 1) / (np.ptp(xs) + 1))  # the whole box is in the crop
    assert len(aspects) >= 10
    return aspects


def test_input_shaped_crops_keep_proportions_and_frame_shaped_crops_stretch_like_the_runtime():
    # Stretching the whole 96x128 frame to 64x64 makes the box 2 x 128/96 = 2.67 times as tall
    # as wide; square crops keep its 2 (both up to the +-15% aspect jitter and rounding).
    assert abs(np.median(_box_aspects("input")) - 2.0) < 0.25
    assert abs(np.median(_box_aspects("frame")) - 8 / 3) < 0.3


def test_whole_frame_probability_sets_how_often_the_example_is_the_whole_frame():
    def whole_share(probability: float) -> float:
        boxes = [
            transforms.draw_geometry(np.random.default_rng(seed), (96, 128), SHAPE, "input", p)[0]
            for seed, p in zip(range(40), [probability] * 40, strict=True)
        ]
        return np.mean([box == (0.0, 0.0, 1.0, 1.0) for box in boxes])

    assert whole_share(1.0) == 1.0
    assert whole_share(0.0) == 0.0
    assert 0.25 < whole_share(0.5) < 0.75


def test_background_crop_covers_the_input_scaled_up_to_half_as_much_again():
    height, width = 60, 200
    ramp = np.broadcast_to(np.arange(width, dtype=np.float32) / (width - 1) * 255, (height, width))
    background = np.repeat(ramp[..., None], 3, axis=2).round().astype(np.uint8)
    cover = max(SHAPE[0] / height, SHAPE[1] / width)
    for seed in range(10):
        crop = transforms.background_crop(background, SHAPE, np.random.default_rng(seed))
        assert crop.shape == (*SHAPE, 3) and crop.dtype == np.float32
        # The ramp climbs 1/(width - 1) a source column: per crop column, 1 / scale of that.
        slope = np.polyfit(np.arange(SHAPE[1] - 8), crop[32, 4:-4, 0], 1)[0]
        scale = 1 / (slope * (width - 1))
        assert cover * 0.98 < scale < cover * 1.5 * 1.02


def test_background_and_copy_paste_blend_by_the_mask_when_chosen():
    image, other = np.ones((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32)
    mask = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)[..., None]
    rng = np.random.default_rng(0)
    blended = transforms.replace_background(image, mask, other, 1.0, rng)
    np.testing.assert_allclose(blended[..., 0], [[1, 0.5], [0, 0]])
    assert transforms.replace_background(image, mask, other, 0.0, rng) is image

    ignore = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)[..., None]
    other_mask = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)[..., None]
    other_ignore = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)[..., None]
    parts, scene = (image, mask, ignore), (other, other_mask, other_ignore)
    pasted_image, pasted_mask, pasted_ignore = transforms.copy_paste(parts, scene, 1.0, rng)
    np.testing.assert_allclose(pasted_image[..., 0], [[1, 0.5], [0, 0]])
    np.testing.assert_allclose(pasted_mask[..., 0], [[1, 0.5], [1, 0]])
    np.testing.assert_array_equal(pasted_ignore[..., 0], [[0, 0], [1, 0]])
    assert transforms.copy_paste(parts, scene, 0.0, rng) is parts


def test_zoom_out_shrinks_the_example_onto_the_canvas_and_keeps_the_canvas_people():
    """A whole-person example (value 1, ignore on its top rows) over a canvas whose left half is
    a person (value 0.5): the shrunk copy lies inside, the canvas shows around it."""
    height, width = 40, 60
    image, mask = np.ones((height, width, 3), np.float32), np.ones((height, width, 1), np.float32)
    ignore = np.zeros((height, width, 1), np.float32)
    ignore[:10] = 1
    canvas_image = np.full((height, width, 3), 0.5, np.float32)
    canvas_mask = np.zeros((height, width, 1), np.float32)
    canvas_mask[:, : width // 2] = 1
    canvas = (canvas_image, canvas_mask, np.zeros_like(ignore))
    kept = [part.copy() for part in canvas]
    for seed in range(20):
        rng = np.random.default_rng(seed)
        scale = np.random.default_rng(seed).uniform(*transforms.ZOOM_OUT_SCALES)
        out_image, out_mask, out_ignore = transforms.zoom_out((image, mask, ignore), canvas, rng)
        assert out_image.shape == (height, width, 3) and out_mask.shape == (height, width, 1)
        assert out_ignore.shape == (height, width, 1)
        rows, cols = np.nonzero(out_image[..., 0] > 0.75)
        # The example, shrunk by `scale` on each side, as one rectangle.
        assert rows.max() - rows.min() + 1 == round(height * scale)
        assert cols.max() - cols.min() + 1 == round(width * scale)
        inside = np.zeros((height, width), bool)
        inside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        np.testing.assert_allclose(out_image[inside], 1.0, rtol=1e-6)
        np.testing.assert_allclose(out_mask[inside], 1.0, rtol=1e-6)
        # Its ignore rows shrink with it: a quarter of its height, at its top.
        ignored = out_ignore[..., 0] == 1
        assert ignored[rows.min(), inside[rows.min()]].all()
        assert abs(ignored.sum() / inside.sum() - 0.25) < 0.1
        assert not ignored[~inside].any()
        # Around it, the canvas as it was, its people labelled.
        np.testing.assert_array_equal(out_image[~inside], canvas_image[~inside])
        np.testing.assert_array_equal(out_mask[~inside], canvas_mask[~inside])
    for part, before in zip(canvas, kept, strict=True):
        np.testing.assert_array_equal(part, before)  # the canvas given is left as it was


def test_importing_transforms_leaves_tensorflow_out():
    code = "import sys, backdrop.data.transforms; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
