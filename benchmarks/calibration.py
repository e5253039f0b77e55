"""Where each model's masks err: IoU at other thresholds, missed and extra person.

Runs each model on each dataset's pictures as `backdrop evaluate` does (the runtime's
`Segmenter`, probability back at the picture's size, ignore pixels left out) and reports, per
model and dataset, the mean over pictures of:
- the person IoU at each of `--thresholds` (evaluate's is 0.5): a model whose best threshold is
  below 0.5 leaves out person (its probabilities are too low there), above 0.5 takes in
  background;
- the missed person (`missed`: person pixels predicted background) and the extra person
  (`extra`: background predicted person), each as a share of the picture's person pixels, at 0.5;
- with `--training-input SIDE`, the IoU at 0.5 when the model's input is made as a training
  crop of the whole picture is: the picture shrunk by area so its shorter side is SIDE (`backdrop
  prepare --side`), then sampled bilinearly to the input size without anti-aliasing
  (`tf.image.crop_and_resize`), where the runtime shrinks the full picture by area (bilinearly
  too where the picture is smaller than the input on a side). A model that learned on the
  training crops' aliasing would score higher on them than on the runtime's input.

    .venv/bin/python benchmarks/calibration.py MODEL... --data portrait:HELDOUT/picsart_selfies \
        --training-input 288
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help=".tflite files")
    parser.add_argument("--data", nargs="+", required=True, help="FORMAT:PATH, as evaluate's")
    parser.add_argument("--split", choices=("train", "validation"), help="default: every picture")
    parser.add_argument("--thresholds", nargs="+", type=float, default=THRESHOLDS)
    parser.add_argument("--training-input", type=int, metavar="SIDE", help="prepare's --side")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import cv2

    from backdrop.data.prepare import downscale
    from backdrop.data.split import split_samples
    from backdrop.evaluation.evaluate import dataset_labels, parse_data_spec
    from backdrop.evaluation.metrics import THRESHOLD, iou, truth_and_valid
    from backdrop.evaluation.results import model_labels
    from backdrop.runtime.segmenter import Segmenter

    readers = [parse_data_spec(spec) for spec in args.data]
    dataset_labels(readers)  # two of the same data is an error
    segmenters = [Segmenter(path, args.threads) for path in args.models]
    names = model_labels([str(path) for path in args.models])
    header = " | ".join(f"IoU at {t:g}" for t in args.thresholds)
    print(f"| model | dataset | {header} | missed | extra |", end="")
    print(" IoU at 0.5, training input |" if args.training_input else "")
    print("|---" * (4 + len(args.thresholds) + bool(args.training_input)) + "|")
    for reader in readers:
        dataset = reader.root.name
        scores = {name: {"iou": [], "missed": [], "extra": [], "training": []} for name in names}
        for _, sample in split_samples(reader, args.split, 0.1):
            truth, valid = truth_and_valid(sample.mask, sample.ignore)
            person = max(int((truth & valid).sum()), 1)
            small = downscale(sample, args.training_input).image if args.training_input else None
            for name, segmenter in zip(names, segmenters, strict=True):
                probability = segmenter(sample.image)
                score = scores[name]
                score["iou"].append([iou(probability >= t, truth, valid) for t in args.thresholds])
                predicted = probability >= THRESHOLD
                score["missed"].append((~predicted & truth & valid).sum() / person)
                score["extra"].append((predicted & ~truth & valid).sum() / person)
                if small is not None:
                    size = (segmenter.width, segmenter.height)
                    crop = cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
                    raw = segmenter.raw_probability(crop)
                    back = cv2.resize(raw, truth.shape[::-1], interpolation=cv2.INTER_LINEAR)
                    score["training"].append(iou(back >= THRESHOLD, truth, valid))
        for name in names:
            score = scores[name]
            ious = " | ".join(f"{v:.4f}" for v in np.mean(score["iou"], axis=0))
            row = f"| {name} | {dataset} | {ious} | "
            row += f"{np.mean(score['missed']):.4f} | {np.mean(score['extra']):.4f} |"
            if score["training"]:
                row += f" {np.mean(score['training']):.4f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
