"""`backdrop report` reads a run folder from anywhere: its config.json, state.json, log.csv and
model contracts give a page, or one line naming the file that is wrong, never a traceback."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.cli import main
from backdrop.evaluation.report import read_contract, read_log, write_report
from backdrop.training.config import RunFileError, TrainConfig
from tests.fuzzing import mutated, one_line_naming

CONTRACT = {
    "mode": "int8",
    "input": {"height": 32, "width": 32, "channels": 3, "dtype": "uint8", "range": [0, 255]},
    "output": {"height": 32, "width": 32, "channels": 1, "dtype": "uint8"},
    "path": "model_int8.tflite",
    "size_bytes": 40960,
    "threads": 2,
    "validation_iou_float": 0.91,
    "validation_iou_exported": 0.9,
    "latency_ms": 1.5,
    "model_card": "model_int8.md",
}
LOG = "epoch,iou,loss,val_iou,val_loss\n0,0.5,0.9,0.55,0.8\n1,0.6,0.7,0.62,0.6\n"
ODD_VALUES = [None, True, -1, 0, 1e300, "", "../../card.md", "/etc/passwd", [], {}, "x\0y"]


@pytest.fixture
def run(tmp_path) -> Path:
    """A finished run folder without checkpoints: config, state, log and one exported contract."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(TrainConfig(checkpoints=folder).to_json())
    state = {"epoch": 2, "checkpoint": "epoch-0002.keras", "best_val_iou": 0.62, "best_epoch": 2}
    (folder / "state.json").write_text(json.dumps(state))
    (folder / "log.csv").write_text(LOG)
    (folder / "model_int8.tflite.json").write_text(json.dumps(CONTRACT))
    (folder / "model_int8.md").write_text("# card")
    return folder


def test_a_good_run_gives_a_page(run):
    page = write_report(run).read_text()
    assert "0.6200" in page and "model_int8.tflite" in page and "model_int8.md" in page


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("config.json", '{"epochs": 1e300}'),
        ("config.json", '{"input_shape": "big"}'),
        ("config.json", "not json"),
        ("state.json", '{"epoch": "two"}'),
        (
            "state.json",
            '{"epoch": 2, "checkpoint": "../x.keras", "best_val_iou": 0, "best_epoch": 0}',
        ),
        ("log.csv", "epoch,iou\n0,high\n"),
        ("log.csv", "epoch,iou\n0\n"),
        ("log.csv", "epoch,iou\n0,\x00\n"),
        ("log.csv", "epoch,iou\n0," + "9" * 200_000 + "\n"),
        ("model_int8.tflite.json", "[]"),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "mode": 8})),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "input": {"height": "32"}})),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "latency_ms": "fast"})),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "validation_iou_float": [1]})),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "model_card": "../../etc/passwd"})),
        ("model_int8.tflite.json", json.dumps({**CONTRACT, "model_card": "/etc/passwd"})),
    ],
)
def test_a_bad_file_of_the_run_is_one_line_naming_it(run, capsys, name, content):
    (run / name).write_text(content)
    with pytest.raises(RunFileError) as caught:
        write_report(run)
    one_line_naming(caught.value, run / name)
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and str(run / name) in err.splitlines()[-1], err
    assert not (run / "report" / "index.html").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_edit_of_a_contract_reads_or_is_refused_in_one_line(data):
    contract = mutated(data.draw, copy.deepcopy(CONTRACT), ODD_VALUES, deepest=3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model_int8.tflite.json"
        path.write_text(json.dumps(contract))
        try:
            read = read_contract(path)
        except RunFileError as error:
            one_line_naming(error, path)
        else:  # every field the page shows is there and formats
            f"{read.get('size_bytes', 0) / 1024:.0f} {read.get('latency_ms', 0.0):.2f}"
            assert read["input"]["height"] > 0 and "/" not in (read.get("model_card") or "")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_log_reads_or_is_refused_in_one_line(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.csv"
        path.write_text(LOG + text, encoding="utf-8")
        try:
            columns = read_log(Path(folder))
        except RunFileError as error:
            one_line_naming(error, path)
        else:
            assert all(isinstance(v, float) for values in columns.values() for v in values)
