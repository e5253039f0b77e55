"""Evaluate's figures on each still set and each video sequence on its own.

A dataset's mean hides its parts: a model can win a set of videos on average and lose two of its
sequences. Here every still set is one column and every video sequence is another, each with each
model's IoU and, against each reference, the paired difference and its bootstrap interval over
that column's pictures alone (frames in blocks, as `differences` draws them). A verdict worded as
"ahead on every set and sequence" is read off these columns, not off the means.

TensorFlow-free (numpy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backdrop.evaluation.differences import CONFIDENCE, FRAME_BLOCK, summarise


def column_parts(results: dict) -> list[dict]:
    """`[{"label", "dataset", "sequence", "pictures"}]`: a still set as one column, each video
    of a dataset as one (its stills, if it holds both, as another); `pictures` indexes the
    dataset's per-picture scores, `sequence` is None for stills."""
    short = _short_names(list(results["sequences"]))
    parts = []
    for name, sequences in results["sequences"].items():
        videos = list(dict.fromkeys(s for s in sequences if s is not None))
        for video in videos:
            pictures = [i for i, s in enumerate(sequences) if s == video]
            parts.append(_part(f"{short[name]} {video}", name, video, pictures))
        stills = [i for i, s in enumerate(sequences) if s is None]
        if stills:
            label = f"{short[name]} stills" if videos else short[name]
            parts.append(_part(label, name, None, stills))
    return parts


def _part(label: str, dataset: str, sequence: str | None, pictures: list[int]) -> dict:
    return {"label": label, "dataset": dataset, "sequence": sequence, "pictures": pictures}


def _short_names(names: list[str]) -> dict[str, str]:
    """Each dataset by its folder's name (`portrait:../data/selfies` -> `selfies`), or in full
    where two share a folder name."""
    short = {name: Path(name.partition(":")[2] or name).name or name for name in names}
    taken = list(short.values())
    return {name: label if taken.count(label) == 1 else name for name, label in short.items()}


def by_column(results: dict) -> list[dict]:
    """Each column's pictures, each model's IoU on them, and each model minus each reference
    (`results["differences"]`'s pairs) with its interval, wins and losses.

    Returns:
        `[{"label", "dataset", "sequence", "images", "mean_iou": {model: iou},
        "differences": [{"model", "reference", "mean", "low", "high", "wins", "losses"}]}]`.
    """
    models = {entry["model"]: entry for entry in results["models"]}
    pairs = [(d["model"], d["reference"]) for d in results.get("differences") or []]
    columns = []
    for part in column_parts(results):
        name, pictures = part["dataset"], part["pictures"]
        sequences = [results["sequences"][name][i] for i in pictures]

        def ious(model: str, name=name, pictures=pictures) -> np.ndarray:
            return np.asarray(models[model]["datasets"][name]["image_ious"])[pictures]

        differences = []
        for model, reference in pairs:
            difference = ious(model) - ious(reference)
            differences.append(
                {"model": model, "reference": reference, **summarise(difference, sequences)}
            )
        columns.append(
            {
                "label": part["label"],
                "dataset": name,
                "sequence": part["sequence"],
                "images": len(pictures),
                "mean_iou": {model: float(ious(model).mean()) for model in models},
                "differences": differences,
            }
        )
    return columns


def tally(columns: list[dict], model: str, reference: str) -> dict:
    """On how many columns `model` is ahead of / behind `reference`: in the mean, and with the
    interval clear of 0."""
    found = [
        d
        for column in columns
        for d in column["differences"]
        if d["model"] == model and d["reference"] == reference
    ]
    return {
        "columns": len(found),
        "ahead": sum(d["mean"] > 0 for d in found),
        "behind": sum(d["mean"] < 0 for d in found),
        "surely_ahead": sum(d["low"] > 0 for d in found),
        "surely_behind": sum(d["high"] < 0 for d in found),
    }


def format_columns(results: dict, labels: dict[str, str]) -> str:
    """Markdown: each model's IoU on each still set and video sequence, then against each
    reference the difference per column with its interval, and a tally of the columns it leads
    and trails. "" unless some dataset holds video (else the main table says it all)."""
    columns = results.get("columns") or []
    if not any(column["sequence"] is not None for column in columns):
        return ""
    heads = [f"{column['label']} ({column['images']})" for column in columns]
    lines = [
        "",
        "IoU on each still set and each video sequence (pictures):",
        "",
        "| model | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for model, label in labels.items():
        cells = [f"{column['mean_iou'][model]:.4f}" for column in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pairs = [(d["model"], d["reference"]) for d in columns[0]["differences"]]
    for reference in dict.fromkeys(reference for _, reference in pairs):
        lines += [
            "",
            f"IoU minus {labels[reference]}'s on each set and sequence: mean ({CONFIDENCE:.0%} "
            f"bootstrap interval over its pictures; frames in blocks of {FRAME_BLOCK}); ahead / "
            "behind: columns in the mean (with the interval clear of 0)",
            "",
            "| model | " + " | ".join(heads) + " | ahead / behind |",
            "|---|" + "---|" * (len(heads) + 1),
        ]
        for model in (m for m, r in pairs if r == reference):
            cells = [
                f"{d['mean']:+.4f} ({d['low']:+.4f}, {d['high']:+.4f})"
                for column in columns
                for d in column["differences"]
                if d["model"] == model and d["reference"] == reference
            ]
            count = tally(columns, model, reference)
            cells.append(
                f"{count['ahead']} ({count['surely_ahead']}) / "
                f"{count['behind']} ({count['surely_behind']}) of {count['columns']}"
            )
            lines.append(f"| {labels[model]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
