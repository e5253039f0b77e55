"""The TF.js loader on broken files: a model.json with values of the wrong type or keys left out,
cut or scrambled bytes, shards cut or grown; each is loaded or refused with one TFJSFormatError
naming the file, never anything else."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backdrop.teachers.tfjs_graph import TFJSFormatError, TFJSGraphModel
from tests.teachers.test_tfjs_graph import make_tfjs_model

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["../secret.bin", "/etc/passwd", "uint8", "float16", "int64", "Const"]),
    st.lists(st.integers(-3, 2**40), max_size=4),
    st.dictionaries(st.sampled_from(["dtype", "min", "scale", "name"]), st.integers(), max_size=3),
)


def _valid(folder: Path) -> dict:
    make_tfjs_model(folder)
    return json.loads((folder / "model.json").read_text())


def _paths(value, path=()):
    """Every place in a JSON value, as a tuple of keys and indices."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


with tempfile.TemporaryDirectory() as _folder:
    VALID = _valid(Path(_folder))
    SHARD = (Path(_folder) / "group1-shard1of1.bin").read_bytes()
PLACES = [path for path in _paths(VALID) if path]


def _load_or_refuse(folder: Path) -> None:
    try:
        TFJSGraphModel(folder).close()
    except TFJSFormatError as error:
        message = str(error)
        assert str(folder / "model.json") in message and "\n" not in message, message


def _write(folder: Path, description, shard: bytes = SHARD) -> Path:
    text = description if isinstance(description, str) else json.dumps(description)
    (folder / "model.json").write_text(text)
    (folder / "group1-shard1of1.bin").write_bytes(shard)
    return folder


@FUZZ
@given(st.sampled_from(PLACES), st.sampled_from(["replace", "drop"]), WRONG_VALUES)
@example(("weightsManifest", 0, "weights", 0, "quantization", "scale"), "replace", -1)
def test_a_wrong_value_or_a_missing_key_is_loaded_or_refused_in_one_line(place, action, value):
    description = copy.deepcopy(VALID)
    parent = description
    for key in place[:-1]:
        parent = parent[key]
    if action == "drop":
        del parent[place[-1]]
    else:
        parent[place[-1]] = value
    with tempfile.TemporaryDirectory() as folder:
        _load_or_refuse(_write(Path(folder), description))


@FUZZ
@given(st.data())
def test_cut_or_scrambled_files_are_loaded_or_refused_in_one_line(data):
    text = json.dumps(VALID).encode()
    shard = SHARD
    how = data.draw(st.sampled_from(["cut json", "scramble json", "cut shard", "grow shard"]))
    if how == "cut json":
        text = text[: data.draw(st.integers(0, len(text) - 1))]
    elif how == "scramble json":
        at = data.draw(st.integers(0, len(text) - 1))
        text = text[:at] + data.draw(st.binary(min_size=1, max_size=3)) + text[at + 3 :]
    elif how == "cut shard":
        shard = shard[: data.draw(st.integers(0, len(shard) - 1))]
    else:
        shard = shard + data.draw(st.binary(min_size=1, max_size=8))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model.json").write_bytes(text)
        (Path(folder) / "group1-shard1of1.bin").write_bytes(shard)
        _load_or_refuse(Path(folder))


def test_an_integer_scale_and_min_de_quantize_as_numbers():
    """JSON may give `"scale": 2`: uint8 values times 2 plus 1, not wrapped around in uint8."""
    import numpy as np

    from backdrop.teachers.tfjs_graph import _read_weights

    description = copy.deepcopy(VALID)
    entry = description["weightsManifest"][0]["weights"][0]
    assert entry["quantization"]["dtype"] == "uint8"
    entry["quantization"].update(scale=2, min=1)
    with tempfile.TemporaryDirectory() as folder:
        model_json = _write(Path(folder), description) / "model.json"
        weights = _read_weights(model_json, description["weightsManifest"])
    stored = np.frombuffer(SHARD, np.uint8, int(np.prod(entry["shape"])))
    assert stored.max() > 127  # values that would wrap in uint8
    np.testing.assert_array_equal(weights[entry["name"]].ravel(), stored * 2.0 + 1.0)
