"""TFLite metadata in every exported model, so MediaPipe Tasks' ImageSegmenter and Android Studio's
ML model binding load it unchanged.

The writer is MediaPipe's own (`mediapipe.tasks.python.metadata.metadata_writers.image_segmenter`,
mediapipe 0.10.21: later wheels ship it without its native half). That mediapipe pins numpy<2 and
protobuf<5, which TensorFlow 2.21 cannot live with, so it runs in an interpreter of its own:
`BACKDROP_MEDIAPIPE_PYTHON`, else this interpreter if it has the writer, else the source checkout's
`.venv-mediapipe` (`make mediapipe` creates it; `make test` and CI do). This module is that
interpreter's entry point too (`python -m backdrop.ship.metadata write MODEL INFO`), so it imports
nothing beyond the standard library and mediapipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from unittest import mock

MEDIAPIPE_VERSION = "0.10.21"
HELPER_VENV = Path(__file__).resolve().parents[3] / ".venv-mediapipe"
LABEL = "person"
AUTHOR = "Backdrop"
LICENCE = (
    "The weights' licence follows the data they were trained on and the model they started "
    "from; see the model card beside this file."
)


class MetadataError(RuntimeError):
    """The metadata could not be written; the message says why and how to fix it."""


def _has_writer() -> bool:
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import image_segmenter  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or a wheel without its native half
        return False
    return True


def writer_python() -> str | None:
    """The interpreter that can run MediaPipe's metadata writer, or None."""
    configured = os.environ.get("BACKDROP_MEDIAPIPE_PYTHON")
    if configured:
        return configured
    if _has_writer():
        return sys.executable
    helper = HELPER_VENV / "bin" / "python"
    return str(helper) if helper.is_file() else None


def describe(mode: str, quantized_input: bool, version: str, description: str) -> dict:
    """What goes into a model's metadata (also recorded in its JSON contract).

    Float inputs take camera bytes normalised with mean 0 and std 255 (so 0..255 becomes 0..1);
    a uint8 input takes the bytes as they are (mean 0, std 1), its quantization doing the rest.
    """
    return {
        "name": f"Backdrop person segmenter ({mode})",
        "version": version,
        "author": AUTHOR,
        "licenses": LICENCE,
        "description": description,
        "input_normalization": {"mean": [0.0], "std": [1.0 if quantized_input else 255.0]},
        "color_space": "RGB",
        "labels": [LABEL],
        "activation": "none (the output is already a probability)",
        "writer": f"mediapipe {MEDIAPIPE_VERSION} metadata_writers.image_segmenter",
    }


def write_metadata(model: str | Path, info: dict) -> None:
    """Writes `info` (see `describe`) into the .tflite at `model`, in place (atomically).

    Raises:
        MetadataError: no interpreter with MediaPipe's writer, or the writer failed.
    """
    python = writer_python()
    if python is None:
        raise MetadataError(
            f"cannot write TFLite metadata into {model}: MediaPipe's metadata writer is not "
            f"installed; run `make mediapipe` (a .venv-mediapipe with mediapipe=={MEDIAPIPE_VERSION}"
            ") or set BACKDROP_MEDIAPIPE_PYTHON to a Python that has it"
        )
    result = _in_writer(python, "write", str(model), json.dumps(info))
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise MetadataError(f"MediaPipe's metadata writer failed on {model}: {last}")


class _ZipEpoch:
    """The clock `zipfile` reads while the writer packs labels.txt after the model: every
    entry dated 1980-01-01 (zip's first date), so the same model and metadata give the same
    bytes. With the real clock the export of one checkpoint differed run to run in the two
    date bytes of labels.txt."""

    @staticmethod
    def time() -> float:
        return 0.0

    @staticmethod
    def localtime(seconds: float | None = None) -> time.struct_time:
        return time.struct_time((1980, 1, 1, 0, 0, 0, 1, 1, 0))


def _write(model: Path, info: dict) -> None:
    """In the writer's interpreter: MediaPipe's image segmenter writer, plus the general fields
    its `create` leaves out (version, author, licence, our description)."""
    from mediapipe.tasks.python.metadata.metadata_writers import (
        image_segmenter,
        metadata_info,
        metadata_writer,
    )

    writer = image_segmenter.MetadataWriter.create(
        bytearray(model.read_bytes()),
        info["input_normalization"]["mean"],
        info["input_normalization"]["std"],
        labels=metadata_writer.Labels().add(info["labels"]),
        activation=image_segmenter.Activation.NONE,
    )
    writer.writer._general_md = metadata_info.GeneralMd(  # noqa: SLF001 - no public setter
        name=info["name"],
        version=info["version"],
        description=info["description"],
        author=info["author"],
        licenses=info["licenses"],
    )
    with mock.patch.object(zipfile, "time", _ZipEpoch):
        data, _ = writer.populate()
    temporary = model.with_name(f".{model.name}.tmp{model.suffix}")
    temporary.write_bytes(data)
    os.replace(temporary, model)


def read_metadata(model: str | Path) -> dict:
    """The metadata of a .tflite as JSON (in the writer's interpreter; for tests and reports)."""
    python = writer_python()
    if python is None:
        raise MetadataError("MediaPipe's metadata reader is not installed (see write_metadata)")
    result = _in_writer(python, "read", str(model))
    if result.returncode != 0:
        raise MetadataError(f"cannot read the metadata of {model}: {result.stderr.strip()}")
    return json.loads(result.stdout)


def _in_writer(python: str, *arguments: str) -> subprocess.CompletedProcess:
    """This module run as a program in the writer's interpreter, Backdrop's source on its path."""
    source = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [python, "-m", "backdrop.ship.metadata", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": source},
    )


def _read(model: Path) -> str:
    from mediapipe.tasks.python.metadata import metadata

    displayer = metadata.MetadataDisplayer.with_model_file(str(model))
    return displayer.get_metadata_json()


if __name__ == "__main__":
    command, path = sys.argv[1], Path(sys.argv[2])
    if command == "write":
        _write(path, json.loads(sys.argv[3]))
    else:
        print(_read(path))
