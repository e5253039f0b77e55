"""`backdrop fit-int8`: int8 rounding fitted to the float model itself, its kernels held.

The rounding epochs (`backdrop train --quantize-aware-epochs`) train every weight with int8
rounding simulated, on the training labels: the weights move, and the int8 file then differs
from the float model it started from more by that move than by the rounding. On the square
recipe model, the rounding checkpoint's own float weights lose 0.0104 / 0.0267 IoU on the
portrait / DAVIS validation sets against the float model, its int8 file 0.0119 / 0.0304
(docs/lab/2026-11-issue-14-int8.md, "int8: fitted to the float model").

Here no kernel moves. A copy of the float model gets rounding layers (`add_fake_quant`), each
range starting at its tensor's float values less the extreme `RANGE_TAIL` at each end; then only
the biases (and batch norm offsets) and a scale on each end of each range are fitted, so that the
rounded model's person probability matches the float model's own on the training pictures
(binary cross-entropy against the float probability: no labels, nothing to drift towards).
Biases absorb the mean shift rounding puts into each layer; a range end moves only where its
clipping costs the output (TensorFlow's fake-quant gradient reaches the ends from the clipped
values alone). On the recipe's square model the whole gain over the rounding epochs is the
start (`tail_rounded`: the float weights, each range at the tails of its values); the fit
itself adds nothing the validation sets resolve (same section).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from backdrop.tf_setup import import_tensorflow
from backdrop.training.config import FIT_INT8_PASSES
from backdrop.training.quantize_aware import (
    FakeQuant,
    bounded_range,
    has_fake_quant,
    own_nodes,
    same_layer,
)
from backdrop.training.ranges import RANGE_TAIL, tail_rounded

tf = import_tensorflow()
import keras  # noqa: E402
from keras import layers  # noqa: E402

BIAS_LEARNING_RATE = 1e-4
RANGE_LEARNING_RATE = 1e-3  # of each range end's scale (1 = where it started)


class _FittedRange(keras.layers.Layer):
    """Rounds to 8 bits over a range whose two ends are fitted, as a scale of where each started
    (gradients reach the ends through TensorFlow's fake-quant op); the `FakeQuant` it stands in
    for gets the result."""

    def __init__(self, low: float, high: float, limit: float | None, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.limit = low, high, limit

    def build(self, input_shape):
        self.low_scale = self.add_weight(shape=(), initializer="ones", name="low_scale")
        self.high_scale = self.add_weight(shape=(), initializer="ones", name="high_scale")

    def rounding_range(self):
        return bounded_range(self.low * self.low_scale, self.high * self.high_scale, self.limit)

    def call(self, inputs):
        low, high = self.rounding_range()
        return tf.quantization.fake_quant_with_min_max_vars(inputs, low, high, num_bits=8)


def _offsets(model: keras.Model) -> list:
    """The variables fitted besides the ranges: each convolution's bias, each batch norm's
    offset."""
    found = []
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization) and layer.center:
            found.append(layer.beta)
        elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Conv2DTranspose)):
                found.append(layer.bias)
    return found


def mask_agreement(first: keras.Model, second: keras.Model, images: np.ndarray) -> float:
    """Mean over `images` of the IoU of the two models' person masks (at 0.5); 1 when both are
    empty."""
    from backdrop.evaluation.metrics import THRESHOLD, iou

    scores = []
    for start in range(0, len(images), 25):
        batch = images[start : start + 25]
        masks = [
            np.asarray(model(batch, training=False))[..., 0] >= THRESHOLD
            for model in (first, second)
        ]
        scores += [iou(a, b, np.ones(a.shape, bool)) for a, b in zip(*masks, strict=True)]
    return float(np.mean(scores))


def fit_rounding(
    model: keras.Model,
    batches: Iterable,
    steps: int,
    calibration: np.ndarray,
    passes: int = FIT_INT8_PASSES,
    progress: bool = True,
    range_rate: float = RANGE_LEARNING_RATE,
    bias_rate: float = BIAS_LEARNING_RATE,
) -> keras.Model:
    """A rounding checkpoint of `model` whose biases and int8 ranges are fitted to `model`'s own
    probability; its kernels are `model`'s. `model` is left as it was.

    Args:
        model: A float model (no rounding layers).
        batches: `(images, anything)` batches of training pictures in [0, 1], iterated again
            when they run out; `steps` of them are one pass.
        calibration: `(N, H, W, 3)` pictures in [0, 1] where the ranges start.
        range_rate, bias_rate: Adam's learning rates for the ranges' scales and the biases.

    Returns:
        A model with `FakeQuant` layers (ranges set) that `backdrop export --modes int8`
        converts with those ranges.
    """
    if has_fake_quant(model):
        raise ValueError(
            "fit-int8 starts from a float checkpoint; this one has rounding layers already "
            "(a --quantize-aware-epochs run): give the checkpoint that run started from"
        )
    if passes < 1 or steps < 1:
        raise ValueError(f"passes and steps must be at least 1, got {passes} and {steps}")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    rounded_model = tail_rounded(copy, calibration, RANGE_TAIL)  # where each range starts
    rounded = [node for node in own_nodes(rounded_model) if isinstance(node.operation, FakeQuant)]
    fitted = {
        id(node.operation): _FittedRange(
            float(node.operation.minimum.numpy()),
            float(node.operation.maximum.numpy()),
            node.operation.limit,
            name=f"{node.operation.name}_fitted",
        )
        for node in rounded
    }

    def call(layer, *args, **kwargs):
        if id(layer) not in fitted:
            return layer(*args, **kwargs)
        return fitted[id(layer)](args[0])

    trainee = keras.models.clone_model(rounded_model, clone_function=same_layer, call_function=call)
    scales = [v for fit in fitted.values() for v in (fit.low_scale, fit.high_scale)]
    offsets = _offsets(copy)
    range_optimizer = keras.optimizers.Adam(range_rate)
    offset_optimizer = keras.optimizers.Adam(bias_rate)

    @tf.function
    def step(images):
        target = model(images, training=False)
        with tf.GradientTape() as tape:
            rounded_probability = trainee(images, training=False)
            loss = tf.reduce_mean(keras.losses.binary_crossentropy(target, rounded_probability))
        gradients = tape.gradient(loss, scales + offsets)
        range_optimizer.apply_gradients(zip(gradients[: len(scales)], scales, strict=True))
        offset_optimizer.apply_gradients(zip(gradients[len(scales) :], offsets, strict=True))
        return loss

    pictures = iter(batches)
    for number in range(passes):
        bar = tqdm(range(steps), desc=f"fit-int8 pass {number + 1}/{passes}", disable=not progress)
        for _ in bar:
            try:
                images, _ = next(pictures)
            except StopIteration:  # a dataset that does not repeat: go round again
                pictures = iter(batches)
                images, _ = next(pictures)
            bar.set_postfix(loss=f"{float(step(images)):.4f}")
    for node in rounded:
        layer = node.operation
        low, high = (float(value) for value in fitted[id(layer)].rounding_range())
        layer.minimum.assign(low)
        layer.maximum.assign(high)
        layer.seen.assign(1.0)
    return rounded_model
