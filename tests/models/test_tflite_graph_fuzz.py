"""The .tflite reader on broken files: truncated, bit-flipped, overwritten or lying about its own
sizes, a file is read or refused with one TFLiteFormatError naming it, never anything else."""

from __future__ import annotations

import tempfile
from pathlib import Path

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.models.tflite_graph import TFLiteFormatError, read_tflite
from tests.tiny_models import TINY, TINY_MODELS

TINY_FILES = {name: (TINY / file).read_bytes() for name, file in TINY_MODELS.items()}
# Words a corrupt offset or length likes to take.
LYING_WORDS = [
    b"\xff\xff\xff\x7f",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x80",
    bytes(4),
    b"\x01\0\0\0",
]


def _read_or_refuse(folder: Path, content: bytes) -> None:
    """read_tflite either reads `content` or raises one line naming the file."""
    path = folder / "broken model.tflite"
    path.write_bytes(content)
    try:
        graph = read_tflite(path)
    except TFLiteFormatError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message, message
    else:  # what the importers read first is there
        assert graph.tensor(graph.inputs[0]).shape is not None and graph.parameter_count() >= 0


@st.composite
def broken(draw) -> bytes:
    """One tiny model, truncated, bit-flipped, overwritten or given lying 32-bit words."""
    content = bytearray(TINY_FILES[draw(st.sampled_from(sorted(TINY_FILES)))])
    size = len(content)
    how = draw(st.sampled_from(["truncate", "flip", "overwrite", "lie"]))
    if how == "truncate":
        return bytes(content[: draw(st.integers(0, size - 1))])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, size - 4))
        if how == "flip":
            content[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "overwrite":
            content[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        else:
            content[at : at + 4] = draw(st.sampled_from(LYING_WORDS))
    return bytes(content)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_a_broken_file_is_read_or_refused_in_one_line(content):
    with tempfile.TemporaryDirectory() as folder:
        _read_or_refuse(Path(folder), content)


def test_every_truncation_is_refused_in_one_line(tmp_path):
    content, path = TINY_FILES["int8"], tmp_path / "cut.tflite"
    for end in range(0, len(content), 3):
        path.write_bytes(content[:end])
        with pytest.raises(TFLiteFormatError, match="cut.tflite"):
            read_tflite(path)


def _model(copies: int, shape: list[int], data: bytes) -> bytes:
    """A one-tensor model whose tensors vector names the same tensor `copies` times."""
    builder = flatbuffers.Builder(1024)
    name = builder.CreateString("weights")
    schema.TensorStartShapeVector(builder, len(shape))
    for dimension in reversed(shape):
        builder.PrependInt32(dimension)
    shape_vector = builder.EndVector()
    schema.TensorStart(builder)
    schema.TensorAddShape(builder, shape_vector)
    schema.TensorAddType(builder, schema.TensorType.FLOAT32)
    schema.TensorAddBuffer(builder, 1 if data else 0)
    schema.TensorAddName(builder, name)
    tensor = schema.TensorEnd(builder)
    schema.SubGraphStartTensorsVector(builder, copies)
    for _ in range(copies):
        builder.PrependUOffsetTRelative(tensor)
    tensors = builder.EndVector()
    indices = []
    for _ in range(2):
        schema.SubGraphStartInputsVector(builder, 1)
        builder.PrependInt32(0)
        indices.append(builder.EndVector())
    schema.SubGraphStart(builder)
    schema.SubGraphAddTensors(builder, tensors)
    schema.SubGraphAddInputs(builder, indices[0])
    schema.SubGraphAddOutputs(builder, indices[1])
    subgraph = schema.SubGraphEnd(builder)
    payload = builder.CreateByteVector(data)
    buffers = []
    for vector in (None, payload):
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        buffers.append(schema.BufferEnd(builder))
    vectors = []
    for items in ([subgraph], buffers):
        builder.StartVector(4, len(items), 4)
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        vectors.append(builder.EndVector())
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddSubgraphs(builder, vectors[0])
    schema.ModelAddBuffers(builder, vectors[1])
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_hand_built_model_reads(tmp_path):
    (tmp_path / "m.tflite").write_bytes(_model(1, [2, 2], bytes(16)))
    graph = read_tflite(tmp_path / "m.tflite")
    assert graph.tensor(0).shape == (2, 2) and graph.constant(0).sum() == 0


@pytest.mark.parametrize(
    ("copies", "shape", "data", "reason"),
    [
        (1, [2**31 - 1] * 4, bytes(4), "does not fit its 4 bytes"),  # no 2**124-element array
        (1, [-1, 4], bytes(16), "does not fit"),
        (1, [1] * 4000, bytes(4), "has 4000 dimensions"),
        (1, [2] * 12, bytes(8), "a shape of 12 dimensions\\) does not fit its 8 bytes"),
        # 4000 tensors read the same 4000-long shape, or 16 kB buffer: quadratic unless bounded.
        (4000, [1] * 4000, b"", "overlap"),
        (4000, [4000], bytes(16_000), "overlap"),
    ],
)
def test_sizes_are_bounded_by_the_bytes_that_are_there(tmp_path, copies, shape, data, reason):
    (tmp_path / "m.tflite").write_bytes(_model(copies, shape, data))
    with pytest.raises(TFLiteFormatError, match=reason):
        read_tflite(tmp_path / "m.tflite")
