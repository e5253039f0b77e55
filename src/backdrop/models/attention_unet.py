"""Attention U-Net (Oktay et al., 2018): a U-Net whose skip connections pass additive attention gates."""

from __future__ import annotations

import keras
from keras import layers


def _conv_block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        # momentum 0.9: the moving statistics settle within a few hundred steps, so short runs
        # validate with the statistics they trained with.
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def attention_gate(skip, gating, filters: int, name: str):
    """Additive attention gate: weights each skip pixel by how relevant the coarser gating
    signal finds it, `skip * sigmoid(psi(relu(W_x skip + W_g gating)))`.

    Args:
        skip: Encoder features `(B, H, W, C)`.
        gating: Decoder features already upsampled to `(B, H, W, C')`.
        filters: Width of the intermediate projection.
    """
    theta = layers.Conv2D(filters, 1, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(filters, 1, name=f"{name}_phi")(gating)
    joined = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    coefficients = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(joined)
    return layers.Multiply(name=f"{name}_gate")([skip, coefficients])


def build_attention_unet(
    input_shape: tuple[int, int] | int = 256,
    filters: int = 8,
    depth: int = 4,
    name: str = "attention_unet",
) -> keras.Model:
    """Builds an Attention U-Net for person segmentation.

    Args:
        input_shape: Square side, or `(height, width)` such as `(144, 256)`; each must be
            divisible by `2**depth`.
        filters: Filters of the first level; each deeper level doubles them.
        depth: Number of down-sampling steps.

    Returns:
        A model mapping `(B, H, W, 3)` float32 RGB in [0, 1] to `(B, H, W, 1)` float32 person
        probability.
    """
    height, width = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    step = 2**depth
    if height % step or width % step:
        raise ValueError(
            f"input {height}x{width} must be divisible by 2**depth = {step}; "
            f"try {height // step * step or step}x{width // step * step or step}"
        )
    if filters < 1 or depth < 1:
        raise ValueError(f"filters and depth must be >= 1, got {filters} and {depth}")
    inputs = keras.Input((height, width, 3), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = _conv_block(x, filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = _conv_block(x, filters * 2**depth, "bottom")
    for level in reversed(range(depth)):
        level_filters = filters * 2**level
        x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Conv2D(level_filters, 1, name=f"up{level}_project")(x)
        gated = attention_gate(skips[level], x, max(1, level_filters // 2), f"attention{level}")
        x = layers.Concatenate(name=f"up{level}_concat")([gated, x])
        x = _conv_block(x, level_filters, f"decode{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="person")(x)
    return keras.Model(inputs, outputs, name=name)
