"""Runs a TensorFlow.js graph model (`model.json` + weight shards) with TensorFlow itself, without
the `tensorflowjs` package (whose pins fight TensorFlow 2.21's).

A TF.js graph model is a GraphDef in protobuf-JSON form whose constants live in the weight
shards, each weight raw or quantized (uint8/uint16 with min and scale, or float16). The loader
puts the constants back into the graph and rewrites the two fused operators the TF.js converter
makes that TensorFlow's CPU kernels do not run as such (`FusedDepthwiseConv2dNative`, and
`_FusedConv2D`) into the plain convolution, BiasAdd and activation they stand for.

The files are data: model.json is checked field by field, each shard it names must lie in its
folder (links followed) and the shards must hold exactly the bytes the manifest describes before
any is read; anything malformed, or a graph TensorFlow refuses, is one `TFJSFormatError` naming
the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from backdrop.tf_setup import import_tensorflow

tf = import_tensorflow()

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16}
QUANTIZED = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
ACTIVATIONS = {"Relu": "Relu", "Relu6": "Relu6", "Elu": "Elu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}
MAX_RANK = 16  # dimensions of one weight


class TFJSFormatError(ValueError):
    """The folder or file is not a TF.js graph model this loader can run."""


def _shown(value) -> str:
    """A value from the file, short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _reason(error: BaseException) -> str:
    """The first line of a library's error message."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _is_number(value) -> bool:
    """A finite JSON number (not true/false, not an integer past float's range)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return abs(value) < 1e300  # False for NaN


def _shard(model_json: Path, name) -> Path:
    """The weight shard `name` beside `model_json`, refused unless it stays in that folder."""
    where = f"{model_json}: weightsManifest path {_shown(name)}"
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        raise TFJSFormatError(f"{where} is not a file name")
    relative = PurePosixPath(name)
    if relative.is_absolute() or PureWindowsPath(name).anchor or ".." in relative.parts:
        raise TFJSFormatError(f"{where} leaves its folder; shards must lie beside model.json")
    if "\\" in name:
        raise TFJSFormatError(f"{where} holds a backslash; use / between folders")
    folder = model_json.parent.resolve()
    try:
        resolved = (folder / relative).resolve()
    except (OSError, RuntimeError) as error:  # a link loop
        raise TFJSFormatError(f"{where} cannot be resolved ({_reason(error)})") from None
    if not resolved.is_relative_to(folder):
        raise TFJSFormatError(f"{where} leads outside {folder} through a link")
    if not resolved.is_file():
        raise TFJSFormatError(f"weight shard missing beside {model_json}: {name}")
    return resolved


def _weight(model_json: Path, entry) -> tuple[str, list[int], type, dict | None]:
    """One checked weightsManifest entry: name, shape, dtype and quantization (or None)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise TFJSFormatError(f"{model_json}: weight {_shown(entry)} has no name")
    name, shape, dtype = entry["name"], entry.get("shape"), entry.get("dtype")
    where = f"{model_json}: weight {_shown(name)}"
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise TFJSFormatError(f"{where}: shape {_shown(shape)} is not a list of sizes")
    if not all(type(size) is int and size >= 0 for size in shape):
        raise TFJSFormatError(f"{where}: shape {_shown(shape)} is not a list of sizes")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise TFJSFormatError(f"{where}: dtype {_shown(dtype)} unsupported")
    quantization = entry.get("quantization") or None
    if quantization is not None:
        stored = quantization.get("dtype") if isinstance(quantization, dict) else None
        if not isinstance(stored, str) or stored not in QUANTIZED:
            raise TFJSFormatError(f"{where}: quantization {_shown(quantization)} unsupported")
        if stored != "float16" and not all(
            _is_number(quantization.get(key)) for key in ("scale", "min")
        ):
            raise TFJSFormatError(f"{where}: {stored} quantization needs numbers scale and min")
    return name, shape, DTYPES[dtype], quantization


def _byte_count(shape: list[int], itemsize: int, limit: int) -> int:
    """The bytes of a weight, or limit + 1 as soon as it passes `limit` (no huge products)."""
    count = itemsize
    for size in shape:
        count *= size
        if count > limit:
            return limit + 1
    return count


def _read_weights(model_json: Path, manifest) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a numpy array (de-quantized to its original dtype). Every
    path and entry is checked, and each group's shard sizes against its entries, first."""
    if not isinstance(manifest, list):
        raise TFJSFormatError(f"{model_json}: weightsManifest is not a list")
    groups, seen = [], set()
    for group in manifest:
        if not isinstance(group, dict) or not all(
            isinstance(group.get(key), list) for key in ("paths", "weights")
        ):
            raise TFJSFormatError(f"{model_json}: a weightsManifest group lacks paths or weights")
        shards = [_shard(model_json, name) for name in group["paths"]]
        if seen & set(shards) or len(set(shards)) < len(shards):
            raise TFJSFormatError(f"{model_json}: weightsManifest names a shard twice")
        seen |= set(shards)
        entries = [_weight(model_json, entry) for entry in group["weights"]]
        size = sum(shard.stat().st_size for shard in shards)
        wanted = 0
        for _, shape, dtype, quantization in entries:
            stored = np.dtype(QUANTIZED[quantization["dtype"]] if quantization else dtype)
            wanted += _byte_count(shape, stored.itemsize, size - wanted)
            if wanted > size:
                break
        if wanted != size:
            names = ", ".join(shard.name for shard in shards)
            raise TFJSFormatError(
                f"{model_json}: weight shards {names} hold {size} bytes; its manifest describes "
                f"{'more' if wanted > size else wanted}"
            )
        groups.append((shards, entries, size))
    weights = {}
    for shards, entries, size in groups:
        data = b"".join(shard.read_bytes() for shard in shards)
        if len(data) != size:
            raise TFJSFormatError(f"{model_json}: its weight shards changed while read")
        offset = 0
        for name, shape, dtype, quantization in entries:
            stored = np.dtype(QUANTIZED[quantization["dtype"]] if quantization else dtype)
            count = math.prod(shape)
            values = np.frombuffer(data, stored, count, offset)
            offset += count * stored.itemsize
            if quantization and quantization["dtype"] != "float16":
                # In floats whatever JSON gave: an integer scale would keep uint8 and wrap.
                scale, low = float(quantization["scale"]), float(quantization["min"])
                values = values.astype(np.float64) * scale + low
            weights[name] = values.astype(dtype, copy=False).reshape(shape)
    return weights


def _unfuse(graph_def) -> None:
    """Rewrites TF.js fused convolutions into Conv2D/DepthwiseConv2dNative + BiasAdd (+ act)."""
    rewritten = []
    for node in graph_def.node:
        if node.op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            rewritten.append(node)
            continue
        fused = [s.decode("utf-8", "replace") for s in node.attr["fused_ops"].list.s]
        if not fused or fused[0] != "BiasAdd" or any(op not in ACTIVATIONS for op in fused[1:]):
            raise TFJSFormatError(f"node {node.name}: fused operations {_shown(fused)} unsupported")
        if len(fused) > 2 or len(node.input) < 3:
            raise TFJSFormatError(f"node {node.name}: a fused convolution needs data, filter, bias")
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


def _signature(model_json: Path, signature) -> dict:
    """`signature` checked: {"inputs"|"outputs": {name: {"name": tensor name}}}."""
    if not isinstance(signature, dict):
        raise TFJSFormatError(f"{model_json}: signature is not an object")
    for kind in ("inputs", "outputs"):
        entries = signature.get(kind, {})
        if not isinstance(entries, dict) or not all(
            isinstance(entry, dict) and isinstance(entry.get("name"), str)
            for entry in entries.values()
        ):
            raise TFJSFormatError(f"{model_json}: signature {kind} are not {{name: {{name}}}}")
    return signature


def _graph(model_json: Path, topology, weights: dict[str, np.ndarray]):
    """The TensorFlow graph of `topology` with `weights` as its constants."""
    from google.protobuf import json_format

    if not isinstance(topology, dict):
        raise TFJSFormatError(f"{model_json}: modelTopology is not an object")
    try:
        graph_def = json_format.ParseDict(
            topology, tf.compat.v1.GraphDef(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as error:
        raise TFJSFormatError(
            f"{model_json}: modelTopology is no GraphDef ({_reason(error)})"
        ) from None
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
    try:
        _unfuse(graph_def)
    except TFJSFormatError as error:
        raise TFJSFormatError(f"{model_json}: {error}") from None
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
    except (ValueError, TypeError, KeyError, tf.errors.OpError) as error:
        raise TFJSFormatError(
            f"{model_json}: TensorFlow refuses its graph ({_reason(error)})"
        ) from None
    return graph


class TFJSGraphModel:
    """A TF.js graph model, runnable by signature names.

    Args:
        path: `model.json`, or the folder holding it.

    Raises:
        TFJSFormatError: not a TF.js graph model, malformed, a weight shard missing or outside
            the model's folder, or a graph TensorFlow refuses (one line naming the file).
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        model_json = path / "model.json" if path.is_dir() else path
        if not model_json.is_file():
            raise TFJSFormatError(f"{model_json} not found: expected a TF.js model.json")
        try:
            description = json.loads(model_json.read_bytes())
        except (ValueError, RecursionError) as error:  # bad bytes, syntax, or a 5000-digit number
            raise TFJSFormatError(f"{model_json} is not JSON ({_reason(error)})") from None
        if not isinstance(description, dict):
            raise TFJSFormatError(f"{model_json} is not a TF.js graph model (not an object)")
        kind = description.get("format")
        if kind != "graph-model" or "modelTopology" not in description:
            raise TFJSFormatError(
                f"{model_json} is not a TF.js graph model (format {_shown(kind)})"
            )
        self.signature = _signature(model_json, description.get("signature", {}))
        weights = _read_weights(model_json, description.get("weightsManifest", []))
        self.graph = _graph(model_json, description["modelTopology"], weights)
        self.source = model_json
        self.description = description
        for kind in ("inputs", "outputs"):
            for entry in self.signature.get(kind, {}).values():
                try:
                    self.graph.get_tensor_by_name(entry["name"])
                except (KeyError, ValueError):
                    raise TFJSFormatError(
                        f"{model_json}: signature names {_shown(entry['name'])}, which its graph "
                        "lacks"
                    ) from None
        self.session = tf.compat.v1.Session(graph=self.graph)

    def _tensor_name(self, name: str, kind: str) -> str:
        entries = self.signature.get(kind, {})
        if name in entries:
            return entries[name]["name"]
        if f"{name}:0" in entries:
            return entries[f"{name}:0"]["name"]
        return name if ":" in name else f"{name}:0"

    def run(self, outputs: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Runs the graph; names are signature names (`"pha"`, `"src"`) or tensor names.

        Raises:
            TFJSFormatError: TensorFlow fails running the file's graph (one line).
        """
        feed = {self._tensor_name(name, "inputs"): value for name, value in inputs.items()}
        fetches = [self._tensor_name(name, "outputs") for name in outputs]
        try:
            return self.session.run(fetches, feed)
        except (tf.errors.OpError, ValueError, KeyError) as error:  # a name, shape or kernel
            raise TFJSFormatError(
                f"{self.source}: TensorFlow fails running its graph ({_reason(error)})"
            ) from None

    def close(self) -> None:
        self.session.close()
