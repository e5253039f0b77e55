"""Name -> model builder; other architectures slot in beside the Attention U-Net."""

from __future__ import annotations

from collections.abc import Callable

MODEL_NAMES = ("attention_unet",)


def get_model_builder(name: str) -> Callable:
    """The builder registered under `name` (imported lazily: builders need Keras).

    Every builder takes `input_shape` (side or (height, width)) and `filters` and returns a
    Keras model from float32 RGB in [0, 1] to a 1-channel person probability.
    """
    if name == "attention_unet":
        from backdrop.models.attention_unet import build_attention_unet

        return build_attention_unet
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")


def build_model(name: str, input_shape, filters: int, **kwargs):
    """Builds the named model; see `get_model_builder`."""
    return get_model_builder(name)(input_shape=input_shape, filters=filters, **kwargs)
