"""One contract test for every reader on its generated fixture, plus format-specific checks."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.data.readers import READERS, get_reader
from backdrop.data.readers.base import DatasetError
from backdrop.data.readers.coco import COCOReader
from backdrop.data.readers.davis import DAVISReader
from backdrop.data.readers.matting import MattingReader
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.readers.supervisely import SuperviselyReader
from backdrop.data.readers.voc import VOCReader
from backdrop.data.sample import Sample
from tests import fixtures


def build_reader(name: str, tmp_path):
    root = tmp_path / name
    if name == "portrait":
        return PortraitReader(fixtures.make_portrait(root))
    if name == "voc":
        return VOCReader(fixtures.make_voc(root))
    if name == "coco":
        return COCOReader(fixtures.make_coco(root))
    if name == "supervisely":
        return SuperviselyReader(fixtures.make_supervisely(root))
    if name == "matting":
        foregrounds, backgrounds = fixtures.make_matting(root)
        return MattingReader(foregrounds, [backgrounds], per_foreground=3)
    if name == "davis":
        return DAVISReader(fixtures.make_davis(root))
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_contract(name, tmp_path):
    reader = build_reader(name, tmp_path)
    samples = list(reader)
    assert samples, reader.skipped
    assert len({s.name for s in samples}) == len(samples), "sample names must be unique"
    for sample in samples:
        assert isinstance(sample, Sample)
        assert sample.source == name
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        assert sample.mask.shape == sample.image.shape[:2]
        assert sample.mask.dtype == np.float32
        assert 0 <= sample.mask.min() and sample.mask.max() <= 1
        assert sample.mask.max() > 0, f"{sample.name}: fixture has a person in every sample"
    # Listing is deterministic and loading by key gives the same sample again.
    assert reader.keys() == build_reader(name, tmp_path / "again").keys()
    first = reader.load(reader.keys()[0])
    np.testing.assert_array_equal(first.mask, samples[0].mask)


def test_registry_rejects_unknown_names_listing_valid_ones():
    assert get_reader("voc") is VOCReader
    with pytest.raises(DatasetError, match="valid formats: coco, davis, matting"):
        get_reader("pascal")


def test_portrait_resizes_smaller_mask_and_pairs_by_stem(tmp_path):
    reader = PortraitReader(fixtures.make_portrait(tmp_path))
    sample = reader.load("p0.png")  # its mask is stored at half size
    assert sample.mask.shape == (40, 56)
    assert set(np.unique(sample.mask)) == {0.0, 1.0}, "nearest resize keeps binary masks binary"
    assert sample.mask[8:32, 8:40].all() and sample.mask.sum() == 24 * 32


def test_portrait_reads_alpha_and_palette_masks(tmp_path):
    fixtures.make_portrait(tmp_path, count=2)
    rgba = np.zeros((40, 56, 4), np.uint8)
    rgba[..., 3] = 200
    fixtures.save(tmp_path / "masks" / "p0.png", rgba)
    assert np.allclose(PortraitReader(tmp_path).load("p0.png").mask, 200 / 255)


def test_portrait_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(DatasetError, match="images/\\*.jpg and .*masks/\\*.png"):
        PortraitReader(tmp_path)


def test_voc_person_void_and_negatives(tmp_path):
    root = fixtures.make_voc(tmp_path)
    samples = list(VOCReader(root))
    assert [s.name for s in samples] == ["2007_000001", "2007_000002"]
    first = samples[0]
    assert first.mask.sum() == 20 * 20
    assert first.ignore.sum() == 22 and not (first.ignore & (first.mask > 0)).any()
    assert samples[1].mask.sum() == 20 * 20, "the bus is background"
    reader = VOCReader(root)
    list(reader)
    assert "no person" in reader.skipped[0][1]
    assert len(list(VOCReader(root, negatives=True))) == 3


def test_coco_union_of_instances_and_crowd_modes(tmp_path):
    root = fixtures.make_coco(tmp_path)
    reader = COCOReader(root)
    assert reader.keys() == ["1", "2"]
    second = reader.load("2")
    assert second.ignore[20:30, 2:6].all() and second.ignore.sum() == 40
    assert not second.mask[20:30, 2:6].any()
    as_person = COCOReader(root, crowd="person").load("2")
    assert as_person.mask[20:30, 2:6].all() and not as_person.ignore.any()
    assert COCOReader(root, negatives=True).keys() == ["1", "2", "3"]


def test_matting_composites_are_soft_and_deterministic(tmp_path):
    foregrounds, backgrounds = fixtures.make_matting(tmp_path / "m")
    reader = MattingReader(foregrounds, [backgrounds], per_foreground=3, seed=7)
    sample = reader.load("f0.png/1")
    assert np.isclose(sample.mask[10, 16], 128 / 255), "soft alpha stays soft"
    again = MattingReader(foregrounds, [backgrounds], per_foreground=3, seed=7).load("f0.png/1")
    np.testing.assert_array_equal(sample.image, again.image)
    # Where alpha is 1 the composite is the foreground; where 0, it is not.
    foreground = np.asarray(fixtures.Image.open(foregrounds / "fg" / "f0.png"))
    np.testing.assert_array_equal(sample.image[5:19, 5:15], foreground[5:19, 5:15])
    chosen = {reader.background_for("f0.png", k) for k in range(30)}
    assert len(chosen) > 1, "backgrounds vary across composites"


def test_davis_keeps_frame_order_and_groups_by_sequence(tmp_path):
    reader = DAVISReader(fixtures.make_davis(tmp_path, frames=4))
    sequences = reader.sequences()
    assert list(sequences) == ["walk", "wave"]
    assert sequences["walk"] == [f"walk/{i:05d}.jpg" for i in range(4)]
    samples = list(reader)
    assert {s.group for s in samples} == {"walk", "wave"}
    assert [s.mask[10].argmax() for s in samples[:4]] == [4, 5, 6, 7], "the box moves one px/frame"
    with pytest.raises(DatasetError, match="unknown sequences"):
        DAVISReader(tmp_path, sequences=["jump"])


def test_davis_frame_step_keeps_every_nth_frame(tmp_path):
    reader = DAVISReader(fixtures.make_davis(tmp_path, frames=5), frame_step=2)
    assert reader.sequences()["walk"] == ["walk/00000.jpg", "walk/00002.jpg", "walk/00004.jpg"]
    with pytest.raises(DatasetError, match="frame_step"):
        DAVISReader(tmp_path, frame_step=0)
