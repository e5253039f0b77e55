"""Random augmentation of training examples (TensorFlow ops, stateless seeds): geometry (resized
crops, flips, rotation and zoom), colour, background replacement and copy-paste.

Every function takes its own seed, so one example's choices are independent of the others' and a
run with the same seed repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from backdrop.data import DEFAULT_CROP_ASPECT, WHOLE_FRAME_PROBABILITY
from backdrop.data.sample import find_images
from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()


def split_seed(seed, count: int):
    """`count` independent stateless seeds from one `[2]` int seed; None draws a fresh one.

    Every random choice of an example takes its own seed: ops given the same seed would draw
    the same number (crop size, position, flip and background choice all moving together), and
    per-op stateful seeds would repeat the same sequence every epoch.
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def _uniform(seed, low=0.0, high=1.0):
    return tf.random.stateless_uniform([], seed, low, high)


def _random_resized_crop(
    stack,
    input_shape,
    seed,
    whole_frame_probability=WHOLE_FRAME_PROBABILITY,
    crop_aspect=DEFAULT_CROP_ASPECT,
):
    """Crops a random box (35-100% of the area) and resizes it to `input_shape`.

    The box's aspect is near the input's (`crop_aspect="input"`: undistorted) or near the
    source frame's (`"frame"`: distorted by the resize as much as the whole frame would be).
    With `whole_frame_probability` the box is the whole frame instead, stretched to the input
    as at inference (the runtime's contract): without it a model never sees full frames, with
    people as small and as distorted as the runtime shows them, and does worse on them.
    """
    area_seed, ratio_seed, top_seed, left_seed, whole_seed = split_seed(seed, 5)
    height, width = input_shape
    source_h = tf.cast(tf.shape(stack)[0], tf.float32)
    source_w = tf.cast(tf.shape(stack)[1], tf.float32)
    area = _uniform(area_seed, 0.35, 1.0)
    log_ratio = _uniform(ratio_seed, math.log(3 / 4), math.log(4 / 3))
    # Box size as fractions of the source: target aspect times a jitter, area as drawn.
    aspect = tf.exp(log_ratio)
    if crop_aspect == "input":
        aspect *= (width / height) * source_h / source_w
    box_h = tf.minimum(1.0, tf.sqrt(area / aspect))
    box_w = tf.minimum(1.0, tf.sqrt(area * aspect))
    top = _uniform(top_seed) * (1.0 - box_h)
    left = _uniform(left_seed) * (1.0 - box_w)
    crop = tf.stack([top, left, top + box_h, left + box_w])
    whole = tf.constant([0.0, 0.0, 1.0, 1.0])
    boxes = tf.where(_uniform(whole_seed) < whole_frame_probability, whole, crop)
    return tf.image.crop_and_resize(stack[None], boxes[None], [0], input_shape)[0]


def _rotate_and_scale(stack, seed, max_degrees=10.0, max_scale=0.1):
    """A small rotation and zoom about the centre; pixels brought in from outside are zeros."""
    angle_seed, scale_seed = split_seed(seed, 2)
    height = tf.cast(tf.shape(stack)[0], tf.float32)
    width = tf.cast(tf.shape(stack)[1], tf.float32)
    angle = _uniform(angle_seed, -max_degrees, max_degrees) * math.pi / 180
    scale = _uniform(scale_seed, 1 - max_scale, 1 + max_scale)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # Output pixel (x, y) samples the input at A @ (x - c) + c.
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0]
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=stack[None],
        transforms=transform[None],
        output_shape=tf.shape(stack)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]


def jitter_colour(image, seed=None):
    brightness, contrast, saturation, hue = split_seed(seed, 4)
    image = tf.image.stateless_random_brightness(image, 0.15, brightness)
    image = tf.image.stateless_random_contrast(image, 0.75, 1.25, contrast)
    image = tf.image.stateless_random_saturation(image, 0.7, 1.3, saturation)
    image = tf.image.stateless_random_hue(image, 0.04, hue)
    return tf.clip_by_value(image, 0.0, 1.0)


def augment_geometry(
    example: dict,
    input_shape: tuple[int, int],
    seed=None,
    crop_aspect: str = DEFAULT_CROP_ASPECT,
    whole_frame_probability: float = WHOLE_FRAME_PROBABILITY,
):
    """Applies one random crop, rotation/scale and flip to image, mask and ignore together.

    Args:
        seed: A `[2]` int stateless seed (the same seed gives the same result); None: random.
        crop_aspect, whole_frame_probability: See `PipelineConfig`.

    Returns:
        `(image, mask, ignore)` at `input_shape`; pixels that came from outside the source image
        are marked ignore.
    """
    crop_seed, rotate_seed, flip_seed = split_seed(seed, 3)
    image = tf.cast(example["image"], tf.float32) / 255.0
    valid = tf.ones_like(example["mask"])
    stack = tf.concat([image, example["mask"], example["ignore"], valid], axis=-1)
    stack = _random_resized_crop(
        stack, input_shape, crop_seed, whole_frame_probability, crop_aspect=crop_aspect
    )
    stack = _rotate_and_scale(stack, rotate_seed)
    stack = tf.cond(
        _uniform(flip_seed) < 0.5,
        lambda: tf.image.flip_left_right(stack),
        lambda: stack,
    )
    image, mask = stack[..., :3], stack[..., 3:4]
    ignore = tf.cast((stack[..., 4:5] > 0.5) | (stack[..., 5:6] < 0.999), tf.float32)
    return image, mask, ignore


def element_seeds(seed: int | None) -> tf.data.Dataset:
    """Endless `[2]` stateless seeds, one per example, different in every epoch (iteration)."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def background_dataset(folders: Sequence[Path], input_shape: tuple[int, int], seed=None):
    """Endless random crops (covering `input_shape`) of the images in `folders`."""
    files = sorted(str(path) for folder in folders for path in find_images(Path(folder)))
    if not files:
        raise ValueError(f"no images in background folders {[str(f) for f in folders]}")
    height, width = input_shape

    def load(path, element_seed):
        scale_seed, crop_seed = split_seed(element_seed, 2)
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.cast(image, tf.float32) / 255.0
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.reduce_max(tf.constant([height, width], tf.float32) / shape)
        scale *= _uniform(scale_seed, 1.0, 1.5)
        size = tf.cast(tf.math.ceil(shape * scale), tf.int32)
        image = tf.image.resize(image, tf.maximum(size, [height, width]))
        return tf.image.stateless_random_crop(image, [height, width, 3], crop_seed)

    files = (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        .repeat()
    )
    seeds = element_seeds(None if seed is None else seed + 1)
    return tf.data.Dataset.zip(files, seeds).map(load, num_parallel_calls=tf.data.AUTOTUNE)


def replace_background(image, mask, background, probability: float, seed=None):
    """With `probability`, `mask * image + (1 - mask) * background` (soft masks blend softly)."""
    replaced = mask * image + (1.0 - mask) * background
    chosen = _uniform(split_seed(seed, 1)[0]) < probability
    return tf.cond(chosen, lambda: replaced, lambda: image)


def copy_paste(parts, other, probability: float, seed=None):
    """With `probability`, pastes the people of `parts` over the scene of `other`.

    Both are `(image, mask, ignore)`. The other example's people stay where the pasted ones do
    not cover them, so the target is the union of both masks; ignore follows whichever image
    shows at each pixel.
    """
    image, mask, ignore = parts
    other_image, other_mask, other_ignore = other
    pasted = (
        mask * image + (1.0 - mask) * other_image,
        tf.maximum(mask, other_mask * (1.0 - mask)),
        tf.cast(mask * ignore + (1.0 - mask) * other_ignore > 0.5, tf.float32),
    )
    chosen = _uniform(split_seed(seed, 1)[0]) < probability
    return tf.cond(chosen, lambda: pasted, lambda: (image, mask, ignore))
