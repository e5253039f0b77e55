"""Mask encodings: every way a mask file is drawn reads as the person it marks, or is refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from backdrop.data.masks import MaskEncoding, MaskEncodingError, decide_encoding, read_mask
from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.sample import SkipSample
from backdrop.imageops import read_picture
from tests import fixtures

PERSON = fixtures.box_mask(20, 30, 4, 6, 16, 20).astype(bool)  # the truth every file encodes


def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def palette(indices):
    image = Image.fromarray(indices.astype(np.uint8), "P")
    image.putpalette([0, 0, 0, 192, 128, 64, 10, 200, 10] + [0] * (256 * 3 - 9))
    return image


def encodings(tmp):
    """(name, file, encoding `auto` must pick, expected person mask)."""
    grey = PERSON * np.uint8(255)
    soft = np.where(PERSON, 230, 20).astype(np.uint8)
    soft[0, :10] = np.arange(10) * 25  # many levels: a matte, not a binary mask
    rgba_alpha = np.dstack([np.full(PERSON.shape + (3,), 90, np.uint8), grey])
    opaque = np.dstack([np.repeat(grey[..., None], 3, 2), np.full(PERSON.shape, 255, np.uint8)])
    sixteen = (PERSON * 65535).astype(np.uint16)
    sixteen_soft = np.where(PERSON, 60000, 3000).astype(np.uint16)
    sixteen_soft[0, :10] = np.arange(10) * 6000
    palette_path = tmp / "palette.png"
    palette(PERSON * 1).save(palette_path)
    return [
        ("grey 0/255", write(tmp / "grey.png", grey), "binary", PERSON),
        ("grey 0/1", write(tmp / "ones.png", PERSON.astype(np.uint8)), "binary", PERSON),
        ("palette index", palette_path, "binary", PERSON),
        ("soft 8-bit", write(tmp / "soft.png", soft), "soft", soft >= 128),
        ("alpha", write(tmp / "alpha.png", rgba_alpha, "RGBA"), "alpha", PERSON),
        ("opaque alpha, mask in RGB", write(tmp / "opaque.png", opaque, "RGBA"), "binary", PERSON),
        ("16-bit binary", write(tmp / "16.png", sixteen), "binary", PERSON),
        ("16-bit soft", write(tmp / "16soft.png", sixteen_soft), "soft", sixteen_soft >= 32768),
    ]


def test_auto_picks_each_encoding_and_reads_the_person(tmp_path):
    for name, path, kind, expected in encodings(tmp_path):
        encoding = decide_encoding("auto", [path], name)
        assert encoding.kind == kind, name
        assert encoding.reason.startswith("auto"), name
        mask = read_mask(path, encoding)
        np.testing.assert_array_equal(mask >= 0.5, expected, err_msg=name)


def test_sixteen_bit_masks_are_scaled_by_their_bit_depth_not_their_maximum(tmp_path):
    low = np.where(PERSON, 20000, 0).astype(np.uint16)  # a faint matte: max 20000 of 65535
    low[0, :5] = np.arange(5) * 1000
    path = write(tmp_path / "low.png", low)
    mask = read_mask(path, MaskEncoding("soft"))
    assert abs(mask.max() - 20000 / 65535) < 1e-6


def test_class_id_maps_are_refused_by_auto_and_read_with_explicit_ids(tmp_path):
    labels = np.zeros(PERSON.shape, np.uint8)
    labels[PERSON] = 15
    labels[:3, :3] = 7  # another class
    labels[-3:, -3:] = 2
    path = write(tmp_path / "labels.png", labels)
    with pytest.raises(
        MaskEncodingError, match=r"class ids \(values 0, 2, 7, 15\).*--mask-encoding"
    ):
        decide_encoding("auto", [path], "labels")
    person = read_mask(path, MaskEncoding.parse("ids:15"))
    np.testing.assert_array_equal(person > 0.5, PERSON)
    everything = read_mask(path, MaskEncoding.parse("ids:1-19"))
    assert everything.sum() == PERSON.sum() + 9 + 9
    assert str(MaskEncoding.parse("ids:1-3,7,9-10")) == "ids:1-3,7,9-10"
    palette_ids = tmp_path / "palette_ids.png"
    palette(np.where(PERSON, 1, 2)).save(palette_ids)
    palette_ids_zero = np.where(PERSON, 1, 2)
    palette_ids_zero[:2] = 0
    palette(palette_ids_zero).save(palette_ids)
    with pytest.raises(MaskEncodingError, match="class ids"):
        decide_encoding("auto", [palette_ids], "palette ids")


def test_masks_that_do_not_fit_their_encoding_are_skipped_with_the_reason(tmp_path):
    cases = encodings(tmp_path)
    soft = next(path for name, path, *_ in cases if name == "soft 8-bit")
    with pytest.raises(SkipSample, match="distinct values, but a binary mask has two"):
        read_mask(soft, MaskEncoding("binary"))
    opaque = next(path for name, path, *_ in cases if name.startswith("opaque"))
    with pytest.raises(SkipSample, match="no transparency"):
        read_mask(opaque, MaskEncoding("alpha"))
    colour = np.zeros(PERSON.shape + (3,), np.uint8)
    colour[PERSON] = (255, 0, 0)
    with pytest.raises(SkipSample, match="colour mask"):
        read_mask(write(tmp_path / "red.png", colour), MaskEncoding("binary"))
    with pytest.raises(MaskEncodingError, match="colour mask"):
        decide_encoding("auto", [tmp_path / "red.png"], "red")
    for bad in ("gray", "ids:", "ids:a", "binary:3"):
        with pytest.raises(MaskEncodingError):
            MaskEncoding.parse(bad)


def test_exif_orientation_turns_pictures_and_masks_upright_together(tmp_path):
    """A phone photo stored sideways with an EXIF rotation, its mask drawn on the upright view."""
    root = tmp_path / "phone"
    upright = np.zeros((30, 20, 3), np.uint8)
    upright[:10] = (255, 0, 0)  # red head at the top
    stored = np.rot90(upright, k=1)  # what the sensor wrote: 20 x 30
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    (root / "images").mkdir(parents=True)
    Image.fromarray(stored).save(root / "images" / "p.jpg", exif=exif, quality=100)
    write(root / "masks" / "p.png", (upright[..., 0] > 128) * np.uint8(255))
    picture = read_picture(root / "images" / "p.jpg")
    assert picture.shape == (30, 20, 3) and picture[:10, :, 0].mean() > 200
    sample = next(iter(PortraitReader(root)))
    red = sample.image[..., 0] > 128
    assert (red == (sample.mask > 0.5)).mean() > 0.98, "picture and mask are aligned"


def test_a_sixteen_bit_picture_is_not_white(tmp_path):
    ramp = (np.linspace(0, 65535, 64).astype(np.uint16)[None, :]).repeat(8, 0)
    picture = read_picture(write(tmp_path / "ramp.png", ramp))
    assert picture.shape == (8, 64, 3)
    assert picture[0, 0, 0] == 0 and picture[0, -1, 0] == 255 and 120 < picture[0, 32, 0] < 135


def test_prepare_records_the_encoding_and_warns_about_masks_with_no_person(tmp_path, capsys):
    good = fixtures.make_portrait(tmp_path / "good", count=4)
    faint = tmp_path / "faint"
    for i in range(4):  # 0/1 masks wrongly given as soft: every pixel below 0.5
        write(faint / "images" / f"f{i}.png", np.full((20, 30, 3), 90, np.uint8))
        write(faint / "masks" / f"f{i}.png", PERSON.astype(np.uint8) * (i + 1))
    readers = [PortraitReader(good), PortraitReader(faint, mask_encoding="soft")]
    metadata = prepare(readers, PrepareConfig(tmp_path / "r", workers=1), progress=False)
    masks = [source["masks"] for source in metadata["sources"]]
    assert masks[0].startswith("binary (auto:") and masks[1] == "soft (given)"
    assert len(metadata["warnings"]) == 1 and str(faint) in metadata["warnings"][0]
    assert "almost no person pixel" in capsys.readouterr().err


def test_real_class_id_masks_need_their_ids(shared_dataset):
    """CIHP human parsing: class ids 1..19 are body parts, so every nonzero id is person."""
    cihp = shared_dataset("cihp_sample") / "datasets" / "CIHP"
    options = dict(images_dir="images", masks_dir="labels_rev")
    if not (cihp / "images").is_dir():
        pytest.skip(f"{cihp} has no images/ folder")
    with pytest.raises(MaskEncodingError, match="class ids"):
        PortraitReader(cihp, **options)
    reader = PortraitReader(cihp, mask_encoding="ids:1-19", **options)
    shares = [float((sample.mask >= 0.5).mean()) for sample in itertools.islice(reader, 5)]
    assert len(shares) == 5 and min(shares) > 0.01, shares
