"""Keras model -> TFLite bytes in a named quantization mode (`QuantizationConfig`)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Iterable

import numpy as np

from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from backdrop.ship.graph_rewrites import (  # noqa: E402
    fixed_batch,
    pool_branches_first,
    transposed_as_depth_to_space,
)
from backdrop.training.config import EXPORT_MODES  # noqa: E402
from backdrop.training.quantize_aware import strip_fake_quant  # noqa: E402
from backdrop.training.ranges import limit_sigmoid_inputs  # noqa: E402


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """How a model is quantized on export (MediaPipe Model Maker's `QuantizationConfig` is the
    model): validated on creation, so a typo or a missing calibration set fails before any
    conversion.

    Attributes:
        mode: "float32"; "float16" (weights in float16, float32 in and out); or "int8"
            (full-integer with uint8 input whose scale is exactly 1/255 and zero point 0, so
            camera bytes go straight in, and a uint8 output, probability x 255).
        representative: For int8: `(H, W, 3)` float32 RGB images in [0, 1] to calibrate on.
    """

    mode: str = "float32"
    representative: tuple = ()

    def __post_init__(self):
        if self.mode not in EXPORT_MODES:
            raise ValueError(
                f"unknown export mode {self.mode!r}; valid modes: {', '.join(EXPORT_MODES)}"
            )
        images = tuple(np.asarray(image, np.float32) for image in self.representative)
        if self.mode == "int8" and not images:
            raise ValueError("int8 export needs representative images to calibrate on")
        object.__setattr__(self, "representative", images if self.mode == "int8" else ())

    @classmethod
    def for_float16(cls) -> QuantizationConfig:
        return cls("float16")

    @classmethod
    def for_int8(cls, representative: Iterable[np.ndarray]) -> QuantizationConfig:
        return cls("int8", tuple(representative))


def calibration_images(representative: Iterable[np.ndarray]) -> list[np.ndarray]:
    """`representative` and an all-zeros and an all-ones image, which pin the quantized input's
    range to exactly [0, 1] (scale 1/255, zero point 0)."""
    images = list(representative)
    shape = images[0].shape
    return [*images, np.zeros(shape, np.float32), np.ones(shape, np.float32)]


def convert(
    model: keras.Model,
    mode: str | QuantizationConfig,
    representative: Iterable[np.ndarray] = (),
) -> bytes:
    """Converts a Keras model to TFLite bytes (float modes without the training-time `FakeQuant`
    layers; int8 quantizes the tensors they round over their learned ranges).

    Args:
        mode: A `QuantizationConfig`, or its mode name with `representative` beside it.
    """
    quantization = (
        mode
        if isinstance(mode, QuantizationConfig)
        else QuantizationConfig(mode, tuple(representative) if mode == "int8" else ())
    )
    mode = quantization.mode
    # A quantization-aware model keeps its FakeQuant ops for int8: the converter then quantizes
    # each rounded tensor over the range learned in training, as training rounded it, and
    # calibrates only the rest. Calibrating everything afresh lost 0.0277 validation IoU of
    # MediaPipe's architecture after six rounding epochs, the learned ranges 0.0125; for the
    # mobile segmenter after twenty, 0.0010 against 0.0036 (docs/lab/2026-11-issue-14-int8.md,
    # "int8 of the square model").
    if mode == "int8":
        images = calibration_images(quantization.representative)
        # The logits are rounded over at most [-8, 8], where the sigmoid's int8 output saturates
        # (backdrop.training.quantize_aware): over their own range they lost 0.0076 IoU more.
        source = limit_sigmoid_inputs(model, np.stack(images))
    else:
        # Both exact in float. Not in int8: there the branches' means would be rounded apart,
        # and the rounding ranges learned in training are for the graph as trained (neither
        # measured; the 0.9148 once seen came from rules that read consumers off the layers,
        # where these rewrites add their own: they now read the model's graph, `readers`).
        source = transposed_as_depth_to_space(pool_branches_first(strip_fake_quant(model)))
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch(source))
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":

        def calibration():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    # The converter prints every captured variable of the traced model; keep the console readable.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()
