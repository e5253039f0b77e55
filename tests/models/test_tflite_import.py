"""TFLite graphs rebuilt in Keras: tiny built models (no shared data), then the real public
segmenters (skipped when ../shared is absent)."""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from backdrop.models.pretrained import identify_weights
from backdrop.models.tflite_graph import TFLiteFormatError, read_tflite
from backdrop.models.tflite_import import build_from_graph, import_segmenter
from backdrop.ship.export import export_tflite
from tests.conftest import find_shared_model
from tests.models.base import ModelTester

KNOWN = {
    "anchors/selfie_segmentation.tflite": (256, 256),
    "anchors/selfie_segmentation_landscape.tflite": (144, 256),
    "models/meet_segmentation/segm_full_v679.tflite": (144, 256),
    "models/meet_segmentation/segm_lite_v681.tflite": (96, 160),
}


def _tiny_segmenter() -> keras.Model:
    """Every operator kind the public segmenters use, built-ins only, tiny."""
    layers = keras.layers
    inputs = keras.Input((32, 48, 3))
    stem = layers.Conv2D(8, 3, 2, padding="same", activation="hard_swish")(inputs)
    x = layers.Conv2D(8, 1, activation="relu6")(stem)
    x = layers.DepthwiseConv2D(3, 2, padding="same", activation="relu")(x)
    weights = layers.GlobalAveragePooling2D(keepdims=True)(x)
    weights = layers.Dense(8, activation="relu")(weights)
    weights = layers.Conv2D(8, 1, activation="sigmoid")(weights)
    x = layers.Multiply()([x, weights])
    x = layers.Add()([x, layers.DepthwiseConv2D(3, padding="same")(x)])
    x = layers.UpSampling2D(interpolation="bilinear")(x)
    x = layers.Concatenate()([x, stem])
    x = layers.Conv2DTranspose(1, 2, 2, padding="same")(x)
    return keras.Model(inputs, layers.Activation("sigmoid")(x))


def _run(path, image: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize(
    "mode, last",
    [("float32", "DEPTH_TO_SPACE"), ("float16", "DEPTH_TO_SPACE"), (None, "TRANSPOSE_CONV")],
)
def test_rebuilt_tiny_graph_matches_its_tflite(tmp_path, mode, last):
    """float16 weights arrive as DEQUANTIZE operators, which the reader folds into float32.
    Backdrop's float exports write the last layer as DEPTH_TO_SPACE; TensorFlow's converter
    alone (mode None) as TRANSPOSE_CONV."""
    keras.utils.set_random_seed(0)
    model = _tiny_segmenter()
    path = tmp_path / "tiny.tflite"
    if mode is None:
        import tensorflow as tf

        from backdrop.ship.graph_rewrites import fixed_batch

        converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch(model))
        path.write_bytes(converter.convert())
    else:
        export_tflite(model, path, mode)
    graph = read_tflite(path)
    assert "DEQUANTIZE" not in graph.kinds()
    every_kind = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "MUL", "ADD"}
    every_kind |= {"HARD_SWISH", "RESIZE_BILINEAR", "CONCATENATION", last}
    assert every_kind <= set(graph.kinds())
    rebuilt = build_from_graph(graph)
    image = np.random.default_rng(0).random((1, 32, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(rebuilt.predict(image, verbose=0), _run(path, image), atol=1e-5)


def test_extra_blocks_go_after_the_deepest_add_and_start_as_the_identity(tmp_path):
    keras.utils.set_random_seed(0)
    path = export_tflite(_tiny_segmenter(), tmp_path / "tiny.tflite", "float32")
    graph = read_tflite(path)
    plain, grown = build_from_graph(graph), build_from_graph(graph, extra_blocks=2)
    names = [layer.name for layer in grown.layers]
    first = names.index("extra_block_0_expand")
    assert grown.get_layer(names[first - 1]).__class__.__name__ == "Add"
    assert grown.get_layer("extra_block_1_add").output.shape[1:3] == (8, 12)  # 1/4, the deepest
    image = np.random.default_rng(0).random((1, 32, 48, 3), dtype=np.float32)
    expected = plain.predict(image, verbose=0)
    np.testing.assert_allclose(grown.predict(image, verbose=0), expected, atol=1e-6)
    project = grown.get_layer("extra_block_1_project")
    project.set_weights([w + 0.1 for w in project.get_weights()])
    assert np.abs(grown.predict(image, verbose=0) - expected).max() > 1e-3  # on the path
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 48, 3))
    no_add = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    graph = read_tflite(export_tflite(no_add, tmp_path / "no_add.tflite", "float32"))
    with pytest.raises(TFLiteFormatError, match="no residual ADD"):
        build_from_graph(graph, extra_blocks=1)


def test_unknown_tflite_is_one_line_naming_what_was_expected(tmp_path, tiny_models):
    with pytest.raises(TFLiteFormatError) as error:
        import_segmenter(tiny_models["float32"])
    message = str(error.value)
    assert "\n" not in message and "MediaPipe selfie segmenter" in message and "Meet" in message
    with pytest.raises(ValueError, match="expected one of"):
        identify_weights(tiny_models["float32"])
    not_a_model = tmp_path / "notes.tflite"
    not_a_model.write_text("hello")
    with pytest.raises(ValueError, match="not a (readable )?TFLite model"):
        identify_weights(not_a_model)
    with pytest.raises(TFLiteFormatError, match="no TFL3"):
        read_tflite(not_a_model)


@pytest.mark.integration
@pytest.mark.parametrize("relative", list(KNOWN))
def test_public_segmenter_is_reproduced_and_exports_without_custom_ops(
    tmp_path, relative, shared_model, shared_dataset
):
    from backdrop.data.readers.portrait import PortraitReader
    from backdrop.runtime.segmenter import Segmenter

    path = shared_model(relative)
    start = identify_weights(path)
    assert start.input_shape == KNOWN[relative]
    model = import_segmenter(path)
    original = Segmenter(path)
    reader = PortraitReader(shared_dataset("human_seg_vikram"))
    for sample in list(reader)[:4]:
        batch = original.input_tensor(sample.image)
        ours = model.predict(batch, verbose=0)[0, ..., 0]
        assert np.abs(ours - original.raw_probability(sample.image)).mean() < 0.01
    exported = export_tflite(model, tmp_path / "imported.tflite", "float32")
    kinds = collections.Counter(read_tflite(exported).kinds())
    assert not any(kind.startswith("CUSTOM") for kind in kinds)
    assert (
        kinds["DEPTH_TO_SPACE"] == 1 and "TRANSPOSE_CONV" not in kinds
    )  # the last layer, rewritten
    image = np.random.default_rng(1).random((1, *KNOWN[relative], 3), dtype=np.float32)
    np.testing.assert_allclose(_run(exported, image), model.predict(image, verbose=0), atol=1e-4)


@pytest.mark.integration
def test_imported_segmenter_rebuilds_at_another_input_and_refuses_misfits(shared_model):
    path = shared_model("anchors/selfie_segmentation_landscape.tflite")
    assert import_segmenter(path, (256, 256)).output_shape == (None, 256, 256, 1)
    meet = shared_model("models/meet_segmentation/segm_full_v679.tflite")  # pools by AVERAGE_POOL
    model = import_segmenter(meet, (96, 160))
    output = model.predict(np.random.default_rng(0).random((1, 96, 160, 3), np.float32), verbose=0)
    assert output.shape == (1, 96, 160, 1) and np.isfinite(output).all()
    with pytest.raises(TFLiteFormatError, match="cannot be rebuilt at input 100x100"):
        import_segmenter(path, (100, 100))


@pytest.mark.integration
class TestImportedMediaPipeSelfie(ModelTester):
    model_name = "mediapipe_selfie"
    input_shape = (64, 96)

    def options(self):
        return {"init_from": find_shared_model("anchors/selfie_segmentation.tflite")}


@pytest.mark.integration
class TestImportedMeet(ModelTester):
    model_name = "meet_segmenter"
    input_shape = (96, 160)

    def options(self):
        return {"init_from": find_shared_model("models/meet_segmentation/segm_lite_v681.tflite")}


@pytest.mark.parametrize("damage", ["truncated", "scrambled"])
def test_a_corrupt_init_from_is_one_line_before_training(tmp_path, capsys, damage):
    from backdrop.cli import main
    from tests.tiny_models import TINY, TINY_MODELS

    content = bytearray((TINY / TINY_MODELS["float32"]).read_bytes())
    if damage == "truncated":
        content = content[: len(content) // 2]
    else:  # the header kept, every offset after it a lie
        content[8:] = bytes((i * 151 + 7) % 256 for i in range(len(content) - 8))
    bad = tmp_path / "bad model.tflite"
    bad.write_bytes(bytes(content))
    argv = ["train", "-r", str(tmp_path), "-o", str(tmp_path / "run"), "--init-from", str(bad)]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("backdrop: error:") and str(bad) in error
    assert not (tmp_path / "run").exists()
