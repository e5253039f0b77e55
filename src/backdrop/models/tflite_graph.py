"""Reads a `.tflite` file into plain Python: its operators in order and its constant tensors as
float32 arrays (float16 weights widened, int8 weights de-quantized per channel).

TensorFlow-free: it parses the flatbuffer with the schema module that ships in ai-edge-litert (or
TensorFlow's copy). The importers (`backdrop.models.tflite_import`, `backdrop.models.encoders`)
build Keras models from what it returns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

CUSTOM = 32  # BuiltinOperator.CUSTOM
# TFLite fused activations -> Keras activation names.
FUSED_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6", 4: "tanh"}
PADDINGS = {0: "same", 1: "valid"}  # Padding.SAME, Padding.VALID


class TFLiteFormatError(ValueError):
    """The file is not a TFLite model, or not one this importer knows."""


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:  # the training install has TensorFlow's copy of the same module
        from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor of the graph; `data` is set for constants (float32, or int32 for shapes)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Operator:
    """One operator: its kind ("CONV_2D", or "CUSTOM:Name"), tensor indices and options."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """The first subgraph of a `.tflite` file, with de-quantize operators of constants folded."""

    path: Path
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def constant(self, index: int) -> np.ndarray:
        data = self.tensors[index].data
        if data is None:
            raise TFLiteFormatError(
                f"{self.path}: tensor {self.tensors[index].name} is not constant"
            )
        return data

    def kinds(self) -> list[str]:
        return [op.kind for op in self.operators]

    def parameter_count(self) -> int:
        """Number of float weights the operators read (shape constants left out)."""
        used = {index for op in self.operators for index in op.inputs if index >= 0}
        return sum(
            self.tensors[i].data.size
            for i in used
            if self.tensors[i].data is not None and self.tensors[i].data.dtype == np.float32
        )


def _dequantize(tensor, raw: np.ndarray, shape: tuple[int, ...], type_name: str) -> np.ndarray:
    """Constant buffer bytes -> float32 (or int32 for integer tensors that are not quantized)."""
    dtypes = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8}
    dtypes |= {"INT32": np.int32, "INT64": np.int64}
    if type_name not in dtypes:
        raise TFLiteFormatError(f"constant tensor of type {type_name} is not supported")
    values = np.frombuffer(raw.tobytes(), dtype=dtypes[type_name]).reshape(shape)
    quantization = tensor.Quantization()
    scales = quantization.ScaleAsNumpy() if quantization and quantization.ScaleLength() else None
    if scales is None:
        return values.astype(np.float32) if values.dtype.kind == "f" else values.astype(np.int32)
    zero_points = quantization.ZeroPointAsNumpy()
    zero_points = zero_points if quantization.ZeroPointLength() else np.zeros_like(scales)
    axis = quantization.QuantizedDimension()
    broadcast = [1] * len(shape)
    if len(shape):
        broadcast[axis] = -1 if scales.size > 1 else 1
    scale = np.asarray(scales, np.float32).reshape(broadcast)
    zero = np.asarray(zero_points, np.float32).reshape(broadcast)
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


def _options(schema, op, kind: str) -> dict:
    """The options of `op` as a dict (only the operators the importers translate)."""
    table = op.BuiltinOptions()
    if kind.startswith("CUSTOM:"):
        raw = op.CustomOptionsAsNumpy()
        return {"custom": np.asarray(raw, np.uint8).tobytes() if not isinstance(raw, int) else b""}
    if table is None:
        return {}
    readers = {
        "CONV_2D": (
            "Conv2DOptions",
            (
                "Padding",
                "StrideH",
                "StrideW",
                "FusedActivationFunction",
                "DilationHFactor",
                "DilationWFactor",
            ),
        ),
        "DEPTHWISE_CONV_2D": (
            "DepthwiseConv2DOptions",
            (
                "Padding",
                "StrideH",
                "StrideW",
                "FusedActivationFunction",
                "DepthMultiplier",
                "DilationHFactor",
                "DilationWFactor",
            ),
        ),
        "AVERAGE_POOL_2D": (
            "Pool2DOptions",
            (
                "Padding",
                "StrideH",
                "StrideW",
                "FilterHeight",
                "FilterWidth",
                "FusedActivationFunction",
            ),
        ),
        "ADD": ("AddOptions", ("FusedActivationFunction",)),
        "MUL": ("MulOptions", ("FusedActivationFunction",)),
        "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
        "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction",)),
        "RESIZE_BILINEAR": ("ResizeBilinearOptions", ("AlignCorners", "HalfPixelCenters")),
        "TRANSPOSE_CONV": (
            "TransposeConvOptions",
            ("Padding", "StrideH", "StrideW", "FusedActivationFunction"),
        ),
        "MEAN": ("ReducerOptions", ("KeepDims",)),
        "DEPTH_TO_SPACE": ("DepthToSpaceOptions", ("BlockSize",)),
    }
    if kind not in readers:
        return {}
    class_name, fields = readers[kind]
    options = getattr(schema, class_name)()
    options.Init(table.Bytes, table.Pos)
    return {field: getattr(options, field)() for field in fields}


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parses `path`.

    Raises:
        TFLiteFormatError: the file is missing or is not a TFLite flatbuffer.
    """
    path = Path(path)
    if not path.is_file():
        raise TFLiteFormatError(f"{path} not found")
    content = path.read_bytes()
    if content[4:8] != b"TFL3":
        raise TFLiteFormatError(f"{path} is not a TFLite model (no TFL3 identifier)")
    schema = _schema()
    model = schema.Model.GetRootAsModel(content, 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    tensors = []
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        data = None
        if not isinstance(raw, int) and raw.size:
            data = _dequantize(tensor, raw, shape, types[tensor.Type()])
        tensors.append(Tensor(tensor.Name().decode(), shape, types[tensor.Type()], data))
    operators = []
    for index in range(graph.OperatorsLength()):
        op = graph.Operators(index)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = f"CUSTOM:{code.CustomCode().decode()}" if builtin == CUSTOM else names[builtin]
        inputs = tuple(int(op.Inputs(i)) for i in range(op.InputsLength()))
        outputs = tuple(int(op.Outputs(i)) for i in range(op.OutputsLength()))
        if kind == "DEQUANTIZE" and tensors[inputs[0]].data is not None:
            # Float16 (or int8) weights widened once here: the Keras model holds float32.
            source = tensors[inputs[0]]
            tensors[outputs[0]] = dataclasses.replace(
                tensors[outputs[0]], data=source.data.astype(np.float32)
            )
            continue
        operators.append(Operator(kind, inputs, outputs, _options(schema, op, kind)))
    description = model.Description().decode() if model.Description() else ""
    return TFLiteGraph(
        path,
        tuple(tensors),
        tuple(operators),
        tuple(int(graph.Inputs(i)) for i in range(graph.InputsLength())),
        tuple(int(graph.Outputs(i)) for i in range(graph.OutputsLength())),
        description,
    )
