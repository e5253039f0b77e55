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

Writing needs no TensorFlow: the protobuf and the TFRecord framing (length, data, masked CRC32-C)
are written by hand, both tiny, and checked against TensorFlow's own reader in the tests. That
keeps TensorFlow's start-up out of `backdrop prepare`. Parsing uses TensorFlow, imported inside
the functions that need it. `check_shards` reads the framing back without TensorFlow, so a
truncated or damaged shard is one line naming it before training or export reads it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import google_crc32c
import numpy as np

from backdrop.tf_setup import import_tensorflow

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
PREPARE_AGAIN = "run `backdrop prepare` again to rewrite the records"
_CHUNK = 1024 * 1024  # bytes of a record checked at a time


class RecordsFileError(ValueError):
    """A file of a records folder (metadata.json or a shard) is damaged or malformed; the message
    names it and the fix."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | int) -> bytes:
    if isinstance(value, bytes):  # Feature.bytes_list (1) -> BytesList.value (1)
        return _field(1, _field(1, value))
    # Feature.int64_list (3) -> Int64List.value (1), packed; values here are never negative.
    return _field(3, _field(1, _varint(value)))


def serialize_example(features: dict[str, bytes | int]) -> bytes:
    """Serializes a `tf.train.Example` from a flat dict of bytes/int features."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _feature(value)))
        for key, value in sorted(features.items())
    )
    return _field(1, entries)  # Example.features (1) -> Features.feature map (1)


def encode_image(image: np.ndarray, image_format: str) -> bytes:
    """Encodes `(H, W, 3)` uint8 RGB as JPEG or PNG bytes."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image_format == "jpeg":
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
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
) -> bytes:
    """Serializes one sample (already at its record size) to Example bytes.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` float32 person probability in [0, 1].
        ignore: `(H, W)` bool, or None for no ignore pixels.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    height, width = mask.shape
    ignore_values = (
        np.zeros((height, width), np.uint8) if ignore is None else ignore * np.uint8(255)
    )
    return serialize_example(
        {
            IMAGE_KEY: encode_image(image, image_format),
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


def _masked_crc(data: bytes) -> bytes:
    return _mask(google_crc32c.value(data))


def _mask(crc: int) -> bytes:
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_record(serialized: bytes) -> bytes:
    """One TFRecord entry: uint64 length, its masked CRC32-C, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(serialized))
    return length + _masked_crc(length) + serialized + _masked_crc(serialized)


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


def parse_source(serialized):
    """The source name of one serialized record, without decoding its images."""
    import tensorflow as tf

    spec = {SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
    return tf.io.parse_single_example(serialized, spec)[SOURCE_KEY]


def count_records(path: Path) -> int:
    """The records in the shard at `path`, each length and record checked against its CRC (as
    TensorFlow's reader does), without TensorFlow and with at most 1 MiB in memory.

    Raises:
        RecordsFileError: the shard is truncated or damaged; one line naming it.
    """
    size = path.stat().st_size
    count = position = 0
    with open(path, "rb") as handle:
        while position < size:
            where = f"shard {path} is damaged at byte {position} (record {count + 1}"
            header = handle.read(12)
            if len(header) < 12:
                raise RecordsFileError(f"{where}: truncated length); {PREPARE_AGAIN}")
            if _masked_crc(header[:8]) != header[8:]:
                raise RecordsFileError(f"{where}: its length fails its CRC); {PREPARE_AGAIN}")
            (length,) = struct.unpack("<Q", header[:8])
            if length > size - position - 16:
                raise RecordsFileError(
                    f"{where}: truncated, {length} bytes claimed); {PREPARE_AGAIN}"
                )
            crc, left = 0, length
            while left:
                chunk = handle.read(min(left, _CHUNK))
                if not chunk:  # the file shrank while it was read
                    raise RecordsFileError(f"{where}: truncated); {PREPARE_AGAIN}")
                crc, left = google_crc32c.extend(crc, chunk), left - len(chunk)
            if _mask(crc) != handle.read(4):
                raise RecordsFileError(f"{where}: its data fails its CRC); {PREPARE_AGAIN}")
            position, count = position + 16 + length, count + 1
    return count


_checked: dict[tuple, int] = {}  # (path, size, mtime) -> records, for shards read again


def check_shards(paths: list[Path], counts: list[int] | None = None, named_by: str = "") -> None:
    """Raises unless every shard is there, intact, and holds its count of records (where
    `counts` gives them). An unchanged shard is read once per process.

    Raises:
        RecordsFileError: one line naming the first missing, damaged or short shard.
    """
    named = f", named by {named_by}," if named_by else ""
    for index, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise RecordsFileError(f"shard {path}{named} is missing; {PREPARE_AGAIN}")
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _checked:
            _checked[key] = count_records(path)
        if counts is not None and _checked[key] != counts[index]:
            raise RecordsFileError(
                f"shard {path} holds {_checked[key]} records, {named_by or 'its metadata'} says "
                f"{counts[index]}; {PREPARE_AGAIN}"
            )


def read_records(paths: list[Path]):
    """Yields every record in `paths` as numpy arrays (for tests, evaluation and inspection).

    Raises:
        RecordsFileError: a shard is damaged, or holds a record that is not Backdrop's; one line
            naming it.
    """
    tf = import_tensorflow()

    check_shards(paths)  # TensorFlow takes a shard cut inside a header for its end
    for path in paths:
        records = tf.data.TFRecordDataset([str(path)]).map(parse_example).as_numpy_iterator()
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except tf.errors.OpError as error:
                reason = (error.message or type(error).__name__).splitlines()[0]
                raise RecordsFileError(
                    f"shard {path} is unreadable ({reason}); {PREPARE_AGAIN}"
                ) from None
            record["name"] = record["name"].decode()
            record["source"] = record["source"].decode()
            yield record
