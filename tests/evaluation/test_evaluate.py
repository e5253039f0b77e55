"""Evaluation metrics, and agreement with the reference's published IoU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backdrop.cli import main
from backdrop.evaluation.evaluate import dataset_labels, parse_data_spec
from backdrop.evaluation.metrics import boundary_iou, flicker, iou
from backdrop.evaluation.results import model_labels


def test_iou_and_boundary_iou():
    truth = np.zeros((100, 100), bool)
    truth[20:80, 20:80] = True
    valid = np.ones_like(truth)
    assert iou(truth, truth, valid) == 1.0 and boundary_iou(truth, truth, valid) == 1.0
    shifted = np.roll(truth, 3, axis=1)
    assert iou(shifted, truth, valid) == pytest.approx(57 / 63)
    assert boundary_iou(shifted, truth, valid) < iou(shifted, truth, valid), "edges weigh more"
    empty = np.zeros_like(truth)
    assert iou(empty, empty, valid) == 1.0 and iou(empty, truth, valid) == 0.0
    assert iou(shifted, truth, ~(shifted ^ truth)) == 1.0, "ignored pixels do not count"


def test_flicker_is_the_share_of_changing_mask_pixels():
    still = [np.ones((10, 10), bool)] * 3
    assert flicker(still) == 0.0
    blinking = [np.ones((10, 10), bool), np.zeros((10, 10), bool)] * 2
    assert flicker(blinking) == 1.0
    half = np.zeros((10, 10), bool)
    half[:, :5] = True
    assert flicker([np.ones((10, 10), bool), half]) == 0.5


def test_models_that_share_a_file_name_are_labelled_with_their_folder():
    paths = ["run/training/model_int8.tflite", "run/post_training/model_int8.tflite", "m.tflite"]
    assert model_labels(paths) == [
        "training/model_int8.tflite",
        "post_training/model_int8.tflite",
        "m.tflite",
    ]


def test_models_whose_folders_share_a_name_too_are_labelled_from_further_up():
    paths = [
        "run/square/int8/model_int8.tflite",
        "run/landscape/int8/model_int8.tflite",
        "run/square/model_int8.tflite",
        "run/landscape/last/model_float16.tflite",
        "run/square/last/model_float16.tflite",
        "run/square/model_float16.tflite",
    ]
    assert model_labels(paths) == [
        "square/int8/model_int8.tflite",
        "landscape/int8/model_int8.tflite",
        "square/model_int8.tflite",
        "landscape/last/model_float16.tflite",
        "square/last/model_float16.tflite",
        "square/model_float16.tflite",
    ]


def test_two_coco_splits_of_one_folder_are_two_datasets(tmp_path):
    (tmp_path / "annotations").mkdir()
    for split in ("train2017", "val2017"):
        (tmp_path / split).mkdir()
        empty = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
        (tmp_path / "annotations" / f"instances_{split}.json").write_text(json.dumps(empty))
    train, validation = (parse_data_spec(f"coco:{tmp_path}:{s}") for s in ("train2017", "val2017"))
    assert dataset_labels([train, validation]) == [
        f"coco:{tmp_path}:train2017",
        f"coco:{tmp_path}:val2017",
    ]
    with pytest.raises(ValueError, match="twice"):
        dataset_labels([train, parse_data_spec(f"coco:{tmp_path}:train2017")])


def test_bad_data_spec_lists_formats():
    with pytest.raises(ValueError, match="portrait, davis, coco, voc"):
        parse_data_spec("kitti:/data")


@pytest.mark.integration
def test_reference_iou_reproduced_on_human_seg(anchor_model, shared_dataset, tmp_path, capsys):
    """../shared/anchors/README.md: the general model's mean IoU on these 232 portraits is 0.875."""
    data = shared_dataset("human_seg_vikram")
    code = main(
        ["evaluate", str(anchor_model()), "--data", f"portrait:{data}", "-o", str(tmp_path), "-q"]
    )
    assert code == 0
    results = json.loads((tmp_path / "evaluation.json").read_text())
    summary = next(iter(results["models"][0]["datasets"].values()))
    assert summary["images"] == 232
    assert summary["mean_iou"] == pytest.approx(0.875, abs=0.005)
    assert (tmp_path / "grid.png").stat().st_size > 10_000
    assert "mean IoU" in capsys.readouterr().out


@pytest.mark.integration
def test_flicker_on_davis_sequences(anchor_model, shared_dataset, tmp_path):
    data = shared_dataset("davis2016_people")
    assert (
        main(
            ["evaluate", str(anchor_model()), "--data", f"davis:{data}", "-o", str(tmp_path), "-q"]
        )
        == 0
    )
    results = json.loads((tmp_path / "evaluation.json").read_text())
    summary = next(iter(results["models"][0]["datasets"].values()))
    assert summary["images"] == 375 and 0 < summary["flicker"] < 0.5
    assert 0 < next(iter(results["ground_truth_flicker"].values())) < 0.5
