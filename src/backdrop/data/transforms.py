"""Random augmentation of training examples in numpy and OpenCV, with no TensorFlow.

Resized crops, rotation and zoom, flips, colour, background replacement and copy-paste, from
the distributions the earlier TensorFlow pipeline (`augment.py`, removed in issue 46) drew them
from, checked against it then (benchmarks/README.md, "An input pipeline without TensorFlow").
Zoom-out (an example shrunk onto another scene, issue 44) came later and has no TensorFlow twin.
Each function draws from the `numpy.random.Generator` it is given (the caller seeds one per example), the same
numbers in the same order whatever it decides, so a run repeats exactly. Images are `(h, w, 3)`
float32 RGB in [0, 1], masks `(h, w, 1)` float32 in [0, 1], ignore masks `(h, w, 1)` float32 0/1
(1 = ignore), except where a function takes a decoded uint8 picture.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from backdrop.data import CROP_ASPECTS, DEFAULT_CROP_ASPECT, WHOLE_FRAME_PROBABILITY

# Image, mask and ignore take a warp each: one 4-channel warp of image and mask (OpenCV rounds
# positions to 1/32 pixel past 4 channels) would first need them interleaved, a copy of the crop
# that costs more than the second warp saves.
_LINEAR = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
_NEAREST = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
# A sample further outside than this (in pixels) is ignore: one sampled over 0.001 pixels
# outside (the TensorFlow pipeline's rule: a warped ones channel under 0.999).
_OUTSIDE = 1e-3


def _plane(array: np.ndarray) -> np.ndarray:
    """`(h, w)` view of an `(h, w)` or `(h, w, 1)` mask."""
    return np.asarray(array).reshape(array.shape[:2])


def draw_geometry(
    rng: np.random.Generator,
    source_shape: tuple[int, int],
    input_shape: tuple[int, int],
    crop_aspect: str = DEFAULT_CROP_ASPECT,
    whole_frame_probability: float = WHOLE_FRAME_PROBABILITY,
    max_degrees: float = 10.0,
    max_scale: float = 0.1,
    flip_probability: float = 0.5,
):
    """One example's random geometry.

    Returns:
        `(box, degrees, scale, flip)`: the crop `(top, left, bottom, right)` as fractions of the
        source (35-100% of its area; the whole frame with `whole_frame_probability`), the
        rotation, the zoom and whether to mirror left-right.
    """
    if crop_aspect not in CROP_ASPECTS:
        raise ValueError(
            f"crop_aspect must be one of {', '.join(CROP_ASPECTS)}, got {crop_aspect!r}"
        )
    area = rng.uniform(0.35, 1.0)
    log_ratio = rng.uniform(math.log(3 / 4), math.log(4 / 3))
    top_draw, left_draw, whole_draw = rng.random(3)
    degrees = rng.uniform(-max_degrees, max_degrees)
    scale = rng.uniform(1 - max_scale, 1 + max_scale)
    flip = bool(rng.random() < flip_probability)
    (height, width), (source_h, source_w) = input_shape, source_shape
    aspect = math.exp(log_ratio)
    if crop_aspect == "input":
        aspect *= (width / height) * source_h / source_w
    box_h = min(1.0, math.sqrt(area / aspect))
    box_w = min(1.0, math.sqrt(area * aspect))
    top, left = top_draw * (1.0 - box_h), left_draw * (1.0 - box_w)
    box = (0.0, 0.0, 1.0, 1.0)
    if whole_draw >= whole_frame_probability:
        box = (top, left, top + box_h, left + box_w)
    return box, degrees, scale, flip


def apply_geometry(image, mask, ignore, input_shape, box, degrees, scale, flip):
    """Crops `box`, rotates and zooms about the centre, and flips: one affine warp.

    The three steps of `augment.augment_geometry`, composed into one map, so each pixel is
    interpolated once (TensorFlow interpolates twice). Arguments as `augment_geometry`'s and
    `draw_geometry`'s results.
    """
    height, width = input_shape
    source_h, source_w = image.shape[:2]
    top, left, bottom, right = box
    # tf.image.crop_and_resize's convention (align corners): the box's corners land on the
    # first and last output pixel centres, so output column x samples the source at column
    # left * (W - 1) + x * (right - left) * (W - 1) / (width - 1), pixel centres at integers.
    step_x = (right - left) * (source_w - 1) / max(width - 1, 1)
    step_y = (bottom - top) * (source_h - 1) / max(height - 1, 1)
    step = np.diag([step_x, step_y])
    # Then augment._rotate_and_scale: output pixel p samples the crop at A @ (p - c) + c.
    angle = degrees * math.pi / 180
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    rotate = np.array([[cos, -sin], [sin, cos]])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    # The flip comes last, so it acts first here: output column x is column width - 1 - x.
    mirror = np.diag([-1.0, 1.0]) if flip else np.eye(2)
    shift = np.array([width - 1.0, 0.0]) if flip else np.zeros(2)
    in_crop = np.hstack([rotate @ mirror, (rotate @ (shift - centre) + centre)[:, None]])

    # Only the crop's pixels (rounded out to whole pixels) are warped: as in the TF pipeline, which
    # crops before it rotates, the rotation brings in zeros, not the frame around the crop.
    row0, col0 = math.floor(top * (source_h - 1)), math.floor(left * (source_w - 1))
    row1 = min(math.ceil(bottom * (source_h - 1)), source_h - 1)
    col1 = min(math.ceil(right * (source_w - 1)), source_w - 1)
    rows, cols = slice(row0, row1 + 1), slice(col0, col1 + 1)
    origin = np.array([left * (source_w - 1) - col0, top * (source_h - 1) - row0])
    to_source = np.hstack([step @ in_crop[:, :2], (step @ in_crop[:, 2] + origin)[:, None]])

    size = (width, height)
    image = cv2.warpAffine(image[rows, cols].astype(np.float32), to_source, size, flags=_LINEAR)
    image *= np.float32(1 / 255)  # after the warp: fewer pixels
    mask = np.ascontiguousarray(_plane(mask)[rows, cols], np.float32)
    mask = cv2.warpAffine(mask, to_source, size, flags=_LINEAR)  # zeros from outside
    ignore = _plane(ignore)[rows, cols]
    ignored = np.zeros((height, width), bool)
    if ignore.any():  # most sources mark none
        ignore = np.ascontiguousarray(ignore, np.float32)
        ignored = cv2.warpAffine(ignore, to_source, size, flags=_NEAREST) > 0.5

    # Outside the crop: where the (flipped) rotation's sample falls off the crop's grid. None
    # does where the output's four corners land on it (the map is affine, the grid convex).
    limits = np.array([[width - 1], [height - 1]])
    corners = in_crop @ [[0, width - 1, 0, width - 1], [0, 0, height - 1, height - 1], [1] * 4]
    if (corners < -_OUTSIDE).any() or (corners > limits + _OUTSIDE).any():
        xs, ys = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        for row, limit in zip(in_crop, limits[:, 0], strict=True):
            at = row[0] * xs[None, :] + (row[1] * ys + row[2])[:, None]
            ignored |= (at < -_OUTSIDE) | (at > limit + _OUTSIDE)
    return image, mask[..., None], ignored[..., None].astype(np.float32)


def augment_geometry(
    image: np.ndarray,
    mask: np.ndarray,
    ignore: np.ndarray,
    input_shape: tuple[int, int],
    rng: np.random.Generator,
    crop_aspect: str = DEFAULT_CROP_ASPECT,
    whole_frame_probability: float = WHOLE_FRAME_PROBABILITY,
    max_degrees: float = 10.0,
    max_scale: float = 0.1,
    flip_probability: float = 0.5,
):
    """One random crop, rotation/zoom and flip of image, mask and ignore together.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        mask, ignore: `(H, W)` or `(H, W, 1)`, in [0, 1] and 0/1.
        crop_aspect, whole_frame_probability: See `PipelineConfig`.
        max_degrees, max_scale, flip_probability: The largest rotation, the largest zoom (0.1:
            90-110%) and the chance of a left-right flip; zeros turn them off.

    Returns:
        `(image, mask, ignore)` at `input_shape`; pixels that came from outside the crop (brought
        in by the rotation or zoom) are marked ignore.
    """
    limits = (max_degrees, max_scale, flip_probability)
    choices = draw_geometry(
        rng, image.shape[:2], input_shape, crop_aspect, whole_frame_probability, *limits
    )
    return apply_geometry(image, mask, ignore, input_shape, *choices)


def jitter_colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, as `augment.jitter_colour`.

    The ranges of its tf.image.stateless_random_* calls: brightness +-0.15, contrast 0.75-1.25,
    saturation 0.7-1.3 and hue +-0.04 of a turn, applied by `adjust_colour`.
    """
    brightness = rng.uniform(-0.15, 0.15)
    contrast = rng.uniform(0.75, 1.25)
    saturation = rng.uniform(0.7, 1.3)
    hue = rng.uniform(-0.04, 0.04)
    return adjust_colour(image, brightness, contrast, saturation, hue)


def adjust_colour(
    image: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float
) -> np.ndarray:
    """tf.image's adjust_brightness, _contrast, _saturation and _hue in turn, clipped to [0, 1].

    Brightness is added; contrast scales each channel's distance from its mean; saturation
    scales HSV saturation (clipped to [0, 1]); hue turns HSV hue by `hue` of a full turn.
    Saturation and hue share one trip through HSV where TensorFlow takes one each: the same
    colours, as the trip there and back changes none.

    Args:
        image: `(h, w, 3)` float32 RGB, in [0, 1].
    """
    # (x + b - mean(x + b)) * c + mean(x + b) = x * c + (mean(x) * (1 - c) + b), per channel,
    # in one cv2.transform (numpy is slow to broadcast over a last axis of 3).
    image = np.asarray(image, np.float32)
    offsets = np.array(cv2.mean(image)[:3]) * (1 - contrast) + brightness
    adjusted = cv2.transform(image, np.hstack([np.eye(3) * contrast, offsets[:, None]]))
    hsv = cv2.cvtColor(adjusted, cv2.COLOR_RGB2HSV)  # float: hue in degrees, [0, 360)
    np.clip(hsv[..., 1] * np.float32(saturation), 0.0, 1.0, out=hsv[..., 1])
    # Hues stay under 720 this way, and OpenCV takes hues in [360, 720) round the circle.
    hsv[..., 0] += np.float32((hue * 360) % 360)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


def background_crop(
    image: np.ndarray, input_shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A random crop of `input_shape` from `image` scaled to cover it, times 1-1.5 more.

    As `augment.background_dataset` loads each background: a bilinear resize (half-pixel
    centres, edges repeated, as tf.image.resize), then a uniform crop; only the crop is resampled.

    Args:
        image: `(H, W, 3)` uint8 RGB.

    Returns:
        `(height, width, 3)` float32 in [0, 1].
    """
    height, width = input_shape
    source_h, source_w = image.shape[:2]
    scale = max(height / source_h, width / source_w) * rng.uniform(1.0, 1.5)
    scaled_h = max(math.ceil(source_h * scale), height)
    scaled_w = max(math.ceil(source_w * scale), width)
    top = int(rng.integers(0, scaled_h - height + 1))
    left = int(rng.integers(0, scaled_w - width + 1))
    # Output (x, y) is scaled pixel (x + left, y + top): source (x + left + 0.5) * sx - 0.5.
    sx, sy = source_w / scaled_w, source_h / scaled_h
    to_source = np.array([[sx, 0, (left + 0.5) * sx - 0.5], [0, sy, (top + 0.5) * sy - 0.5]])
    crop = cv2.warpAffine(
        image, to_source, (width, height), flags=_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return crop.astype(np.float32) * np.float32(1 / 255)


def _blend(front: np.ndarray, back: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`mask * front + (1 - mask) * back`, the `(h, w, 1)` mask spread over front's channels."""
    if front.shape[-1] != 1:  # numpy is slow to broadcast over a last axis of 3
        mask = cv2.merge([_plane(mask)] * front.shape[-1])
    blended = front - back
    blended *= mask
    blended += back
    return blended


def replace_background(image, mask, background, probability: float, rng: np.random.Generator):
    """With `probability`, `mask * image + (1 - mask) * background` (soft masks blend softly)."""
    if rng.random() >= probability:
        return image
    return _blend(image, background, mask)


def copy_paste(parts, other, probability: float, rng: np.random.Generator):
    """With `probability`, pastes the people of `parts` over the scene of `other`.

    Both are `(image, mask, ignore)`. The other example's people stay where the pasted ones do
    not cover them, so the target is the union of both masks; ignore follows whichever image
    shows at each pixel.
    """
    if rng.random() >= probability:
        return parts
    image, mask, ignore = parts
    other_image, other_mask, other_ignore = other
    return (
        _blend(image, other_image, mask),
        np.maximum(mask, other_mask * (1.0 - mask)),
        (_blend(ignore, other_ignore, mask) > 0.5).astype(np.float32),
    )


# How small `zoom_out` makes an example: a share of the input's side, drawn uniformly.
ZOOM_OUT_SCALES = (0.3, 0.9)


def zoom_out(parts, canvas, rng: np.random.Generator, scales=ZOOM_OUT_SCALES):
    """The example `parts` shrunk to a random share of its side, placed at a random spot of
    `canvas`: people as small in the frame as a camera across a room shows them.

    Both are `(image, mask, ignore)` at the input's shape. The canvas is a picture without
    people (mask and ignore zero) or another example, whose people stay labelled around the
    shrunk one. The shrunk example covers the canvas where it lies, its ignore pixels included.
    """
    scale = rng.uniform(*scales)
    top_draw, left_draw = rng.random(2)
    image, mask, ignore = parts
    height, width = image.shape[:2]
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    top, left = int(top_draw * (height - small_h + 1)), int(left_draw * (width - small_w + 1))
    rows, cols = slice(top, top + small_h), slice(left, left + small_w)
    size = (small_w, small_h)
    out_image, out_mask, out_ignore = (np.array(part, np.float32) for part in canvas)
    out_image[rows, cols] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out_mask[rows, cols, 0] = cv2.resize(_plane(mask), size, interpolation=cv2.INTER_AREA)
    shrunk_ignore = cv2.resize(_plane(ignore), size, interpolation=cv2.INTER_AREA)
    out_ignore[rows, cols, 0] = (shrunk_ignore > 0.5).astype(np.float32)
    return out_image, out_mask, out_ignore


def resize_example(
    image: np.ndarray, mask: np.ndarray, ignore: np.ndarray, input_shape: tuple[int, int]
):
    """The validation path: the whole frame stretched to `input_shape`, as at inference.

    Bilinear for image and mask, nearest for ignore, with half-pixel centres as
    `pipeline.resize_example`'s tf.image.resize.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        mask, ignore: `(H, W)` or `(H, W, 1)`, in [0, 1] and 0/1.

    Returns:
        `(image, mask, ignore)` as `augment_geometry`'s.
    """
    size = tuple(reversed(input_shape))
    resized = cv2.resize(np.asarray(image, np.float32), size, interpolation=cv2.INTER_LINEAR)
    resized *= np.float32(1 / 255)
    mask = cv2.resize(_plane(mask).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    # INTER_NEAREST_EXACT picks floor((x + 0.5) * scale) as TensorFlow; INTER_NEAREST does not.
    ignore = _plane(ignore).astype(np.float32)
    ignore = cv2.resize(ignore, size, interpolation=cv2.INTER_NEAREST_EXACT)
    return np.clip(resized, 0.0, 1.0, out=resized), mask[..., None], ignore[..., None]
