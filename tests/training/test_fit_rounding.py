"""`backdrop fit-int8`: rounding fitted to the float model's own output, kernels held."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from backdrop.cli import main
from backdrop.models.mobile_segmenter import build_mobile_segmenter
from backdrop.training.checkpoints import load_checkpoint
from backdrop.training.fit_rounding import fit_rounding, mask_agreement
from backdrop.training.quantize_aware import FakeQuant, add_fake_quant, strip_fake_quant
from tests.training.test_loop import synthetic_records  # noqa: F401 (fixture)


def _model_and_pictures(seed: int = 0):
    """Three small channels (0 to 0.1) beside one that reaches 60, rounded over one range
    (steps of 0.24): the small ones, which the person logits read, all round to 0, a shift the
    logits' bias can take back; the large one barely matters."""
    inputs = keras.Input((16, 16, 3))
    wide = keras.layers.Conv2D(4, 1, activation="relu", name="wide")
    logits = keras.layers.Conv2D(1, 3, padding="same", name="logits")
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(logits(wide(inputs))))
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, 0, 0] = 60.0
    kernel[0, 0, :, 1:] = 0.1 * np.eye(3)
    wide.set_weights([kernel, np.zeros(4, np.float32)])
    spatial = np.full((3, 3, 4, 1), 10.0 / 3, np.float32)
    spatial[:, :, 0] = 0.001
    logits.set_weights([spatial, np.array([-4.5], np.float32)])
    pictures = np.random.default_rng(seed).random((48, 16, 16, 3), dtype=np.float32)
    return model, pictures


def _batches(pictures: np.ndarray, size: int = 8):
    for start in range(0, len(pictures), size):
        yield pictures[start : start + size], None


def _gap(model: keras.Model, rounded: keras.Model, pictures: np.ndarray) -> float:
    """Mean |rounded - float| person probability."""
    return float(np.mean(np.abs(rounded(pictures).numpy() - model(pictures).numpy())))


def test_fitting_brings_the_rounded_model_closer_to_the_float_one_and_holds_the_kernels():
    model, pictures = _model_and_pictures()
    before = [weight.numpy().copy() for weight in model.weights]
    batches = list(_batches(pictures))
    rates = {"range_rate": 0.02, "bias_rate": 0.01, "progress": False}
    # A black picture among the calibration ones: the logits' range reaches down to where
    # the rounded model's logits are, so gradients reach the biases from the first step.
    calibration = np.concatenate([np.zeros_like(pictures[:1]), pictures[:15]])
    barely = fit_rounding(model, batches, 1, calibration, 1, **rates)
    fitted = fit_rounding(model, batches, 6, calibration, 10, **rates)
    for weight, kept in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), kept)  # `model` is left as it was
    assert _gap(model, fitted, pictures) < 0.5 * _gap(model, barely, pictures)  # 0.15, 0.46
    rounding = [layer for layer in fitted.layers if isinstance(layer, FakeQuant)]
    assert len(rounding) == 2 and all(layer.seen.numpy() == 1.0 for layer in rounding)
    for layer in ("wide", "logits"):
        np.testing.assert_array_equal(
            strip_fake_quant(fitted).get_layer(layer).kernel.numpy(),
            model.get_layer(layer).kernel.numpy(),
        )
    assert any(
        not np.array_equal(fitted.get_layer(name).bias.numpy(), model.get_layer(name).bias.numpy())
        for name in ("wide", "logits")
    ), "the biases are fitted"
    assert mask_agreement(model, model, pictures) == 1.0


def test_fitting_refuses_a_checkpoint_of_rounding_epochs():
    model, pictures = _model_and_pictures()
    with pytest.raises(ValueError, match="float checkpoint"):
        fit_rounding(add_fake_quant(model), _batches(pictures), 1, pictures[:8], progress=False)


def test_fit_int8_command_writes_a_checkpoint_that_exports_to_int8(
    synthetic_records,  # noqa: F811 (the fixture)
    tmp_path,
):
    keras.utils.set_random_seed(0)
    float_path = tmp_path / "float.keras"
    build_mobile_segmenter(64, 8, width=0.5).save(float_path)
    fitted_path = tmp_path / "int8" / "fitted.keras"
    arguments = ["fit-int8", str(float_path), "-r", str(synthetic_records), "-o", str(fitted_path)]
    assert main([*arguments, "--passes", "1", "-q"]) == 0
    fitted = load_checkpoint(fitted_path)
    assert any(isinstance(layer, FakeQuant) for layer in fitted.layers)
    folder = tmp_path / "export"
    export = ["export", str(fitted_path), "-r", str(synthetic_records), "--modes", "int8"]
    assert main([*export, "-o", str(folder)]) == 0
    contract = json.loads((folder / "model_int8.tflite.json").read_text())
    assert contract["checkpoint"] == str(fitted_path)
    assert 0 <= contract["validation_iou_exported"] <= 1
    assert main(["fit-int8", str(fitted_path), "-r", str(synthetic_records), "-o", "x.keras"]) == 1
    assert main([*arguments[:-1], str(tmp_path / "not_keras.h5")]) == 1
    assert not Path("x.keras").exists()
