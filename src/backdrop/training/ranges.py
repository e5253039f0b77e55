"""The int8 ranges of rounded tensors, measured on calibration pictures for the int8 export."""

from __future__ import annotations

import numpy as np

from backdrop.tf_setup import quiet_tensorflow
from backdrop.training.quantize_aware import (
    SIGMOID_INPUT_LIMIT,
    FakeQuant,
    add_fake_quant,
    feeds_sigmoid,
    has_fake_quant,
    own_nodes,
    readers,
    same_layer,
)

quiet_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

# The share of a rounded tensor's calibration values its int8 range leaves out, at each end.
RANGE_TAIL = 1e-4
_SAMPLES_PER_BATCH = 50_000  # values of each tensor a calibration batch adds to its quantiles


def _values_in_batches(model: keras.Model, tensors: list, images: np.ndarray, batch: int = 16):
    """Yields, for each batch of `images`, the values of `tensors` (of `model`'s graph, at
    inference) as one array each."""
    values = keras.Model(model.inputs, tensors)
    for start in range(0, len(images), batch):
        outputs = values([np.asarray(images[start : start + batch])], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        yield [np.asarray(output) for output in outputs]


def limit_sigmoid_inputs(model: keras.Model, images: np.ndarray) -> keras.Model:
    """`model` (shared layers and weights) with every tensor that feeds a sigmoid rounded over
    at most [-8, 8], for its int8 export.

    A rounding layer already there is copied with that limit (its learned range kept, `model`
    left as it was); elsewhere one is added, over the range of the tensor's values on `images`
    (as calibration would set it) within the limit. The converter then takes those ranges and
    calibrates the rest.
    """
    consumers = readers(model)
    targets = {
        id(layer)
        for layer in model.layers
        if feeds_sigmoid(layer, consumers)
        and (
            isinstance(layer, FakeQuant)
            or not any(isinstance(reader, FakeQuant) for reader in consumers[id(layer)])
        )
    }
    added = []

    def call(layer, *args, **kwargs):
        if id(layer) not in targets:
            return layer(*args, **kwargs)
        if isinstance(layer, FakeQuant):
            limited = FakeQuant(layer.momentum, SIGMOID_INPUT_LIMIT, name=layer.name)
            result = limited(args[0])
            limited.set_weights(layer.get_weights())
            return result
        limited = FakeQuant(limit=SIGMOID_INPUT_LIMIT, name=f"{layer.name}_fake_quant")
        added.append((limited, layer))
        return limited(layer(*args, **kwargs))

    limited_model = keras.models.clone_model(model, clone_function=same_layer, call_function=call)
    if added:
        # Each tensor's values in `model`'s own graph: not `layer.output` (the layer's first
        # graph, maybe another model's), nor the new graph (through roundings not set yet).
        produced = {id(node.operation): node.outputs[0] for node in own_nodes(model)}
        tensors = [produced[id(layer)] for _, layer in added]
        lows, highs = np.full(len(added), np.inf), np.full(len(added), -np.inf)
        for outputs in _values_in_batches(model, tensors, images):
            lows = np.minimum(lows, [float(np.min(output)) for output in outputs])
            highs = np.maximum(highs, [float(np.max(output)) for output in outputs])
        for (limited, _), low, high in zip(added, lows, highs, strict=True):
            limited.minimum.assign(low)
            limited.maximum.assign(high)
            limited.seen.assign(1.0)
    return limited_model


def tail_ranges(
    model: keras.Model, tensors: list, images: np.ndarray, tail: float
) -> list[tuple[float, float]]:
    """`(low, high)` of each of `tensors` (of `model`'s graph) on `images`: the `tail` and
    1 - `tail` quantiles of a seeded sample of its values (`_SAMPLES_PER_BATCH` a batch)."""
    rng = np.random.default_rng(0)
    samples = [[] for _ in tensors]
    for outputs in _values_in_batches(model, tensors, images):
        for sample, output in zip(samples, outputs, strict=True):
            flat = output.ravel()
            if flat.size > _SAMPLES_PER_BATCH:
                flat = flat[rng.integers(flat.size, size=_SAMPLES_PER_BATCH)]
            sample.append(flat)
    return [
        tuple(float(value) for value in np.quantile(np.concatenate(sample), [tail, 1.0 - tail]))
        for sample in samples
    ]


def tail_rounded(model: keras.Model, images: np.ndarray, tail: float = RANGE_TAIL) -> keras.Model:
    """A float `model` (shared layers and weights) with rounding layers whose ranges are its
    tensors' float values on `images` less the `tail` share at each end: post-training int8
    without each tensor's extreme values, for the int8 export (`backdrop export
    --int8-range-tail` of a float checkpoint) and as `backdrop fit-int8`'s start. Freezes
    `model`'s batch norm as `add_fake_quant` does.
    """
    if has_fake_quant(model):
        raise ValueError("the model has rounding layers already; clip_ranges measures those")
    if not 0.0 <= tail < 0.5:
        raise ValueError(f"tail must be in [0, 0.5), got {tail}")
    rounded_model = add_fake_quant(model)
    rounded = [node for node in own_nodes(rounded_model) if isinstance(node.operation, FakeQuant)]
    # Measured in the float graph: a rounding not yet set would distort what comes after it.
    produced = {id(node.operation): node.outputs[0] for node in own_nodes(model)}
    tensors = [produced[id(node.input_tensors[0]._keras_history.operation)] for node in rounded]
    for node, (low, high) in zip(rounded, tail_ranges(model, tensors, images, tail), strict=True):
        node.operation.minimum.assign(low)
        node.operation.maximum.assign(high)
        node.operation.seen.assign(1.0)
    return rounded_model


def clip_ranges(model: keras.Model, images: np.ndarray, tail: float = RANGE_TAIL) -> keras.Model:
    """`model` (shared layers and weights) with each `FakeQuant` copied, its range set to the
    values its tensor takes on `images` less the `tail` share at each end, for the int8 export.

    The ranges learned in training follow each batch's extremes: a few values far out set the
    step for all the rest. Left out, the step is finer where nearly every value lies (the
    square model's ranges shrink to a median of 0.84 of their width at 1e-4). Each tensor is
    measured in `model`'s own graph (its roundings as learned) on a seeded sample of its values.
    A model with no `FakeQuant` comes back as it is; `model` is left as it was.
    """
    if not 0.0 <= tail < 0.5:
        raise ValueError(f"tail must be in [0, 0.5), got {tail}")
    rounded = [node for node in own_nodes(model) if isinstance(node.operation, FakeQuant)]
    if not rounded:
        return model
    measured = tail_ranges(model, [node.input_tensors[0] for node in rounded], images, tail)
    ranges = {id(node.operation): limits for node, limits in zip(rounded, measured, strict=True)}

    def call(layer, *args, **kwargs):
        if id(layer) not in ranges:
            return layer(*args, **kwargs)
        clipped = FakeQuant(layer.momentum, layer.limit, name=layer.name)
        result = clipped(args[0])
        clipped.set_weights([np.float32(value) for value in (*ranges[id(layer)], 1.0)])
        return result

    return keras.models.clone_model(model, clone_function=same_layer, call_function=call)
