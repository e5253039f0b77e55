"""Side-by-side evaluation of segmentation .tflite models: IoU, boundary IoU, flicker, latency, size.

TensorFlow-free: readers + the runtime's Segmenter.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from backdrop.data.readers.base import Reader
from backdrop.data.split import VALIDATION_FRACTION, split_samples
from backdrop.evaluation.columns import by_column
from backdrop.evaluation.differences import paired_differences
from backdrop.evaluation.metrics import THRESHOLD, boundary_iou, flicker, iou, truth_and_valid

DATA_FORMATS = ("portrait", "davis", "coco", "voc", "supervisely")


class EvaluationError(RuntimeError):
    """Nothing could be evaluated; the message says why."""


def parse_data_spec(spec: str, mask_encoding: str = "auto") -> Reader:
    """`FORMAT:PATH` (COCO: `coco:PATH:SPLIT`, default val2017) -> a reader (negatives kept);
    `mask_encoding` applies to the formats that read mask files (portrait, davis)."""
    from backdrop.data.readers import create_reader

    kind, _, rest = spec.partition(":")
    if kind not in DATA_FORMATS or not rest:
        raise ValueError(
            f"data spec {spec!r} must be FORMAT:PATH with FORMAT one of {', '.join(DATA_FORMATS)} "
            "(COCO: coco:PATH:SPLIT)"
        )
    if kind == "coco":
        path, _, split = rest.partition(":")
        return create_reader("coco", path, split=split or "val2017", negatives=True)
    if kind == "voc":
        return create_reader("voc", rest, negatives=True)
    if kind in ("portrait", "davis"):
        return create_reader(kind, rest, mask_encoding=mask_encoding)
    return create_reader(kind, rest)


def dataset_labels(readers: Sequence[Reader]) -> list[str]:
    """How each dataset is named in the results: `FORMAT:PATH` as `--data` names it, COCO's with
    its split (two splits of one folder are two datasets). Raises ValueError if two readers
    name the same data."""
    labels = [
        f"{reader.source}:{reader.root}" + (f":{reader.split}" if reader.source == "coco" else "")
        for reader in readers
    ]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"the same data is given twice: {', '.join(twice)}")
    return labels


@dataclasses.dataclass
class ModelScores:
    """Per-image scores of one model on one dataset, plus flicker per sequence."""

    ious: list[float] = dataclasses.field(default_factory=list)
    boundary_ious: list[float] = dataclasses.field(default_factory=list)
    flickers: list[float] = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        return {
            "images": len(self.ious),
            "mean_iou": float(np.mean(self.ious)) if self.ious else float("nan"),
            "boundary_iou": float(np.mean(self.boundary_ious)) if self.ious else float("nan"),
            "flicker": float(np.mean(self.flickers)) if self.flickers else None,
            "image_ious": [float(value) for value in self.ious],
        }


@dataclasses.dataclass
class ReaderScores:
    """What `score_reader` found: each model's scores, each picture's video (None for a still)
    in reading order, the ground truth's flicker per video, and each model's seconds a picture."""

    models: list[ModelScores]
    sequences: list[str | None]
    truth_flickers: list[float]
    seconds: list[list[float]]


def score_reader(
    predictors: Sequence[Callable[[np.ndarray], np.ndarray]],
    reader: Reader,
    split: str | None,
    validation_fraction: float,
    progress: bool,
    visit: Callable | None = None,
    desc: str | None = None,
) -> ReaderScores:
    """Scores each predictor (an RGB uint8 image -> its person probability at the image's size)
    on the pictures of `reader`, the same pictures for all: IoU and boundary IoU per picture at
    0.5, flicker per video. `visit(sample, truth, predictions, count)` sees each picture."""
    found = ReaderScores([ModelScores() for _ in predictors], [], [], [[] for _ in predictors])
    videos: dict[str, list] = {}
    for sequence, sample in tqdm(
        split_samples(reader, split, validation_fraction),
        desc=desc or reader.source,
        unit="img",
        disable=not progress,
    ):
        truth, valid = truth_and_valid(sample.mask, sample.ignore)
        predictions = []
        for predict, seconds in zip(predictors, found.seconds, strict=True):
            began = time.perf_counter()
            predictions.append(predict(sample.image) >= THRESHOLD)
            seconds.append(time.perf_counter() - began)
        found.sequences.append(sequence)
        for scores, prediction in zip(found.models, predictions, strict=True):
            scores.ious.append(iou(prediction, truth, valid))
            scores.boundary_ious.append(boundary_iou(prediction, truth, valid))
        if sequence is not None:
            videos.setdefault(sequence, []).append((truth, predictions))
        if visit is not None:
            visit(sample, truth, predictions, len(found.sequences))
    for frames in videos.values():
        found.truth_flickers.append(flicker([truth for truth, _ in frames]))
        for m, scores in enumerate(found.models):
            scores.flickers.append(flicker([predictions[m] for _, predictions in frames]))
    return found


def overlay(image: np.ndarray, mask: np.ndarray, colour=(0, 255, 0)) -> np.ndarray:
    """The image with the mask tinted in and its outline drawn."""
    tinted = image.copy()
    tinted[mask] = (0.55 * image[mask] + 0.45 * np.array(colour)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(tinted, contours, -1, colour, 2)
    return tinted


def evaluate(
    model_paths: Sequence[str | Path],
    readers: Sequence[Reader],
    threads: int = 2,
    split: str | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    grid_path: str | Path | None = None,
    grid_rows: int = 6,
    progress: bool = True,
    references: Sequence[str | Path] = (),
) -> dict:
    """Evaluates every model on every dataset, the same images for all.

    IoU is computed at the original resolution: probability resized back (bilinear) and
    thresholded at 0.5, ignore pixels left out, averaged over images. Latency is the median of
    rounds over all the models, each timed in a fresh process of its own on the same threads, in
    alternating order (`isolated_latency_ms`). Each model is also compared with each of
    `references` (paths among `model_paths`) picture by picture (`paired_differences`).

    Returns:
        `{"models": [{"model", "size_bytes", "latency_ms", "datasets": {name: summary}}],
        "sequences": {name: [video of each picture, or None]}, "differences": [...], ...}`; a
        summary holds the per-image IoU (`image_ious`) in the order of `sequences`.
    """
    from backdrop.runtime.segmenter import Segmenter, isolated_latency_ms

    names = dataset_labels(readers)  # before any work: two of the same data is an error
    evaluated = {Path(path).resolve() for path in model_paths}
    for reference in references:
        if Path(reference).resolve() not in evaluated:
            raise ValueError(f"reference {reference} is not one of the models to evaluate")
    segmenters = [Segmenter(path, threads) for path in model_paths]
    grid: list[np.ndarray] = []

    def grid_row(sample, truth, predictions, count) -> None:
        # Every 10th image of each dataset, so the grid shows all of them.
        if grid_path and len(grid) < grid_rows and count % 10 == 1:
            grid.append(_grid_row(sample.image, truth, predictions))

    scored = [
        score_reader(segmenters, reader, split, validation_fraction, progress, visit=grid_row)
        for reader in readers
    ]
    _check_evaluated(readers, names, [len(s.sequences) for s in scored])
    if grid_path and grid:
        cv2.imwrite(str(grid_path), cv2.cvtColor(np.concatenate(grid, 0), cv2.COLOR_RGB2BGR))
    # Rounds: a busy moment of the machine slows every model, not one. Each model in a process of
    # its own: in one process, three copies of one file read up to 25% apart on the 2-core VM.
    latencies = np.median(isolated_latency_ms(model_paths, threads), axis=0)
    from backdrop.machine import measured

    results = {
        "measured": measured(),
        "threads": threads,
        "split": split or "all",
        "validation_fraction": validation_fraction if split else None,
        "models": [
            {
                "model": str(segmenter.model_path),
                "input": f"{segmenter.height}x{segmenter.width}",
                "size_bytes": segmenter.model_path.stat().st_size,
                "latency_ms": float(latencies[m]),
                "datasets": {
                    name: s.models[m].summary() for name, s in zip(names, scored, strict=True)
                },
            }
            for m, segmenter in enumerate(segmenters)
        ],
        "sequences": {name: s.sequences for name, s in zip(names, scored, strict=True)},
        "ground_truth_flicker": {
            name: float(np.mean(s.truth_flickers))
            for name, s in zip(names, scored, strict=True)
            if s.truth_flickers
        },
        "masks": {names[r]: reader.masks_read_as() for r, reader in enumerate(readers)},
        "skipped": {names[r]: reader.skipped for r, reader in enumerate(readers)},
    }
    results["differences"] = paired_differences(results, list(dict.fromkeys(references)))
    results["columns"] = by_column(results)
    return results


def _check_evaluated(readers: Sequence[Reader], names: list[str], counts: list[int]) -> None:
    """Raises `EvaluationError` when a dataset gave no picture: a row of nan beside the others
    would look like a result."""
    pairs = zip(names, readers, strict=True)
    reasons = {name: [reason for _, reason in reader.skipped] for name, reader in pairs}
    if not any(counts):
        every = [reason for name in names for reason in reasons[name]]
        skips = f": skipped {len(every)} pictures: {'; '.join(every[:3])}" if every else ""
        raise EvaluationError(
            f"no pictures were evaluated{skips}; check the --data paths and their layout (see "
            "`backdrop evaluate --help`)"
        )
    for name, count in zip(names, counts, strict=True):
        if not count:
            raise EvaluationError(
                f"no pictures of {name} were evaluated "
                f"({'; '.join(reasons[name][:3]) or 'none found'}); check its path and layout "
                "or leave it out of --data"
            )


def _grid_row(image: np.ndarray, truth: np.ndarray, predictions: list[np.ndarray]) -> np.ndarray:
    height = 180
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    tiles = [overlay(image, truth, (255, 200, 0))] + [overlay(image, p) for p in predictions]
    tiles = [cv2.resize(t, (width, height), interpolation=cv2.INTER_AREA) for t in tiles]
    row = np.concatenate(tiles, 1)
    target = 240 * (len(tiles))
    return cv2.resize(row, (target, height)) if row.shape[1] != target else row
