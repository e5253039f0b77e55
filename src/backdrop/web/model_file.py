"""The checks a model passes before `backdrop serve` publishes it: a refused model is one line
naming the file here, not a failure later in the browser."""

from __future__ import annotations

import struct
from pathlib import Path

from backdrop.runtime.contract import ModelFileError
from backdrop.web.errors import ServeError

FILE_IDENTIFIER = b"TFL3"  # a TFLite flatbuffer's identifier, at bytes 4..8
LARGEST_MODEL = 2**31 - 1  # a flatbuffer addresses at most 2 GiB


def read_model(model: Path) -> bytes:
    """The bytes of `model`, read once, after checking that they are a TFLite model that MediaPipe
    Tasks can run: a well-formed flatbuffer LiteRT loads, with TFLite metadata, and the file its
    contract (`MODEL.tflite.json`, if any) names.

    Raises:
        ServeError: one line naming the file and what to do.
    """
    if not model.is_file():
        raise ServeError(f"model {model} not found")
    if model.suffix != ".tflite":
        raise ServeError(f"{model} is not a .tflite model")
    size = model.stat().st_size
    if size > LARGEST_MODEL:
        raise ServeError(
            f"{model} is {size} bytes, more than a TFLite flatbuffer can address (2 GiB); give "
            "the .tflite that `backdrop export` wrote"
        )
    data = model.read_bytes()
    check_flatbuffer(model, data)
    check_loads(model, data)  # before the metadata: a truncated model has lost that too
    if b"TFLITE_METADATA" not in data:
        raise ServeError(
            f"{model} has no TFLite metadata, which MediaPipe Tasks needs; export it again "
            "with `backdrop export` (which writes it)"
        )
    return data


def check_flatbuffer(model: Path, data: bytes) -> None:
    """Raises `ServeError` unless `data` starts as a TFLite flatbuffer: the identifier, and a root
    table (offset at bytes 0..4) and its vtable inside the bytes."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ServeError(
            f"{model} is not a TFLite model (no {FILE_IDENTIFIER.decode()} identifier at bytes "
            "4..8): truncated or another format; export it again"
        )
    (root,) = struct.unpack_from("<I", data, 0)
    if not 8 <= root <= len(data) - 4:
        raise ServeError(
            f"{model} is truncated or corrupt: its root table offset {root} lies outside its "
            f"{len(data)} bytes; export it again"
        )
    (to_vtable,) = struct.unpack_from("<i", data, root)
    if not 0 <= root - to_vtable <= len(data) - 4:
        raise ServeError(
            f"{model} is truncated or corrupt: its root table's vtable lies outside its "
            f"{len(data)} bytes; export it again"
        )


def check_loads(model: Path, data: bytes) -> None:
    """Raises `ServeError` unless `data` is the file its contract names (if it has one) and
    LiteRT loads it and allocates its tensors (`runtime.segmenter.load_interpreter`, as segment
    and evaluate load models)."""
    try:
        from backdrop.runtime.segmenter import SegmenterError, load_interpreter

        load_interpreter(model, data)
    except ImportError:
        raise ServeError(
            f"ai-edge-litert is needed to check {model} before serving it; install it "
            "(`pip install 'backdrop[runtime]'`)"
        ) from None
    except ModelFileError as error:
        raise ServeError(str(error)) from None
    except SegmenterError as error:
        raise ServeError(f"{error}: truncated or corrupt; export it again") from None
