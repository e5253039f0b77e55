"""A MobileNetV3-style segmenter: inverted residuals with squeeze-excitation, and a light decoder
that fuses three skip levels. Built only from TFLite built-in ops (conv, depthwise conv, add,
mul, mean, ReLU or hard-swish, bilinear resize), which XNNPACK and the GPU delegate run natively.

ReLU is the default activation rather than MobileNetV3's hard-swish: XNNPACK does not run an int8
HARD_SWISH, so the int8 export of the hard-swish net fell back to slower kernels (2.93 ms against
0.77 ms for the ReLU net, untrained 256 px models, 2 threads;
docs/lab/2026-11-issue-6-mobile-segmenter.md, "Earlier: post-training int8 only (run5)").
"""

from __future__ import annotations

import keras
from keras import layers

from backdrop.models.registry import MOBILE_ACTIVATIONS

# (kernel, expansion, output channels, squeeze-excite, activation, stride) per block, after a
# stride-2 stem: MobileNetV3-Small's recipe, thinned for a 256 px real-time segmenter.
BLOCKS = (
    (3, 16, 16, True, "relu", 2),  # 1/4
    (3, 64, 24, False, "relu", 2),  # 1/8
    (3, 72, 24, False, "relu", 1),
    (5, 96, 40, True, "hard_swish", 2),  # 1/16
    (5, 160, 40, True, "hard_swish", 1),
    (5, 160, 48, True, "hard_swish", 1),
    (5, 192, 64, True, "hard_swish", 2),  # 1/32
    (5, 256, 64, True, "hard_swish", 1),
)


def _activation(x, kind: str, name: str):
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "relu6":  # same layer name as "relu": the weights of both load into either
        return layers.ReLU(6.0, name=f"{name}_relu")(x)
    return layers.Activation("hard_swish", name=f"{name}_hswish")(x)


def _scaled(channels: int, width: float) -> int:
    return max(8, int(channels * width + 4) // 8 * 8)


def _squeeze_excite(x, channels: int, name: str):
    weights = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    weights = layers.Conv2D(max(8, channels // 4), 1, activation="relu", name=f"{name}_reduce")(
        weights
    )
    weights = layers.Conv2D(channels, 1, activation="hard_sigmoid", name=f"{name}_expand")(weights)
    return layers.Multiply(name=f"{name}_scale")([x, weights])


def _inverted_residual(x, kernel, expansion, channels, squeeze, activation, stride, name):
    shortcut = x
    inputs = x.shape[-1]
    if expansion != inputs:
        x = layers.Conv2D(expansion, 1, use_bias=False, name=f"{name}_expand")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_expand_bn")(x)
        x = _activation(x, activation, f"{name}_expand")
    x = layers.DepthwiseConv2D(
        kernel, stride, padding="same", use_bias=False, name=f"{name}_depthwise"
    )(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_depthwise_bn")(x)
    x = _activation(x, activation, f"{name}_depthwise")
    if squeeze:
        x = _squeeze_excite(x, expansion, f"{name}_se")
    x = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_project")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(x)
    if stride == 1 and inputs == channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def decode(x, skips: dict, scale: int, filters: int, activation: str = "relu"):
    """The light decoder: from the encoder's deepest level up to 1/2, adding each skip through a
    1x1 projection, then a person probability at the input's size.

    Args:
        x: The encoder's deepest features, at 1/`scale` of the input.
        skips: `{2: features at 1/2, 4: ..., 8: ..., 16: ...}`, the levels finer than `scale`.
        filters: Channels at 1/2.
        activation: "relu6" caps the decoder's activations, anything else is ReLU.
    """
    decoder_channels = {16: 32, 8: 24, 4: 16, 2: filters}
    decoder_activation = "relu6" if activation == "relu6" else "relu"
    for level in (16, 8, 4, 2):
        if level >= scale:  # the encoder stopped at this level: nothing to fuse from above
            continue
        channels = decoder_channels[level]
        x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"up{level}_project")(x)
        skip = layers.Conv2D(channels, 1, use_bias=False, name=f"skip{level}_project")(skips[level])
        x = layers.Add(name=f"fuse{level}")([x, skip])
        x = layers.BatchNormalization(momentum=0.9, name=f"fuse{level}_bn")(x)
        x = _activation(x, decoder_activation, f"fuse{level}")
        x = layers.DepthwiseConv2D(
            3, padding="same", use_bias=False, name=f"refine{level}_depthwise"
        )(x)
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"refine{level}_pointwise")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"refine{level}_bn")(x)
        x = _activation(x, decoder_activation, f"refine{level}")
    x = layers.Conv2D(1, 1, name="logits")(x)
    x = layers.UpSampling2D(interpolation="bilinear", name="up1")(x)
    return layers.Activation("sigmoid", name="person")(x)


def build_mobile_segmenter(
    input_shape: tuple[int, int] | int = 256,
    filters: int = 16,
    width: float = 1.0,
    activation: str = "relu",
    name: str = "mobile_segmenter",
) -> keras.Model:
    """Builds the mobile person segmenter.

    Args:
        input_shape: Side, or `(height, width)` such as `(144, 256)`; multiples of 16. When a
            side is not a multiple of 32 (144 is not), the last stage keeps 1/16 resolution
            instead of going down to 1/32.
        filters: Channels of the stem (and of the decoder's finest level).
        width: Multiplier on every block's channels.
        activation: "relu" everywhere (fast in int8); "relu6", the same capped at 6, which
            bounds every activation range and so the int8 rounding step; or "hard_swish" for
            MobileNetV3's own mix (hard-swish in the stem and the deeper blocks).

    Returns:
        A model from `(B, H, W, 3)` float32 RGB in [0, 1] to `(B, H, W, 1)` person probability.
    """
    height, width_px = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    if activation not in MOBILE_ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(MOBILE_ACTIVATIONS)}, got {activation!r}"
        )
    if height % 16 or width_px % 16:
        raise ValueError(f"input {height}x{width_px} must be a multiple of 16 on both sides")
    deepest = 32 if height % 32 == 0 and width_px % 32 == 0 else 16
    inputs = keras.Input((height, width_px, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(inputs)
    x = layers.Conv2D(filters, 3, 2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = _activation(x, activation, "stem")
    skips = {2: x}
    scale = 2
    for index, (kernel, expansion, channels, squeeze, block_activation, stride) in enumerate(
        BLOCKS
    ):
        stride = 1 if scale * stride > deepest else stride
        x = _inverted_residual(
            x,
            kernel,
            _scaled(expansion, width),
            _scaled(channels, width),
            squeeze,
            block_activation if activation == "hard_swish" else activation,
            stride,
            f"block{index}",
        )
        scale *= stride
        skips[scale] = x  # the last block at each scale
    outputs = decode(x, skips, scale, filters, activation)
    return keras.Model(inputs, outputs, name=name)
