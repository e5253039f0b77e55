"""Mobile segmenter: square and landscape inputs, built-in TFLite ops only, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.models.mobile_segmenter import build_mobile_segmenter
from backdrop.models.registry import build_model
from tests.models.base import ModelTester


@pytest.mark.parametrize(("shape", "expected"), [(256, (256, 256)), ((144, 256), (144, 256))])
def test_square_and_landscape_inputs(shape, expected):
    model = build_mobile_segmenter(shape)
    output = model.predict(np.random.rand(1, *expected, 3).astype(np.float32), verbose=0)
    assert output.shape == (1, *expected, 1) and 0 <= output.min() and output.max() <= 1
    assert model.count_params() < 300_000, "a mobile model stays small"


def test_registry_builds_it_and_drops_options_it_does_not_take():
    model = build_model("mobile_segmenter", (64, 96), 8, depth=4, width=0.5)
    assert model.output_shape == (None, 64, 96, 1)


def test_width_multiplies_the_encoder_channels():
    narrow, wide = (build_mobile_segmenter(64, 8, width) for width in (1.0, 1.5))
    assert wide.get_layer("block7_project").filters == 96  # 64 x 1.5
    assert narrow.get_layer("block7_project").filters == 64
    assert wide.count_params() > 1.8 * narrow.count_params()


def test_bad_input_size_and_activation():
    with pytest.raises(ValueError, match="multiple of 16"):
        build_mobile_segmenter(100)
    with pytest.raises(ValueError, match="relu, relu6, hard_swish"):
        build_mobile_segmenter(64, activation="swish")


def test_relu6_caps_every_activation_and_keeps_the_weights_layout():
    capped, plain = (build_mobile_segmenter(64, 8, activation=kind) for kind in ("relu6", "relu"))
    relus = [layer for layer in capped.layers if layer.name.endswith("_relu")]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)
    assert [w.shape for w in capped.weights] == [w.shape for w in plain.weights]


@pytest.mark.parametrize(
    ("activation", "shape"),
    # The default (relu) at 64x96 and 48x64 is in TestMobileSegmenter*, from the base tester.
    [("relu6", (64, 64)), ("hard_swish", (64, 64))],
)
def test_exports_with_builtin_ops_only(tmp_path, activation, shape):
    """No custom ops: XNNPACK and the GPU delegate run every op natively. 48x64 is the
    landscape case: a side that is not a multiple of 32 stops the encoder at 1/16."""
    from ai_edge_litert.interpreter import Interpreter

    from backdrop.ship.export import export_tflite

    model = build_mobile_segmenter(shape, width=0.5, activation=activation)
    path = export_tflite(model, tmp_path / "mobile.tflite", "float32")
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "CUSTOM" not in ops and not any(op.startswith("Flex") for op in ops)
    assert {"DEPTHWISE_CONV_2D", "RESIZE_BILINEAR"} <= ops
    # XNNPACK has no int8 hard-swish: the default net must not need one.
    assert ("HARD_SWISH" in ops) == (activation == "hard_swish")
    image = np.random.default_rng(0).random((1, *shape, 3), dtype=np.float32)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], image)
    interpreter.invoke()
    exported = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(exported, model.predict(image, verbose=0), atol=1e-4)


class TestMobileSegmenter(ModelTester):
    model_name = "mobile_segmenter"

    def test_default_export_needs_no_hard_swish(self, tmp_path):
        """XNNPACK has no int8 hard-swish: the default (ReLU) net must not need one."""
        from backdrop.models.tflite_graph import read_tflite
        from backdrop.ship.export import export_tflite

        path = export_tflite(self.build(), tmp_path / "model.tflite", "float32")
        assert "HARD_SWISH" not in read_tflite(path).kinds()


class TestMobileSegmenterLandscape(ModelTester):
    """A side that is not a multiple of 32 stops the encoder at 1/16."""

    model_name = "mobile_segmenter"
    input_shape = (48, 64)
