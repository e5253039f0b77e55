"""Any reader -> a Portrait folder (images/ + masks/ [+ ignore/]), e.g. Supervise.ly Person."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np

from backdrop.data.parallel import log, one_opencv_thread, parallel_map
from backdrop.data.readers.base import Reader, printable
from backdrop.data.records import quantize_mask
from backdrop.outputs import OutputError, OutputFolder, write_atomic

SUMMARY = "conversion.json"
FOLDERS = ("images/", "masks/", "ignore/")

_reader: Reader | None = None
_destination: Path | None = None


def _init_worker(reader: Reader, destination: Path) -> None:
    global _reader, _destination
    _reader, _destination = reader, destination
    one_opencv_thread()  # one process per core already


def _write_png(path: Path, values: np.ndarray) -> None:
    ok, buffer = cv2.imencode(".png", values)
    assert ok, f"OpenCV failed to encode {path}"
    write_atomic(path, buffer.tobytes())


def _convert_one(key: str) -> tuple[str, str | None]:
    """Writes one sample's files; returns (key, None) or (key, reason it was skipped)."""
    sample, reason = _reader.load_or_reason(key)
    if reason is not None:
        return printable(key), reason
    # The mask and ignore files go first: an image only appears once its pair is complete.
    _write_png(_destination / "masks" / f"{sample.name}.png", quantize_mask(sample.mask))
    if sample.ignore is not None and sample.ignore.any():
        _write_png(_destination / "ignore" / f"{sample.name}.png", sample.ignore * np.uint8(255))
    image = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
    _write_png(_destination / "images" / f"{sample.name}.png", image)
    return key, None


def convert_to_portrait(
    reader: Reader,
    destination: str | Path,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Writes every usable sample of `reader` as a Portrait folder.

    Layout written: `images/NAME.png` (RGB, lossless), `masks/NAME.png` (8-bit, 255 = person,
    soft values kept), `ignore/NAME.png` (255 = ignore; only for samples that have ignore pixels),
    and `conversion.json` with counts and every skipped file with its reason. Every file is written
    under a temporary name and renamed, so an interrupted run leaves no half-written file.

    Returns:
        The summary written to `conversion.json`.
    """
    destination = Path(destination)
    workers = workers or os.cpu_count() or 1
    with OutputFolder(destination, "convert", "destination", reader.input_paths()) as folder:
        if folder.holds(SUMMARY):
            raise OutputError(
                f"{destination} already holds a conversion ({SUMMARY}); choose a new destination, "
                "or delete that folder to convert again"
            )
        # An interrupted conversion's files are Backdrop's: cleared, so two runs never mix.
        folder.clear_leftovers("|".join(re.escape(name) for name in (*FOLDERS, SUMMARY)))
        folder.claim(*FOLDERS, SUMMARY)
        return _convert(reader, destination, workers, progress)


def _convert(reader: Reader, destination: Path, workers: int, progress: bool) -> dict:
    started = time.perf_counter()
    keys = reader.keys()
    skipped = [{"file": file, "reason": reason} for file, reason in reader.skipped]
    converted = 0
    for key, reason in parallel_map(
        _convert_one, keys, workers, _init_worker, (reader, destination), progress
    ):
        if reason is None:
            converted += 1
        else:
            skipped.append({"file": key, "reason": reason})
            log(f"skipped {reason}")
    elapsed = time.perf_counter() - started
    summary = {
        "source": str(reader.root),
        "format": reader.source,
        "converted": converted,
        "skipped": skipped,
        "seconds": round(elapsed, 2),
    }
    write_atomic(destination / SUMMARY, json.dumps(summary, indent=2))
    return summary
