"""Exact graph rewrites for export: a model with the same outputs that runs with less work."""

from __future__ import annotations

import numpy as np

from backdrop.tf_setup import import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from backdrop.models.tflite_layers import DepthToSpace  # noqa: E402
from backdrop.training.quantize_aware import readers  # noqa: E402


def fixed_batch(model: keras.Model) -> keras.Model:
    """The same model with batch fixed to 1 (a dynamic batch makes the converter add shape ops)."""
    inputs = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="image")
    return keras.Model(inputs, model(inputs), name=model.name)


def _pooled_only(
    layer: keras.layers.Layer, consumers: dict[int, list], outputs: set[int]
) -> keras.layers.Layer | None:
    """The global average pool that alone reads `layer`, a channel concatenation that is not a
    model output (`outputs`: the ids of the layers that make them); else None."""
    if not isinstance(layer, keras.layers.Concatenate) or layer.axis not in (-1, 3):
        return None
    if id(layer) in outputs:
        return None
    read_by = consumers[id(layer)]
    if len(read_by) != 1 or not isinstance(read_by[0], keras.layers.GlobalAveragePooling2D):
        return None
    return read_by[0] if read_by[0].data_format == "channels_last" else None


def pool_branches_first(model: keras.Model) -> keras.Model:
    """`model` (shared layers and weights) with every channel concatenation that only a global
    average pool reads pooled branch by branch first, then concatenated: the same values
    exactly (a channel's mean does not depend on its neighbours), without the full-size copy.

    Meet's decoder has three such (its imported `Concatenate` -> `GlobalAveragePooling2D`):
    copying them was the whole of the 2% more instructions an invoke that our Meet-architecture
    export executed against MediaPipe landscape (benchmarks/instruction_count.py,
    docs/lab/2026-11-issue-14-latency.md, "Cost counted, not timed"). Unchanged when there is none.
    """
    consumers = readers(model)
    outputs = {id(tensor._keras_history.operation) for tensor in model.outputs}
    pools = {
        id(layer): pool
        for layer in model.layers
        if (pool := _pooled_only(layer, consumers, outputs))
    }
    if not pools:
        return model
    pooled = set()  # ids of the tensors that are pooled already

    def call(layer, *args, **kwargs):
        if id(layer) in pools:
            branches = [pools[id(layer)](branch) for branch in args[0]]
            result = keras.layers.Concatenate(axis=-1, name=layer.name)(branches)
            pooled.add(id(result))
            return result
        if isinstance(layer, keras.layers.GlobalAveragePooling2D) and id(args[0]) in pooled:
            return args[0]
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


def _patch_stride(layer: keras.layers.Layer) -> int | None:
    """The stride of `layer` if it is a transposed convolution whose patches do not overlap
    (kernel = stride, square, no dilation); else None."""
    if not isinstance(layer, keras.layers.Conv2DTranspose) or layer.data_format != "channels_last":
        return None
    stride = tuple(layer.strides)
    if tuple(layer.kernel_size) != stride or stride[0] != stride[1] or stride[0] < 2:
        return None
    if tuple(layer.dilation_rate) != (1, 1) or layer.output_padding is not None:
        return None
    return stride[0]


def transposed_as_depth_to_space(model: keras.Model) -> keras.Model:
    """`model` (shared layers otherwise) with every transposed convolution whose kernel equals
    its stride made a 1x1 convolution to stride^2 times the channels and a DEPTH_TO_SPACE: the
    same sums (each output pixel is one input pixel times one kernel tap, plus the bias), in an
    ordinary convolution instead of XNNPACK's transposed one.

    The MediaPipe and Meet architectures end in such a layer (16 channels to the 1-channel
    logits, 2x2, stride 2). Rewritten, both recipe models executed 0.664x the instructions of
    the MediaPipe file they answer an invoke, where they had executed 0.998x (benchmarks/README.md,
    "The last layer as DEPTH_TO_SPACE"). Unchanged when there is none.
    """
    if not any(_patch_stride(layer) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        stride = _patch_stride(layer)
        if stride is None:
            return layer(*args, **kwargs)
        kernel, *bias = layer.get_weights()  # kernel: (stride, stride, out, in)
        outputs, inputs = kernel.shape[2], kernel.shape[3]
        pointwise = keras.layers.Conv2D(
            stride * stride * outputs,
            1,
            activation=layer.activation,
            use_bias=layer.use_bias,
            name=f"{layer.name}_pointwise",
        )
        result = pointwise(args[0])
        # Channel (a * stride + b) * out + o of the 1x1 result lands on pixel (a, b) of its
        # patch, channel o: tf.nn.depth_to_space's order.
        flat = kernel.transpose(3, 0, 1, 2).reshape(1, 1, inputs, stride * stride * outputs)
        pointwise.set_weights([flat, *(np.tile(b, stride * stride) for b in bias)])
        return DepthToSpace(stride, name=layer.name)(result)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
