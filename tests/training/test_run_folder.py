"""RunFolder: the one place that spells a run's paths."""

from __future__ import annotations

import pytest

from backdrop.training.config import TrainingError
from backdrop.training.run_folder import RunFolder


def test_epochs_sort_by_number_not_by_text(tmp_path):
    run = RunFolder(tmp_path)
    for number in (9998, 10000, 9999, 7):
        run.epoch(number).write_bytes(b"")
    (tmp_path / "epoch-notes.keras").write_bytes(b"")  # not a checkpoint name
    assert [p.name for p in run.epochs()] == [
        "epoch-0007.keras",
        "epoch-9998.keras",
        "epoch-9999.keras",
        "epoch-10000.keras",
    ]


def test_state_errors_name_the_fix(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.holds_run()
    with pytest.raises(TrainingError, match="start without --restore"):
        run.read_state()
    run.state.write_text("")
    with pytest.raises(TrainingError, match="corrupt.*--remove-all-previous-results"):
        run.read_state()
    run.state.write_text(
        '{"epoch": 3, "checkpoint": "epoch-0003.keras", "best_val_iou": 0.5, "best_epoch": 2}'
    )
    assert run.last_checkpoint() == tmp_path / "epoch-0003.keras"
    assert run.best_or_last() == tmp_path / "epoch-0003.keras"
    run.best.write_bytes(b"")
    assert run.best_or_last() == run.best
    assert run.export("int8").name == "model_int8.tflite" and run.config.name == "config.json"
