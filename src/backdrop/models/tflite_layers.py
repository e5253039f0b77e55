"""Keras layers for TFLite operators, each the one that converts back to the same built-in, its
weights set from the graph's constants."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from backdrop.models.tflite_graph import FUSED_ACTIVATIONS, PADDINGS, Operator, TFLiteFormatError

TRANSPOSE_CONV = "CUSTOM:Convolution2DTransposeBias"


@keras.saving.register_keras_serializable(package="backdrop")
class DepthToSpace(keras.layers.Layer):
    """TFLite's DEPTH_TO_SPACE: each pixel's `block` x `block` x C channels laid out as a
    `block` x `block` patch of C channels (`tf.nn.depth_to_space`, which converts back to it).
    Backdrop's float exports end in one
    (`backdrop.ship.graph_rewrites.transposed_as_depth_to_space`)."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, inputs):
        if keras.backend.backend() == "tensorflow":  # the op the converter keeps as one
            import tensorflow as tf

            return tf.nn.depth_to_space(inputs, self.block)
        return depth_to_space_ops(inputs, self.block)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda size: None if size is None else size * self.block  # noqa: E731
        return (batch, grow(height), grow(width), channels // self.block**2)

    def get_config(self):
        return {**super().get_config(), "block": self.block}


def depth_to_space_ops(inputs, block: int):
    """`tf.nn.depth_to_space` (NHWC) in Keras ops, for every backend: each pixel's channels, in
    (row, column, channel) order, laid out as a `block` x `block` patch."""
    _, height, width, channels = inputs.shape
    kept = channels // block**2
    patches = keras.ops.reshape(inputs, (-1, height, width, block, block, kept))
    patches = keras.ops.transpose(patches, (0, 1, 3, 2, 4, 5))
    return keras.ops.reshape(patches, (-1, height * block, width * block, kept))


def fused_activation(x, fused: int, name: str):
    kind = FUSED_ACTIVATIONS.get(fused, "unknown")
    if kind == "unknown":
        raise TFLiteFormatError(f"fused activation {fused} of {name} is not supported")
    return x if kind is None else layers.Activation(kind, name=f"{name}_{kind}")(x)


def convolution(graph, op: Operator, x, name: str):
    kernel = graph.constant(op.inputs[1])  # (out, kh, kw, in)
    bias = graph.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    o = op.options
    layer = layers.Conv2D(
        kernel.shape[0],
        kernel.shape[1:3],
        strides=(o["StrideH"], o["StrideW"]),
        padding=PADDINGS[o["Padding"]],
        dilation_rate=(o["DilationHFactor"], o["DilationWFactor"]),
        use_bias=bias is not None,
        name=name,
    )
    y = layer(x)
    layer.set_weights([kernel.transpose(1, 2, 3, 0)] + ([bias] if bias is not None else []))
    return fused_activation(y, o["FusedActivationFunction"], name)


def depthwise(graph, op: Operator, x, name: str):
    kernel = graph.constant(op.inputs[1])  # (1, kh, kw, channels * multiplier)
    bias = graph.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    o = op.options
    channels = x.shape[-1]
    multiplier = kernel.shape[-1] // channels
    layer = layers.DepthwiseConv2D(
        kernel.shape[1:3],
        strides=(o["StrideH"], o["StrideW"]),
        padding=PADDINGS[o["Padding"]],
        depth_multiplier=multiplier,
        dilation_rate=(o["DilationHFactor"], o["DilationWFactor"]),
        use_bias=bias is not None,
        name=name,
    )
    y = layer(x)
    weights = [kernel.reshape(*kernel.shape[1:3], channels, multiplier)]
    layer.set_weights(weights + ([bias] if bias is not None else []))
    return fused_activation(y, o["FusedActivationFunction"], name)


def fully_connected(graph, op: Operator, x, name: str):
    if len(x.shape) != 4 or tuple(x.shape[1:3]) != (1, 1):
        raise TFLiteFormatError(f"{name}: FULLY_CONNECTED is supported on pooled 1x1 maps only")
    weights = graph.constant(op.inputs[1])  # (out, in)
    bias = graph.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    layer = layers.Conv2D(weights.shape[0], 1, use_bias=bias is not None, name=name)
    y = layer(x)
    layer.set_weights([weights.T[None, None]] + ([bias] if bias is not None else []))
    return fused_activation(y, op.options["FusedActivationFunction"], name)


def transpose_convolution(graph, op: Operator, x, name: str, person_only: bool):
    """MediaPipe's Convolution2DTransposeBias (inputs: data, kernel, bias; custom options:
    padding, stride w, stride h as int32), or the built-in TRANSPOSE_CONV (inputs: output shape,
    kernel, data, bias), as a Keras transposed convolution, which exports as the built-in.
    `person_only` folds a 2-channel logit output into the person-minus-background logit."""
    if op.kind == TRANSPOSE_CONV:
        padding, stride_w, stride_h = np.frombuffer(op.options["custom"][:12], np.int32)
        padding = "same" if padding == 1 else "valid"
        kernel, bias = graph.constant(op.inputs[1]), graph.constant(op.inputs[2])
    else:
        o = op.options
        padding, stride_w, stride_h = PADDINGS[o["Padding"]], o["StrideW"], o["StrideH"]
        kernel = graph.constant(op.inputs[1])
        has_bias = len(op.inputs) > 3 and op.inputs[3] >= 0
        bias = graph.constant(op.inputs[3]) if has_bias else np.zeros(kernel.shape[0], np.float32)
    if person_only:
        kernel, bias = kernel[1:2] - kernel[0:1], bias[1:2] - bias[0:1]
    layer = layers.Conv2DTranspose(
        kernel.shape[0],
        kernel.shape[1:3],
        strides=(int(stride_h), int(stride_w)),
        padding=padding,
        name=name,
    )
    y = layer(x)
    layer.set_weights([kernel.transpose(1, 2, 0, 3), bias])  # Keras: (kh, kw, out, in)
    fused = op.options.get("FusedActivationFunction", 0)
    return fused_activation(y, fused, name)


def average(x, op: Operator, graph, name: str):
    if op.kind == "MEAN":
        axes = tuple(int(a) for a in np.ravel(graph.constant(op.inputs[1])))
        if sorted(axes) != [1, 2]:
            raise TFLiteFormatError(f"{name}: MEAN over axes {axes} is not supported")
    elif graph.tensor(op.inputs[0]).shape[1:3] != (
        op.options["FilterHeight"],
        op.options["FilterWidth"],
    ):  # the file's own shapes: pooling over its whole map pools the whole map at any size
        raise TFLiteFormatError(f"{name}: only average pooling over the whole map is supported")
    # Global, so the rebuilt model also runs at another input size.
    return layers.GlobalAveragePooling2D(keepdims=True, name=name)(x)


def resize(x, graph, op: Operator, name: str):
    if op.options["AlignCorners"] or not op.options["HalfPixelCenters"]:
        raise TFLiteFormatError(f"{name}: only half-pixel-centre bilinear resizes are supported")
    source = graph.tensor(op.inputs[0]).shape[1:3]
    target = graph.tensor(op.outputs[0]).shape[1:3]
    if target[0] % source[0] or target[1] % source[1]:
        raise TFLiteFormatError(f"{name}: resize by a non-integer factor is not supported")
    size = (target[0] // source[0], target[1] // source[1])
    return layers.UpSampling2D(size, interpolation="bilinear", name=name)(x)
