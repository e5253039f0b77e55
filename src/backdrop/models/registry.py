"""Name -> model builder; other architectures slot in beside the Attention U-Net."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

# Builders are imported on first use: they need Keras, and naming them here must not.
MODELS = {
    "attention_unet": "backdrop.models.attention_unet:build_attention_unet",
    "mobile_segmenter": "backdrop.models.mobile_segmenter:build_mobile_segmenter",
    # Public segmenters rebuilt from their .tflite (backdrop.models.tflite_import).
    "mediapipe_selfie": "backdrop.models.tflite_import:build_mediapipe_selfie",
    "meet_segmenter": "backdrop.models.tflite_import:build_meet_segmenter",
    # ImageNet encoders under the light decoder (backdrop.models.encoders).
    "mobilenet_v2_segmenter": "backdrop.models.encoders:build_mobilenet_v2_segmenter",
    "efficientnet_lite0_segmenter": "backdrop.models.encoders:build_efficientnet_lite0_segmenter",
}
MODEL_NAMES = tuple(MODELS)
# The mobile segmenter's activations, named here so configs and the CLI need no Keras.
MOBILE_ACTIVATIONS = ("relu", "relu6", "hard_swish")
# The models rebuilt from a public file, which take `extra_blocks` (tflite_import).
GROWABLE_MODELS = ("mediapipe_selfie", "meet_segmenter")


def get_model_builder(name: str) -> Callable:
    """The builder registered under `name`.

    Every builder takes `input_shape` (side or (height, width)) and `filters` and returns a
    Keras model from float32 RGB in [0, 1] to a 1-channel person probability; those that start
    from public weights take `init_from`, the file (see `backdrop.models.pretrained`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    module, function = MODELS[name].split(":")
    return getattr(importlib.import_module(module), function)


def build_model(name: str, input_shape, filters: int, **options):
    """Builds the named model; `options` its builder does not take (e.g. `depth` for a model
    without one) are left out, so one training config serves every architecture."""
    builder = get_model_builder(name)
    accepted = inspect.signature(builder).parameters
    chosen = {key: value for key, value in options.items() if key in accepted}
    return builder(input_shape=input_shape, filters=filters, **chosen)
