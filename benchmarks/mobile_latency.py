"""Latency of the mobile segmenter's variants beside MediaPipe's selfie segmenter.

Exports untrained 256 px mobile segmenters (latency does not depend on the weights) with ReLU
(the default), ReLU6 and MobileNetV3's hard-swish, each as float16 and int8, and times one
interpreter invoke (median) at the same thread count as the reference, in the same process.

    .venv/bin/python benchmarks/mobile_latency.py [--threads 2] [--width 1.0 1.25 1.5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import Segmenter

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=float, nargs="+", default=[1.0])
    parser.add_argument("--runs", type=int, default=200, help="invokes per model and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()
    from backdrop.models.mobile_segmenter import build_mobile_segmenter
    from backdrop.ship.export import export_tflite

    reference = ANCHORS / "selfie_segmentation.tflite"
    if not reference.is_file():
        raise SystemExit(f"{reference} not found: the reference model is needed for the ratio")
    calibration = [np.random.default_rng(0).random((256, 256, 3), np.float32) for _ in range(8)]
    with tempfile.TemporaryDirectory() as scratch:
        models = {"mediapipe selfie (reference)": reference}
        for width in args.width:
            for activation in ("relu", "relu6", "hard_swish"):
                model = build_mobile_segmenter(256, 16, width, activation)
                for mode in ("float16", "int8"):
                    name = f"mobile_segmenter width {width} {activation} {mode}"
                    path = Path(scratch) / f"{width}_{activation}_{mode}.tflite"
                    models[name] = export_tflite(model, path, mode, calibration)
        segmenters = {name: Segmenter(path, args.threads) for name, path in models.items()}
        # Interleaved rounds, so a busy moment of the machine does not land on one model only.
        timings = {name: [] for name in segmenters}
        for _ in range(args.rounds):
            for name, segmenter in segmenters.items():
                timings[name].append(segmenter.latency_ms(args.runs))
        medians = {name: float(np.median(values)) for name, values in timings.items()}
        baseline = medians["mediapipe selfie (reference)"]
        print(f"threads: {args.threads}\n")
        print("| model | size KiB | latency ms | / reference (goal <= 1) |")
        print("|---|---|---|---|")
        for name, path in models.items():
            size = path.stat().st_size / 1024
            print(f"| {name} | {size:.0f} | {medians[name]:.2f} | {medians[name] / baseline:.2f} |")


if __name__ == "__main__":
    main()
