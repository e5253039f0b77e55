"""Runs a TensorFlow.js graph model (`model.json` + weight shards) with TensorFlow itself, without
the `tensorflowjs` package (whose pins fight TensorFlow 2.21's).

A TF.js graph model is a GraphDef in protobuf-JSON form whose constants live in the weight
shards, each weight raw or quantized (uint8/uint16 with min and scale, or float16). The loader
puts the constants back into the graph and rewrites the two fused operators the TF.js converter
makes that TensorFlow's CPU kernels do not run as such (`FusedDepthwiseConv2dNative`, and
`_FusedConv2D`) into the plain convolution, BiasAdd and activation they stand for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16}
ACTIVATIONS = {"Relu": "Relu", "Relu6": "Relu6", "Elu": "Elu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


class TFJSFormatError(ValueError):
    """The folder or file is not a TF.js graph model this loader can run."""


def _read_weights(folder: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a numpy array (de-quantized to its original dtype)."""
    weights = {}
    for group in manifest:
        data = b"".join((folder / name).read_bytes() for name in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(v) for v in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = entry.get("quantization")
            dtype = DTYPES.get(entry["dtype"])
            if dtype is None:
                raise TFJSFormatError(f"weight {entry['name']}: dtype {entry['dtype']} unsupported")
            if quantization:
                stored = np.dtype(quantization["dtype"])
                raw = np.frombuffer(data, stored, count, offset)
                offset += count * stored.itemsize
                if quantization["dtype"] == "float16":
                    values = raw.astype(np.float32)
                else:
                    values = raw * quantization["scale"] + quantization["min"]
                values = values.astype(dtype)
            else:
                values = np.frombuffer(data, dtype, count, offset)
                offset += count * np.dtype(dtype).itemsize
            weights[entry["name"]] = values.reshape(shape)
        if offset != len(data):
            raise TFJSFormatError(
                f"{folder}: weight shards hold {len(data)} bytes, the manifest {offset}"
            )
    return weights


def _unfuse(graph_def) -> None:
    """Rewrites TF.js fused convolutions into Conv2D/DepthwiseConv2dNative + BiasAdd (+ act)."""
    rewritten = []
    for node in graph_def.node:
        if node.op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            rewritten.append(node)
            continue
        fused = [s.decode() for s in node.attr["fused_ops"].list.s]
        if not fused or fused[0] != "BiasAdd" or any(op not in ACTIVATIONS for op in fused[1:]):
            raise TFJSFormatError(f"{node.name}: fused operations {fused} are not supported")
        convolution = tf.compat.v1.NodeDef()
        convolution.CopyFrom(node)
        convolution.name = f"{node.name}/convolution"
        convolution.op = "Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative"
        del convolution.input[2:]
        for key in ("fused_ops", "num_args", "epsilon", "leakyrelu_alpha", "num_host_args"):
            if key in convolution.attr:
                del convolution.attr[key]
        if convolution.op == "DepthwiseConv2dNative" and "use_cudnn_on_gpu" in convolution.attr:
            del convolution.attr["use_cudnn_on_gpu"]
        bias = tf.compat.v1.NodeDef(
            name=node.name if len(fused) == 1 else f"{node.name}/bias",
            op="BiasAdd",
            input=[convolution.name, node.input[2]],
        )
        bias.attr["T"].CopyFrom(node.attr["T"])
        bias.attr["data_format"].CopyFrom(node.attr["data_format"])
        rewritten += [convolution, bias]
        if len(fused) == 2:
            activation = tf.compat.v1.NodeDef(name=node.name, op=fused[1], input=[bias.name])
            activation.attr["T"].CopyFrom(node.attr["T"])
            rewritten.append(activation)
    del graph_def.node[:]
    graph_def.node.extend(rewritten)


class TFJSGraphModel:
    """A TF.js graph model, runnable by signature names.

    Args:
        path: `model.json`, or the folder holding it.

    Raises:
        TFJSFormatError: not a TF.js graph model, or missing weight shards (one line).
    """

    def __init__(self, path: str | Path):
        from google.protobuf import json_format

        path = Path(path)
        model_json = path / "model.json" if path.is_dir() else path
        if not model_json.is_file():
            raise TFJSFormatError(f"{model_json} not found: expected a TF.js model.json")
        try:
            description = json.loads(model_json.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TFJSFormatError(f"{model_json} is not JSON ({error})") from None
        if description.get("format") != "graph-model" or "modelTopology" not in description:
            raise TFJSFormatError(
                f"{model_json} is not a TF.js graph model (format {description.get('format')!r})"
            )
        try:
            weights = _read_weights(model_json.parent, description.get("weightsManifest", []))
        except FileNotFoundError as error:
            raise TFJSFormatError(f"weight shard missing beside {model_json}: {error}") from None
        graph_def = json_format.ParseDict(
            description["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True
        )
        for node in graph_def.node:
            if node.op == "Const" and node.name in weights:
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
        _unfuse(graph_def)
        self.signature = description.get("signature", {})
        self.source = model_json
        self.description = description
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)

    def _tensor_name(self, name: str, kind: str) -> str:
        entries = self.signature.get(kind, {})
        if name in entries:
            return entries[name]["name"]
        if f"{name}:0" in entries:
            return entries[f"{name}:0"]["name"]
        return name if ":" in name else f"{name}:0"

    def run(self, outputs: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Runs the graph; names are signature names (`"pha"`, `"src"`) or tensor names."""
        feed = {self._tensor_name(name, "inputs"): value for name, value in inputs.items()}
        fetches = [self._tensor_name(name, "outputs") for name in outputs]
        return self.session.run(fetches, feed)

    def close(self) -> None:
        self.session.close()
