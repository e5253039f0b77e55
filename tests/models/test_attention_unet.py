"""Attention U-Net: shapes, parameters, .keras round trip, registry."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.models.attention_unet import build_attention_unet
from backdrop.models.registry import build_model, get_model_builder
from tests.models.base import ModelTester


@pytest.mark.parametrize(("shape", "expected"), [(64, (64, 64)), ((144, 256), (144, 256))])
def test_output_is_one_probability_channel_at_input_size(shape, expected):
    model = build_attention_unet(shape, filters=4)
    output = model.predict(np.random.rand(2, *expected, 3).astype(np.float32), verbose=0)
    assert output.shape == (2, *expected, 1)
    assert 0 <= output.min() and output.max() <= 1


def test_filters_and_depth_set_the_width():
    small = build_attention_unet(64, filters=4, depth=3)
    large = build_attention_unet(64, filters=8, depth=3)
    assert large.count_params() > 3 * small.count_params()
    assert any("attention2" in layer.name for layer in small.layers)
    assert not any("attention3" in layer.name for layer in small.layers)


def test_bad_input_size_names_a_valid_one():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 16; try 96x96"):
        build_attention_unet(100)


def test_registry():
    assert get_model_builder("attention_unet") is build_attention_unet
    assert build_model("attention_unet", 32, 4, depth=2).output_shape == (None, 32, 32, 1)
    with pytest.raises(ValueError, match="valid models: attention_unet"):
        get_model_builder("segformer")


class TestAttentionUNet(ModelTester):
    model_name = "attention_unet"
