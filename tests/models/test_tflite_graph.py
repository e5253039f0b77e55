"""The TF-free .tflite reader: operators, folded float16 weights, int8 de-quantization."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np

from backdrop.models.tflite_graph import read_tflite
from backdrop.ship.export import export_tflite


def _conv_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(x))


def test_int8_weights_are_dequantized_per_channel(tmp_path):
    model = _conv_model()
    calibration = [np.random.default_rng(0).random((16, 16, 3), np.float32) for _ in range(4)]
    graph = read_tflite(export_tflite(model, tmp_path / "m.tflite", "int8", calibration))
    first = next(op for op in graph.operators if op.kind == "CONV_2D")
    kernel = graph.constant(first.inputs[1]).transpose(1, 2, 3, 0)
    expected = model.get_layer("conv").kernel.numpy()
    # int8 per-channel: each weight within half a step of its channel's scale.
    step = np.abs(expected).max(axis=(0, 1, 2)) / 127
    assert np.all(np.abs(kernel - expected) <= step / 2 + 1e-6)
    assert first.options["FusedActivationFunction"] == 1  # RELU


def test_float16_weights_are_widened_and_the_reader_needs_no_tensorflow(tmp_path):
    model = _conv_model()
    path = export_tflite(model, tmp_path / "m.tflite", "float16")
    graph = read_tflite(path)
    first = next(op for op in graph.operators if op.kind == "CONV_2D")
    kernel = graph.constant(first.inputs[1]).transpose(1, 2, 3, 0)
    assert kernel.dtype == np.float32
    np.testing.assert_allclose(kernel, model.get_layer("conv").kernel.numpy(), rtol=1e-3, atol=1e-3)
    assert graph.parameter_count() == model.count_params()


def test_identifying_a_weights_file_imports_no_tensorflow(tmp_path):
    """The CLI checks --init-from before any heavy import."""
    path = export_tflite(_conv_model(), tmp_path / "m.tflite", "float32")
    code = (
        "import sys\n"
        "from backdrop.models.pretrained import identify_weights\n"
        "try:\n"
        f"    identify_weights({str(path)!r})\n"
        "except ValueError as error:\n"
        "    print('refused:', error)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and result.stdout.strip().endswith("False False")
