"""The same training under TensorFlow and under JAX, against seed-to-seed noise.

Trains one run's configuration (a `backdrop train` or fine-tune run folder's `config.json`) for
`--epochs` epochs once per seed under each backend, each in its own process and run folder
(`OUTPUT/tensorflow_0`, `OUTPUT/jax_0`, ...; a cut-off arm continues, a finished one is kept).
Then one TensorFlow process scores every arm's last checkpoint on the same validation batches,
and the table gives each arm's validation IoU, each backend's mean and standard deviation, and
the difference of the means with Welch's t.

    .venv/bin/python benchmarks/backend_seeds.py runs/beat_mediapipe/square/train/config.json
        -o runs/backend_seeds [--epochs 5] [--tensorflow-seeds 0 1 2] [--jax-seeds 0 1]

The configuration's relative paths (records, backgrounds, the start model) are read from the
folder this is run in, as training read them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

ARM = """
import json, sys
from pathlib import Path
from backdrop.cli.train import run_train
from backdrop.training.config import TrainConfig

if __name__ == "__main__":  # an export's TensorFlow child imports this again; none is asked for
    settings = json.loads(sys.argv[1])
    state = Path(settings["checkpoints"]) / "state.json"
    restore = state.exists()
    if not (restore and json.loads(state.read_text())["epoch"] >= settings["epochs"]):
        run_train(TrainConfig.from_json(json.dumps(settings)), restore, False, False, verbose=2)
"""

SCORE = """
import json, sys
import keras
from pathlib import Path
from backdrop.training import loop
from backdrop.training.checkpoints import load_checkpoint
from backdrop.training.config import TrainConfig
from backdrop.training.datasets import evaluation_data, make_datasets

for folder in sys.argv[1:]:
    config = TrainConfig.from_json((Path(folder) / "config.json").read_text())
    _, validation, _ = make_datasets(config)
    model = load_checkpoint(Path(folder) / f"epoch-{config.epochs:04d}.keras")
    loop._compile(model, keras.optimizers.Adam(1e-4))
    scores = model.evaluate(evaluation_data(validation), verbose=0, return_dict=True)
    print(json.dumps({"run": folder, "iou": float(scores["iou"])}), flush=True)
"""


def run(backend: str, script: str, *args: str, capture: bool = False) -> str | None:
    """`script` in a child process whose Keras runs on `backend`; its standard output if
    `capture`, else shown as it comes (training's progress)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", script, *args]
    result = subprocess.run(
        command, env=env, stdout=subprocess.PIPE if capture else None, text=True, check=False
    )
    if result.returncode:
        raise SystemExit(f"{backend} {args[:1]}: exit status {result.returncode}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a training run's config.json")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tensorflow-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--jax-seeds", type=int, nargs="*", default=[0, 1])
    args = parser.parse_args()
    settings = json.loads(args.config.read_text())
    arms = [("tensorflow", seed) for seed in args.tensorflow_seeds]
    arms += [("jax", seed) for seed in args.jax_seeds]
    folders = {}
    for backend, seed in arms:
        folder = args.output / f"{backend}_{seed}"
        folders[backend, seed] = folder
        arm = {**settings, "checkpoints": str(folder), "seed": seed, "epochs": args.epochs}
        print(f"{backend}, seed {seed}: {folder}", flush=True)
        run(backend, ARM, json.dumps({**arm, "export": "none"}))
    scores = run("tensorflow", SCORE, *map(str, folders.values()), capture=True)
    iou = {}
    for line in scores.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            iou[record["run"]] = record["iou"]
    print(f"\n| arm | validation IoU after {args.epochs} epochs |\n|---|---|")
    for (backend, seed), folder in folders.items():
        print(f"| {backend}, seed {seed} | {iou[str(folder)]:.4f} |")
    values = {
        backend: [iou[str(f)] for (b, _), f in folders.items() if b == backend]
        for backend in ("tensorflow", "jax")
    }
    for backend, scored in values.items():
        spread = f" ± {statistics.stdev(scored):.4f} (sd)" if len(scored) > 1 else ""
        print(f"| {backend}: mean of {len(scored)} | {statistics.mean(scored):.4f}{spread} |")
    if all(len(scored) > 1 for scored in values.values()):
        difference = statistics.mean(values["jax"]) - statistics.mean(values["tensorflow"])
        error = math.sqrt(sum(statistics.variance(v) / len(v) for v in values.values()))
        print(f"\nJAX minus TensorFlow: {difference:+.4f}, Welch's t = {difference / error:.2f}")


if __name__ == "__main__":
    main()
