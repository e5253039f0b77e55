"""Records decoded without TensorFlow: decode_example gives what parse_example gives, refuses any
malformed record with one ExampleFormatError, and read_records needs no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.data.example_proto import ExampleFormatError, serialize_example
from backdrop.data.records import (
    FILENAME_KEY,
    IGNORE_KEY,
    IMAGE_KEY,
    MASK_KEY,
    decode_example,
    decode_source,
    encode_example,
    encode_gray_png,
    encode_image,
    read_records,
)
from backdrop.data.synthetic import generate_sample
from backdrop.data.tfrecord import RecordsFileError, frame_record
from tests import fixtures
from tests.fuzzing import broken, one_line_naming

# OpenCV decodes JPEG with libjpeg's accurate integer DCT, exactly as TensorFlow's
# INTEGER_ACCURATE; TensorFlow's decode_image uses its fast DCT. Measured against it: the
# generated pictures below at most 11 levels apart and 1.97 on average per picture; the real ones
# 17 and 1.65 (366 real JPEGs of five datasets at sides 144 and 288: 22, 2.1, 1.4 over all).
GENERATED_JPEG_MAX, GENERATED_JPEG_MEAN = 11, 2.0
REAL_JPEG_MAX, REAL_JPEG_MEAN = 17, 1.7


def generated_examples() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Synthetic figures (soft masks, sensor noise) and noise pictures, odd sizes, with and
    without ignore pixels: `(name, image, mask, ignore)`."""
    rng = np.random.default_rng(7)
    examples = []
    for seed, (height, width) in enumerate([(64, 48), (37, 91), (1, 1), (120, 96)]):
        image, mask = generate_sample(seed, height, width)
        ignore = rng.random((height, width)) > 0.8 if seed % 2 else None
        examples.append((f"figure {seed}", image, mask.astype(np.float32) / 255, ignore))
    for seed, (height, width) in enumerate([(33, 17), (64, 64)]):
        image = fixtures.random_image(rng, height, width)
        examples.append((f"noise {seed}", image, rng.random((height, width)), None))
    return examples


def real_examples(shared_dataset) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """A few samples of three real datasets at a record's size, as prepare writes them."""
    from backdrop.data.prepare import downscale
    from backdrop.data.readers import create_reader

    readers = [
        create_reader("portrait", shared_dataset("human_seg_vikram")),
        create_reader("davis", shared_dataset("davis2016_people")),
        create_reader("coco", shared_dataset("coco_tiny") / "tiny_coco", split="val2017"),
    ]
    examples = []
    for reader in readers:
        for key in reader.keys()[::10][:4]:
            sample = downscale(reader.load(key), 288)
            examples.append((sample.name, sample.image, sample.mask, sample.ignore))
    return examples


def _agree_with_tensorflow(examples, image_format: str) -> tuple[int, float]:
    """Asserts decode_example equals parse_example but for JPEG pictures; returns the largest and
    the largest mean absolute difference of those."""
    import tensorflow as tf

    from backdrop.data.records import parse_example

    largest, largest_mean = 0, 0.0
    for name, image, mask, ignore in examples:
        serialized = encode_example(name, "real", image, mask, ignore, image_format)
        decoded = decode_example(serialized)
        parsed = {key: value.numpy() for key, value in parse_example(serialized).items()}
        assert decoded["name"] == parsed["name"].decode() == name
        assert decoded["source"] == parsed["source"].decode() == decode_source(serialized)
        for key in ("image", "mask", "ignore"):
            assert (
                decoded[key].dtype == parsed[key].dtype and decoded[key].shape == parsed[key].shape
            )
        np.testing.assert_array_equal(decoded["mask"], parsed["mask"])
        np.testing.assert_array_equal(decoded["ignore"], parsed["ignore"])
        if image_format == "png":
            np.testing.assert_array_equal(decoded["image"], parsed["image"])
            np.testing.assert_array_equal(decoded["image"], image)
            continue
        # Exact against TensorFlow's own decoder with the accurate DCT.
        accurate = tf.io.decode_jpeg(
            serialized_image(serialized), channels=3, dct_method="INTEGER_ACCURATE"
        )
        np.testing.assert_array_equal(decoded["image"], accurate.numpy())
        difference = np.abs(decoded["image"].astype(int) - parsed["image"].astype(int))
        largest, largest_mean = max(largest, difference.max()), max(largest_mean, difference.mean())
    return largest, largest_mean


def serialized_image(serialized: bytes) -> bytes:
    from backdrop.data.example_proto import decode_features

    return bytes(decode_features(serialized)[IMAGE_KEY][1][0])


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_decode_example_gives_what_tensorflow_parses(image_format):
    largest, largest_mean = _agree_with_tensorflow(generated_examples(), image_format)
    assert largest <= GENERATED_JPEG_MAX and largest_mean <= GENERATED_JPEG_MEAN


@pytest.mark.integration
@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_decode_example_gives_what_tensorflow_parses_on_real_pictures(shared_dataset, image_format):
    largest, largest_mean = _agree_with_tensorflow(real_examples(shared_dataset), image_format)
    assert largest <= REAL_JPEG_MAX and largest_mean <= REAL_JPEG_MEAN


def _valid_examples() -> list[bytes]:
    rng = np.random.default_rng(3)
    image, mask = generate_sample(1, 6, 9)
    ignore = rng.random((6, 9)) > 0.5
    return [
        encode_example("a", "voc", image, mask / 255, ignore, image_format)
        for image_format in ("png", "jpeg")
    ]


VALID = _valid_examples()


def _decode_or_refuse(serialized: bytes) -> None:
    """decode_example either decodes `serialized` into its contract or raises one line."""
    try:
        record = decode_example(serialized)
    except ExampleFormatError as error:
        assert "\n" not in str(error), str(error)
    else:
        height, width = record["mask"].shape[:2]
        assert record["image"].shape == (height, width, 3) and record["image"].dtype == np.uint8
        assert record["ignore"].shape == (height, width, 1) and isinstance(record["name"], str)


@st.composite
def spliced(draw) -> bytes:
    """A valid record with a few bytes inserted anywhere: unknown fields, lying lengths."""
    content = draw(st.sampled_from(VALID))
    at = draw(st.integers(0, len(content)))
    inserted = draw(
        st.binary(max_size=12) | st.sampled_from([b"\xff" * 10, b"\x0a\xff\xff\xff\x0f", b"\x80"])
    )
    return content[:at] + inserted + content[at:]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=4096) | st.sampled_from(VALID).flatmap(broken) | spliced())
def test_any_bytes_decode_or_are_refused_with_one_example_format_error(serialized):
    _decode_or_refuse(serialized)


def _features(**values) -> dict:
    """The features of a small valid record, some replaced by `values`."""
    image, mask = generate_sample(2, 5, 7)
    return {
        IMAGE_KEY: encode_image(image, "png"),
        FILENAME_KEY: b"x",
        MASK_KEY: encode_gray_png(mask),
        IGNORE_KEY: encode_gray_png(np.zeros((5, 7), np.uint8)),
        **values,
    }


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG whose header (its CRC right) claims another size: a decompression bomb."""
    png = bytearray(encode_gray_png(np.zeros((2, 2), np.uint8)))
    png[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    png[29:33] = zlib.crc32(png[12:29]).to_bytes(4, "big")
    return bytes(png)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({IMAGE_KEY: 3}, "image/encoded holds 1 int64 value"),
        ({MASK_KEY: b"GIF89a"}, "not a PNG picture"),
        ({IMAGE_KEY: _png_claiming(60_000, 60_000)}, "image/encoded is too large"),
        ({MASK_KEY: _png_claiming(10_000, 10_000)}, "10000x10000, more than"),
        ({IMAGE_KEY: _png_claiming(7, 6)}, "does not decode"),
        ({IGNORE_KEY: _png_claiming(9, 9)}, "does not decode"),
        ({"image/filename": b"\xff"}, "not UTF-8"),
    ],
)
def test_a_record_that_is_not_backdrops_is_refused_with_its_reason(change, fragment):
    with pytest.raises(ExampleFormatError, match=fragment):
        decode_example(serialize_example(_features(**change)))


def test_a_record_without_its_pictures_or_with_pictures_of_other_sizes_is_refused():
    features = _features()
    del features[MASK_KEY]
    with pytest.raises(ExampleFormatError, match="no image/segmentation/class/encoded"):
        decode_example(serialize_example(features))
    other = _features(**{IGNORE_KEY: encode_gray_png(np.zeros((5, 8), np.uint8))})
    with pytest.raises(ExampleFormatError, match="image is 7x5 but its masks 7x5 and 8x5"):
        decode_example(serialize_example(other))
    assert decode_source(serialize_example(_features())) == ""


def test_a_shard_holding_a_record_that_is_not_backdrops_is_one_line_naming_it(tmp_path):
    shard = tmp_path / "train-00000.tfrecord"
    shard.write_bytes(frame_record(VALID[0]) + frame_record(b"\x0a\x05garbage"))
    records = read_records([shard])
    assert next(records)["name"] == "a"
    with pytest.raises(RecordsFileError, match="record 2") as caught:
        next(records)
    assert "backdrop prepare" in one_line_naming(caught.value, shard)


def test_reading_records_leaves_tensorflow_out(tmp_path):
    shard = tmp_path / "train-00000.tfrecord"
    shard.write_bytes(b"".join(frame_record(serialized) for serialized in VALID))
    code = (
        "import sys\n"
        "import backdrop.data.records, backdrop.data.tfrecord\n"
        "from backdrop.data.records import read_records\n"
        f"names = [record['name'] for record in read_records([{str(shard)!r}])]\n"
        "print(names, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['a', 'a'] False False"
