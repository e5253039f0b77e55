"""Training images/s under TensorFlow and under JAX, the recipe's student and the Attention U-Net.

Each measurement is a fresh process (a Keras process has one backend): it builds training's own
batches (`training.datasets.make_datasets`: augmentation, the recipe's COCO backgrounds at 0.3)
and model, compiles as training does, fits `--warm` steps (compilation, the loader's first
batches), then times `--steps` more. Arms and models alternate over `--rounds` rounds, so a busy
moment of the machine does not land on one arm only; the table gives each arm's median and its
ratio to the first arm's.

    .venv/bin/python benchmarks/backend_throughput.py [--records DIR] [--steps 30] [--rounds 2]
        [--models student attention_unet] [--tf-data-checkout PATH] [--jax-checkout PATH]

--records: a `backdrop prepare` folder (default: human_seg_vikram prepared at side 288 into a
scratch folder). --tf-data-checkout: a checkout of Backdrop from before training read through
`data/loader.py` (e.g. `git worktree add /tmp/tfdata f239cda`): adds the arm "TensorFlow,
tf.data" run from its sources, the baseline the loader replaced. The arm "JAX, Keras's
convolutions" runs without `training/jax_cpu.py`'s depthwise and 1x1 convolutions, as before it.
--jax-checkout: another checkout of Backdrop (e.g. an older commit's worktree): adds the arm
"JAX, that checkout", training as it trains under JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ANCHOR = SHARED / "anchors" / "selfie_segmentation.tflite"
BACKGROUNDS = SHARED / "datasets" / "coco_tiny" / "tiny_coco" / "val2017"
MODELS = {
    # fine-tune's student: MediaPipe's general model, imported, batch 16 at 256x256.
    "student": {"model": "mediapipe_selfie", "init_from": str(ANCHOR), "batch_size": 16},
    # the seed's Attention U-Net at its default filters, batch 8 at 256x256.
    "attention_unet": {"model": "attention_unet", "batch_size": 8},
}


def child(args) -> None:
    """One measurement in this process; prints one JSON line."""
    import keras

    from backdrop.training import loop
    from backdrop.training.config import TrainConfig
    from backdrop.training.datasets import make_datasets

    backgrounds = (BACKGROUNDS,) if BACKGROUNDS.is_dir() else ()
    with tempfile.TemporaryDirectory() as scratch:
        config = TrainConfig(
            checkpoints=Path(scratch),
            records=args.records,
            input_shape=(256, 256),
            background_folders=backgrounds,
            background_probability=0.3,
            seed=0,
            export="none",
            **MODELS[args.child],
        )
        train, _, _ = make_datasets(config)
        try:
            from backdrop.training.datasets import fit_data

            train, _ = fit_data(train, 0, 1000)  # what training's fit reads on this backend
        except ImportError:  # a checkout from before the loader: its tf.data dataset
            pass
        if not args.keras_convolutions:
            try:  # as training does under JAX on a CPU
                from backdrop.training.jax_cpu import use_fast_cpu_convolutions

                use_fast_cpu_convolutions()
            except ImportError:  # a checkout from before it
                pass
        model = loop._initial_model(config)
        loop._compile(model, keras.optimizers.Adam(1e-4))
        fit = {"epochs": 1, "verbose": 0, "shuffle": False}
        model.fit(train, steps_per_epoch=args.warm, **fit)
        began = time.perf_counter()
        model.fit(train, steps_per_epoch=args.steps, **fit)
        seconds = time.perf_counter() - began
    rate = args.steps * config.batch_size / seconds
    print(json.dumps({"backend": keras.backend.backend(), "images_per_s": rate}))


def measure(records: Path, model: str, arm: dict, args) -> float:
    env = {**os.environ, "KERAS_BACKEND": arm["backend"], "TF_CPP_MIN_LOG_LEVEL": "2"}
    if arm.get("source"):
        env["PYTHONPATH"] = str(arm["source"])
    command = [sys.executable, __file__, "--child", model, "--records", str(records)]
    command += ["--steps", str(args.steps), "--warm", str(args.warm)]
    if arm.get("keras_convolutions"):
        command.append("--keras-convolutions")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{arm['label']}, {model}: failed\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"]


def default_records(scratch: Path) -> Path:
    from backdrop.data.prepare import PrepareConfig, prepare
    from backdrop.data.readers.portrait import PortraitReader

    records = scratch / "records"
    data = SHARED / "datasets" / "human_seg_vikram"
    prepare([PortraitReader(data)], PrepareConfig(records, side=288), progress=False)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--records", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--tf-data-checkout", type=Path)
    parser.add_argument("--jax-checkout", type=Path)
    parser.add_argument("--keras-convolutions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    arms = [{"label": "TensorFlow, data/loader.py", "backend": "tensorflow"}]
    if args.tf_data_checkout:
        source = args.tf_data_checkout / "src"
        arms.insert(0, {"label": "TensorFlow, tf.data", "backend": "tensorflow", "source": source})
    arms.append(
        {"label": "JAX, Keras's convolutions", "backend": "jax", "keras_convolutions": True}
    )
    if args.jax_checkout:
        source = args.jax_checkout / "src"
        arms.append({"label": "JAX, that checkout", "backend": "jax", "source": source})
    arms.append({"label": "JAX, data/loader.py", "backend": "jax"})
    with tempfile.TemporaryDirectory() as scratch:
        records = args.records or default_records(Path(scratch))
        rates = {(m, a["label"]): [] for m in args.models for a in arms}
        for round_number in range(args.rounds):
            order = arms if round_number % 2 == 0 else arms[::-1]
            for model in args.models:
                for arm in order:
                    rate = measure(records, model, arm, args)
                    rates[model, arm["label"]].append(rate)
                    print(f"round {round_number + 1}: {model}, {arm['label']}: {rate:.1f} img/s")
    print(f"\n| model | {' | '.join(a['label'] for a in arms)} |")
    print(f"|---|{'---|' * len(arms)}")
    for model in args.models:
        base = statistics.median(rates[model, arms[0]["label"]])
        cells = []
        for arm in arms:
            median = statistics.median(rates[model, arm["label"]])
            cells.append(f"{median:.1f} img/s ({median / base:.2f}x)")
        print(f"| {model} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
