"""TFLite export with named quantization modes, each with its input/output contract beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from backdrop.outputs import OutputFolder, temporary_path, write_atomic
from backdrop.runtime.contract import contract_path, sha256_of
from backdrop.tf_setup import import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from backdrop.ship.convert import convert  # noqa: E402
from backdrop.ship.validation import keras_validation_iou, validation_iou  # noqa: E402
from backdrop.training.quantize_aware import strip_fake_quant  # noqa: E402

# An export that loses more validation IoU than this against the float model is not recommended.
MAX_IOU_LOSS = 0.01
# Modes within this share of the fastest count as equally fast; the smallest file of them wins.
SPEED_TIE = 0.10


def contract(model: keras.Model, mode: str) -> dict:
    """The input/output contract an app needs to run the exported model."""
    _, height, width, _ = model.input_shape
    quantized = mode == "int8"
    return {
        "mode": mode,
        "input": {
            "height": height,
            "width": width,
            "channels": 3,
            "dtype": "uint8" if quantized else "float32",
            "colour_order": "RGB",
            "range": [0, 255] if quantized else [0.0, 1.0],
            "quantization": {"scale": 1 / 255, "zero_point": 0} if quantized else None,
            "resize": "stretch: the whole frame resized to height x width (no letterbox)",
        },
        "output": {
            "height": height,
            "width": width,
            "channels": 1,
            "dtype": "uint8" if quantized else "float32",
            "meaning": "person probability"
            + (
                " x 255 (dequantize with the output's scale/zero point)"
                if quantized
                else " in [0, 1]"
            ),
            "resize": "bilinear back to the frame size, then threshold at 0.5 or use as alpha",
        },
    }


def export_tflite(
    model: keras.Model,
    path: str | Path,
    mode: str = "float32",
    representative: Iterable[np.ndarray] = (),
    extra: dict | None = None,
    metadata: bool = False,
) -> Path:
    """Writes `path` (.tflite) and `path.json` (its contract, plus `extra`).

    The model is written under a temporary name, given its TFLite metadata there (`metadata`:
    see `add_metadata`), and its sha256 goes into the contract before it takes its final name.
    An export killed at any point leaves no final-named model without its metadata, and a model
    that is not the file its contract describes is refused by segment, evaluate and serve
    (`backdrop.runtime.contract`).
    """
    path = Path(path)
    data = convert(model, mode, representative)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        described = {"metadata": add_metadata(temporary, mode, path)} if metadata else {}
        written = {"sha256": sha256_of(temporary.read_bytes()), **described}
        write_atomic(
            contract_path(path),
            json.dumps({**contract(model, mode), **written, **(extra or {})}, indent=2),
        )
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def export_models(
    model: keras.Model,
    folder: str | Path,
    modes: Iterable[str],
    calibration: list[np.ndarray],
    validation: list[tuple[np.ndarray, np.ndarray]],
    threads: int = 2,
    extra: dict | None = None,
    training: dict | None = None,
    mode_extra: dict[str, dict] | None = None,
) -> list[dict]:
    """Exports `model` in each mode to `folder/model_MODE.tflite` with TFLite metadata (for
    MediaPipe Tasks and Android Studio), its contract (`.tflite.json`) and a model card (`.md`).

    Args:
        calibration: `(H, W, 3)` float32 RGB training images in [0, 1] (int8 calibration).
        validation: `(image uint8 (H, W, 3), target (H, W, 2))` pairs at the input size; the
            float and exported models' validation IoU on them goes into each contract.
        training: What the model card says about the training data (`model_card.training_data`).
        extra: Written into every mode's contract; `mode_extra[MODE]` into MODE's only (how its
            int8 ranges were set means nothing to a float file).

    Returns:
        One report per mode: path, size in bytes, latency in ms, float and exported IoU.
    """
    names = [f"model_{mode}{end}" for mode in modes for end in (".tflite", ".tflite.json", ".md")]
    with OutputFolder(folder, "export", "--output folder") as outputs:
        outputs.claim(*names)  # before the slow conversion: a file in the way fails at once
        return _export_models(
            model,
            outputs.root,
            modes,
            calibration,
            validation,
            threads,
            extra,
            training,
            mode_extra or {},
        )


def _export_models(
    model, folder: Path, modes, calibration, validation, threads, extra, training, mode_extra
) -> list[dict]:
    from backdrop.runtime.segmenter import Segmenter, isolated_latency_ms
    from backdrop.ship.model_card import model_card

    # The float model's own IoU, beside the exported one's.
    float_iou = keras_validation_iou(strip_fake_quant(model), validation) if validation else None
    reports, extras = [], []
    for mode in modes:
        path = export_tflite(
            model, folder / f"model_{mode}.tflite", mode, calibration, metadata=True
        )
        segmenter = Segmenter(path, threads)
        exported_iou = validation_iou(segmenter.raw_probability, validation) if validation else None
        reports.append(
            {
                "path": str(path),
                "mode": mode,
                "size_bytes": path.stat().st_size,
                "threads": threads,
                "validation_iou_float": float_iou,
                "validation_iou_exported": exported_iou,
                "validation_images": len(validation),
            }
        )
        extras.append({"model_card": path.with_suffix(".md").name})
    # Rounds, each mode in a process of its own, in alternating order: a busy moment of the
    # machine does not land on one mode only, and no mode times beside another.
    paths = [report["path"] for report in reports]
    latencies = np.median(isolated_latency_ms(paths, threads), axis=0)
    for report, latency in zip(reports, latencies, strict=True):
        report["latency_ms"] = float(latency)
    recommended, reason = recommend(reports)
    for report, more in zip(reports, extras, strict=True):
        report["recommended"] = report["mode"] == recommended
        path = Path(report["path"])
        contract_data = {
            **json.loads(contract_path(path).read_text()),
            **report,
            "recommendation": reason,
            **more,
            **(extra or {}),
            **mode_extra.get(report["mode"], {}),
        }
        write_atomic(contract_path(path), json.dumps(contract_data, indent=2))
        write_atomic(path.with_suffix(".md"), model_card(contract_data, training))
    return reports


def recommend(reports: list[dict]) -> tuple[str | None, str]:
    """The mode to ship among those exported together, and why: the fastest whose validation IoU
    is within `MAX_IOU_LOSS` of the float model's (within `SPEED_TIE` of the fastest: the
    smallest file). None when there was no validation data or every mode lost more.

    float32 does not race an eligible float16: float16 stores the same weights in half the
    bytes and runs float32's arithmetic on a CPU (XNNPACK widens the weights once, at load:
    25.76 million instructions an invoke for both, landscape recipe model) and float16's
    on a GPU. Timed against each other they measured the machine's drift: 1.33 ms against 1.69
    ms in one recipe run on the 2-core VM, past `SPEED_TIE` (docs/lab/2026-11-issue-14-latency.md,
    "Cost counted, not timed").
    """
    eligible = [
        r
        for r in reports
        if r["validation_iou_exported"] is not None
        and r["validation_iou_float"] - r["validation_iou_exported"] <= MAX_IOU_LOSS
    ]
    if any(r["mode"] == "float16" for r in eligible):
        eligible = [r for r in eligible if r["mode"] != "float32"]
    modes = ", ".join(r["mode"] for r in reports)
    if not eligible:
        return None, (
            f"none of {modes}: no validation data, or each lost more than {MAX_IOU_LOSS} "
            "validation IoU against the float model"
        )
    fastest = min(r["latency_ms"] for r in eligible)
    chosen = min((r for r in eligible if r["latency_ms"] <= (1 + SPEED_TIE) * fastest), key=_size)
    return chosen["mode"], (
        f"{chosen['mode']}: of the modes exported together ({modes}), the fastest (within "
        f"{SPEED_TIE:.0%}, then the smallest) whose validation IoU is within {MAX_IOU_LOSS} of the float "
        f"model's, timed at {chosen['threads']} threads on the exporting machine (int8 is not "
        "faster everywhere: time it on the target phone)"
    )


def _size(report: dict) -> int:
    return report["size_bytes"]


def add_metadata(path: Path, mode: str, final: Path | None = None) -> dict | None:
    """Writes TFLite metadata into an exported model (`backdrop.ship.metadata`); returns what was
    written, or None with a warning (naming `final`, the name `path` will take) when MediaPipe's
    writer is not installed."""
    from backdrop import __version__
    from backdrop.ship.metadata import MetadataError, describe, write_metadata

    info = describe(
        mode,
        quantized_input=mode == "int8",
        version=__version__,
        description="Person segmentation for background blur and replacement in video calls: "
        "one person-probability mask per frame. Trained with Backdrop.",
    )
    try:
        write_metadata(path, info)
    except MetadataError as error:
        print(f"warning: {str(error).replace(str(path), str(final or path))}")
        return None
    return info


def format_reports(reports: list[dict]) -> str:
    lines = []
    for report in reports:
        iou_text = ""
        if report["validation_iou_float"] is not None:
            iou_text = (
                f", validation IoU {report['validation_iou_exported']:.4f} "
                f"(float model {report['validation_iou_float']:.4f})"
            )
        lines.append(
            f"{report['mode']:>8}: {report['path']} {report['size_bytes'] / 1024:.0f} "
            f"KiB, {report['latency_ms']:.2f} ms at {report['threads']} threads"
            f"{iou_text}{' (recommended)' if report.get('recommended') else ''}"
        )
    return "\n".join(lines)
