"""What `backdrop evaluate` writes and prints: its tables, evaluation.json/.md, the model cards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from backdrop.evaluation.columns import format_columns
from backdrop.evaluation.differences import format_differences
from backdrop.outputs import write_atomic


def model_labels(paths: Sequence[str]) -> list[str]:
    """Each model's file name, with as many of its folders as tell it from the other models
    ("square/int8/model_int8.tflite" beside "landscape/int8/model_int8.tflite")."""
    parts = [Path(path).parts for path in paths]
    labels = []
    for index, own in enumerate(parts):
        for count in range(1, len(own) + 1):
            suffix = own[-count:]
            if not any(i != index and other[-count:] == suffix for i, other in enumerate(parts)):
                break
        labels.append("/".join(suffix))
    return labels


def format_table(results: dict) -> str:
    """A markdown table: one row per model and dataset."""
    lines = [
        f"threads: {results['threads']}, split: {_split(results)}",
        "",
        "| model | input | data | images | mean IoU | boundary IoU | flicker | latency ms | size KiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = model_labels([entry["model"] for entry in results["models"]])
    for label, entry in zip(labels, results["models"], strict=True):
        for data, summary in entry["datasets"].items():
            flicker_text = "-" if summary["flicker"] is None else f"{summary['flicker']:.4f}"
            lines.append(
                f"| {label} | {entry['input']} | {data} | {summary['images']} "
                f"| {summary['mean_iou']:.4f} | {summary['boundary_iou']:.4f} | {flicker_text} "
                f"| {entry['latency_ms']:.2f} | {entry['size_bytes'] / 1024:.0f} |"
            )
    for data, value in results["ground_truth_flicker"].items():
        lines.append(f"\nground-truth flicker of {data}: {value:.4f} (true motion)")
    return "\n".join(lines)


def format_skips(results: dict, shown: int = 3) -> str:
    """ "skipped N pictures" with the first reasons, or "" when none was skipped."""
    reasons = [reason for skips in results["skipped"].values() for _, reason in skips]
    if not reasons:
        return ""
    more = f"; {len(reasons) - shown} more in evaluation.json" if len(reasons) > shown else ""
    return f"skipped {len(reasons)} pictures: " + "; ".join(reasons[:shown]) + more


def format_report(results: dict) -> str:
    """The table, each model's differences from each reference (if any were given), then (with
    video) the same on each still set and each sequence."""
    paths = [entry["model"] for entry in results["models"]]
    labels = dict(zip(paths, model_labels(paths), strict=True))
    return (
        format_table(results)
        + format_differences(results, labels)
        + format_columns(results, labels)
    )


def write_results(results: dict, folder: Path) -> None:
    write_atomic(folder / "evaluation.json", json.dumps(results, indent=2))
    write_atomic(folder / "evaluation.md", format_report(results) + "\n")


def _split(results: dict) -> str:
    """The split as reports name it: all, or the split and the validation fraction that drew
    it ("validation of 0.1"), as another fraction is other pictures (results written before
    2026-11-29 name no fraction)."""
    fraction = results.get("validation_fraction")
    return results["split"] if fraction is None else f"{results['split']} of {fraction:g}"


def update_model_cards(results: dict) -> list[Path]:
    """Writes this evaluation into the model card beside each evaluated model that has one
    written by Backdrop (`model_card.with_evaluation`: one section per data and split, so an
    evaluation on other data keeps the earlier one); returns the cards updated. A card whose
    folder another run holds is left as it is."""
    from backdrop.outputs import OutputError, OutputFolder
    from backdrop.ship.model_card import with_evaluation

    table = format_table(results)
    data = ", ".join(f"`{name}`" for name in results["masks"]) + f", split {_split(results)}"
    updated = []
    for entry in results["models"]:
        card = Path(entry["model"]).with_suffix(".md")
        if not card.is_file():
            continue
        try:
            with OutputFolder(card.parent, "evaluate", "model folder") as folder:
                if not folder.owns(card.name):
                    continue
                write_atomic(card, with_evaluation(card.read_text(), table, data))
                updated.append(card)
        except OutputError:
            continue
    return updated
