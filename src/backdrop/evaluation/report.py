"""`backdrop report RUN_DIR`: an HTML page with PNGs for a training run.

Loss and IoU curves per epoch, a grid of validation images with true and predicted masks, a table
of the exported models (mode, size, latency, IoU) and every setting of the run.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from backdrop.outputs import OutputFolder, write_atomic
from backdrop.training.config import RunFileError
from backdrop.training.run_folder import RunFolder, is_file_name, read_run_file, read_run_json

COLOURS = {"train": (31, 119, 180), "validation": (255, 127, 14)}


def read_log(run: Path) -> dict[str, list[float]]:
    """log.csv -> column name -> values per epoch.

    Raises:
        RunFileError: log.csv is not the per-epoch table Keras writes; one line naming it.
    """
    path = RunFolder(run).log
    if not path.is_file():
        return {}
    fix = "remove it to leave the curves out, or train again"
    try:
        rows = list(csv.DictReader(io.StringIO(read_run_file(path, fix), newline="")))
        columns = [key for key in (rows[0] if rows else {}) if isinstance(key, str)]
        return {key: [float(row[key]) for row in rows] for key in columns}
    except (csv.Error, TypeError, ValueError) as error:
        if isinstance(error, RunFileError):
            raise
        raise RunFileError(f"{path} is not a table of numbers per epoch ({error}); {fix}") from None


def plot_curves(
    series: dict[str, list[float]], title: str, path: Path, size: tuple[int, int] = (560, 320)
) -> Path:
    """A line chart of each series against the epoch, drawn with Pillow."""
    width, height = size
    left, right, top, bottom = 56, 16, 34, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for line in series.values() for v in line if np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    epochs = max((len(line) for line in series.values()), default=1)

    def x_of(i):
        return left + (width - left - right) * (i / max(1, epochs - 1))

    def y_of(v):
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    draw.rectangle([left, top, width - right, height - bottom], outline=(160, 160, 160))
    for k in range(5):
        value = low + (high - low) * k / 4
        draw.line([left, y_of(value), width - right, y_of(value)], fill=(230, 230, 230))
        draw.text((4, y_of(value) - 6), f"{value:.3f}", fill="black")
    draw.text((left, 10), title, fill="black")
    draw.text((width // 2 - 20, height - 20), f"epoch (1-{epochs})", fill="black")
    for index, (name, line) in enumerate(series.items()):
        colour = COLOURS.get(name, (44, 160, 44))
        points = [(x_of(i), y_of(v)) for i, v in enumerate(line) if np.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for point in points:
            draw.ellipse([point[0] - 2, point[1] - 2, point[0] + 2, point[1] + 2], fill=colour)
        draw.text((width - right - 110, top + 6 + 14 * index), f"- {name}", fill=colour)
    image.save(path)
    return path


def validation_grid(run: Path, path: Path, count: int = 8) -> Path | None:
    """Rows of validation image | true mask | predicted mask (best checkpoint), as one PNG."""
    config = RunFolder(run).saved_config()
    checkpoint = RunFolder(run).best
    if config is None or not checkpoint.is_file() or not config.records:
        return None
    from backdrop.data.loader import record_batches
    from backdrop.data.pipeline_config import PipelineConfig
    from backdrop.training.checkpoints import load_checkpoint

    model = load_checkpoint(checkpoint)
    batches, _ = record_batches(
        config.records,
        "validation",
        PipelineConfig(config.input_shape, batch_size=count, augment=False),
        training=False,
    )
    images, targets = batches[0]
    predictions = model.predict(images, verbose=0)[..., 0]
    rows = []
    for image, target, prediction in zip(images, targets, predictions, strict=True):
        gray = [np.repeat(m[..., None], 3, 2) for m in (target[..., 0], prediction)]
        rows.append(np.concatenate([image, *gray], axis=1))
    grid = (np.concatenate(rows, axis=0) * 255).clip(0, 255).astype(np.uint8)
    Image.fromarray(grid).save(path)
    return path


def exported_models(run: Path) -> list[dict]:
    """The contract of each model exported into the run (`*.tflite.json`), with its `file`.

    Raises:
        RunFileError: a contract is not one `backdrop export` writes; one line naming it.
    """
    reports = []
    for contract_path in sorted(run.glob("*.tflite.json")):
        contract = read_contract(contract_path)
        contract["file"] = contract_path.name[: -len(".json")]
        reports.append(contract)
    return reports


def read_contract(path: Path) -> dict:
    """An exported model's contract, with every field the report shows checked."""
    fix = "export the model again, or move the file out of the run folder"
    contract = read_run_json(path, fix, "not a model's contract")
    problem = _contract_problem(contract)
    if problem:
        raise RunFileError(f"{path} is not a contract `backdrop export` writes ({problem}); {fix}")
    return contract


def _number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _contract_problem(contract) -> str | None:
    if not isinstance(contract, dict):
        return "not a JSON object"
    inputs = contract.get("input")
    if not isinstance(contract.get("mode"), str) or not isinstance(inputs, dict):
        return "no mode and input"
    if not all(type(inputs.get(side)) is int and inputs[side] > 0 for side in ("height", "width")):
        return "the input's height and width are not whole numbers"
    if not isinstance(inputs.get("dtype"), str):
        return "the input has no dtype"
    for key in ("size_bytes", "latency_ms"):
        if key in contract and not _number(contract[key]):
            return f"{key} is not a number"
    for key in ("validation_iou_float", "validation_iou_exported"):
        if contract.get(key) is not None and not _number(contract[key]):
            return f"{key} is neither a number nor null"
    card = contract.get("model_card")
    if card is not None and not is_file_name(card):
        return "model_card is not a file name in the run folder"
    return None


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


# What a report folder holds; only these are ever replaced there.
PAGE_FILES = ("index.html", "loss.png", "iou.png", "validation.png")


def write_report(
    run: str | Path,
    output: str | Path | None = None,
    preface: Callable[[OutputFolder], str] | None = None,
) -> Path:
    """Writes `output/index.html` (default RUN_DIR/report/) with its PNGs; returns the page.

    `preface(outputs)` may claim and write files of its own into the report folder; the HTML
    it returns opens the page (`backdrop fine-tune`'s figures and gallery).
    """
    run = Path(run)
    folder = RunFolder(run)
    if not folder.config.is_file():
        raise FileNotFoundError(
            f"{run} is not a training run (no config.json); give the "
            "checkpoints folder of `backdrop train`"
        )
    output = Path(output) if output else folder.report
    with OutputFolder(output, "report", "--output folder", [run / "best.keras"]) as outputs:
        outputs.claim(*PAGE_FILES)
        opening = preface(outputs) if preface else ""
        return _write_report(run, folder, output, opening)


def _write_report(run: Path, folder: RunFolder, output: Path, opening: str = "") -> Path:
    log = read_log(run)
    state = folder.read_state() if folder.state.is_file() else {}
    settings = json.loads(folder.saved_config().to_json())
    parts = [opening] if opening else []
    parts.append(
        f"<h{2 if opening else 1}>Backdrop training report</h{2 if opening else 1}><p>Run: <code>{html.escape(str(run))}</code></p>"
    )
    if state:
        parts.append(
            f"<p>{state['epoch']} epochs; best validation IoU "
            f"<b>{state['best_val_iou']:.4f}</b> at epoch {state['best_epoch']}.</p>"
        )
    if log:
        plot_curves(
            {"train": log.get("loss", []), "validation": log.get("val_loss", [])},
            "loss (BCE + Dice)",
            output / "loss.png",
        )
        plot_curves(
            {"train": log.get("iou", []), "validation": log.get("val_iou", [])},
            "person IoU",
            output / "iou.png",
        )
        parts.append('<h2>Curves</h2><img src="loss.png" alt="loss"> <img src="iou.png" alt="iou">')
    if validation_grid(run, output / "validation.png"):
        parts.append(
            "<h2>Validation images</h2><p>image | true mask | predicted mask (best "
            'checkpoint)</p><img src="validation.png" alt="validation grid">'
        )
    models = exported_models(run)
    if models:
        rows = [
            [
                m["file"],
                m["mode"],
                f"{m.get('size_bytes', 0) / 1024:.0f} KiB",
                f"{m.get('latency_ms', float('nan')):.2f} ms @ {m.get('threads', '?')} threads",
                _fmt(m.get("validation_iou_float")),
                _fmt(m.get("validation_iou_exported")),
                f"{m['input']['height']}x{m['input']['width']} {m['input']['dtype']}",
            ]
            for m in models
        ]
        parts.append(
            "<h2>Exported models</h2>"
            + _table(
                ["file", "mode", "size", "latency", "val IoU float", "val IoU exported", "input"],
                rows,
            )
        )
        cards = [
            (m["file"], (run / m["model_card"]).resolve())
            for m in models
            if m.get("model_card") and (run / m["model_card"]).is_file()
        ]
        if cards:
            links = "".join(
                f'<li><a href="{html.escape(card.as_uri())}">{html.escape(card.name)}</a> '
                f"(model card of {html.escape(file)})</li>"
                for file, card in cards
            )
            parts.append(f"<h3>Model cards</h3><ul>{links}</ul>")
    parts.append(
        "<h2>Settings</h2>" + _table(["setting", "value"], [[k, v] for k, v in settings.items()])
    )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}"
    )
    page = output / "index.html"
    write_atomic(
        page,
        f"<!doctype html><html><head><meta charset='utf-8'><title>Backdrop report"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>",
    )
    return page


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
