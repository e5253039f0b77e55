"""Tiny .tflite models for the runtime tests, carried in tests/runtime/tiny so those tests need
no TensorFlow; TensorFlow is needed only to rebuild them: `python -m tests.tiny_models`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = Path(__file__).resolve().parent / "runtime" / "tiny"
TINY_MODELS = {
    "float32": "tiny_float32.tflite",
    "int8": "tiny_int8.tflite",
    "softmax": "tiny_softmax.tflite",
    "classifier": "tiny_classifier.tflite",
}


def build_tiny_models(folder: Path) -> dict[str, Path]:
    """A brightness-threshold "segmenter" in several output forms, plus a non-segmentation model.

    Person = bright pixels: the models are untrained but deterministic convolutions whose output
    rises with brightness, which is enough to test the runtime's plumbing.
    """
    import keras

    from backdrop.ship.export import export_tflite

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
        "float32": export_tflite(sigmoid_model, folder / TINY_MODELS["float32"], "float32"),
        "int8": export_tflite(sigmoid_model, folder / TINY_MODELS["int8"], "int8", calibration),
        "softmax": export_tflite(two_channel, folder / TINY_MODELS["softmax"], "float32"),
        "classifier": export_tflite(classifier, folder / TINY_MODELS["classifier"], "float32"),
    }


if __name__ == "__main__":
    print(build_tiny_models(TINY))
