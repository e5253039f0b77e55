"""The averaging weight (WiSE-FT) decided by leaving one sequence out, with no retraining.

A fine-tune ends by averaging its trained weights with the start's: `w * tuned + (1 - w) *
start` (0.5 for a square input, 0.3 for a landscape one: rules written first). Every fold of
`benchmarks/leave_one_out.py` kept its trained checkpoint, so other weights cost only scoring:
this script averages each fold's checkpoint with its start at each weight, in Keras (float32,
the frame fed as the runtime feeds it), and scores it on the fold's left-out sequence and on the
validation split of every labelled still set the fold was given. One table per set: each fold's
mean IoU per weight, and each weight minus the recipe's with its 95% block-bootstrap interval.
Weight 0 is the start itself (MediaPipe in float32).

    .venv/bin/python benchmarks/average_weight_loo.py RUN [RUN ...] [--weights 0 0.3 0.5 0.7 1]
        [--base 0.5] [--sequences A B ...]

RUN: a folder of leave_one_out.py folds (RUN/S for each left-out sequence S). Run from the
folder the folds were run from: their records name their data by relative paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def folds(run: Path, sequences: list[str] | None) -> list[Path]:
    """The fold folders of `run` whose training finished, in name order."""
    found = []
    for plan in sorted(run.glob("*/fine_tune.json")):
        if sequences and plan.parent.name not in sequences:
            continue
        if "train" in json.loads(plan.read_text()).get("done", []):
            found.append(plan.parent)
    return found


def keras_predictor(model):
    """An RGB uint8 frame -> person probability at its size, as `runtime.Segmenter` feeds a
    float model: stretched to the input, scaled to [0, 1], the probability resized back."""
    from backdrop.runtime.segmenter import probability_at, stretch_to_input

    height, width = model.input_shape[1:3]

    def predict(frame: np.ndarray) -> np.ndarray:
        resized = stretch_to_input(frame, width, height)
        tensor = (resized.astype(np.float32) / 255.0)[None]
        probability = np.asarray(model(tensor, training=False))[0, ..., 0]
        return probability_at(probability, *frame.shape[:2])

    return predict


def score_fold(fold: Path, weights: list[float]) -> dict[str, dict]:
    """`{set: {"ious": {weight: [per picture]}, "sequences": [...]}}` for one fold: its
    left-out sequence (all frames) and the validation split of each still set it was given."""
    from backdrop.data.split import VALIDATION_FRACTION
    from backdrop.evaluation.evaluate import parse_data_spec, score_reader
    from backdrop.training.average import average_weights, start_model
    from backdrop.training.checkpoints import load_checkpoint
    from backdrop.training.run_folder import RunFolder

    plan = json.loads((fold / "fine_tune.json").read_text())
    settings = plan["settings"]
    checkpoint = RunFolder(fold / "train").epoch(settings["epochs"])
    tuned = load_checkpoint(checkpoint)
    start = start_model(checkpoint, tuned, Path(plan["start"]["init_from"]))
    # Each weight averages a copy of its own: average_weights writes into the tuned model.
    models = [average_weights(start, load_checkpoint(checkpoint), w) for w in weights]
    predictors = [keras_predictor(model) for model in models]
    sets = [(fold.name, spec, None) for spec in settings["validate"]]
    sets += [
        (Path(spec.partition(":")[2]).name, spec, "validation")
        for spec in settings["data"]
        if not spec.startswith("davis:")
    ]
    scores = {}
    for name, spec, split in sets:
        found = score_reader(
            predictors, parse_data_spec(spec), split, VALIDATION_FRACTION, progress=False
        )
        scores[name] = {
            "ious": {w: m.ious for w, m in zip(weights, found.models, strict=True)},
            "sequences": found.sequences,
        }
    return scores


def table(title: str, rows: list[tuple[str, dict]], weights: list[float], base: float) -> str:
    """Mean IoU per weight, then each weight minus `base` with its interval, one row a fold."""
    from backdrop.evaluation.differences import bootstrap_interval

    others = [w for w in weights if w != base]
    head = ["fold", *(f"w={w:g}" for w in weights), *(f"{w:g} - {base:g} (95%)" for w in others)]
    lines = [f"{title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    wins = {w: [0, 0] for w in others}
    for name, scored in rows:
        ious = {w: np.asarray(v) for w, v in scored["ious"].items()}
        cells = [name, *(f"{ious[w].mean():.4f}" for w in weights)]
        for w in others:
            mean, low, high = bootstrap_interval(ious[w] - ious[base], scored["sequences"])
            cells.append(f"{mean:+.4f} ({low:+.4f}, {high:+.4f})")
            wins[w][0] += low > 0
            wins[w][1] += high < 0
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for w in others:
        above, below = wins[w]
        lines.append(f"w={w:g} against {base:g}: interval above 0 on {above}, below 0 on {below}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--weights", nargs="+", type=float, default=[0, 0.3, 0.5, 0.7, 1])
    parser.add_argument("--base", type=float, default=0.5, help="the recipe's weight")
    parser.add_argument("--sequences", nargs="+", help="default: every finished fold")
    args = parser.parse_args()
    if args.base not in args.weights:
        args.weights.append(args.base)
    by_set: dict[str, list] = {}
    for run in args.runs:
        found = folds(run, args.sequences)
        if not found:
            sys.exit(f"{run}: no finished leave_one_out.py fold")
        for fold in found:
            print(f"scoring {fold}", file=sys.stderr, flush=True)
            for name, scored in score_fold(fold, args.weights).items():
                still = name != fold.name
                key = name if still else "left-out sequences"
                label = f"{run.name}/{fold.name}"
                by_set.setdefault(key, []).append((label, scored))
    for name, rows in by_set.items():
        print()
        print(table(name, rows, args.weights, args.base))


if __name__ == "__main__":
    main()
