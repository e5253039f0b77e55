"""A run folder's config.json and state.json are data from anywhere: whatever they hold, reading
them gives a checked value or one RunFileError naming the file, and the checkpoint state.json
names is always a file in the run folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.training.config import RunFileError, TrainConfig, TrainingError
from backdrop.training.run_folder import RunFolder
from tests.fuzzing import JSON, one_line_naming

STATE = {"epoch": 3, "checkpoint": "epoch-0003.keras", "best_val_iou": 0.5, "best_epoch": 2}
CONFIG = json.loads(
    TrainConfig(
        records=Path("records"),
        background_folders=(Path("backgrounds"),),
        source_repeats=(("portrait", 2),),
        source_weights=(("pseudo", 0.5),),
    ).to_json()
)
# Values a broken or hostile file likes to hold.
ODD_VALUES = [
    None,
    True,
    -1,
    0,
    1e300,
    10**30,
    float("nan"),
    float("inf"),
    "",
    "../../x.keras",
    "/etc/passwd",
    [],
    [1],
    [[1, 2, 3]],
    {},
    {"a": 1},
    "x\0y",
]


def test_a_saved_config_reads_back(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    config = RunFolder(tmp_path).saved_config()
    assert config.source_weights == (("pseudo", 0.5),) and config.records == Path("records")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("epochs", 1e300, "'epochs' must be a whole number"),
        ("epochs", -5, "'epochs' must be a whole number"),
        ("epochs", 10**30, "'epochs' must be a whole number"),
        ("epochs", 0, "epochs, batch_size and filters must be >= 1"),
        ("batch_size", "8", "'batch_size' must be a whole number"),
        ("augment", "yes", "'augment' must be true or false"),
        ("learning_rate", "fast", "'learning_rate' must be a finite number"),
        ("learning_rate", float("inf"), "'learning_rate' must be a finite number"),
        ("input_shape", 256, "'input_shape' must be [height, width]"),
        ("input_shape", [256, 256, 3], "'input_shape' must be [height, width]"),
        ("input_shape", [10**6, 256], "'input_shape' must be [height, width]"),
        ("records", 7, "'records' must be a path"),
        ("portrait_folders", "folder", "'portrait_folders' must be a list of paths"),
        ("source_repeats", [["portrait"]], "'source_repeats' must be a list of [source"),
        ("source_weights", {"pseudo": 1}, "'source_weights' must be a list of [source"),
        ("model", "unknown", "unknown model"),
        ("number_of_examples", -1, "'number_of_examples' must be a whole number"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_file_and_the_setting(tmp_path, key, value, fragment):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, key: value}))
    with pytest.raises(RunFileError) as caught:
        RunFolder(tmp_path).saved_config()
    assert fragment in one_line_naming(caught.value, path)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TrainingError)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", "1", "[" * 50_000, '{"epochs": 1e999}'])
def test_a_config_that_is_not_a_json_object_is_one_line(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(RunFileError) as caught:
        RunFolder(tmp_path).saved_config()
    one_line_naming(caught.value, path)


def test_a_config_that_is_not_text_or_far_too_large_is_one_line(tmp_path):
    path = tmp_path / "config.json"
    for content in (b"\xff\xfe{}", b" " * (16 * 1024 * 1024 + 1)):
        path.write_bytes(content)
        with pytest.raises(RunFileError) as caught:
            RunFolder(tmp_path).saved_config()
        one_line_naming(caught.value, path)


@st.composite
def _mutated(draw, valid: dict) -> dict:
    """`valid` with keys dropped, values swapped for odd ones or random JSON, or keys added."""
    mutated = dict(valid)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted(valid)))
        how = draw(st.sampled_from(["drop", "odd", "random", "add"]))
        if how == "drop":
            mutated.pop(key, None)
        elif how == "odd":
            mutated[key] = draw(st.sampled_from(ODD_VALUES))
        elif how == "random":
            mutated[key] = draw(JSON)
        else:
            mutated[draw(st.text(max_size=8))] = draw(JSON)
    return mutated


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_mutated(CONFIG))
def test_any_edit_of_a_config_reads_or_is_refused_in_one_line(values):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(values))
        try:
            config = RunFolder(folder).saved_config()
        except RunFileError as error:
            one_line_naming(error, path)
        else:
            assert TrainConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("state", "fragment"),
    [
        ({**STATE, "checkpoint": "../../elsewhere/x.keras"}, "not a path"),
        ({**STATE, "checkpoint": "/etc/x.keras"}, "not a path"),
        ({**STATE, "checkpoint": "sub/epoch-0001.keras"}, "not a path"),
        ({**STATE, "checkpoint": "notes.txt"}, "must name a .keras file"),
        ({**STATE, "checkpoint": 3}, "must name a .keras file"),
        ({**STATE, "epoch": -1}, "whole numbers"),
        ({**STATE, "epoch": 1e300}, "whole numbers"),
        ({**STATE, "best_epoch": 9}, "after the last epoch"),
        ({**STATE, "best_val_iou": "high"}, "best_val_iou"),
        ({**STATE, "best_val_iou": 7}, "best_val_iou"),
        ({k: v for k, v in STATE.items() if k != "checkpoint"}, "no checkpoint"),
        ([STATE], "not a JSON object"),
    ],
)
def test_a_bad_state_is_one_line_naming_the_file(tmp_path, state, fragment):
    run = RunFolder(tmp_path)
    run.state.write_text(json.dumps(state))
    for read in (run.read_state, run.last_checkpoint, run.best_or_last):
        with pytest.raises(RunFileError) as caught:
            read()
        message = one_line_naming(caught.value, run.state)
        assert fragment in message and "--remove-all-previous-results" in message


def test_the_checkpoint_of_a_good_state_is_in_the_run_folder(tmp_path):
    run = RunFolder(tmp_path)
    run.state.write_text(json.dumps(STATE))
    assert run.last_checkpoint() == tmp_path / "epoch-0003.keras"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_mutated(STATE))
def test_any_edit_of_a_state_reads_or_is_refused_in_one_line(state):
    with tempfile.TemporaryDirectory() as folder:
        run = RunFolder(folder)
        run.state.write_text(json.dumps(state))
        try:
            checkpoint = run.last_checkpoint()
        except RunFileError as error:
            one_line_naming(error, run.state)
        else:
            assert checkpoint.parent == Path(folder) and checkpoint.suffix == ".keras"
            assert run.read_state()["best_epoch"] <= run.read_state()["epoch"]


def test_every_setting_has_a_check_of_its_json_value():
    import dataclasses

    from backdrop.training.setting_checks import SETTING_CHECKS

    unchecked = [f.name for f in dataclasses.fields(TrainConfig) if f.type not in SETTING_CHECKS]
    assert not unchecked, (
        f"add the JSON check of {unchecked}' types to setting_checks.SETTING_CHECKS"
    )
