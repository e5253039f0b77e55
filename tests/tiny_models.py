"""Tiny .tflite models the runtime tests build (TensorFlow is needed only to build them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_tiny_models(folder: Path) -> dict[str, Path]:
    """A brightness-threshold "segmenter" in several output forms, plus a non-segmentation model.

    Person = bright pixels: the models are untrained but deterministic convolutions whose output
    rises with brightness, which is enough to test the runtime's plumbing.
    """
    import keras

    from backdrop.export import export_tflite

    folder.mkdir(parents=True, exist_ok=True)
    inputs = keras.Input((32, 48, 3))
    brightness = keras.layers.Conv2D(
        1,
        1,
        kernel_initializer=keras.initializers.Constant(4.0),
        bias_initializer=keras.initializers.Constant(-6.0),
    )(inputs)
    probability = keras.layers.Activation("sigmoid")(brightness)
    sigmoid_model = keras.Model(inputs, probability)
    two_channel = keras.Model(
        inputs, keras.layers.Softmax()(keras.layers.Concatenate()([-brightness, brightness]))
    )
    classifier = keras.Model(
        inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    rng = np.random.default_rng(0)
    calibration = [rng.random((32, 48, 3), dtype=np.float32) for _ in range(8)]
    return {
        "float32": export_tflite(sigmoid_model, folder / "tiny_float32.tflite", "float32"),
        "int8": export_tflite(sigmoid_model, folder / "tiny_int8.tflite", "int8", calibration),
        "softmax": export_tflite(two_channel, folder / "tiny_softmax.tflite", "float32"),
        "classifier": export_tflite(classifier, folder / "tiny_classifier.tflite", "float32"),
    }
