"""Export: Keras vs LiteRT parity for every mode, contracts, and the int8 input contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.synthetic import write_synthetic_dataset
from backdrop.runtime import Segmenter
from backdrop.ship.export import recommend
from backdrop.training.export_step import export_after_training
from backdrop.training.loop import TrainConfig, load_checkpoint, train

# Largest allowed |Keras - LiteRT| person probability, per mode (and the mean for int8).
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "int8": 0.25}
INT8_MEAN_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small model trained for a few epochs on synthetic figures, exported in every mode."""
    folder = tmp_path_factory.mktemp("export")
    data = write_synthetic_dataset(folder / "data", count=120, height=48, width=48)
    prepare(
        [PortraitReader(data)],
        PrepareConfig(folder / "records", side=48, workers=1, validation_fraction=0.25),
        progress=False,
    )
    config = TrainConfig(
        checkpoints=folder / "run",
        records=folder / "records",
        input_shape=(32, 32),
        filters=4,
        depth=3,
        epochs=4,
        batch_size=16,
        learning_rate=3e-3,
    )
    train(config, verbose=0)
    reports = export_after_training(config, modes=["float32", "float16", "int8"])
    return config, {report["mode"]: report for report in reports}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["float32", "float16", "int8"])
def test_keras_and_litert_agree(trained_run, mode):
    config, reports = trained_run
    model = load_checkpoint(config.checkpoints / "best.keras")
    segmenter = Segmenter(reports[mode]["path"], threads=1)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    expected = model.predict(images.astype(np.float32) / 255, verbose=0)[..., 0]
    exported = np.stack([segmenter.raw_probability(image) for image in images])
    difference = np.abs(expected - exported)
    assert difference.max() <= TOLERANCE[mode], difference.max()
    if mode == "int8":
        assert difference.mean() <= INT8_MEAN_TOLERANCE


@pytest.mark.slow
def test_contracts_carry_format_and_the_cost_of_quantization(trained_run):
    _, reports = trained_run
    for report in reports.values():
        contract = json.loads(open(report["path"] + ".json").read())
        assert contract["input"]["height"] == 32 and contract["input"]["colour_order"] == "RGB"
        assert contract["input"]["resize"].startswith("stretch")
        assert "person probability" in contract["output"]["meaning"]
        assert 0 <= contract["validation_iou_exported"] <= 1
        assert contract["validation_iou_float"] == reports["float32"]["validation_iou_float"]
        assert contract["size_bytes"] > 0 and contract["latency_ms"] > 0
    int8 = json.loads(open(reports["int8"]["path"] + ".json").read())
    assert int8["input"]["dtype"] == "uint8"
    assert int8["input"]["quantization"]["scale"] == pytest.approx(1 / 255)
    assert abs(int8["validation_iou_exported"] - int8["validation_iou_float"]) < 0.05
    assert reports["int8"]["size_bytes"] < reports["float32"]["size_bytes"] / 2
    # Exactly one mode is recommended, in its contract and its card, and it is one recommend()
    # picks from these very figures.
    contracts = {m: json.loads(open(r["path"] + ".json").read()) for m, r in reports.items()}
    chosen = [m for m, c in contracts.items() if c["recommended"]]
    assert chosen == [recommend(list(reports.values()))[0]]
    card = open(reports[chosen[0]]["path"].replace(".tflite", ".md")).read()
    assert "| recommended | yes:" in card


def _report(mode, ms, kib, exported, floating=0.90):
    return {
        "mode": mode,
        "latency_ms": ms,
        "size_bytes": kib * 1024,
        "threads": 2,
        "validation_iou_float": floating,
        "validation_iou_exported": exported,
    }


def test_recommend_picks_the_fastest_export_that_keeps_the_accuracy():
    float32, float16 = _report("float32", 2.0, 480, 0.90), _report("float16", 2.1, 300, 0.899)
    assert recommend([float32, float16, _report("int8", 1.0, 250, 0.895)])[0] == "int8"
    # int8 losing more than 0.01 is out; float16 is within 10% of float32 and smaller.
    mode, reason = recommend([float32, float16, _report("int8", 1.0, 250, 0.88)])
    assert mode == "float16" and "within 0.01" in reason
    assert recommend([float32, float16, _report("int8", 8.0, 250, 0.899)])[0] == "float16"
    assert recommend([_report("float16", 2.0, 300, None, None)])[0] is None


def test_float32_does_not_race_a_float16_that_keeps_the_accuracy():
    # Same arithmetic on a CPU: a float32 timed faster is the machine's drift, not the model.
    float32, float16 = _report("float32", 1.33, 480, 0.90), _report("float16", 1.69, 300, 0.899)
    assert recommend([float32, float16, _report("int8", 8.0, 250, 0.895)])[0] == "float16"
    # float32 stays the pick where float16 loses the accuracy or was not exported.
    lossy = _report("float16", 1.69, 300, 0.88)
    assert recommend([float32, lossy])[0] == "float32"
    assert recommend([float32, _report("int8", 8.0, 250, 0.899)])[0] == "float32"


def test_quantization_config_is_validated_before_converting():
    from backdrop.ship.convert import QuantizationConfig

    with pytest.raises(ValueError, match="valid modes: float32, float16, int8"):
        QuantizationConfig("int4")
    with pytest.raises(ValueError, match="representative images"):
        QuantizationConfig.for_int8([])
    config = QuantizationConfig.for_int8([np.zeros((4, 4, 3))])
    assert config.representative[0].dtype == np.float32
    assert QuantizationConfig.for_float16().representative == ()


def _concatenating_model():
    """Meet's decoder gate in small: a concatenation read only by a global mean, gating one of
    its branches, and a second concatenation read by a convolution."""
    import keras

    image = keras.Input((16, 24, 3))
    left = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    right = keras.layers.Conv2D(4, 1, activation="relu")(image)
    both = keras.layers.Concatenate()([left, right])
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(both)
    gate = keras.layers.Conv2D(4, 1, activation="sigmoid")(gate)
    gated = keras.layers.Add()([keras.layers.Multiply()([left, gate]), right])
    merged = keras.layers.Concatenate()([gated, left])
    logits = keras.layers.Conv2D(1, 1)(merged)
    return keras.Model(image, keras.layers.Activation("sigmoid")(logits))


def test_a_concatenation_only_pooled_is_pooled_branch_by_branch(tmp_path):
    from backdrop.models.tflite_graph import read_tflite
    from backdrop.ship.convert import convert
    from backdrop.ship.graph_rewrites import pool_branches_first

    model = _concatenating_model()
    rewritten = pool_branches_first(model)
    images = np.random.default_rng(0).random((3, 16, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(rewritten(images), model(images), atol=1e-6)
    # In the file, the pooled concatenation joins two 1x1 means; the one a convolution reads
    # stays full size; nothing else changes.
    path = tmp_path / "model.tflite"
    path.write_bytes(convert(model, "float32"))
    graph = read_tflite(path)
    joined = [
        graph.tensors[op.outputs[0]].shape[1:3]
        for op in graph.operators
        if op.kind == "CONCATENATION"
    ]
    assert sorted(joined) == [(1, 1), (16, 24)]
    assert sum(op.kind == "MEAN" for op in graph.operators) == 2
    segmenter = Segmenter(path, threads=1)
    frame = (images[0] * 255).astype(np.uint8)
    expected = model(frame[None].astype(np.float32) / 255)[0, ..., 0]
    np.testing.assert_allclose(segmenter.raw_probability(frame), expected, atol=1e-4)
    # int8 keeps the graph as trained: there the branches' means would round differently.
    int8 = tmp_path / "model_int8.tflite"
    int8.write_bytes(convert(model, "int8", list(images)))
    assert sum(op.kind == "MEAN" for op in read_tflite(int8).operators) == 1


def test_a_model_without_a_pooled_concatenation_is_returned_as_it_is():
    import keras

    from backdrop.ship.graph_rewrites import pool_branches_first

    image = keras.Input((8, 8, 3))
    both = keras.layers.Concatenate()([image, keras.layers.Conv2D(2, 1)(image)])
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True)(both)
    model = keras.Model(image, [pooled, both])  # the concatenation is read twice
    assert pool_branches_first(model) is model


def test_a_float_export_leaves_the_model_as_the_int8_export_finds_it(tmp_path):
    # The float modes rewrite the graph; the int8 export after them must see the model as
    # trained (a rewrite sharing its layers once hid the logits' [-8, 8] limit from int8).
    from backdrop.ship.convert import convert

    model = _concatenating_model()
    logits = model.layers[-2]
    logits.set_weights([w * 200 for w in logits.get_weights()])  # logits far beyond +-8
    images = np.random.default_rng(0).random((4, 16, 24, 3), dtype=np.float32)
    files = [tmp_path / "alone.tflite", tmp_path / "after_float.tflite"]
    files[0].write_bytes(convert(model, "int8", list(images)))
    convert(model, "float16")
    files[1].write_bytes(convert(model, "int8", list(images)))
    frame = (images[0] * 255).astype(np.uint8)
    alone, after_float = (Segmenter(f, threads=1).raw_probability(frame) for f in files)
    np.testing.assert_array_equal(after_float, alone)


def test_a_transposed_convolution_without_overlap_becomes_depth_to_space(tmp_path):
    import keras

    from backdrop.models.tflite_graph import read_tflite
    from backdrop.ship.convert import convert
    from backdrop.ship.graph_rewrites import transposed_as_depth_to_space

    image = keras.Input((8, 12, 3))
    features = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(image)
    wide = keras.layers.Conv2DTranspose(3, 2, strides=2, activation="relu")(features)
    overlapping = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(wide)
    logits = keras.layers.Conv2DTranspose(1, 2, strides=2, padding="same")(overlapping)
    model = keras.Model(image, keras.layers.Activation("sigmoid")(logits))
    for layer in model.layers:  # biases too, so their order is checked
        layer.set_weights([np.random.default_rng(1).normal(size=w.shape) for w in layer.weights])
    images = np.random.default_rng(0).random((2, 8, 12, 3), dtype=np.float32)
    np.testing.assert_allclose(
        transposed_as_depth_to_space(model)(images), model(images), atol=1e-5
    )
    path = tmp_path / "model.tflite"
    path.write_bytes(convert(model, "float16"))
    kinds = [op.kind for op in read_tflite(path).operators]
    assert kinds.count("DEPTH_TO_SPACE") == 2 and kinds.count("TRANSPOSE_CONV") == 1
    frame = (images[0] * 255).astype(np.uint8)
    expected = model(frame[None].astype(np.float32) / 255)[0, ..., 0]
    np.testing.assert_allclose(
        Segmenter(path, threads=1).raw_probability(frame), expected, atol=2e-2
    )
    path.write_bytes(convert(model, "int8", list(images)))  # int8 keeps the graph as trained
    assert "DEPTH_TO_SPACE" not in [op.kind for op in read_tflite(path).operators]


KILLED_EXPORT = """
import os, sys, time
from pathlib import Path
import keras
import backdrop.ship.export as export
import backdrop.ship.metadata as metadata

stage, path = sys.argv[1], Path(sys.argv[2])
inputs = keras.Input((16, 16, 3))
model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))


def stop(*_):
    print("ready", flush=True)
    time.sleep(600)


replace = os.replace
if stage == "metadata":  # killed while the metadata is written
    metadata.write_metadata = stop
    export.write_metadata = stop
else:  # killed after the contract is written, before the model takes its name
    os.replace = lambda a, b: stop() if str(b) == str(path) else replace(a, b)
export.export_tflite(model, path, "float32", metadata=True)
"""


def kill_export_at(stage: str, path) -> None:
    """Runs an export of a tiny model into `path` and kills it (-9) at `stage`."""
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, stage, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout.readline().strip() == "ready", "the export reached its stage"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_a_killed_export_leaves_no_model_that_segment_would_use(tmp_path, capsys):
    import keras

    from backdrop.cli import main
    from backdrop.runtime.contract import ModelFileError, read_contract
    from backdrop.ship.export import export_tflite

    # Killed while the metadata is written: no final-named model at all.
    path = tmp_path / "model_float32.tflite"
    kill_export_at("metadata", path)
    assert not path.exists() and not (tmp_path / "model_float32.tflite.json").exists()

    # A finished export carries its sha256; killed between the new contract and the rename,
    # the old model beside the new contract is refused by segment, in one line.
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(1, "sigmoid")(inputs))
    export_tflite(model, path, "float32")
    assert len(read_contract(path)["sha256"]) == 64
    Segmenter(path)  # the file its contract names
    kill_export_at("rename", path)
    with pytest.raises(ModelFileError, match="sha256 differs"):
        Segmenter(path)
    picture = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(picture)
    out = tmp_path / "out.png"
    assert main(["segment", str(path), "-i", str(picture), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "export it again" in err, err
    assert not out.exists()
