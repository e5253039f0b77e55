"""Every reader fed a broken file: a valid tiny dataset of each format with one file truncated,
bit-flipped, overwritten or (JSON) given values of the wrong type, huge or negative numbers,
dropped keys and nested garbage. Reading it gives valid samples, skips whose one-line reason
names the broken file, or one dataset error naming it: never any other exception."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backdrop.data.masks import MaskEncodingError
from backdrop.data.readers import (
    COCOReader,
    DAVISReader,
    MattingReader,
    PortraitReader,
    SuperviselyReader,
    VOCReader,
)
from backdrop.data.readers.base import DatasetError
from backdrop.data.sample import SkipSample
from tests import fixtures


def _make_voc(root: Path) -> None:
    fixtures.make_voc(root)
    listing = root / "ImageSets" / "Segmentation" / "train.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("2007_000001\n2007_000002\n2007_000003\n")


# name -> (make the dataset in ROOT, open a reader of ROOT). Matting's backgrounds lie beside
# ROOT, in ROOT_backgrounds; both are copied and may be broken.
FORMATS = {
    "portrait": (lambda root: fixtures.make_portrait(root, count=3), PortraitReader),
    "voc": (_make_voc, lambda root: VOCReader(root, image_set="train", negatives=True)),
    "coco": (fixtures.make_coco, lambda root: COCOReader(root, negatives=True)),
    "supervisely": (fixtures.make_supervisely, SuperviselyReader),
    "matting": (
        fixtures.make_matting,
        lambda root: MattingReader(
            root, [root.parent / f"{root.name}_backgrounds"], per_foreground=2
        ),
    ),
    "davis": (lambda root: fixtures.make_davis(root, frames=2), DAVISReader),
}

# Values a broken JSON may hold instead of the right ones.
KEYS = ["size", "height", "width", "objects", "counts", "exterior", "interior", "origin", "data"]
NAMES = ["../../secret.png", "/etc/passwd", "", "..", "C:\\x.jpg", "a\x00b", "sub/../../x"]
NUMBERS = [0, -1, 1, 2**31, 2**53, 2**64, 10**12, -(10**12), 10**30, 1e300, -1e300, 0.5]
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(NUMBERS)
    | st.floats()  # NaN and infinities too: JSON writes them, the readers refuse them
    | st.text(max_size=12)
    | st.sampled_from(NAMES)
)
GARBAGE = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=12,
)
# Byte strings a broken file may hold at any offset: long digit runs (past Python's int
# conversion limit), deep nesting, control bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNKS = st.sampled_from([b"9" * 5000, b"[" * 50000, b"\x00", b"\xff\xfe", b"-1", b"1e999"])


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Each format's valid dataset, built once: FOLDER/data (+ FOLDER/data_backgrounds)."""
    folders = {}
    for name, (make, _) in FORMATS.items():
        folder = tmp_path_factory.mktemp(name)
        make(folder / "data")
        folders[name] = folder
    return folders


def _break_bytes(data, content: bytes) -> bytes:
    """The bytes truncated, emptied, bit-flipped, or overwritten or extended at any offset."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "empty"]))
    if kind == "empty" or not content:
        return b""
    at = data.draw(st.integers(0, len(content) - 1))
    if kind == "truncate":
        return content[:at]
    if kind == "flip":
        broken = bytearray(content)
        for position in data.draw(
            st.lists(st.integers(0, len(content) - 1), min_size=1, max_size=8)
        ):
            broken[position] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(broken)
    chunk = data.draw(st.binary(min_size=1, max_size=16) | CHUNKS)
    if kind == "overwrite":
        return content[:at] + chunk + content[at + len(chunk) :]
    return content[:at] + chunk + content[at:]


def _fix_png_crcs(content: bytes) -> bytes:
    """The PNG with every chunk's CRC recomputed, so that a broken header, palette or pixel
    stream reaches the decoder instead of failing its checksum."""
    if not content.startswith(PNG_SIGNATURE):
        return content
    fixed, position = bytearray(content), len(PNG_SIGNATURE)
    while position + 12 <= len(fixed):
        (length,) = struct.unpack(">I", fixed[position : position + 4])
        end = position + 8 + length
        if end + 4 > len(fixed):
            break
        fixed[end : end + 4] = struct.pack(">I", zlib.crc32(fixed[position + 4 : end]))
        position = end + 4
    return bytes(fixed)


def _break_png_header(data, content: bytes) -> bytes:
    """The PNG claiming another size, bit depth, colour type or interlace (CRC fixed)."""
    header = bytearray(content)
    field = data.draw(st.sampled_from(["width", "height", "depth", "colour", "interlace"]))
    if field in ("width", "height"):
        value = data.draw(st.sampled_from([0, 1, 2, 3, 2**16, 2**31 - 1, 2**32 - 1]))
        offset = 16 if field == "width" else 20
        header[offset : offset + 4] = struct.pack(">I", value)
    else:
        offset = {"depth": 24, "colour": 25, "interlace": 28}[field]
        header[offset] = data.draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8, 16, 255]))
    return _fix_png_crcs(bytes(header))


def _paths(value, prefix=()):
    """Every place in a JSON value, as a tuple of keys and indices."""
    yield prefix
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def _break_json(data, value):
    """The JSON value with one place replaced by garbage, dropped, wrapped in a list or (a
    Supervise.ly bitmap) holding a broken PNG."""
    path = data.draw(st.sampled_from(list(_paths(value))))
    kind = data.draw(st.sampled_from(["replace", "replace", "drop", "wrap", "bitmap"]))
    if kind == "bitmap":
        bitmaps = [p for p in _paths(value) if p and p[-1] == "data"]
        if bitmaps:
            path = data.draw(st.sampled_from(bitmaps))
    if not path:
        return data.draw(GARBAGE)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if kind == "drop":
        del parent[key]
    elif kind == "wrap":
        parent[key] = [parent[key]]
    elif kind == "bitmap" and key == "data" and isinstance(parent[key], str):
        png = zlib.decompress(base64.b64decode(parent[key]))
        broken = _break_bytes(data, png)
        packed = (
            zlib.compress(broken)
            if data.draw(st.booleans())
            else _break_bytes(data, zlib.compress(png))
        )
        parent[key] = base64.b64encode(packed).decode()
    else:
        parent[key] = data.draw(GARBAGE)
    return value


def _check_sample(sample) -> None:
    assert sample.image.dtype == np.uint8 and sample.image.ndim == 3
    assert sample.image.shape[2] == 3
    assert sample.mask.dtype == np.float32 and sample.mask.shape == sample.image.shape[:2]
    assert np.isfinite(sample.mask).all()
    assert 0 <= sample.mask.min() and sample.mask.max() <= 1
    if sample.ignore is not None:
        assert sample.ignore.dtype == bool and sample.ignore.shape == sample.mask.shape


def read_everything(open_reader, root: Path, broken: Path, encoding) -> str:
    """Reads every sample of the dataset at `root`, whose file `broken` was broken, checking
    the rules; returns what happened ("error", "skipped", "read")."""
    try:
        reader = open_reader(root)
        keys = reader.keys()
    except (DatasetError, MaskEncodingError) as error:
        message = str(error)
        assert "\n" not in message
        # The file, or (masks read "auto") its folder with the file's reason or values.
        assert str(broken) in message or str(broken.parent) in message, message
        return "error"
    for file, reason in reader.skipped:
        assert "\n" not in reason and str(root) in file + reason, (file, reason)
    outcome = "read"
    for key in keys:
        try:
            sample = reader.load(key)
        except SkipSample as reason:
            message = str(reason)
            assert "\n" not in message
            if str(reader.mask_encoding) == str(encoding):
                assert str(broken) in message, message
            else:  # the broken mask changed how every mask is read: another may not fit
                assert str(root) in message, message
            outcome = "skipped"
            continue
        _check_sample(sample)
    return outcome


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # then skipped
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_broken_file_is_skipped_or_one_error_naming_it(datasets, name, data):
    open_reader = FORMATS[name][1]
    encoding = open_reader(datasets[name] / "data").mask_encoding
    files = sorted(p.relative_to(datasets[name]) for p in datasets[name].rglob("*") if p.is_file())
    relative = data.draw(st.sampled_from(files))
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / name
        shutil.copytree(datasets[name], copy)
        broken = copy / relative
        content = broken.read_bytes()
        if broken.suffix == ".json" and data.draw(st.booleans()):
            broken.write_text(json.dumps(_break_json(data, json.loads(content))))
        elif content.startswith(PNG_SIGNATURE) and data.draw(st.booleans()):
            # Past the checksums: a lying header, or broken bytes with the CRCs made right.
            if data.draw(st.booleans()):
                broken.write_bytes(_break_png_header(data, content))
            else:
                broken.write_bytes(_fix_png_crcs(_break_bytes(data, content)))
        else:
            broken.write_bytes(_break_bytes(data, content))
        event(read_everything(open_reader, copy / "data", broken, encoding))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_the_unbroken_datasets_read_whole(datasets, name):
    """The fuzz starts from datasets that read without a skip."""
    reader = FORMATS[name][1](datasets[name] / "data")
    samples = list(reader)
    assert samples and not reader.skipped
