"""Imported public segmenters: how closely the rebuilt Keras model reproduces the original `.tflite`,
and how fast Backdrop's export of the untouched import runs beside the original.

For each public segmenter found (MediaPipe selfie general and landscape in ../shared/anchors, Meet
full and lite in ../shared/models/meet_segmentation): the mean absolute difference of the person
probability between the rebuilt Keras model and the original on real portraits, then the median
latency of the original and of our float32 and float16 exports of the import, interleaved rounds,
same process, same threads.

    .venv/bin/python benchmarks/import_fidelity.py [--threads 2] [--images 32]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import Segmenter

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS = {
    "MediaPipe selfie general": SHARED / "anchors" / "selfie_segmentation.tflite",
    "MediaPipe selfie landscape": SHARED / "anchors" / "selfie_segmentation_landscape.tflite",
    "Meet full": SHARED / "models" / "meet_segmentation" / "segm_full_v679.tflite",
    "Meet lite": SHARED / "models" / "meet_segmentation" / "segm_lite_v681.tflite",
}
PORTRAITS = SHARED / "datasets" / "human_seg_vikram"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=32, help="portraits for the reproduction")
    parser.add_argument("--runs", type=int, default=200, help="invokes per model and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()
    from backdrop.data.readers import get_reader
    from backdrop.models.tflite_import import import_segmenter
    from backdrop.ship.export import export_tflite

    found = {name: path for name, path in MODELS.items() if path.is_file()}
    if not found or not PORTRAITS.is_dir():
        raise SystemExit(f"needs the models in {SHARED} and the portraits in {PORTRAITS}")
    reader = get_reader("portrait")(PORTRAITS)
    images = [sample.image for _, sample in zip(range(args.images), reader, strict=False)]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        segmenters = {}
        for name, path in found.items():
            model = import_segmenter(path)
            original = Segmenter(path, args.threads)
            exports = {
                mode: Segmenter(
                    export_tflite(model, Path(scratch) / f"{path.stem}_{mode}.tflite", mode),
                    args.threads,
                )
                for mode in ("float32", "float16")
            }
            height, width = model.input_shape[1:3]
            differences = []
            for image in images:
                ours = model.predict(original.input_tensor(image), verbose=0)[0, ..., 0]
                differences.append(np.abs(ours - original.raw_probability(image)).mean())
            segmenters[name] = {"original": original, **exports}
            rows.append(
                (name, f"{height}x{width}", float(np.mean(differences)), float(np.max(differences)))
            )
        timings = {(name, kind): [] for name, kinds in segmenters.items() for kind in kinds}
        for _ in range(args.rounds):
            for name, kind in timings:
                timings[(name, kind)].append(segmenters[name][kind].latency_ms(args.runs))
    print(f"threads: {args.threads}, portraits: {len(images)}\n")
    print(
        "| model | input | mean abs diff (max per image) | original ms | ours float32 ms | ours float16 ms |"
    )
    print("|---|---|---|---|---|---|")
    for name, shape, mean, worst in rows:
        ms = {kind: np.median(timings[(name, kind)]) for kind in ("original", "float32", "float16")}
        print(
            f"| {name} | {shape} | {mean:.2e} ({worst:.2e}) | {ms['original']:.2f} | {ms['float32']:.2f} | {ms['float16']:.2f} |"
        )


if __name__ == "__main__":
    main()
