"""Public person segmenters (MediaPipe selfie general and landscape, Google Meet full and lite)
rebuilt as Keras models from their `.tflite` files, weights included.

Each TFLite operator becomes the Keras layer that converts back to the same TFLite built-in:
CONV_2D -> Conv2D, DEPTHWISE_CONV_2D -> DepthwiseConv2D, FULLY_CONNECTED on a 1x1 map -> 1x1
Conv2D, AVERAGE_POOL_2D / MEAN over the whole map -> GlobalAveragePooling2D, RESIZE_BILINEAR
(half-pixel centres) -> UpSampling2D, and MediaPipe's custom Convolution2DTransposeBias ->
Conv2DTranspose (a built-in TRANSPOSE_CONV in int8; float exports write its 2x2 stride-2 form
as a 1x1 convolution and DEPTH_TO_SPACE, which imports as `DepthToSpace`). Float16 weights are
widened to float32. The rebuilt model follows Backdrop's model contract: float32 RGB in [0, 1]
in, a 1-channel person probability out (Meet's 2-channel logits become one: softmax(l)[1] =
sigmoid(l1 - l0)). Layers are named after the TFLite tensors they compute, so a user can find
them in both files.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from backdrop.models.pretrained import expected_segmenters, identify_segmenter
from backdrop.models.tflite_graph import TFLiteFormatError, TFLiteGraph, read_tflite
from backdrop.models.tflite_layers import (
    TRANSPOSE_CONV,
    DepthToSpace,
    average,
    convolution,
    depthwise,
    fully_connected,
    fused_activation,
    resize,
    transpose_convolution,
)


def _name(graph: TFLiteGraph, index: int) -> str:
    """A Keras layer name from a TFLite tensor name ('conv2d_3', 'add_5__xeno_compat__1')."""
    name = graph.tensor(index).name.split(";")[0].replace("/", "_").replace(":", "_")
    return name.replace("__xeno_compat__1", "")


EXTRA_BLOCK = "extra_block"  # layer-name prefix of the blocks `extra_blocks` adds
EXTRA_EXPANSION = 4


def _deepest_add(graph: TFLiteGraph) -> int | None:
    """The index of the last ADD at the graph's deepest (smallest) resolution: the end of the
    encoder's last residual stage, where `extra_blocks` go."""
    adds = [(i, op) for i, op in enumerate(graph.operators) if op.kind == "ADD"]
    if not adds:
        return None
    area = lambda op: int(np.prod(graph.tensor(op.outputs[0]).shape[1:3]))  # noqa: E731
    smallest = min(area(op) for _, op in adds)
    return [i for i, op in adds if area(op) == smallest][-1]


def extra_block(x, index: int):
    """One inverted-residual block added to an imported segmenter: a 1x1 expansion by
    `EXTRA_EXPANSION`, hard-swish, a 3x3 depthwise, hard-swish and a 1x1 projection that starts
    at zero, added to `x`: the block starts as the identity, so the model keeps the file's exact
    function until training moves the projection."""
    name = f"{EXTRA_BLOCK}_{index}"
    channels = x.shape[-1]
    y = layers.Conv2D(channels * EXTRA_EXPANSION, 1, name=f"{name}_expand")(x)
    y = layers.Activation("hard_swish", name=f"{name}_expand_hard_swish")(y)
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_depthwise")(y)
    y = layers.Activation("hard_swish", name=f"{name}_depthwise_hard_swish")(y)
    y = layers.Conv2D(channels, 1, kernel_initializer="zeros", name=f"{name}_project")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def is_zero_start(layer_name: str) -> bool:
    """Whether the layer is an extra block's projection, whose start (`extra_block`) is zero."""
    return layer_name.startswith(EXTRA_BLOCK) and layer_name.endswith("_project")


def count_extra_blocks(model: keras.Model) -> int:
    """How many `extra_block`s `model` holds (the `extra_blocks` it was built with)."""
    names = [layer.name for layer in model.layers]
    return sum(1 for name in names if name.startswith(EXTRA_BLOCK) and name.endswith("_add"))


def build_from_graph(
    graph: TFLiteGraph,
    input_shape: tuple[int, int] | None = None,
    person_only: bool = True,
    extra_blocks: int = 0,
) -> keras.Model:
    """The Keras model computing `graph`, at `input_shape` (default: the file's).

    Args:
        graph: A float (or float16-weight) segmenter graph from `read_tflite`.
        input_shape: `(height, width)`; another size than the file's works when every
            down-sampling step divides it (the graph has no fixed-size operators left).
        person_only: Fold a 2-channel logit output into a 1-channel person probability.
        extra_blocks: Inverted-residual blocks (`extra_block`) inserted after the last ADD at
            the deepest resolution: a larger model that starts with the file's exact function.

    Raises:
        TFLiteFormatError: an operator or option the importer does not translate.
    """
    file_shape = graph.tensor(graph.inputs[0]).shape[1:3]
    height, width = input_shape or file_shape
    inputs = keras.Input((height, width, 3), name="image")
    values = {graph.inputs[0]: inputs}
    output = graph.outputs[0]
    two_channel = graph.tensor(output).shape[-1] == 2
    deepen = _deepest_add(graph) if extra_blocks else None
    if extra_blocks and deepen is None:
        raise TFLiteFormatError(f"{graph.path}: no residual ADD to put extra blocks after")
    for position, op in enumerate(graph.operators):
        name = _name(graph, op.outputs[0])
        # The data input: the first one that is not a constant (TRANSPOSE_CONV's is third).
        data = [i for i in op.inputs if i >= 0 and graph.tensor(i).data is None]
        x = values.get(data[0]) if data else None
        if x is None:
            raise TFLiteFormatError(f"{name}: its input is neither a layer nor the image")
        kind = op.kind
        if kind == "CONV_2D":
            y = convolution(graph, op, x, name)
        elif kind == "DEPTHWISE_CONV_2D":
            y = depthwise(graph, op, x, name)
        elif kind == "FULLY_CONNECTED":
            y = fully_connected(graph, op, x, name)
        elif kind in (TRANSPOSE_CONV, "TRANSPOSE_CONV"):
            y = transpose_convolution(graph, op, x, name, person_only and two_channel)
        elif kind in ("AVERAGE_POOL_2D", "MEAN"):
            y = average(x, op, graph, name)
        elif kind == "RESIZE_BILINEAR":
            y = resize(x, graph, op, name)
        elif kind in ("ADD", "MUL", "CONCATENATION"):
            others = [values.get(i) for i in op.inputs]
            if any(v is None for v in others):
                raise TFLiteFormatError(f"{name}: {kind} with a constant operand is not supported")
            if kind == "CONCATENATION" and op.options["Axis"] not in (-1, 3):
                raise TFLiteFormatError(f"{name}: concatenation on axis {op.options['Axis']}")
            merge = {"ADD": layers.Add, "MUL": layers.Multiply, "CONCATENATION": layers.Concatenate}
            y = merge[kind](name=name)(others)
            y = fused_activation(y, op.options["FusedActivationFunction"], name)
        elif kind == "DEPTH_TO_SPACE":
            y = DepthToSpace(op.options["BlockSize"], name=name)(x)
        elif kind in ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH"):
            activation = {
                "RELU": "relu",
                "RELU6": "relu6",
                "LOGISTIC": "sigmoid",
                "HARD_SWISH": "hard_swish",
            }[kind]
            y = layers.Activation(activation, name=name)(x)
        else:
            raise TFLiteFormatError(f"{graph.path}: operator {kind} ({name}) is not supported")
        if position == deepen:
            for index in range(extra_blocks):
                y = extra_block(y, index)
        values[op.outputs[0]] = y
    result = values[output]
    if result.shape[-1] == 1 and not _ends_in_sigmoid(graph):
        result = layers.Activation("sigmoid", name="person")(result)
    elif result.shape[-1] != 1:
        raise TFLiteFormatError(f"{graph.path}: the output has {result.shape[-1]} channels")
    stem = Path(graph.path).stem
    return keras.Model(inputs, result, name=f"imported_{stem}".replace("-", "_"))


def _ends_in_sigmoid(graph: TFLiteGraph) -> bool:
    """Whether the output is a LOGISTIC's, perhaps moved by a DEPTH_TO_SPACE after it (the
    converter puts the sigmoid first in Backdrop's float exports)."""
    producers = {out: op for op in graph.operators for out in op.outputs}
    op = producers.get(graph.outputs[0])
    while op is not None and op.kind == "DEPTH_TO_SPACE":
        op = producers.get(op.inputs[0])
    return op is not None and op.kind == "LOGISTIC"


def import_segmenter(
    path: str | Path,
    input_shape: tuple[int, int] | None = None,
    family: str | None = None,
    extra_blocks: int = 0,
) -> keras.Model:
    """A known public segmenter's `.tflite` as a trainable Keras model (see the module doc).

    Args:
        family: The registered architecture the file must be ("mediapipe_selfie", ...), if any.
        extra_blocks: Identity-starting blocks to add (`build_from_graph`).

    Raises:
        TFLiteFormatError: the file is not one of `KNOWN_SEGMENTERS`, or not of `family` (one
            line, naming what was expected).
    """
    graph = read_tflite(path)
    known = identify_segmenter(graph)
    if family is not None and known.family != family:
        raise TFLiteFormatError(
            f"{path} is the {known.description}, not a {family} model; use --model "
            f"{known.family} (or leave --model out)"
        )
    if input_shape is not None:
        input_shape = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    try:
        return build_from_graph(graph, input_shape, extra_blocks=extra_blocks)
    except (ValueError, LookupError, ArithmeticError) as error:  # the file's shapes and indices
        if isinstance(error, TFLiteFormatError):
            raise
        if input_shape is None or not isinstance(error, ValueError):  # a corrupt file's own graph
            reason = f"{type(error).__name__}: {' '.join(str(error).split())}"
            raise TFLiteFormatError(f"{path} cannot be rebuilt ({reason})") from None
        file_shape = "x".join(map(str, graph.tensor(graph.inputs[0]).shape[1:3]))
        raise TFLiteFormatError(
            f"{path} cannot be rebuilt at input {input_shape[0]}x{input_shape[1]} (its own is "
            f"{file_shape}): each side must divide by every down-sampling step; {error}"
        ) from None


def _build_family(family: str, input_shape, init_from, extra_blocks: int = 0) -> keras.Model:
    if not init_from:
        raise TFLiteFormatError(
            f"the {family} architecture is rebuilt from its .tflite file: pass --init-from with "
            "one of: " + expected_segmenters(family)
        )
    return import_segmenter(init_from, input_shape, family, extra_blocks)


def build_mediapipe_selfie(
    input_shape=None, filters: int = 16, init_from=None, extra_blocks: int = 0
) -> keras.Model:
    """MediaPipe's selfie segmenter (general or landscape), rebuilt from `init_from`, with
    `extra_blocks` identity-starting blocks at its deepest resolution; `filters` is unused (the
    file fixes every width)."""
    return _build_family("mediapipe_selfie", input_shape, init_from, extra_blocks)


def build_meet_segmenter(
    input_shape=None, filters: int = 16, init_from=None, extra_blocks: int = 0
) -> keras.Model:
    """Google Meet's segmenter (full or lite), rebuilt from `init_from`, with `extra_blocks` as
    `build_mediapipe_selfie`'s; `filters` is unused."""
    return _build_family("meet_segmenter", input_shape, init_from, extra_blocks)
