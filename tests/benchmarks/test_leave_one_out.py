"""The leave-one-out tables read each fold's evaluation files: the left-out sequence and every
still set, float16 against int8 and one setting's folds against another's, picture by picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def leave_one_out():
    return load_script("leave_one_out")


def write_fold(run: Path, left_out: str, ious: dict[str, dict[str, list[float]]]) -> None:
    """A fold's evaluation files as fine-tune writes them: the left-out sequence in
    evaluation_all.json, the still sets' validation splits in evaluation_validation.json.
    `ious`: model file name -> dataset name -> per-picture IoU."""
    folder = run / left_out / "evaluation"
    folder.mkdir(parents=True)
    for part, wanted in (("all", "scored"), ("validation", "selfies")):
        models = [
            {
                "model": f"{run}/{left_out}/model/{model}",
                "datasets": {
                    f"data:{run}/folds/{left_out}/{name}": {"image_ious": values}
                    for name, values in datasets.items()
                    if wanted in name
                },
            }
            for model, datasets in ious.items()
        ]
        (folder / f"evaluation_{part}.json").write_text(json.dumps({"models": models}))


def test_int8_minus_float_is_the_difference_of_the_means(leave_one_out, tmp_path):
    rng = np.random.default_rng(0)
    floats, ints = rng.uniform(0.6, 0.9, 30), rng.uniform(0.6, 0.9, 30)
    stills = rng.uniform(0.9, 1.0, 12)
    write_fold(
        tmp_path,
        "tennis",
        {
            "model_float16.tflite": {"scored": list(floats), "selfies": list(stills)},
            "model_int8.tflite": {"scored": list(ints), "selfies": list(stills - 0.01)},
        },
    )

    assert leave_one_out.int8_minus_float(tmp_path, "tennis") == (
        f"{ints.mean() - floats.mean():+.4f}"
    )
    assert leave_one_out.int8_minus_float(tmp_path, "tennis", "selfies") == "-0.0100"
    assert leave_one_out.int8_minus_float(tmp_path, "dance", "selfies") == "-"


def test_one_setting_against_another_per_sequence_and_per_still_set(
    leave_one_out, tmp_path, capsys
):
    rng = np.random.default_rng(1)
    ours, theirs = tmp_path / "more", tmp_path / "beat"
    figures = {}
    for run in (ours, theirs):
        for left_out in ("tennis", "dance"):
            scored, selfies = rng.uniform(0.6, 0.9, 20), rng.uniform(0.9, 1.0, 8)
            figures[run.name, left_out] = scored, selfies
            write_fold(
                run,
                left_out,
                {"model_float16.tflite": {"scored": list(scored), "selfies": list(selfies)}},
            )
    # A fold of the other setting that scored other frames is not compared.
    write_fold(ours, "breakdance", {"model_float16.tflite": {"scored": [0.5, 0.6]}})
    write_fold(theirs, "breakdance", {"model_float16.tflite": {"scored": [0.5]}})

    leave_one_out.against(ours, theirs, ["tennis", "dance", "breakdance"])
    leave_one_out.against(ours, theirs, ["tennis", "dance"], "selfies")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]

    assert rows[0] == "| left out | more | beat | more - beat (95%) |"
    assert rows[3] == "| breakdance | - | - | not both scored on the same frames |"
    assert rows[4] == "| selfies, fold without | more | beat | more - beat (95%) |"
    assert len(rows) == 7
    for row, (left_out, which) in zip(
        (rows[1], rows[2], rows[5], rows[6]),
        (("tennis", 0), ("dance", 0), ("tennis", 1), ("dance", 1)),
        strict=True,
    ):
        mine, other = figures["more", left_out][which], figures["beat", left_out][which]
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[:3] == [left_out, f"{mine.mean():.4f}", f"{other.mean():.4f}"]
        mean, interval = cells[3].split(" ", 1)
        assert mean == f"{(mine - other).mean():+.4f}"
        low, high = (float(x) for x in interval.strip("()").split(", "))
        assert low <= float(mean) <= high and low < high
