"""A dataset is data from outside: paths it names stay inside it, sizes it claims are checked
against the pictures that are there, and whatever is malformed is one line naming the file."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from backdrop.cli import main
from backdrop.data.readers import (
    COCOReader,
    MattingReader,
    PortraitReader,
    SuperviselyReader,
    VOCReader,
)
from backdrop.data.readers.base import DatasetError, inside
from backdrop.data.readers.coco import compressed_counts, decode_segmentation
from backdrop.data.readers.supervisely import decode_bitmap, rasterize_object
from backdrop.data.sample import SkipSample
from tests import fixtures
from tests.cli.test_outputs import one_line_error

SECRET_COLOUR = (7, 77, 177)
TINY_MODEL = Path(__file__).resolve().parents[2] / "runtime" / "tiny" / "tiny_float32.tflite"


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Every path Pillow is asked to open, resolved."""
    paths: list[Path] = []
    original = Image.open

    def spy(file, *args, **kwargs):
        if isinstance(file, str | Path):
            paths.append(Path(file).resolve())
        return original(file, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    return paths


def plant_secret(folder: Path, name: str, size=(32, 48)) -> Path:
    """A picture outside the dataset that would pass every check if it were read."""
    secret = np.zeros((*size, 3), np.uint8)
    secret[:] = SECRET_COLOUR
    return fixtures.save(folder / name, secret)


def _coco_with(root: Path, **image_fields) -> Path:
    fixtures.make_coco(root)
    annotations = root / "annotations" / "instances_train2017.json"
    data = json.loads(annotations.read_text())
    data["images"][0].update(image_fields)
    annotations.write_text(json.dumps(data))
    return annotations


@pytest.mark.parametrize(
    "file_name",
    ["../../secret.jpg", "{outside}/secret.jpg", "..\\..\\secret.jpg", "sub/../../../secret.jpg"],
)
def test_a_coco_file_name_outside_the_dataset_is_skipped_unread(tmp_path, opened, file_name):
    plant_secret(tmp_path, "secret.jpg")
    file_name = file_name.format(outside=tmp_path)
    annotations = _coco_with(tmp_path / "coco", file_name=file_name)
    reader = COCOReader(tmp_path / "coco")
    samples = list(reader)
    assert [s.name for s in samples] == ["000000000002"]
    [(_, reason)] = reader.skipped
    assert str(annotations) in reason and repr(file_name) in reason
    assert "not a relative path inside" in reason
    assert all(path.is_relative_to(tmp_path / "coco") for path in opened), opened
    for sample in samples:
        assert not (sample.image == SECRET_COLOUR).all(axis=2).any()


def test_a_symlinked_picture_inside_the_dataset_is_read(tmp_path):
    """The reader docstrings' decision: links inside the folder are followed (datasets are
    often assembled from links); only paths the files name must stay inside."""
    fixtures.make_coco(tmp_path / "coco")
    picture = tmp_path / "coco" / "train2017" / "000000000001.jpg"
    elsewhere = picture.rename(tmp_path / "elsewhere.jpg")
    picture.symlink_to(elsewhere)
    assert [s.name for s in COCOReader(tmp_path / "coco")] == ["000000000001", "000000000002"]


def test_a_voc_list_naming_files_outside_is_skipped_unread(tmp_path, opened):
    root = fixtures.make_voc(tmp_path / "voc")
    labels = np.full((30, 44), 15, np.uint8)  # all person: it would be kept if read
    fixtures.save(tmp_path / "secret.png", labels)
    plant_secret(tmp_path, "secret.jpg", (30, 44))
    listing = root / "ImageSets" / "Segmentation" / "train.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text(f"2007_000001\n../../secret\n{tmp_path}/secret\nnot_there\n")
    reader = VOCReader(root, image_set="train")
    assert [s.name for s in reader] == ["2007_000001"]
    reasons = [reason for _, reason in reader.skipped]
    assert len(reasons) == 3 and all(str(listing) in reason for reason in reasons), reasons
    assert "'not_there', which has no label" in reasons[2]
    assert all(path.is_relative_to(root) for path in opened), opened


def test_a_voc_list_that_is_not_text_is_one_error(tmp_path):
    root = fixtures.make_voc(tmp_path)
    listing = root / "ImageSets" / "Segmentation" / "train.txt"
    listing.parent.mkdir(parents=True)
    listing.write_bytes(b"\xff\xfe2007\x00")
    with pytest.raises(DatasetError, match=r"train\.txt cannot be read"):
        VOCReader(root, image_set="train").keys()


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "..", "a/../../b", "C:\\x", "c:/x", "a\x00b", None, 7, ["a"]]
)
def test_inside_refuses_every_way_out(tmp_path, name):
    with pytest.raises(SkipSample, match="list.txt: names .* not a relative path inside"):
        inside(tmp_path, name, tmp_path / "list.txt")


@pytest.mark.parametrize("name", ["a.jpg", "sub/a.jpg", "..a.jpg", "a..b/c.jpg", "./a.jpg"])
def test_inside_keeps_names_inside(tmp_path, name):
    assert inside(tmp_path, name, tmp_path / "list.txt") == tmp_path / name


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe{}", "malformed JSON"),
        (b"[" * 100000, "nested too deeply"),
        (b'{"images": [], "annotations": [], "categories": [{"id": NaN}]}', "malformed JSON"),
        (b'{"images": [{"id": 1, "height": 1e999}]}', "malformed JSON"),
        (b'{"images": [{"id": ' + b"9" * 5000 + b"}]}", "malformed JSON"),
        (b"[]", "its top level is a list"),
        (b'{"images": {}, "annotations": [], "categories": []}', "no 'images' list"),
        (b'{"images": [], "annotations": [], "categories": [3]}', "categories[0]"),
        (b'{"images": [{"id": "1"}], "annotations": [], "categories": []}', "images[0]"),
        (
            b'{"images": [], "annotations": [{"image_id": [1], "category_id": 1}],'
            b' "categories": [{"id": 1, "name": "person"}]}',
            "annotations[0]",
        ),
    ],
)
def test_a_broken_coco_file_is_one_dataset_error_naming_it(tmp_path, content, fragment):
    fixtures.make_coco(tmp_path)
    annotations = tmp_path / "annotations" / "instances_train2017.json"
    annotations.write_bytes(content)
    with pytest.raises(DatasetError) as error:
        COCOReader(tmp_path)
    message = str(error.value)
    assert str(annotations) in message and fragment in message and "\n" not in message


def test_person_annotations_of_a_missing_image_are_reported(tmp_path):
    fixtures.make_coco(tmp_path)
    annotations = tmp_path / "annotations" / "instances_train2017.json"
    data = json.loads(annotations.read_text())
    data["annotations"][0]["image_id"] = 99
    annotations.write_text(json.dumps(data))
    reader = COCOReader(tmp_path)
    assert reader.keys() == ["2"]
    assert "image_id 99, which is not in its images list" in reader.skipped[0][1]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"height": 10**9, "width": 10**9}, "but .* says 1000000000x1000000000"),
        ({"height": -32}, "no positive integer height and width"),
        ({"height": "32"}, "no positive integer height and width"),
        ({"file_name": "missing.jpg"}, "'missing.jpg', which is not a file in"),
        ({"file_name": 12}, "names 12, which is not a relative path"),
    ],
)
def test_wrong_image_fields_skip_the_image_naming_the_file(tmp_path, fields, fragment):
    annotations = _coco_with(tmp_path, **fields)
    reader = COCOReader(tmp_path)
    assert [s.name for s in reader] == ["000000000002"]
    [(_, reason)] = reader.skipped
    assert str(annotations) in reason and re.search(fragment, reason), reason


HEIGHT, WIDTH = 32, 48


@pytest.mark.parametrize(
    ("segmentation", "fragment"),
    [
        ([[0, 0, 1e9, 0, 1e9, 1e9]], "far outside"),
        ([[-1e12, 0, 10, 0, 10, 10]], "far outside"),
        ([[0, 0, 40, 0, 40, 30, 0, 30] * 3000], "outline is"),
        ([[1, 2, 3, 4, 5, 6, 7]], "odd number"),
        ([[1, 2, 3, "4", 5, 6]], "not a list of numbers"),
        ([[1, 2, 3, 4, True, 6]], "not a list of numbers"),
        ([[0, 0, 2**60, 0, 5, 5]], "not a list of numbers"),
        ([{"a": 1}], "not a list of numbers"),
        ({"counts": [4_000_000_000, 100], "size": [HEIGHT, WIDTH]}, "cover 4000000100 pixels"),
        ({"counts": [10, -5], "size": [HEIGHT, WIDTH]}, "non-negative integers"),
        ({"counts": [HEIGHT * WIDTH], "size": [100_000, 100_000]}, "not the image's"),
        ({"counts": "0P", "size": [HEIGHT, WIDTH]}, "ends inside a number"),
        ({"counts": "\x01\x02", "size": [HEIGHT, WIDTH]}, "not COCO's compressed RLE"),
        ({"counts": "0~", "size": [HEIGHT, WIDTH]}, "not COCO's compressed RLE"),
        ({"counts": "P" * 13 + "1", "size": [HEIGHT, WIDTH]}, "not COCO's compressed RLE"),
        ({"counts": "000@", "size": [HEIGHT, WIDTH]}, "negative run length"),
        ({"counts": "0" * 10, "size": [HEIGHT, WIDTH]}, "cover 0 pixels"),
        ({"counts": None, "size": [HEIGHT, WIDTH]}, "neither a string nor a list"),
        ("counts", "neither polygons nor RLE"),
        (None, "neither polygons nor RLE"),
    ],
)
def test_a_malformed_segmentation_is_refused_before_pycocotools(segmentation, fragment):
    with pytest.raises(ValueError, match=fragment):
        decode_segmentation(segmentation, HEIGHT, WIDTH)


def test_segmentations_match_pycocotools():
    rng = np.random.default_rng(1)
    for _ in range(50):
        mask = (rng.random((HEIGHT, WIDTH)) < rng.random()).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        counts = compressed_counts(rle["counts"].decode())
        assert sum(counts) == HEIGHT * WIDTH
        compressed = {"counts": rle["counts"].decode(), "size": [HEIGHT, WIDTH]}
        np.testing.assert_array_equal(decode_segmentation(compressed, HEIGHT, WIDTH), mask > 0)
        uncompressed = {"counts": fixtures.uncompressed_rle(mask), "size": [HEIGHT, WIDTH]}
        np.testing.assert_array_equal(decode_segmentation(uncompressed, HEIGHT, WIDTH), mask > 0)
    polygon = [[4.5, 4, 20, 4, 20, 24.25, 4, 24], [30, 2, 44, 2, 44, 12]]
    expected = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects(polygon, HEIGHT, WIDTH))
    ).astype(bool)
    np.testing.assert_array_equal(decode_segmentation(polygon, HEIGHT, WIDTH), expected)


def _bitmap_object(png: bytes, origin=(0, 0), compress=zlib.compress) -> dict:
    data = base64.b64encode(compress(png)).decode()
    return {"geometryType": "bitmap", "bitmap": {"data": data, "origin": list(origin)}}


def _png_header_only(width: int, height: int) -> bytes:
    """A 1-bit PNG that claims `width x height` and holds one byte of pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_bitmap_larger_than_its_image_is_refused_before_decoding():
    for width, height in [(100, 10), (11, 11), (10, 10**6)]:
        obj = _bitmap_object(_png_header_only(width, height))
        with pytest.raises(SkipSample, match=f"bitmap is {width}x{height}, larger than"):
            rasterize_object(obj, 10, 10)
    with pytest.raises(SkipSample, match="decompression bomb"):  # Pillow's own limit
        rasterize_object(_bitmap_object(_png_header_only(60_000, 60_000)), 10, 10)


def test_a_zlib_bomb_in_a_bitmap_is_refused_before_it_unpacks():
    bomb = zlib.compress(bytes(50_000_000), 9)  # 50 MB of zeros in ~50 kB
    data = base64.b64encode(bomb).decode()
    with pytest.raises(ValueError, match="unpacks to more than"):
        decode_bitmap(data, 10, 10)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [([10**15, 10**15], 0), ([-(10**15), 2], 0), ([1e300, -1e300], 0), ([-2, -2], 4)],
)
def test_a_bitmap_far_outside_its_image_draws_nothing_there(origin, expected):
    obj = _bitmap_object(b"")
    obj["bitmap"]["data"] = fixtures.encode_bitmap(np.ones((4, 4), np.uint8))
    obj["bitmap"]["origin"] = origin
    assert rasterize_object(obj, 10, 10).sum() == expected


@pytest.mark.parametrize(
    "obj",
    [
        {"geometryType": "bitmap", "bitmap": {"data": 7, "origin": [0, 0]}},
        {"geometryType": "bitmap", "bitmap": {"data": "eJwDAAAAAAE=", "origin": [0, "x"]}},
        {"geometryType": "bitmap", "bitmap": "abc"},
        {"geometryType": "bitmap", "bitmap": {"data": "ü", "origin": [0, 0]}},
        {"geometryType": "polygon", "points": {"exterior": [[0, 0], [1e12, 0], [5, 5]]}},
        {"geometryType": "polygon", "points": {"exterior": [[0, 0, 0], [1, 0], [5, 5]]}},
        {"geometryType": "polygon", "points": {"exterior": "abc"}},
        {"geometryType": "polygon", "points": {"exterior": [], "interior": {"a": 1}}},
        {"geometryType": "polygon", "points": [[0, 0]]},
        {"geometryType": "polygon", "points": {"exterior": [[0, 0], [9, 0], [5, 5]] * 200}},
        {"geometryType": "polygon", "points": {"exterior": [], "interior": [[[1, 1]]] * 400}},
        {"geometryType": ["polygon"]},
    ],
)
def test_malformed_supervisely_objects_skip_with_a_reason(obj):
    with pytest.raises(SkipSample, match="malformed|unsupported"):
        rasterize_object(obj, 10, 10)


def test_a_supervisely_size_is_checked_against_its_picture(tmp_path):
    root = fixtures.make_supervisely(tmp_path)
    annotation_path = root / "ds1" / "ann" / "a.png.json"
    annotation = json.loads(annotation_path.read_text())
    annotation["size"] = {"height": 10**9, "width": 10**9}
    annotation_path.write_text(json.dumps(annotation))
    (root / "ds2" / "ann" / "b.png.json").write_text('{"size": {"height": 30}, "objects": []}')
    reader = SuperviselyReader(root)
    assert list(reader) == []
    first, second = (reason for _, reason in reader.skipped)
    assert "says 1000000000x1000000000" in first and "a.png.json" in first
    assert "b.png.json: annotation has no size" in second


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_picture_past_pillows_pixel_limit_is_skipped(tmp_path, monkeypatch):
    """Past MAX_IMAGE_PIXELS Pillow only warns (up to twice it): Backdrop skips it, reading
    the header only."""
    root = fixtures.make_portrait(tmp_path, count=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 56 - 1)
    reader = PortraitReader(root, mask_encoding="binary")
    assert list(reader) == []
    reasons = [reason for _, reason in reader.skipped]
    assert all("more than the 2239 pixels" in reason for reason in reasons), reasons
    assert "images/p0.png: image is 56x40" in reasons[0]


def test_a_decompression_bomb_mask_is_skipped(tmp_path):
    root = fixtures.make_portrait(tmp_path, count=2)
    (root / "masks" / "p1.png").write_bytes(_png_header_only(20_000, 20_000))
    reader = PortraitReader(root, mask_encoding="binary")
    assert [s.name for s in reader] == ["p0"]
    assert "masks/p1.png: cannot decode mask" in reader.skipped[0][1]
    assert "decompression bomb" in reader.skipped[0][1]


def test_a_long_thin_background_costs_the_size_of_its_foreground(tmp_path):
    foregrounds, backgrounds = fixtures.make_matting(tmp_path / "m")
    for path in backgrounds.iterdir():
        path.unlink()
    thin = np.zeros((1, 50_000, 3), np.uint8)
    thin[:, 24_990:25_010] = 200
    fixtures.save(backgrounds / "thin.png", thin)
    sample = MattingReader(foregrounds, [backgrounds], per_foreground=1).load("f0.png/0")
    assert sample.image.shape == (24, 20, 3)
    assert sample.image[0, 0].max() > 0, "the centre of the background is kept"


def test_matting_pairs_names_holding_glob_characters(tmp_path):
    foregrounds, backgrounds = fixtures.make_matting(tmp_path / "m")
    for folder in ("fg", "alpha"):
        (foregrounds / folder / "f0.png").rename(foregrounds / folder / "f[0]*.png")
    reader = MattingReader(foregrounds, [backgrounds], per_foreground=1)
    assert sorted(s.name for s in reader) == ["f1-000", "f[0]*-000"]


@pytest.fixture
def within_a_minute():
    """Fails a test that blocks (on a FIFO) instead of hanging the suite."""

    def fail(*_):
        raise TimeoutError("blocked reading the dataset")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _fifo(path: Path) -> Path:
    path.unlink()
    os.mkfifo(path)
    return path


def test_a_fifo_in_a_dataset_is_skipped_not_waited_on(tmp_path, within_a_minute):
    """A downloaded archive may hold a FIFO under a picture's or annotation's name."""
    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    mask = _fifo(portrait / "masks" / "p1.png")
    _fifo(portrait / "images" / "p2.png")  # not listed: pictures are regular files
    reader = PortraitReader(portrait)
    assert [s.name for s in reader] == ["p0"]
    assert reader.skipped == [("p1.png", f"{mask}: mask is not a regular file")]
    supervisely = fixtures.make_supervisely(tmp_path / "s")
    annotation = _fifo(supervisely / "ds2" / "ann" / "b.png.json")
    reader = SuperviselyReader(supervisely)
    assert [s.name for s in reader] == ["ds1-a"]
    assert reader.skipped[0][1] == f"{annotation}: not a regular file"
    voc = fixtures.make_voc(tmp_path / "v")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    os.mkfifo(voc / "ImageSets" / "Segmentation" / "train.txt")
    with pytest.raises(DatasetError, match="train.txt cannot be read .not a regular file"):
        VOCReader(voc, image_set="train").keys()


@pytest.fixture
def broken_coco(tmp_path, monkeypatch) -> Path:
    fixtures.make_coco(tmp_path / "coco", split="val2017")
    annotations = tmp_path / "coco" / "annotations" / "instances_val2017.json"
    annotations.write_text('{"images": [1, 2')
    monkeypatch.chdir(tmp_path)
    return annotations


def test_prepare_on_a_broken_coco_file_is_one_line_naming_it(broken_coco, capsys):
    args = ["prepare", "--coco", "coco", "--coco-split", "val2017", "-d", "r", "-q"]
    assert main(args) == 1
    one_line_error(capsys, "instances_val2017.json: malformed JSON")
    assert not Path("r").exists()


def test_evaluate_on_a_broken_coco_file_is_one_line_naming_it(broken_coco, capsys):
    args = ["evaluate", str(TINY_MODEL), "--data", "coco:coco:val2017", "-o", "ev", "-q"]
    assert main(args) == 1
    one_line_error(capsys, "instances_val2017.json: malformed JSON")
    assert not Path("ev").exists()
