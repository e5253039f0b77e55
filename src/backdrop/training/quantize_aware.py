"""Quantization-aware fine-tuning: the last epochs of training see int8-rounded activations.

Post-training int8 rounds every tensor between two TFLite ops to 256 levels. A network that
never saw that rounding loses accuracy to it, a little at every layer. `add_fake_quant` puts a
`FakeQuant` layer wherever the int8 graph will hold a quantized tensor: it rounds the values to
8 bits over a moving-average range and passes gradients straight through, so fine-tuning lets
the weights settle where rounding costs little. The int8 export keeps the layers: the converter
quantizes each of those tensors over the range learned here and calibrates only the others.
`clip_ranges` (training/ranges.py) measures those ranges again on calibration pictures, less
each tensor's extreme tails (`backdrop export --int8-range-tail`).
`strip_fake_quant` takes them out again (the weights are shared, nothing is copied) for the
float exports and the float model's own validation IoU.

Where TFLite fuses ops (convolution -> batch norm -> ReLU becomes one op with one output
tensor), only the last output is rounded, as in the int8 graph.

A tensor that feeds a sigmoid (the logits) is rounded over at most [-8, 8], in training and in
every int8 export (`limit_sigmoid_inputs`, training/ranges.py): the sigmoid's int8 output (steps
of 1/256) is 0 below -6.9 and 255/256 above 6.3, so nothing beyond is lost, and the logits' own
range (-232 to 138 in the distilled MediaPipe model) would round them in steps of 1.45. On the
records' validation split that alone took the square model's int8 from 0.9159 to 0.9235, float
0.9273 (docs/lab/2026-11-issue-14-int8.md, "int8: the logits' range").
"""

from __future__ import annotations

from collections import defaultdict

from backdrop.tf_setup import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

SIGMOID_INPUT_LIMIT = 8.0


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


def fake_quant(inputs, low, high):
    """`inputs` rounded to 8 bits over `[low, high]`, gradients straight through inside it.

    Under TensorFlow, `tf.quantization.fake_quant_with_min_max_vars`: the op the TFLite converter
    reads the int8 range from. Elsewhere (JAX), the same arithmetic in Keras ops: the range
    nudged so that 0 is a level, values clipped to it and rounded half up, the gradient 1
    inside the range and 0 outside.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.quantization.fake_quant_with_min_max_vars(inputs, low, high, num_bits=8)
    return fake_quant_ops(inputs, low, high)


def fake_quant_ops(inputs, low, high):
    """`fake_quant` in Keras ops, for every backend (tests compare it with TensorFlow's op)."""
    scale = (high - low) / 255.0
    zero = ops.floor(ops.clip(-low / scale, 0.0, 255.0) + 0.5)
    low, high = -zero * scale, (255.0 - zero) * scale
    clipped = ops.clip(inputs, low, high)
    rounded = ops.floor((clipped - low) / scale + 0.5) * scale + low
    return clipped + ops.stop_gradient(rounded - clipped)


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
        return fake_quant(inputs, low, high)

    def rounding_range(self):
        """The range the tensor is rounded over: the stored one, bounded (`bounded_range`)."""
        return bounded_range(
            ops.stop_gradient(self.minimum), ops.stop_gradient(self.maximum), self.limit
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "limit": self.limit}


def own_nodes(model: keras.Model):
    """The nodes (layer calls) of `model`'s own graph. A layer's `_inbound_nodes` and
    `_outbound_nodes` also hold every other graph that calls it: a graph rewrite or a second
    `add_fake_quant` shares the layers, and what is read from those lists would then describe
    calls this model does not make."""
    return (node for nodes in model._nodes_by_depth.values() for node in nodes)


def readers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    """The layers that read each layer's output in `model`, keyed by the id of the layer read,
    from the model's own graph (`own_nodes`)."""
    found = defaultdict(list)
    for node in own_nodes(model):
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


def same_layer(layer):
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
    return keras.models.clone_model(model, clone_function=same_layer, call_function=call)


def strip_fake_quant(model: keras.Model) -> keras.Model:
    """`model` without its `FakeQuant` layers (shared weights); unchanged if it has none."""
    if not has_fake_quant(model):
        return model

    def call(layer, *args, **kwargs):
        if isinstance(layer, FakeQuant):
            return args[0]
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=same_layer, call_function=call)
