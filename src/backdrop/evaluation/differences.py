"""Paired differences of evaluate's per-image IoU against reference models, with bootstrap intervals.

Two models evaluated on the same pictures differ picture by picture; the mean of those differences
and a bootstrap interval over pictures say whether a lead or a loss is larger than the luck of
which pictures a set holds. Frames of one video are not independent pictures: they are resampled
in blocks of consecutive frames (a moving-block bootstrap), so a run of similar frames counts
about once. With few sequences the interval is still too narrow for what another video would
show; it describes these frames, not video in general.

TensorFlow-free (numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

CONFIDENCE = 0.95
ROUNDS = 10_000
FRAME_BLOCK = 10  # consecutive video frames resampled together


def bootstrap_interval(
    values: Sequence[float],
    sequences: Sequence[str | None] | None = None,
    block: int = FRAME_BLOCK,
    rounds: int = ROUNDS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The mean of `values` and a percentile bootstrap interval of it.

    Args:
        values: one value per picture, in the order the pictures were read.
        sequences: the video each picture belongs to (None for a still picture), the same length as
            `values`. Runs of `block` consecutive frames of one video are resampled together; still
            pictures one by one.
        block: frames per block; a video shorter than it is one block.
        rounds: bootstrap resamples.
        confidence: the share of resampled means inside the interval.
        seed: the resampling's seed (the interval is the same on every run).

    Returns:
        `(mean, low, high)`; all NaN when `values` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"),) * 3
    sequences = [None] * values.size if sequences is None else list(sequences)
    if len(sequences) != values.size:
        raise ValueError(f"{len(sequences)} sequence names for {values.size} values")
    blocks = _blocks(sequences, block)
    lengths = np.array([len(b) for b in blocks])
    # Enough blocks a resample to cover as many pictures as the set holds (on average).
    count = max(1, round(values.size / lengths.mean()))
    rng = np.random.default_rng(seed)
    drawn = rng.integers(len(blocks), size=(rounds, count))
    sums = np.array([values[b].sum() for b in blocks])
    means = sums[drawn].sum(axis=1) / lengths[drawn].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def _blocks(sequences: Sequence[str | None], block: int) -> list[np.ndarray]:
    """Index arrays: each still picture alone, and every run of `block` consecutive frames of a
    video (each video's frames in reading order; a video shorter than `block` is one run)."""
    if block < 1:
        raise ValueError(f"block must be at least 1, not {block}")
    videos: dict[str, list[int]] = {}
    blocks = []
    for index, sequence in enumerate(sequences):
        if sequence is None:
            blocks.append(np.array([index]))
        else:
            videos.setdefault(sequence, []).append(index)
    for frames in videos.values():
        run = min(block, len(frames))
        blocks.extend(
            np.array(frames[start : start + run]) for start in range(len(frames) - run + 1)
        )
    return blocks


def summarise(difference: np.ndarray, sequences: Sequence[str | None]) -> dict:
    """`{"mean", "low", "high", "wins", "losses"}` of per-picture IoU differences: the mean and
    its interval (`bootstrap_interval`), and the pictures ahead or behind by more than 0.001."""
    mean, low, high = bootstrap_interval(difference, sequences)
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "wins": int(np.count_nonzero(difference > 1e-3)),
        "losses": int(np.count_nonzero(difference < -1e-3)),
    }


def paired_differences(results: dict, references: Sequence[str | Path]) -> list[dict]:
    """Each model's per-image IoU minus each reference's, on every dataset, with its interval.

    Args:
        results: `evaluate()`'s results (per-image IoU in `image_ious`, videos in `sequences`).
        references: model paths as evaluated; each must be one of `results["models"]`.

    Returns:
        `[{"reference", "model", "datasets": {name: {"mean", "low", "high", "wins", "losses"}}}]`,
        one entry per (reference, other model) pair; wins and losses count the pictures where the
        model is ahead or behind by more than 0.001 IoU.
    """
    by_path = {str(Path(entry["model"]).resolve()): entry for entry in results["models"]}
    compared = []
    for reference in references:
        base = by_path.get(str(Path(reference).resolve()))
        if base is None:
            raise ValueError(f"reference {reference} is not one of the models evaluated")
        for entry in results["models"]:
            if entry is base:
                continue
            datasets = {}
            for name, summary in entry["datasets"].items():
                difference = np.subtract(
                    summary["image_ious"], base["datasets"][name]["image_ious"]
                )
                datasets[name] = summarise(difference, results["sequences"][name])
            compared.append(
                {"reference": base["model"], "model": entry["model"], "datasets": datasets}
            )
    return compared


def format_differences(results: dict, labels: dict[str, str]) -> str:
    """Markdown tables, one per reference: each model's IoU minus the reference's on each dataset,
    `+0.0035 (-0.0010, +0.0080) 60/45`: the mean, its interval, pictures won / lost. `labels` maps
    model paths to the names the results table uses."""
    differences = results.get("differences") or []
    if not differences:
        return ""
    names = list(differences[0]["datasets"])
    lines = []
    for reference in dict.fromkeys(d["reference"] for d in differences):
        lines += [
            "",
            f"IoU minus {labels[reference]}'s, picture by picture: mean "
            f"({CONFIDENCE:.0%} bootstrap interval over pictures; video frames in blocks of "
            f"{FRAME_BLOCK}) and pictures won / lost by more than 0.001",
            "",
            "| model | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for entry in differences:
            if entry["reference"] != reference:
                continue
            cells = [
                f"{d['mean']:+.4f} ({d['low']:+.4f}, {d['high']:+.4f}) {d['wins']}/{d['losses']}"
                for d in (entry["datasets"][name] for name in names)
            ]
            lines.append(f"| {labels[entry['model']]} | " + " | ".join(cells) + " |")
    return "\n" + "\n".join(lines)
