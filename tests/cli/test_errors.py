"""Every mistake a user can make is one line naming the fix: never a traceback, never a false
success."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backdrop.cli import main
from tests import fixtures
from tests.cli.test_outputs import TINY_TRAINING, full_disk, one_line_error

TINY_MODEL = Path(__file__).resolve().parents[1] / "runtime" / "tiny" / "tiny_float32.tflite"


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A folder with a small portrait dataset, an empty records folder, an empty dataset, a file
    and a run whose state.json is empty; it is the current folder."""
    fixtures.make_portrait(tmp_path / "p", count=4)
    (tmp_path / "records").mkdir()
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--portrait", "p", "-o", "t", "--input", "0"],
        ["train", "--portrait", "p", "-o", "t", "--input", "-32"],
        ["train", "--portrait", "p", "-o", "t", "--input", "32x0"],
        ["segment", str(TINY_MODEL), "-i", "p/images/p0.png", "-o", "x.png", "--threads", "0"],
        ["prepare", "--portrait", "p", "-d", "r", "--mask-encoding", "grey"],
    ],
)
def test_bad_flag_values_are_usage_errors(workspace, capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("backdrop ")
    assert not (workspace / "t").exists() and not (workspace / "r").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--portrait", "p", "-o", "t", "--learning-rate", "-1"], ["learning_rate"]),
        (["train", "-r", "records", "-o", "t", "-e", "1"], ["metadata.json not found"]),
        (["prepare", "--portrait", "p", "-d", "afile"], ["afile is a file", "-d"]),
        (["prepare", "--portrait", "empty", "-d", "r"], ["no pictures found", "reasons above"]),
        (
            ["evaluate", str(TINY_MODEL), "--data", "portrait:empty", "-o", "ev"],
            ["no pictures were evaluated"],
        ),
        (["segment", str(TINY_MODEL), "-i", "p/images/p0.png", "-o", "x.gif"], ["x.gif", ".png"]),
        (["segment", str(TINY_MODEL), "-i", "p/images/p0.png", "-o", "x.mp4"], ["x.mp4"]),
        (["segment", str(TINY_MODEL), "-i", "p/images", "-o", "x.jpg"], ["give a folder"]),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(workspace, capsys, args, fragments):
    assert main(args) == 1
    err = one_line_error(capsys, *fragments)
    for written in ("t", "r", "x.gif", "x.mp4", "x.jpg", "ev"):
        assert not (workspace / written).exists(), (written, err)


def test_an_empty_folder_names_its_reason_above(workspace, capsys):
    assert main(["prepare", "--portrait", "empty", "-d", "r", "-q"]) == 1
    err = capsys.readouterr().err
    assert "skipped no images found" in err.splitlines()[0], "the reason is above the error"


def test_a_video_output_must_be_a_video(workspace, tiny_models, capsys):
    """A clip segmented to .gif or .jpg used to report every frame written and write one."""
    import cv2

    clip = workspace / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (48, 32))
    for i in range(5):
        writer.write(np.full((32, 48, 3), 40 * i, np.uint8))
    writer.release()
    for output in ("out.gif", "out.jpg"):
        assert main(["segment", str(tiny_models["float32"]), "-i", str(clip), "-o", output]) == 1
        one_line_error(capsys, "a video's result is a video", ".mp4")
        assert not (workspace / output).exists()


def test_an_empty_state_json_is_one_line(workspace, capsys):
    (workspace / "run").mkdir()
    (workspace / "run" / "state.json").write_text("")
    assert main(["train", "--portrait", "p", "-o", "run", "--restore"]) == 1
    one_line_error(capsys, "state.json is corrupt")


def test_an_evaluate_with_one_dataset_skipped_whole_fails_naming_it(workspace, capsys):
    """It printed a `0 | nan` row and exited 0."""
    (workspace / "ev").mkdir()
    (workspace / "ev" / "notes.txt").write_text("mine")
    args = ["evaluate", str(TINY_MODEL), "--data", "portrait:p", "portrait:empty", "-o", "ev"]
    assert main([*args, "-q"]) == 1
    one_line_error(capsys, "no pictures of portrait:empty were evaluated", "no images found")
    assert sorted(p.name for p in (workspace / "ev").iterdir()) == ["notes.txt"], "no manifest"


def test_evaluate_on_zero_pictures_names_no_grid(workspace, capsys):
    assert main(["evaluate", str(TINY_MODEL), "--data", "portrait:empty", "-o", "ev", "-q"]) == 1
    captured = capsys.readouterr()
    assert "grid.png" not in captured.out + captured.err


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line(workspace, tmp_path, capsys):
    mount = full_disk(tmp_path)
    try:
        (mount / "filler").write_bytes(bytes(3 * 1024 * 1024 - 200 * 1024))
        run = str(mount / "run")
        code = main(["train", "--portrait", "p", "-o", run, *TINY_TRAINING, "-b", "2"])
        assert code == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("backdrop: error: no space left on device"), err
        assert not any("Traceback" in line for line in err)
        state = mount / "run" / "state.json"
        assert not state.exists() or json.loads(state.read_text())["epoch"] >= 0
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.mark.parametrize(
    "args",
    [
        ["export", "gone.keras", "-r", "records", "--modes", "float32"],
        ["fit-int8", "gone.keras", "-r", "records", "-o", "fitted.keras"],
        ["average", "gone.keras", "-o", "averaged.keras"],
    ],
)
def test_a_missing_checkpoint_outside_training_names_no_training_flag(workspace, capsys, args):
    """The missing-file error once told every command to start over with
    --remove-all-previous-results, a flag only `train` has."""
    assert main(args) == 1
    line = one_line_error(capsys, "gone.keras")
    assert "--remove-all-previous-results" not in line
    assert not any((workspace / name).exists() for name in ("fitted.keras", "averaged.keras"))
