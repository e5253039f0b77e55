"""Reads a `.tflite` file into plain Python: its operators in order and its constant tensors as
float32 arrays (float16 weights widened, int8 weights de-quantized per channel).

TensorFlow-free, and a file is data: the flatbuffer is walked by checked accessors
(`backdrop.models.flatbuffer`) that bound every offset, vector length and string by the bytes
that are there, so a truncated or corrupt file is one `TFLiteFormatError` naming it. The schema
module that ships in ai-edge-litert (or TensorFlow's copy) gives only the enum names. The
importers (`backdrop.models.tflite_import`, `backdrop.models.encoders`) build Keras models from
what it returns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from backdrop.models.flatbuffer import Flatbuffer, Table, fits, indices

CUSTOM = 32  # BuiltinOperator.CUSTOM
# TFLite fused activations -> Keras activation names.
FUSED_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6", 4: "tanh"}
PADDINGS = {0: "same", 1: "valid"}  # Padding.SAME, Padding.VALID
# The options the importers read: operator -> (options table, its fields in schema slot order;
# None for a slot not read).
OPTIONS = {
    "CONV_2D": (
        "Conv2DOptions",
        ("Padding", "StrideW", "StrideH", "FusedActivationFunction")
        + ("DilationWFactor", "DilationHFactor"),
    ),
    "DEPTHWISE_CONV_2D": (
        "DepthwiseConv2DOptions",
        ("Padding", "StrideW", "StrideH", "DepthMultiplier", "FusedActivationFunction")
        + ("DilationWFactor", "DilationHFactor"),
    ),
    "AVERAGE_POOL_2D": (
        "Pool2DOptions",
        ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight", "FusedActivationFunction"),
    ),
    "ADD": ("AddOptions", ("FusedActivationFunction",)),
    "MUL": ("MulOptions", ("FusedActivationFunction",)),
    "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
    "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction",)),
    "RESIZE_BILINEAR": ("ResizeBilinearOptions", (None, None, "AlignCorners", "HalfPixelCenters")),
    "TRANSPOSE_CONV": (
        "TransposeConvOptions",
        ("Padding", "StrideW", "StrideH", "FusedActivationFunction"),
    ),
    "MEAN": ("ReducerOptions", ("KeepDims",)),
    "DEPTH_TO_SPACE": ("DepthToSpaceOptions", ("BlockSize",)),
}
BYTE_FIELDS = {"Padding": "<b", "FusedActivationFunction": "<b"}
BOOL_FIELDS = ("AlignCorners", "HalfPixelCenters", "KeepDims")
ONE_FIELDS = ("DilationWFactor", "DilationHFactor")  # default 1, the others 0
DTYPES = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT8": "i1", "UINT8": "u1", "INT32": "<i4"}
DTYPES["INT64"] = "<i8"


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


def _text(shape: tuple) -> str:
    """A shape for a one-line message, however many dimensions the file claims."""
    return f"shape {shape}" if len(shape) <= 8 else f"a shape of {len(shape)} dimensions"


def _printable(text: str) -> str:
    """A name from the file, fit for a one-line message."""
    return "".join(c if c.isprintable() else "?" for c in text[:80])


def _constant(
    buffer: Flatbuffer, table: Table, raw: bytes, shape: tuple, type_name: str, name: str
):
    """Constant buffer bytes -> float32 (or int32 for integer tensors that are not quantized)."""
    if type_name not in DTYPES:
        raise TFLiteFormatError(
            f"{buffer.path}: constant tensor {name} of type {type_name} is not supported"
        )
    if table.table(6) is not None:  # Tensor.sparsity: the buffer holds the non-zeros only
        raise TFLiteFormatError(f"{buffer.path}: sparse tensor {name} is not supported")
    dtype = np.dtype(DTYPES[type_name])
    if len(shape) > 16:  # numpy's own limit is 64; TFLite kernels stop at 6
        raise buffer.error(f"constant tensor {name} has {len(shape)} dimensions")
    if not fits(shape, dtype.itemsize, len(raw)):
        raise buffer.error(f"tensor {name} ({_text(shape)}) does not fit its {len(raw)} bytes")
    values = np.frombuffer(raw, dtype).reshape(shape)
    quantization = table.table(4)
    scales = quantization.numbers(2, "<f4") if quantization else np.zeros(0)
    if not scales.size:
        return values.astype(np.float32) if values.dtype.kind == "f" else values.astype(np.int32)
    zero_points = quantization.numbers(3, "<i8")
    axis = quantization.scalar(6, "<i")
    per_channel = scales.size > 1
    if zero_points.size not in (0, scales.size) or (
        per_channel and not (0 <= axis < len(shape) and shape[axis] == scales.size)
    ):
        raise buffer.error(f"tensor {name}: its quantization does not fit its {_text(shape)}")
    broadcast = [1] * len(shape)
    if per_channel:
        broadcast[axis] = -1
    scale = scales.astype(np.float32).reshape(broadcast)
    zero = (zero_points if zero_points.size else np.zeros(scales.size)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # a scale of inf is the file's to answer
        return ((values.astype(np.float32) - zero.reshape(broadcast)) * scale).astype(np.float32)


def _options(buffer: Flatbuffer, op: Table, kind: str, where: str, union_types) -> dict:
    """The options of `op` as a dict (only the operators the importers translate; the schema's
    defaults where the file leaves them out)."""
    if kind.startswith("CUSTOM:"):
        return {"custom": op.bytes(5)}
    if kind not in OPTIONS:
        return {}
    class_name, fields = OPTIONS[kind]
    table = op.table(4)
    if table is not None and op.scalar(3, "<B") != getattr(union_types, class_name):
        raise buffer.error(f"{where} carries options of another operator")
    options = {}
    for slot, field in enumerate(fields):
        if field is None:
            continue
        fmt = "<?" if field in BOOL_FIELDS else BYTE_FIELDS.get(field, "<i")
        default = 1 if field in ONE_FIELDS else (False if field in BOOL_FIELDS else 0)
        options[field] = default if table is None else table.scalar(slot, fmt, default)
    if options.get("Padding", 0) not in PADDINGS:
        raise buffer.error(f"{where} has padding {options['Padding']}, neither SAME nor VALID")
    return options


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parses `path`.

    Raises:
        TFLiteFormatError: the file is missing, is not a TFLite flatbuffer, or is truncated or
            corrupt (one line naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise TFLiteFormatError(f"{path} not found")
    content = path.read_bytes()
    if content[4:8] != b"TFL3":
        raise TFLiteFormatError(f"{path} is not a TFLite model (no TFL3 identifier)")
    buffer = Flatbuffer(content, path, TFLiteFormatError, "TFLite model")
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = buffer.table(buffer.read("<I", 0))
    subgraphs, codes, buffers = model.tables(2), model.tables(1), model.tables(4)
    if not subgraphs:
        raise buffer.error("no subgraph")
    graph = subgraphs[0]
    tensors = []
    for index, table in enumerate(graph.tables(0)):
        name = table.string(3) or f"tensor_{index}"
        shape = tuple(int(v) for v in table.numbers(0, "<i4"))
        type_code = table.scalar(1, "<b")
        type_name = types.get(type_code, f"TYPE_{type_code}")
        shown = f"{index} ({_printable(name)})"  # in messages
        raw = _buffer_bytes(buffer, buffers, table.scalar(2, "<I"), shown)
        data = _constant(buffer, table, raw, shape, type_name, shown) if raw else None
        tensors.append(Tensor(name, shape, type_name, data))
    operators = []
    for index, op in enumerate(graph.tables(3)):
        opcode = op.scalar(0, "<I")
        if opcode >= len(codes):
            raise buffer.error(f"operator {index} has operator code {opcode} of {len(codes)}")
        code = codes[opcode]
        builtin = max(code.scalar(0, "<b"), code.scalar(3, "<i"))
        kind = names.get(builtin, f"UNKNOWN_{builtin}")
        if builtin == CUSTOM:
            kind = f"CUSTOM:{code.string(1) or ''}"
        where = f"operator {index} ({_printable(kind)})"
        inputs = indices(buffer, op.numbers(1, "<i4"), len(tensors), where)
        outputs = indices(buffer, op.numbers(2, "<i4"), len(tensors), where, least=0)
        constant = inputs and inputs[0] >= 0 and tensors[inputs[0]].data is not None
        if kind == "DEQUANTIZE" and constant and outputs:
            # Float16 (or int8) weights widened once here: the Keras model holds float32.
            source = tensors[inputs[0]]
            tensors[outputs[0]] = dataclasses.replace(
                tensors[outputs[0]], data=source.data.astype(np.float32, copy=False)
            )
            continue
        options = _options(buffer, op, kind, where, schema.BuiltinOptions)
        operators.append(Operator(kind, inputs, outputs, options))
    inputs = indices(buffer, graph.numbers(1, "<i4"), len(tensors), "the graph", least=0)
    outputs = indices(buffer, graph.numbers(2, "<i4"), len(tensors), "the graph", least=0)
    if not inputs or not outputs:
        raise buffer.error("its graph has no input or no output")
    description = model.string(3) or ""
    return TFLiteGraph(path, tuple(tensors), tuple(operators), inputs, outputs, description)


def _buffer_bytes(buffer: Flatbuffer, buffers: list[Table], index: int, name: str) -> bytes:
    """The bytes of buffer `index` (empty for none): in the flatbuffer, or after it in files
    past 2 GB."""
    if index >= len(buffers):
        if index == 0:  # the empty sentinel, left out
            return b""
        raise buffer.error(f"tensor {name} names buffer {index} of {len(buffers)}")
    table = buffers[index]
    data = table.bytes(0)
    offset, size = table.scalar(1, "<Q"), table.scalar(2, "<Q")
    if not data and offset > 1:
        if offset + size > len(buffer.content):
            raise buffer.error(f"buffer {index} runs past the end")
        buffer.charge(size)
        data = buffer.content[offset : offset + size]
    return data
