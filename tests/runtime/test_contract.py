"""A model's contract: the sha256 it names, and a contract that is not one, in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.runtime import Segmenter
from backdrop.runtime.contract import ModelFileError, check_model_file, read_contract, sha256_of


def test_a_model_is_checked_against_the_sha256_its_contract_names(tiny_models, tmp_path):
    model = tmp_path / "m.tflite"
    data = tiny_models["float32"].read_bytes()
    model.write_bytes(data)
    assert read_contract(model) is None and check_model_file(model) is None  # none: taken as is
    (tmp_path / "m.tflite.json").write_text(json.dumps({"sha256": sha256_of(data)}))
    assert check_model_file(model)["sha256"] == sha256_of(data)
    Segmenter(model)(np.zeros((20, 20, 3), np.uint8))
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit
    with pytest.raises(ModelFileError, match="m.tflite is not the model its contract"):
        Segmenter(model)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.just("[" * 100_000 + "]" * 100_000),
        st.recursive(st.none() | st.integers() | st.text(max_size=5), st.lists).map(json.dumps),
    )
)
def test_a_contract_that_is_not_one_is_one_line_naming_it(tmp_path, tiny_models, text):
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_models["float32"].read_bytes())
    (tmp_path / "m.tflite.json").write_text(text)
    try:
        check_model_file(model)
    except ModelFileError as error:
        assert "m.tflite" in str(error) and "\n" not in str(error)
