"""The averaging-weight table: which folds count, each weight against the recipe's per fold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("average_weight_loo")


def test_only_folds_whose_training_finished_are_scored(script, tmp_path):
    for name, done in (("tennis", ["label", "records", "train"]), ("dance", ["label"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fine_tune.json").write_text(json.dumps({"done": done}))
    (tmp_path / "folds").mkdir()  # the folds' linked data: no plan, not a fold
    assert [fold.name for fold in script.folds(tmp_path, None)] == ["tennis"]
    assert script.folds(tmp_path, ["dance"]) == []


def test_each_weight_is_set_against_the_recipes_with_its_interval(script):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 40)
    sequences = ["a"] * 20 + ["b"] * 20
    rows = [
        ("one", {"ious": {0.5: base, 0.3: base + 0.05, 1.0: base - 0.02}, "sequences": sequences}),
        (
            "two",
            {
                "ious": {0.5: base, 0.3: base + np.tile([0.05, -0.05], 20), 1.0: base - 0.01},
                "sequences": sequences,
            },
        ),
    ]
    text = script.table("left-out sequences", rows, [0.3, 0.5, 1.0], 0.5)
    lines = text.splitlines()
    one = next(line for line in lines if line.startswith("| one"))
    cells = [cell.strip() for cell in one.strip("|").split("|")]
    assert cells[1:4] == [
        f"{base.mean() + 0.05:.4f}",
        f"{base.mean():.4f}",
        f"{base.mean() - 0.02:.4f}",
    ]
    assert cells[4] == "+0.0500 (+0.0500, +0.0500)"
    assert cells[5] == "-0.0200 (-0.0200, -0.0200)"
    # 0.3 is above on fold one only (fold two's differences average 0); 1.0 below on both.
    assert "w=0.3 against 0.5: interval above 0 on 1, below 0 on 0" in lines
    assert "w=1 against 0.5: interval above 0 on 0, below 0 on 2" in lines
