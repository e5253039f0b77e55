"""The documentation's results page is made from an evaluation.json, not typed: its tables hold
the figures the evaluation wrote, and its plots are drawn."""

from __future__ import annotations

import json

import pytest

from backdrop.cli import main
from tests import fixtures
from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def results_page():
    return load_script("results_page")


def test_the_page_holds_what_the_evaluation_measured(results_page, tiny_models, tmp_path):
    pictures = fixtures.make_portrait(tmp_path / "selfies", count=6)
    video = fixtures.make_davis(tmp_path / "davis", frames=4)
    evaluation = tmp_path / "evaluation"
    ours, theirs = str(tiny_models["int8"]), str(tiny_models["float32"])
    args = ["evaluate", ours, "--reference", theirs, "-o", str(evaluation), "-q", "--data"]
    assert main([*args, f"portrait:{pictures}", f"davis:{video}"]) == 0
    results = json.loads((evaluation / "evaluation.json").read_text())

    page = tmp_path / "docs" / "results.md"
    results_page.main(
        [str(evaluation / "evaluation.json"), "--name", f"{ours}=Ours", "-o", str(page)]
    )
    text = page.read_text()
    assert results["measured"]["date"] in text and results["measured"]["machine"] in text
    mine, reference = results["models"]
    for column in results["columns"]:  # every column's IoU, as the evaluation wrote it
        assert f"{column['label']} ({column['images']})" in text
        assert f"{column['mean_iou'][ours]:.4f}" in text
        (difference,) = column["differences"]
        assert f"{difference['mean']:+.4f}" in text
    assert [c["label"] for c in results["columns"]] == ["selfies", "davis walk", "davis wave"]
    assert "| Ours |" in text and f"| {mine['latency_ms']:.2f} |" in text
    summary = text.split("## Summary")[1].split("##")[0]  # the README's table
    row = next(line for line in summary.splitlines() if line.startswith("| Ours |"))
    assert row.count(f"{results['columns'][0]['mean_iou'][ours]:.4f}") == 1, row
    assert f"{results['ground_truth_flicker'][f'davis:{video}']:.3f}" in text
    for name in results_page.PLOTS:
        plot = page.parent / "results" / name
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"(results/{name})" in text


def test_a_file_that_is_not_an_evaluation_is_one_line(results_page, tmp_path, capsys):
    bad = tmp_path / "evaluation.json"
    bad.write_text('{"models": 3}')
    with pytest.raises(SystemExit) as stop:
        results_page.main([str(bad), "-o", str(tmp_path / "results.md")])
    assert str(bad) in str(stop.value) and "\n" not in str(stop.value)
    assert not (tmp_path / "results.md").exists()
