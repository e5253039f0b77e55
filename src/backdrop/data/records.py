"""The TFRecord schema: the one place that writes and parses Backdrop's records.

Each record is a `tf.train.Example` with DeepLab-style keys:

| key | value |
|---|---|
| image/encoded | JPEG or PNG bytes, RGB |
| image/format | b"jpeg" or b"png" |
| image/filename | the sample's name |
| image/height, image/width, image/channels | int64 |
| image/source | the reader that produced it, e.g. b"voc" |
| image/segmentation/class/encoded | 8-bit grayscale PNG: person probability x 255 (soft where the source is soft) |
| image/segmentation/class/format | b"png" |
| image/segmentation/ignore/encoded | 8-bit grayscale PNG: 255 = ignore (neither person nor background) |

Writing needs no TensorFlow: `example_proto.py` writes the protobuf by hand and `tfrecord.py`
frames it, which keeps TensorFlow's start-up out of `backdrop prepare`. Backdrop reads them
without TensorFlow too (`decode_example`: the protobuf read by hand, every length bounded by the
bytes that are there, the pictures decoded by OpenCV), which `read_records` and training's loader
use. `parse_example` is the same schema for `tf.data`, for users who read Backdrop's records with
TensorFlow; the tests check the two against each other: masks and PNG images agree exactly; JPEG
images differ by about 1.4 levels on average (OpenCV decodes with libjpeg's accurate DCT,
TensorFlow with its fast one).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from backdrop.data.example_proto import ExampleFormatError, decode_features, serialize_example
from backdrop.data.tfrecord import PREPARE_AGAIN, RecordsFileError, read_shard

IMAGE_FORMATS = ("jpeg", "png")
JPEG_QUALITY = 95

IMAGE_KEY = "image/encoded"
FORMAT_KEY = "image/format"
FILENAME_KEY = "image/filename"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
CHANNELS_KEY = "image/channels"
SOURCE_KEY = "image/source"
MASK_KEY = "image/segmentation/class/encoded"
MASK_FORMAT_KEY = "image/segmentation/class/format"
IGNORE_KEY = "image/segmentation/ignore/encoded"


def encode_image(image: np.ndarray, image_format: str, jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """Encodes `(H, W, 3)` uint8 RGB as JPEG (at `jpeg_quality`) or PNG bytes."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image_format == "jpeg":
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    else:
        ok, buffer = cv2.imencode(".png", bgr)
    assert ok, "OpenCV failed to encode an image"
    return buffer.tobytes()


def encode_gray_png(values: np.ndarray) -> bytes:
    """Encodes `(H, W)` uint8 as an 8-bit grayscale PNG."""
    ok, buffer = cv2.imencode(".png", values)
    assert ok, "OpenCV failed to encode a mask"
    return buffer.tobytes()


def quantize_mask(mask: np.ndarray) -> np.ndarray:
    """`(H, W)` float mask in [0, 1] -> uint8 0..255, the precision records store."""
    return np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8)


def encode_example(
    name: str,
    source: str,
    image: np.ndarray,
    mask: np.ndarray,
    ignore: np.ndarray | None,
    image_format: str = "jpeg",
    jpeg_quality: int = JPEG_QUALITY,
) -> bytes:
    """Serializes one sample (already at its record size) to Example bytes.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` float32 person probability in [0, 1].
        ignore: `(H, W)` bool, or None for no ignore pixels.
        jpeg_quality: The picture's JPEG quality (1-100), when `image_format` is "jpeg".
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    height, width = mask.shape
    ignore_values = (
        np.zeros((height, width), np.uint8) if ignore is None else ignore * np.uint8(255)
    )
    return serialize_example(
        {
            IMAGE_KEY: encode_image(image, image_format, jpeg_quality),
            FORMAT_KEY: image_format.encode(),
            FILENAME_KEY: name.encode(),
            HEIGHT_KEY: height,
            WIDTH_KEY: width,
            CHANNELS_KEY: 3,
            SOURCE_KEY: source.encode(),
            MASK_KEY: encode_gray_png(quantize_mask(mask)),
            MASK_FORMAT_KEY: b"png",
            IGNORE_KEY: encode_gray_png(ignore_values),
        }
    )


def parse_example(serialized):
    """Parses one serialized record into tensors (usable inside `tf.data.Dataset.map`).

    Returns:
        A dict with `image` `(H, W, 3)` uint8 RGB, `mask` `(H, W, 1)` float32 in [0, 1],
        `ignore` `(H, W, 1)` float32 0/1, `name` and `source` strings.
    """
    import tensorflow as tf  # already loaded by the caller; a plain import traces cleanly

    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
        SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        MASK_KEY: tf.io.FixedLenFeature([], tf.string),
        IGNORE_KEY: tf.io.FixedLenFeature([], tf.string),
    }
    features = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_image(features[IMAGE_KEY], channels=3, expand_animations=False)
    mask = tf.io.decode_png(features[MASK_KEY], channels=1)
    ignore = tf.io.decode_png(features[IGNORE_KEY], channels=1)
    return {
        "image": image,
        "mask": tf.cast(mask, tf.float32) / 255.0,
        "ignore": tf.cast(ignore > 0, tf.float32),
        "name": features[FILENAME_KEY],
        "source": features[SOURCE_KEY],
    }


def _one_bytes(features: dict, key: str, default: bytes | None = None) -> bytes:
    if key not in features and default is not None:
        return default
    if key not in features:
        raise ExampleFormatError(f"it has no {key}")
    kind, values = features[key]
    if kind != "bytes" or len(values) != 1:
        raise ExampleFormatError(
            f"its {key} holds {len(values)} {kind} value(s), not one bytes value"
        )
    return bytes(values[0])


def _one_text(features: dict, key: str, default: str | None = None) -> str:
    value = _one_bytes(features, key, None if default is None else default.encode())
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ExampleFormatError(f"its {key} is not UTF-8 text") from None


def _decode_picture(data: bytes, key: str, formats: tuple[str, ...], flags: int) -> np.ndarray:
    """`data` decoded by OpenCV with `flags` (EXIF orientation ignored, as TensorFlow does), once
    Pillow has read from its header that it is one of `formats` and of at most
    `Image.MAX_IMAGE_PIXELS` pixels: a few kilobytes of PNG can claim gigabytes of pixels."""
    try:
        with Image.open(io.BytesIO(data), formats=formats) as picture:
            width, height = picture.size
    except Image.DecompressionBombError as error:
        raise ExampleFormatError(f"its {key} is too large ({error})") from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for a header it cannot read
        raise ExampleFormatError(f"its {key} is not a {' or '.join(formats)} picture") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ExampleFormatError(f"its {key} is {width}x{height}, more than {limit} pixels")
    try:
        buffer = np.frombuffer(data, np.uint8)
        picture = cv2.imdecode(buffer, flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        picture = None
    if picture is None or picture.shape[:2] != (height, width):
        raise ExampleFormatError(f"its {key} does not decode")
    return picture


def decode_example(serialized: bytes) -> dict:
    """Decodes one serialized record without TensorFlow: what `parse_example` returns, as numpy.

    Images are JPEG or PNG, masks PNG (the schema's formats); a picture's header is checked
    before it is decoded.

    Returns:
        A dict with `image` `(H, W, 3)` uint8 RGB, `mask` `(H, W, 1)` float32 in [0, 1],
        `ignore` `(H, W, 1)` float32 0/1, `name` and `source` str.

    Raises:
        ExampleFormatError: `serialized` is not one of Backdrop's records; the reason, one line.
    """
    features = decode_features(serialized)
    image = _decode_picture(
        _one_bytes(features, IMAGE_KEY), IMAGE_KEY, ("JPEG", "PNG"), cv2.IMREAD_COLOR
    )
    mask, ignore = (
        _decode_picture(_one_bytes(features, key), key, ("PNG",), cv2.IMREAD_GRAYSCALE)
        for key in (MASK_KEY, IGNORE_KEY)
    )
    if not image.shape[:2] == mask.shape == ignore.shape:
        raise ExampleFormatError(
            f"its image is {image.shape[1]}x{image.shape[0]} but its masks "
            f"{mask.shape[1]}x{mask.shape[0]} and {ignore.shape[1]}x{ignore.shape[0]}"
        )
    return {
        "image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
        "mask": (mask.astype(np.float32) / np.float32(255))[..., None],
        "ignore": (ignore > 0).astype(np.float32)[..., None],
        "name": _one_text(features, FILENAME_KEY),
        "source": _one_text(features, SOURCE_KEY, default=""),
    }


def decode_source(serialized: bytes) -> str:
    """The source name of one serialized record ("" where it names none), without TensorFlow
    and without decoding its pictures.

    Raises:
        ExampleFormatError: `serialized` is not a well-formed record; the reason, one line.
    """
    return _one_text(decode_features(serialized), SOURCE_KEY, default="")


def read_records(paths: list[Path]) -> Iterator[dict]:
    """Yields every record in `paths` as `decode_example` decodes it, without TensorFlow (for
    tests, evaluation and inspection).

    Raises:
        RecordsFileError: a shard is damaged, or holds a record that is not Backdrop's, where it is
            reached; one line naming it.
    """
    for path in paths:
        for number, serialized in enumerate(read_shard(path), 1):
            try:
                record = decode_example(serialized)
            except ExampleFormatError as error:
                raise RecordsFileError(
                    f"shard {path} is unreadable (record {number}: {error}); {PREPARE_AGAIN}"
                ) from None
            yield record
