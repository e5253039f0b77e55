"""Paired IoU differences against a reference model, with bootstrap intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backdrop.cli import main
from backdrop.evaluation.columns import by_column, format_columns, tally
from backdrop.evaluation.differences import bootstrap_interval, paired_differences
from backdrop.evaluation.evaluate import evaluate, parse_data_spec
from tests import fixtures


def test_interval_holds_the_mean_narrows_with_more_pictures_and_repeats():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.01, 0.05, 30), rng.normal(0.01, 0.05, 3000)
    mean, low, high = bootstrap_interval(few)
    assert mean == pytest.approx(few.mean()) and low < mean < high
    _, many_low, many_high = bootstrap_interval(many)
    assert many_high - many_low < (high - low) / 5  # about sqrt(100) = 10 times narrower
    assert many_low < 0.01 < many_high
    assert bootstrap_interval(few) == (mean, low, high), "seeded: the same on every run"
    assert bootstrap_interval([0.02] * 12) == pytest.approx((0.02, 0.02, 0.02))
    assert all(np.isnan(bootstrap_interval([])))


def test_frames_of_a_video_are_resampled_in_blocks():
    """A slow drift along one video: 200 frames are far from 200 independent pictures, and the
    interval widens when frames are drawn in runs instead of one by one."""
    drift = np.sin(np.linspace(0, 3 * np.pi, 200)) * 0.05
    _, low, high = bootstrap_interval(drift)  # as if still pictures
    _, block_low, block_high = bootstrap_interval(drift, ["video"] * 200)
    assert block_high - block_low > 1.5 * (high - low)
    # Stills beside the video are still drawn one by one, and a video shorter than a block is one.
    mixed = bootstrap_interval(list(drift[:5]) + [0.1, 0.2], ["short"] * 5 + [None, None])
    assert mixed[1] <= mixed[0] <= mixed[2]
    with pytest.raises(ValueError, match="3 sequence names for 2 values"):
        bootstrap_interval([0.1, 0.2], [None] * 3)


def _results(image_ious: dict[str, list[float]]) -> dict:
    return {
        "models": [
            {"model": model, "datasets": {"data": {"image_ious": values}}}
            for model, values in image_ious.items()
        ],
        "sequences": {"data": [None] * len(next(iter(image_ious.values())))},
    }


def test_paired_differences_count_wins_and_losses_against_each_reference():
    results = _results(
        {"ours.tflite": [0.9, 0.8, 0.7, 0.6], "theirs.tflite": [0.8, 0.8, 0.75, 0.5]}
    )
    (compared,) = paired_differences(results, ["theirs.tflite"])
    assert compared["model"] == "ours.tflite" and compared["reference"] == "theirs.tflite"
    data = compared["datasets"]["data"]
    assert data["mean"] == pytest.approx((0.1 + 0 - 0.05 + 0.1) / 4)
    assert (data["wins"], data["losses"]) == (2, 1)
    assert len(paired_differences(results, ["ours.tflite", "theirs.tflite"])) == 2
    with pytest.raises(ValueError, match="other.tflite is not one of the models"):
        paired_differences(results, ["other.tflite"])


def test_evaluate_compares_with_a_reference_it_was_not_given_as_a_model(tiny_models, tmp_path):
    pictures = fixtures.make_portrait(tmp_path / "p", count=6)
    video = fixtures.make_davis(tmp_path / "davis", frames=4)
    out = tmp_path / "e"
    code = main(
        [
            "evaluate",
            str(tiny_models["int8"]),
            "--reference",
            str(tiny_models["float32"]),
            "--data",
            f"portrait:{pictures}",
            f"davis:{video}",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    results = json.loads((out / "evaluation.json").read_text())
    ours, reference = results["models"]
    assert reference["model"].endswith("tiny_float32.tflite")
    (compared,) = results["differences"]
    assert compared["model"] == ours["model"] and compared["reference"] == reference["model"]
    for name, difference in compared["datasets"].items():
        mine, theirs = ours["datasets"][name], reference["datasets"][name]
        assert difference["mean"] == pytest.approx(mine["mean_iou"] - theirs["mean_iou"])
        assert difference["low"] <= difference["mean"] <= difference["high"]
    assert results["sequences"][f"davis:{video}"] == ["walk"] * 4 + ["wave"] * 4
    table = (out / "evaluation.md").read_text()
    assert "IoU minus tiny_float32.tflite's" in table and "| tiny_int8.tflite |" in table
    # Each still set and each video sequence is a column too.
    heads = ["p (6)", "davis walk (4)", "davis wave (4)"]
    for head in heads:
        assert head in table, table
    assert [c["label"] for c in results["columns"]] == ["p", "davis walk", "davis wave"]


def test_a_reference_not_among_the_models_is_refused(tiny_models, tmp_path):
    reader = parse_data_spec(f"portrait:{fixtures.make_portrait(tmp_path / 'p')}")
    with pytest.raises(ValueError, match="tiny_float32.tflite is not one of the models"):
        evaluate([tiny_models["int8"]], [reader], references=[tiny_models["float32"]])


def test_each_still_set_and_each_video_sequence_is_a_column_of_its_own():
    """A model can lead a dataset's mean and trail one of its sequences: the columns say so,
    each with its own interval, and the tally counts it."""
    video = {"ours.tflite": [0.9] * 10 + [0.5] * 10, "theirs.tflite": [0.6] * 10 + [0.55] * 10}
    stills = {"ours.tflite": [0.8, 0.7, 0.9], "theirs.tflite": [0.8, 0.6, 0.85]}
    results = {
        "models": [
            {
                "model": model,
                "datasets": {
                    "davis:/d/people": {"image_ious": video[model]},
                    "portrait:/d/selfies": {"image_ious": stills[model]},
                },
            }
            for model in video
        ],
        "sequences": {
            "davis:/d/people": ["jump"] * 10 + ["walk"] * 10,
            "portrait:/d/selfies": [None] * 3,
        },
    }
    results["differences"] = paired_differences(results, ["theirs.tflite"])
    assert results["differences"][0]["datasets"]["davis:/d/people"]["mean"] > 0
    columns = by_column(results)
    assert [c["label"] for c in columns] == ["people jump", "people walk", "selfies"]
    assert [c["images"] for c in columns] == [10, 10, 3]
    jump, walk, selfies = columns
    assert walk["mean_iou"] == pytest.approx({"ours.tflite": 0.5, "theirs.tflite": 0.55})
    (behind,) = walk["differences"]
    assert behind["mean"] == pytest.approx(-0.05) and behind["losses"] == 10
    assert behind["low"] == pytest.approx(-0.05) and behind["high"] == pytest.approx(-0.05)
    assert jump["differences"][0]["low"] == pytest.approx(0.3)
    assert selfies["differences"][0]["low"] <= 0.05 <= selfies["differences"][0]["high"]
    assert tally(columns, "ours.tflite", "theirs.tflite") == {
        "columns": 3,
        "ahead": 2,
        "behind": 1,
        "surely_ahead": 1,
        "surely_behind": 1,
    }
    results["columns"] = columns
    labels = {"ours.tflite": "ours", "theirs.tflite": "theirs"}
    table = format_columns(results, labels)
    assert "| ours | 0.9000 | 0.5000 | 0.8000 |" in table
    assert "people walk (10)" in table and "-0.0500 (-0.0500, -0.0500)" in table
    assert "| 2 (1) / 1 (1) of 3 |" in table
    # Without video there is nothing the main table does not say.
    stills_only = {**results, "columns": [selfies]}
    assert format_columns(stills_only, labels) == ""
