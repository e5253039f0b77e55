"""Integration tests on the real third-party data in ../shared/datasets (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.data.prepare import PrepareConfig, downscale, prepare
from backdrop.data.readers.coco import COCOReader
from backdrop.data.readers.davis import DAVISReader
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.readers.voc import VOCReader
from backdrop.data.records import quantize_mask, read_records
from backdrop.data.records_metadata import shard_paths

VOC_SAMPLE = "voc_labelme_sample/examples/semantic_segmentation/data_dataset_voc"


def test_voc_person_share(shared_dataset):
    reader = VOCReader(shared_dataset(VOC_SAMPLE), negatives=True)
    samples = {s.name: s for s in reader}
    assert round(100 * samples["2011_000003"].mask.mean(), 1) == 19.5
    assert samples["2011_000025"].mask.sum() == 0
    assert samples["2011_000003"].ignore.any(), "255 borders become ignore"
    without_negatives = [s.name for s in VOCReader(shared_dataset(VOC_SAMPLE))]
    assert without_negatives == ["2011_000003", "2011_000006"]


@pytest.mark.parametrize(("split", "count"), [("train2017", 26), ("val2017", 23)])
def test_coco_tiny_person_images(shared_dataset, split, count):
    reader = COCOReader(shared_dataset("coco_tiny") / "tiny_coco", split)
    assert len(reader.keys()) == count
    assert (
        len(COCOReader(shared_dataset("coco_tiny") / "tiny_coco", split, negatives=True).keys())
        == 50
    )
    sample = reader.load(reader.keys()[0])
    assert sample.mask.any()


def test_coco_crowd_regions_become_ignore(shared_dataset):
    reader = COCOReader(shared_dataset("coco_tiny") / "tiny_coco", "train2017")
    crowded = [s for s in reader if s.ignore.any()]
    assert crowded, "tiny COCO train has 3 crowd person annotations"
    assert all(not (s.ignore & (s.mask > 0)).any() for s in crowded)


def test_human_seg_portraits_with_smaller_masks(shared_dataset):
    reader = PortraitReader(shared_dataset("human_seg_vikram"))
    assert len(reader.keys()) == 232
    for key in reader.keys()[:20]:
        sample = reader.load(key)
        assert sample.mask.shape == sample.image.shape[:2]
        assert set(np.unique(sample.mask)) <= {0.0, 1.0}


def test_davis_sequences_in_order(shared_dataset):
    reader = DAVISReader(shared_dataset("davis2016_people"))
    sequences = reader.sequences()
    assert sorted(sequences) == [
        "breakdance",
        "breakdance-flare",
        "dance-jump",
        "dance-twirl",
        "tennis",
    ]
    assert sum(map(len, sequences.values())) == 375
    assert sequences["tennis"][:2] == ["tennis/00000.jpg", "tennis/00001.jpg"]


def test_real_readers_round_trip_through_records(shared_dataset, tmp_path):
    readers = [
        VOCReader(shared_dataset(VOC_SAMPLE)),
        COCOReader(shared_dataset("coco_tiny") / "tiny_coco", "val2017"),
        DAVISReader(shared_dataset("davis2016_people"), sequences=["tennis"]),
    ]
    config = PrepareConfig(tmp_path / "r", side=64, image_format="png", workers=2)
    metadata = prepare(readers, config, progress=False)
    stored = {
        (r["source"], r["name"]): r
        for split in ("train", "validation")
        for r in read_records(shard_paths(tmp_path / "r", split))
    }
    assert (
        len(stored) == 2 + 23 + 70 == sum(s["train"] + s["validation"] for s in metadata["sources"])
    )
    for reader in readers:
        for sample in list(reader)[:5]:
            sample = downscale(sample, 64)
            record = stored[(reader.source, sample.name)]
            np.testing.assert_array_equal(
                np.rint(record["mask"][..., 0] * 255).astype(np.uint8), quantize_mask(sample.mask)
            )
            np.testing.assert_array_equal(record["image"], sample.image)
