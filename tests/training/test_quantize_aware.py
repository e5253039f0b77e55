"""Quantization-aware fine-tuning: where rounding goes, what it does, and the training phase."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from backdrop.cli import main
from backdrop.models.mobile_segmenter import build_mobile_segmenter
from backdrop.training.export_step import export_after_training
from backdrop.training.loop import TrainConfig, load_checkpoint, train
from backdrop.training.quantize_aware import (
    SIGMOID_INPUT_LIMIT,
    FakeQuant,
    add_fake_quant,
    has_fake_quant,
    strip_fake_quant,
)
from backdrop.training.ranges import clip_ranges, limit_sigmoid_inputs
from tests.training.test_loop import small_config, synthetic_records  # noqa: F401 (fixture)


def test_fake_quant_rounds_to_256_levels_over_a_moving_range():
    layer = FakeQuant(momentum=0.5)
    first = tf.linspace(-1.0, 3.0, 10_000)
    rounded = layer(first, training=True).numpy()
    assert (layer.minimum.numpy(), layer.maximum.numpy()) == (-1.0, 3.0), "first batch sets it"
    assert len(np.unique(rounded)) <= 256
    assert np.abs(rounded - first.numpy()).max() <= 4.0 / 255 / 2 + 1e-6
    layer(tf.constant([-3.0, 5.0]), training=True)
    assert layer.minimum.numpy() == pytest.approx(-2.0) and layer.maximum.numpy() == 4.0
    outside = layer(tf.constant([10.0]), training=False).numpy()
    assert outside[0] == pytest.approx(4.0, abs=0.02), "inference clips to the stored range"


def test_fake_quant_range_always_holds_zero_and_gradients_pass_straight_through():
    layer = FakeQuant()
    values = tf.linspace(1.0, 2.0, 100)
    with tf.GradientTape() as tape:
        tape.watch(values)
        result = layer(values, training=True)
        total = tf.reduce_sum(result)
    assert result.numpy().min() >= 0.0 and layer.minimum.numpy() == 1.0
    np.testing.assert_allclose(tape.gradient(total, values).numpy(), 1.0)
    with tf.GradientTape() as tape:
        tape.watch(values)
        total = tf.reduce_sum(layer(values * 10.0, training=False))
    gradient = tape.gradient(total, values).numpy()
    assert gradient[-1] == 0.0, "no gradient where the value is clipped"


def test_a_limited_range_never_reaches_beyond_its_limit():
    layer = FakeQuant(limit=8.0)
    values = tf.linspace(-100.0, 100.0, 10_001)
    rounded = layer(values, training=True).numpy()
    assert layer.maximum.numpy() == 100.0, "the stored range still follows the values"
    assert rounded.min() == pytest.approx(-8.0, abs=0.04) and rounded.max() == pytest.approx(
        8.0, abs=0.04
    )
    inside = np.abs(values.numpy()) <= 7.9
    assert np.abs(rounded - values.numpy())[inside].max() <= 16.0 / 255 / 2 + 1e-5
    assert FakeQuant.from_config(layer.get_config()).limit == 8.0
    with pytest.raises(ValueError, match="limit"):
        FakeQuant(limit=0.0)


def test_rounding_goes_where_the_int8_graph_holds_a_tensor():
    model = build_mobile_segmenter(64, 8, width=0.5, activation="relu6")
    quantize_aware = add_fake_quant(model)
    rounded = {
        layer.name.removesuffix("_fake_quant")
        for layer in quantize_aware.layers
        if isinstance(layer, FakeQuant)
    }
    assert "stem_relu" in rounded, "convolution + batch norm + ReLU: one tensor, after the ReLU"
    assert "stem" not in rounded and "stem_bn" not in rounded
    assert "block0_se_scale" in rounded and "to_signed" in rounded
    assert "block2_add" in rounded, "a residual sum is a tensor of its own"
    assert "person" not in rounded, "the output's scale is fixed by the sigmoid"
    limited = {
        layer.name.removesuffix("_fake_quant")
        for layer in quantize_aware.layers
        if isinstance(layer, FakeQuant) and layer.limit == SIGMOID_INPUT_LIMIT
    }
    assert limited == {"logits", "up1"}, "what feeds the sigmoid, through the upsampling"
    assert not any(
        layer.trainable
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ), "batch norm is frozen, as folded into the int8 convolutions"


def test_rounding_follows_the_model_graph_not_other_graphs_on_its_layers():
    """Graph rewrites and a second `add_fake_quant` call the same layers again, which lists
    more consumers on each; the rounding must stay where this model's int8 graph has it."""
    model = build_mobile_segmenter(64, 8, width=0.5, activation="relu6")

    def rounded(quantize_aware):
        return sorted(layer.name for layer in quantize_aware.layers if isinstance(layer, FakeQuant))

    def limited(quantize_aware):
        return sorted(
            layer.name
            for layer in quantize_aware.layers
            if isinstance(layer, FakeQuant) and layer.limit == SIGMOID_INPUT_LIMIT
        )

    first = add_fake_quant(model)
    keras.models.clone_model(model, clone_function=lambda layer: layer)  # calls them once more
    second = add_fake_quant(model)
    assert rounded(second) == rounded(first)
    assert "stem_fake_quant" not in rounded(second), "convolution, batch norm, ReLU: fused"
    assert limited(second) == limited(first) == ["logits_fake_quant", "up1_fake_quant"]


def test_activation_layers_fuse_as_relu_layers_do():
    """The public models' importer writes a fused ReLU as an `Activation`: TFLite fuses it into
    the convolution or sum before it, so only its output is rounded. Other activations are ops
    of their own, with an input tensor that is rounded too."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_relu")(inputs)
    x = keras.layers.Activation("relu", name="relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv_relu6")(x)
    y = keras.layers.Activation("relu6", name="relu6")(y)
    z = keras.layers.Add(name="add_relu")([x, y])
    z = keras.layers.Activation("relu", name="add_relu_relu")(z)
    w = keras.layers.Conv2D(4, 3, padding="same", name="conv_swish")(z)
    w = keras.layers.Activation("hard_swish", name="swish")(w)
    v = keras.layers.Conv2D(4, 3, padding="same", name="conv_leaky")(w)
    v = keras.layers.ReLU(negative_slope=0.1, name="leaky")(v)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", name="person")(v)
    rounded = {
        layer.name.removesuffix("_fake_quant")
        for layer in add_fake_quant(keras.Model(inputs, outputs)).layers
        if isinstance(layer, FakeQuant)
    }
    assert rounded == {
        "relu",
        "relu6",
        "add_relu_relu",
        "conv_swish",
        "swish",
        "conv_leaky",
        "leaky",
    }


def test_strip_shares_the_weights_and_undoes_the_rounding():
    model = build_mobile_segmenter(64, 8, width=0.5)
    images = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    expected = model.predict(images, verbose=0)
    quantize_aware = add_fake_quant(model)
    quantize_aware(images, training=True)  # sets every range
    rounded = quantize_aware.predict(images, verbose=0)
    assert 0 < np.abs(rounded - expected).max() < 0.2
    stripped = strip_fake_quant(quantize_aware)
    assert not has_fake_quant(stripped) and len(stripped.layers) == len(model.layers)
    np.testing.assert_allclose(stripped.predict(images, verbose=0), expected, atol=1e-6)
    assert strip_fake_quant(model) is model


@pytest.mark.slow
def test_last_epochs_train_with_rounding_resume_and_export(synthetic_records, tmp_path):  # noqa: F811
    config = small_config(
        synthetic_records,
        tmp_path / "run",
        model="mobile_segmenter",
        activation="relu6",
        epochs=3,
        quantize_aware_epochs=1,
        export="int8",
    )
    state = train(config, verbose=0)
    assert state["epoch"] == 3
    assert not has_fake_quant(load_checkpoint(tmp_path / "run" / "epoch-0002.keras"))
    last = load_checkpoint(tmp_path / "run" / "epoch-0003.keras")
    assert has_fake_quant(last)
    steps = int(last.optimizer.iterations.numpy())
    assert steps > 0
    # A finished run trains further with --restore and a higher epoch count; a checkpoint of
    # the rounding phase goes on rounding (even without the flag), and its optimizer state
    # loads (same variables), so its schedule goes on.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Skipping variable loading for optimizer")
        train(
            dataclasses.replace(config, epochs=4, quantize_aware_epochs=0), restore=True, verbose=0
        )
    resumed = load_checkpoint(tmp_path / "run" / "epoch-0004.keras")
    assert int(resumed.optimizer.iterations.numpy()) == 2 * steps
    best = load_checkpoint(tmp_path / "run" / "best.keras")
    assert has_fake_quant(best), "best is chosen among the rounding epochs, the ones to ship"
    (report,) = export_after_training(dataclasses.replace(config, epochs=4))
    assert report["mode"] == "int8" and 0 <= report["validation_iou_exported"] <= 1

    # Ranges measured again on the calibration pictures, less their tails: another int8 file.
    export = ["export", str(tmp_path / "run" / "epoch-0004.keras"), "-r", str(synthetic_records)]
    clipped = tmp_path / "clipped"
    assert main([*export, "--modes", "int8", "--int8-range-tail", "1e-3", "-o", str(clipped)]) == 0
    contract = json.loads((clipped / "model_int8.tflite.json").read_text())
    assert contract["int8_range_tail"] == 1e-3
    assert (clipped / "model_int8.tflite").read_bytes() != Path(report["path"]).read_bytes()
    # A float checkpoint gets rounding layers over its tensors' values less the tails: another
    # int8 file than post-training calibration's over the whole range.
    plain = tmp_path / "plain" / "plain.keras"  # no rounding epochs
    plain.parent.mkdir()
    strip_fake_quant(last).save(plain)
    export[1] = str(plain)
    assert main([*export, "--modes", "int8", "-o", str(tmp_path / "whole")]) == 0
    tail = ["--int8-range-tail", "1e-4"]
    assert main([*export, "--modes", "float16", "int8", *tail, "-o", str(tmp_path / "tails")]) == 0
    whole, tails = (tmp_path / name / "model_int8.tflite" for name in ("whole", "tails"))
    assert whole.read_bytes() != tails.read_bytes()
    contract = json.loads(tails.with_suffix(".tflite.json").read_text())
    assert contract["int8_range_tail"] == 1e-4
    # The float file beside it has no int8 ranges to describe.
    contract = json.loads((tmp_path / "tails" / "model_float16.tflite.json").read_text())
    assert "int8_range_tail" not in contract


def test_config_checks_the_rounding_epochs():
    with pytest.raises(ValueError, match="quantize_aware_epochs"):
        TrainConfig(epochs=5, quantize_aware_epochs=6)
    with pytest.raises(ValueError, match="activation"):
        TrainConfig(activation="swish")


def test_int8_export_quantizes_rounded_tensors_over_their_learned_ranges():
    """The converter takes each FakeQuant's range instead of calibrating that tensor again (the
    float exports leave the layers out)."""
    from ai_edge_litert.interpreter import Interpreter

    from backdrop.ship.convert import convert

    model = build_mobile_segmenter(64, 8, width=0.5, activation="relu6")
    quantize_aware = add_fake_quant(model)
    for layer in quantize_aware.layers:
        if isinstance(layer, FakeQuant):  # a range the calibration pictures would never give
            layer.minimum.assign(-3.0)
            layer.maximum.assign(5.0)
            layer.seen.assign(1.0)
    pictures = np.random.default_rng(0).random((8, 64, 64, 3), dtype=np.float32)

    def scales(data):
        interpreter = Interpreter(model_content=data)
        details = interpreter.get_tensor_details()
        return [d["quantization"][0] for d in details if d["dtype"] == np.int8]

    learned = 8.0 / 255
    kept = scales(convert(quantize_aware, "int8", list(pictures)))
    recalibrated = scales(convert(strip_fake_quant(quantize_aware), "int8", list(pictures)))
    assert sum(np.isclose(kept, learned, rtol=1e-3)) >= 5
    assert not any(np.isclose(recalibrated, learned, rtol=1e-3))
    assert len(convert(quantize_aware, "float32")) == len(convert(model, "float32"))


def _outlier_model() -> keras.Model:
    """Each pixel's channel mean, rounded (a convolution), then tanh."""
    inputs = keras.Input((16, 16, 3))
    mean = keras.layers.Conv2D(
        1, 1, kernel_initializer=keras.initializers.Constant(1 / 3), name="mean"
    )(inputs)
    return keras.Model(inputs, keras.layers.Activation("tanh")(mean))


def test_clipped_ranges_leave_out_the_rare_extremes_of_each_tensor():
    pictures = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    pictures[3, 5, 5] = 50.0  # a range up to this one pixel rounds in steps of 0.2
    quantize_aware = add_fake_quant(_outlier_model())
    quantize_aware(pictures, training=True)  # the first batch sets the learned range
    (learned,) = [layer for layer in quantize_aware.layers if isinstance(layer, FakeQuant)]
    assert learned.maximum.numpy() == pytest.approx(50.0, rel=1e-3)

    (clipped,) = [
        layer
        for layer in clip_ranges(quantize_aware, pictures, 1e-3).layers
        if isinstance(layer, FakeQuant)
    ]
    values = np.delete(pictures.mean(axis=-1).ravel(), 3 * 256 + 5 * 16 + 5)
    low, high = np.quantile(values, [1e-3, 1 - 1e-3])
    assert clipped.minimum.numpy() == pytest.approx(low, abs=0.01)
    assert clipped.maximum.numpy() == pytest.approx(high, abs=0.01)
    assert learned.maximum.numpy() == pytest.approx(50.0, rel=1e-3), "the model is left as it was"
    assert clipped.name == learned.name and clipped.limit is learned.limit
    (everything,) = [
        layer
        for layer in clip_ranges(quantize_aware, pictures, 0.0).layers
        if isinstance(layer, FakeQuant)
    ]
    assert everything.maximum.numpy() == pytest.approx(50.0, rel=1e-3), "small tensors: every value"

    model = _outlier_model()
    assert clip_ranges(model, pictures) is model, "nothing rounded, nothing to clip"
    with pytest.raises(ValueError, match="tail"):
        clip_ranges(quantize_aware, pictures, 0.5)


def _wide_logits_model() -> keras.Model:
    """Logits from -100 to 100 over the input's range, then a sigmoid."""
    inputs = keras.Input((16, 16, 3))
    logits = keras.layers.Conv2D(
        1,
        1,
        kernel_initializer=keras.initializers.Constant(200.0 / 3),
        bias_initializer=keras.initializers.Constant(-100.0),
        name="logits",
    )(inputs)
    return keras.Model(inputs, keras.layers.Activation("sigmoid", name="person")(logits))


def test_limiting_the_logits_adds_a_calibrated_rounding_or_limits_the_learned_one():
    model = _wide_logits_model()
    pictures = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    limited = limit_sigmoid_inputs(model, pictures)
    (added,) = [layer for layer in limited.layers if isinstance(layer, FakeQuant)]
    assert added.limit == SIGMOID_INPUT_LIMIT
    assert added.minimum.numpy() < -80 and added.maximum.numpy() > 80, "calibrated on the pictures"
    assert len(model.layers) == 3, "the model itself is left as it was"

    quantize_aware = add_fake_quant(model)
    (learned,) = [layer for layer in quantize_aware.layers if isinstance(layer, FakeQuant)]
    learned.limit = None  # as a checkpoint from before the limit was saved
    quantize_aware(pictures, training=True)
    (kept,) = [
        layer
        for layer in limit_sigmoid_inputs(quantize_aware, pictures).layers
        if isinstance(layer, FakeQuant)
    ]
    assert kept.limit == SIGMOID_INPUT_LIMIT and kept.maximum.numpy() == learned.maximum.numpy()


def test_each_added_rounding_is_calibrated_on_the_float_values_of_its_tensor():
    """Two tensors feed sigmoids, one after the other (a squeeze-excitation gate, then the
    logits): each range is that of the float model's tensor, not of values that already went
    through the first, not yet calibrated, rounding; and the layers' first graph (another
    model's here) plays no part."""
    image = keras.Input((16, 16, 3))
    gate_layer = keras.layers.Conv2D(3, 1, name="gate")
    logits_layer = keras.layers.Conv2D(1, 3, padding="same", name="logits")
    gate_layer(keras.Input((8, 8, 3)))  # another graph, first
    gate = gate_layer(image)
    gated = keras.layers.Multiply()([image, keras.layers.Activation("sigmoid")(gate)])
    logits = logits_layer(gated)
    model = keras.Model(image, keras.layers.Activation("sigmoid", name="person")(logits))
    for layer, scale in ((gate_layer, 3.0), (logits_layer, 4.0)):
        kernel, bias = layer.get_weights()
        layer.set_weights([np.full_like(kernel, scale), bias - 2.0])
    pictures = np.random.default_rng(0).random((8, 16, 16, 3), dtype=np.float32)
    float_values = keras.Model(image, [gate, logits])(pictures)
    limited = {
        layer.name: (float(layer.minimum.numpy()), float(layer.maximum.numpy()))
        for layer in limit_sigmoid_inputs(model, pictures).layers
        if isinstance(layer, FakeQuant)
    }
    assert set(limited) == {"gate_fake_quant", "logits_fake_quant"}
    for name, values in zip(("gate", "logits"), float_values, strict=True):
        expected = (float(np.min(values)), float(np.max(values)))
        np.testing.assert_allclose(limited[f"{name}_fake_quant"], expected, rtol=1e-5)


def test_int8_export_keeps_the_sigmoid_exact_where_the_logits_are_wide():
    """Rounded over their own range (-100 to 100: steps of 0.78), the logits would move the
    sigmoid by up to 0.1 near 0.5; within [-8, 8] the int8 output stays within 0.02."""
    from ai_edge_litert.interpreter import Interpreter

    from backdrop.ship.convert import convert

    model = _wide_logits_model()
    pictures = np.random.default_rng(0).random((8, 16, 16, 3), dtype=np.float32)
    interpreter = Interpreter(model_content=convert(model, "int8", list(pictures)))
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    # Pictures near the boundary: the sum of the channels close to 1.5, logits within +-10.
    near = 0.5 + np.random.default_rng(1).uniform(-0.05, 0.05, (16, 16, 3))
    image = np.rint(near * 255).astype(np.uint8)
    interpreter.set_tensor(source["index"], image[None])
    interpreter.invoke()
    scale, zero_point = target["quantization"]
    output = (interpreter.get_tensor(target["index"]).astype(np.float32) - zero_point) * scale
    expected = model.predict(image[None].astype(np.float32) / 255, verbose=0)
    assert np.abs(output - expected).max() < 0.02


def test_a_float_model_rounded_over_its_values_less_the_tails():
    from backdrop.training.ranges import tail_rounded

    model = _wide_logits_model()
    pictures = np.random.default_rng(0).random((8, 16, 16, 3), dtype=np.float32)
    rounded = tail_rounded(model, pictures, 0.01)
    (layer,) = [layer for layer in rounded.layers if isinstance(layer, FakeQuant)]
    logits = keras.Model(model.inputs, model.get_layer("logits").output)(pictures).numpy()
    low, high = np.quantile(logits, [0.01, 0.99])
    assert layer.minimum.numpy() == pytest.approx(low, rel=0.05)
    assert layer.maximum.numpy() == pytest.approx(high, rel=0.05)
    assert layer.limit == SIGMOID_INPUT_LIMIT and layer.seen.numpy() == 1.0
    np.testing.assert_array_equal(strip_fake_quant(rounded)(pictures), model(pictures))
    with pytest.raises(ValueError, match="rounding layers already"):
        tail_rounded(rounded, pictures)
