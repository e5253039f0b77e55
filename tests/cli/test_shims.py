"""The seed-compatible scripts in python/ keep exactly their original flags."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fixtures

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"

ORIGINAL_FLAGS = {
    "supervisely_preprocessing.py": {
        "-h",
        "--help",
        "-s",
        "--source-path",
        "-d",
        "--destination-path",
    },
    "data_preparation.py": {
        "-h",
        "--help",
        "-p",
        "--pascal-voc-path",
        "-c",
        "--coco-portraints-path",
        "-s",
        "--supervisely-person-path",
        "-d",
        "--tfrecord-destination",
        "-up",
        "--use_pascal-voc",
        "-uc",
        "--use-coco-portraints",
        "-us",
        "--use-supervisely-person",
        "-sd",
        "--side",
        "-v",
        "--verbose",
        "--remove-all-previous-results",
    },
}


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Runs a script the way its users do: from the python/ folder."""
    return subprocess.run(
        [sys.executable, name, *args], cwd=PYTHON_DIR, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("script", sorted(ORIGINAL_FLAGS))
def test_help_lists_exactly_the_original_flags(script):
    result = run_script(script, "-h")
    assert result.returncode == 0, result.stderr
    flags = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", result.stdout.split("options:")[1]))
    assert flags == ORIGINAL_FLAGS[script]


def test_supervisely_then_data_preparation(tmp_path):
    fixtures.make_supervisely(tmp_path / "sv")
    converted = run_script(
        "supervisely_preprocessing.py", "-s", str(tmp_path / "sv"), "-d", str(tmp_path / "portrait")
    )
    assert converted.returncode == 0, converted.stderr
    assert sorted(p.name for p in (tmp_path / "portrait/masks").iterdir()) == [
        "ds1-a.png",
        "ds2-b.png",
    ]
    assert (tmp_path / "portrait/ignore/ds1-a.png").exists()
    voc = fixtures.make_voc(tmp_path / "voc")
    prepared = run_script(
        "data_preparation.py",
        "-up",
        "-p",
        str(voc),
        "-us",
        "-s",
        str(tmp_path / "portrait"),
        "-d",
        str(tmp_path / "records"),
        "-sd",
        "16",
        "--remove-all-previous-results",
    )
    assert prepared.returncode == 0, prepared.stderr
    metadata = json.loads((tmp_path / "records/metadata.json").read_text())
    assert metadata["side"] == 16
    assert {(s["source"], s["train"] + s["validation"]) for s in metadata["sources"]} == {
        ("voc", 2),
        ("supervisely", 2),
    }


def test_use_flag_without_its_path_names_the_fix(tmp_path):
    result = run_script("data_preparation.py", "-up", "-d", str(tmp_path / "r"))
    assert result.returncode == 1 and "pass -p PATH" in result.stderr


def test_trainer_defaults_are_the_original_ones():
    sys.path.insert(0, str(PYTHON_DIR))
    try:
        import AUnetBackgroundRemoval as trainer
    finally:
        sys.path.remove(str(PYTHON_DIR))
    args = trainer.build_parser().parse_args([])
    assert (
        args.checkpoints_folder,
        args.epochs,
        args.batch_size,
        args.filters,
        args.side,
        args.number_of_examples,
    ) == ("training_grid", 1000, 8, 8, 32, 27781)


@pytest.mark.slow
def test_tiny_training_run_through_the_seed_script(tmp_path):
    data = fixtures.make_portrait(tmp_path / "portraits", count=12, size=(40, 40))
    backgrounds = fixtures.make_matting(tmp_path / "m")[1]
    checkpoints = tmp_path / "grid"
    common = [
        "-uc",
        "-c",
        str(data),
        "-cf",
        str(checkpoints),
        "-sd",
        "32",
        "-f",
        "4",
        "-b",
        "4",
        "-v",
        "2",
        "-if",
        str(backgrounds),
        "-ef",
        str(backgrounds),
    ]
    result = run_script("AUnetBackgroundRemoval.py", *common, "-e", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (checkpoints / "epoch-0002.keras").exists() and (checkpoints / "state.json").exists()
    assert (checkpoints / "model_int8.tflite").stat().st_size > 10_000
    contract = json.loads((checkpoints / "model_int8.tflite.json").read_text())
    assert contract["input"]["dtype"] == "uint8" and contract["input"]["height"] == 32
    (checkpoints / "model_int8.tflite").unlink()
    again = run_script("AUnetBackgroundRemoval.py", *common, "-l")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (checkpoints / "model_int8.tflite").exists()
    resumed = run_script("AUnetBackgroundRemoval.py", *common, "-e", "3", "--restore")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((checkpoints / "state.json").read_text())["epoch"] == 3
