"""The fine-tune's report page: the training report, opened by the figures, the verdict and a
gallery of the held-out frames where the new model and the start differ most."""

from __future__ import annotations

import heapq
import html
import json
from pathlib import Path

import cv2
import numpy as np

from backdrop.evaluation.report import _table
from backdrop.outputs import OutputFolder

GALLERY_ROWS = 8
ROW_HEIGHT = 240


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(entry: dict, latency: dict, new_name: str) -> list[list[str]]:
    rows = []
    for key, label in (
        ("new", f"fine-tuned ({new_name})"),
        ("start", "start"),
        ("teacher", "teacher"),
    ):
        figures = entry.get(key)
        if figures is None:
            rows.append([label, "the truth here", "", "", ""])
            continue
        speed = (
            f"{latency[new_name if key == 'new' else 'start']:.2f} ms"
            if key != "teacher"
            else f"{_fmt(figures.get('ms_a_picture'), 0)} ms a picture"
        )
        rows.append(
            [
                label,
                _fmt(figures["mean_iou"]),
                _fmt(figures["boundary_iou"]),
                _fmt(figures.get("flicker"), 3),
                speed,
            ]
        )
    return rows


def _dataset_section(entry: dict, latency: dict, new_name: str) -> str:
    diff = entry["new_minus_start"]
    closed = entry["gap_closed"]
    closing = (
        ""
        if closed is None
        else f" It closed {100 * closed:.0f}% of the gap between the start and the teacher."
    )
    return (
        f"<h3>{html.escape(entry['dataset'])} ({entry['new']['images']} pictures; truth: "
        f"{html.escape(entry['truth'])})</h3>"
        + _table(
            ["model", "IoU", "boundary IoU", "flicker", "latency"], _rows(entry, latency, new_name)
        )
        + f"<p>New minus start: {diff['mean']:+.4f} IoU (95% interval {diff['low']:+.4f} to "
        f"{diff['high']:+.4f}; ahead on {diff['wins']} pictures, behind on {diff['losses']})."
        f"{closing}</p>"
    )


def _gallery(config, plan, outputs: OutputFolder) -> list[tuple[str, str]]:
    """Writes the held-out frames where the two models' masks agree least; (file, caption)."""
    from backdrop.evaluation.evaluate import overlay
    from backdrop.evaluation.metrics import THRESHOLD, iou
    from backdrop.finetune.scoring import HeldOutReader
    from backdrop.finetune.steps import clips_of, labels_folder, model_paths
    from backdrop.runtime.segmenter import Segmenter

    new_models, start_file = model_paths(config, plan)
    new, start = Segmenter(new_models[0], config.threads), Segmenter(start_file, config.threads)
    reader = HeldOutReader(labels_folder(config, plan) / "clips", clips_of(plan, "held_out"))
    worst: list[tuple[float, str]] = []
    for key in reader.keys():
        sample = reader.try_load(key)
        if sample is None:
            continue
        agree = iou(
            new(sample.image) >= THRESHOLD,
            start(sample.image) >= THRESHOLD,
            np.ones(sample.mask.shape, bool),
        )
        heapq.heappush(worst, (-agree, key))
        if len(worst) > GALLERY_ROWS:
            heapq.heappop(worst)
    shown = []
    for number, (negative, key) in enumerate(sorted(worst, reverse=True), 1):
        sample = reader.load(key)
        truth = sample.mask >= THRESHOLD
        masks = [truth, start(sample.image) >= THRESHOLD, new(sample.image) >= THRESHOLD]
        tiles = [sample.image] + [overlay(sample.image, mask) for mask in masks]
        scale = ROW_HEIGHT / sample.image.shape[0]
        size = (max(1, round(sample.image.shape[1] * scale)), ROW_HEIGHT)
        row = np.concatenate(
            [cv2.resize(tile, size, interpolation=cv2.INTER_AREA) for tile in tiles], axis=1
        )
        name = f"gallery-{number}.png"
        outputs.claim(name)
        cv2.imwrite(str(outputs.root / name), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
        valid = np.ones(truth.shape, bool)
        caption = (
            f"{key}: the two models agree at IoU {-negative:.3f}; against the teacher, "
            f"start {iou(masks[1], truth, valid):.3f}, fine-tuned "
            f"{iou(masks[2], truth, valid):.3f}"
        )
        shown.append((name, caption))
    return shown


def write_fine_tune_report(config, plan) -> Path:
    """Writes `OUTPUT/report/index.html`; returns it."""
    from backdrop.evaluation.report import write_report

    results = json.loads((plan.root / "results.json").read_text())
    new_name = Path(results["models"]["new"][0]).name
    latency = results["latency_ms"]

    def opening(outputs: OutputFolder) -> str:
        gallery = _gallery(config, plan, outputs)
        verdict = results["verdict"]
        clips = results["clips"]
        parts = [
            "<h1>Backdrop fine-tune</h1>",
            f"<p><b>{html.escape(verdict['text'])}</b></p>",
            f"<p>Started from {html.escape(results['start']['description'])}; "
            f"{html.escape(results['teacher']['note'])}. Trained on "
            f"{len(clips['training'])} clips; held out (labelled by the teacher for scoring "
            f"only): {html.escape(', '.join(c['name'] for c in clips['held_out']))}. Latency: "
            f"median of {results['threads']} threads on this machine.</p>",
            "<h2>Held-out footage</h2>",
            _dataset_section(results["held_out"], latency, new_name),
        ]
        if results["validation"]:
            parts.append("<h2>Labelled data never trained on</h2>")
            parts += [_dataset_section(e, latency, new_name) for e in results["validation"]]
        if gallery:
            parts.append(
                "<h2>Where the new model and the start differ most</h2><p>picture | teacher | "
                "start | fine-tuned, the held-out frames where their masks agree least</p>"
            )
            parts += [
                f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>'
                f"{html.escape(caption)}</figcaption></figure>"
                for name, caption in gallery
            ]
        models = "".join(
            f"<li><code>{html.escape(p)}</code></li>" for p in results["models"]["new"]
        )
        parts.append(f"<h2>Models</h2><ul>{models}</ul>")
        return "".join(parts)

    from backdrop.finetune.tuning import run_folders

    # The first seed's training run (`train/`, or `train-seedS/` from another --seed).
    return write_report(run_folders(config, plan)[0], plan.root / "report", preface=opening)
