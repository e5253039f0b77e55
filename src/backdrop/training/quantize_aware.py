"""Quantization-aware fine-tuning: the last epochs of training see int8-rounded activations.

Post-training int8 rounds every tensor between two TFLite ops to 256 levels. A network that
never saw that rounding loses accuracy to it, a little at every layer. `add_fake_quant` puts a
`FakeQuant` layer wherever the int8 graph will hold a quantized tensor: it rounds the values to
8 bits over a moving-average range and passes gradients straight through, so fine-tuning lets
the weights settle where rounding costs little. The int8 export keeps the layers: the converter
quantizes each of those tensors over the range learned here and calibrates only the others.
`clip_ranges` measures those ranges again on calibration pictures, less each tensor's extreme
tails (`backdrop export --int8-range-tail`).
`strip_fake_quant` takes them out again (the weights are shared, nothing is copied) for the
float exports and the float model's own validation IoU.

Where TFLite fuses ops (convolution -> batch norm -> ReLU becomes one op with one output
tensor), only the last output is rounded, as in the int8 graph.

A tensor that feeds a sigmoid (the logits) is rounded over at most [-8, 8], in training and in
every int8 export (`limit_sigmoid_inputs`): the sigmoid's int8 output (steps of 1/256) is 0 below
-6.9 and 255/256 above 6.3, so nothing beyond is lost, and the logits' own range (-232 to 138 in
the distilled MediaPipe model) would round them in steps of 1.45. On the records' validation
split that alone took the square model's int8 from 0.9159 to 0.9235, float 0.9273
(docs/lab/2026-11-issue-14-int8.md, "int8: the logits' range").
"""

from __future__ import annotations

from collections import defaultdict

from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

SIGMOID_INPUT_LIMIT = 8.0
# The share of a rounded tensor's calibration values its int8 range leaves out, at each end.
RANGE_TAIL = 1e-4
_SAMPLES_PER_BATCH = 50_000  # values of each tensor a calibration batch adds to its quantiles


def _is_fused_relu(layer: keras.layers.Layer) -> bool:
    """A ReLU or ReLU6 the converter fuses into the op before it, as a layer of its own (the
    mobile segmenter's) or an `Activation` (what the public models' importer writes)."""
    if isinstance(layer, layers.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0 and layer.max_value in (None, 6)
    if isinstance(layer, layers.Activation):
        return getattr(layer.activation, "__name__", None) in ("relu", "relu6")
    return False


def _is_batch_norm_or_fused_relu(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, layers.BatchNormalization) or _is_fused_relu(layer)


# (producers, consumer test) pairs whose tensor between them TFLite never materialises.
_FUSED = (
    ((layers.Conv2D, layers.DepthwiseConv2D), _is_batch_norm_or_fused_relu),
    ((layers.BatchNormalization, layers.Add), _is_fused_relu),
)


def bounded_range(low, high, limit: float | None):
    """`(low, high)` as int8 rounds over it: with 0 in it (TFLite's asymmetric int8), within
    [-limit, limit] if there is a limit, at least 1e-3 wide."""
    low = ops.minimum(low, 0.0)
    if limit is not None:
        low = ops.maximum(low, -limit)
        high = ops.minimum(high, limit)
    return low, ops.maximum(high, low + 1e-3)


@keras.saving.register_keras_serializable(package="backdrop")
class FakeQuant(keras.layers.Layer):
    """Rounds a tensor to 8 bits over its moving-average range; gradients pass straight through.

    The range follows each training batch's minimum and maximum with `momentum` (the first
    batch sets it) and always includes 0, as TFLite's asymmetric int8 does. At inference the
    stored range is used. With a `limit`, the range used never reaches beyond [-limit, limit].
    """

    def __init__(self, momentum: float = 0.99, limit: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        self.momentum = momentum
        self.limit = limit

    def build(self, input_shape):
        def state(name):
            return self.add_weight(
                shape=(), initializer="zeros", trainable=False, name=name, aggregation="mean"
            )

        self.minimum, self.maximum, self.seen = state("minimum"), state("maximum"), state("seen")

    def call(self, inputs, training=False):
        if training:
            first = ops.cast(self.seen < 0.5, inputs.dtype)
            keep = self.momentum * (1.0 - first)
            self.minimum.assign(keep * self.minimum + (1.0 - keep) * ops.min(inputs))
            self.maximum.assign(keep * self.maximum + (1.0 - keep) * ops.max(inputs))
            self.seen.assign(1.0)
        low, high = self.rounding_range()
        return tf.quantization.fake_quant_with_min_max_vars(inputs, low, high, num_bits=8)

    def rounding_range(self):
        """The range the tensor is rounded over: the stored one, bounded (`bounded_range`)."""
        return bounded_range(
            ops.stop_gradient(self.minimum), ops.stop_gradient(self.maximum), self.limit
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "limit": self.limit}


def _own_nodes(model: keras.Model):
    """The nodes (layer calls) of `model`'s own graph. A layer's `_inbound_nodes` and
    `_outbound_nodes` also hold every other graph that calls it: a graph rewrite or a second
    `add_fake_quant` shares the layers, and what is read from those lists would then describe
    calls this model does not make."""
    return (node for nodes in model._nodes_by_depth.values() for node in nodes)


def readers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    """The layers that read each layer's output in `model`, keyed by the id of the layer read,
    from the model's own graph (`_own_nodes`)."""
    found = defaultdict(list)
    for node in _own_nodes(model):
        for parent in node.parent_nodes:
            found[id(parent.operation)].append(node.operation)
    return found


def _rounds_output(
    layer: keras.layers.Layer, consumers: dict[int, list], outputs: set[int]
) -> bool:
    """Whether the int8 graph holds `layer`'s output as a quantized tensor.

    `consumers` is the model's `readers`, `outputs` the ids of the layers that produce the
    model's outputs.
    """
    if isinstance(layer, (keras.layers.InputLayer, FakeQuant)) or id(layer) in outputs:
        return False  # the input is uint8 already; the output's scale is fixed (1/256)
    read_by = consumers[id(layer)]
    if len(read_by) == 1:
        for producers, fused in _FUSED:
            if isinstance(layer, producers) and fused(read_by[0]):
                return False
    return True


def feeds_sigmoid(layer: keras.layers.Layer, consumers: dict[int, list]) -> bool:
    """Whether `layer`'s output reaches nothing but a sigmoid, directly or through upsampling
    or rounding (ops that keep the sigmoid's input range); `consumers`: the model's `readers`."""
    read_by = consumers[id(layer)]
    if len(read_by) != 1:
        return False
    consumer = read_by[0]
    if isinstance(consumer, (layers.UpSampling2D, FakeQuant)):
        return feeds_sigmoid(consumer, consumers)
    return isinstance(consumer, layers.Activation) and (
        getattr(consumer.activation, "__name__", None) == "sigmoid"
    )


def has_fake_quant(model: keras.Model) -> bool:
    return any(isinstance(layer, FakeQuant) for layer in model.layers)


def _same_layer(layer):
    return layer


def add_fake_quant(model: keras.Model, momentum: float = 0.99) -> keras.Model:
    """The same functional model (shared layers and weights) with int8 rounding simulated.

    Freezes `model`'s batch norm layers (inference statistics, no updates), because TFLite
    folds them into the convolutions: training then rounds the same tensors the int8 graph
    will. The result has fewer trainable variables than `model` had, so it needs an optimizer
    of its own.
    """
    consumers = readers(model)
    outputs = {id(tensor._keras_history.operation) for tensor in model.outputs}
    rounded = {id(layer) for layer in model.layers if _rounds_output(layer, consumers, outputs)}
    logits = {id(layer) for layer in model.layers if feeds_sigmoid(layer, consumers)}

    def call(layer, *args, **kwargs):
        result = layer(*args, **kwargs)
        if id(layer) in rounded:
            limit = SIGMOID_INPUT_LIMIT if id(layer) in logits else None
            result = FakeQuant(momentum, limit, name=f"{layer.name}_fake_quant")(result)
        return result

    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return keras.models.clone_model(model, clone_function=_same_layer, call_function=call)


def strip_fake_quant(model: keras.Model) -> keras.Model:
    """`model` without its `FakeQuant` layers (shared weights); unchanged if it has none."""
    if not has_fake_quant(model):
        return model

    def call(layer, *args, **kwargs):
        if isinstance(layer, FakeQuant):
            return args[0]
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=_same_layer, call_function=call)


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

    limited_model = keras.models.clone_model(model, clone_function=_same_layer, call_function=call)
    if added:
        # Each tensor's values in `model`'s own graph: not `layer.output` (the layer's first
        # graph, maybe another model's), nor the new graph (through roundings not set yet).
        produced = {id(node.operation): node.outputs[0] for node in _own_nodes(model)}
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
    rounded = [node for node in _own_nodes(rounded_model) if isinstance(node.operation, FakeQuant)]
    # Measured in the float graph: a rounding not yet set would distort what comes after it.
    produced = {id(node.operation): node.outputs[0] for node in _own_nodes(model)}
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
    rounded = [node for node in _own_nodes(model) if isinstance(node.operation, FakeQuant)]
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

    return keras.models.clone_model(model, clone_function=_same_layer, call_function=call)
