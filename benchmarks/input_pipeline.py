"""Training batches/s of the loader (`loader.RecordBatches`) as training runs it, and other ways.

Every way reads the same records in one process: ../shared/datasets/picsart_selfies prepared at side
288 (9/8 of the 256x256 input, as fine-tune prepares), with `make beat`'s square fine-tune
augmentation: crops shaped as the input, COCO pictures without people as new backgrounds
(recipes/coco_backgrounds.py) for 30% of the examples, no copy-paste (`--copy-paste` adds it),
records cached; batches of 16. The loader is read as Keras' `fit` reads it (its PyDataset
adapter): in this process (workers 0, the baseline), with its own 2 prefetch threads (how
training runs it), from Keras's 1 or 2 worker processes, and from Keras's 2 threads. (tf.data,
which it replaced, is gone since issue 46; its figures are in benchmarks/README.md.) Each is
timed over whole epochs after a first one (the cache fills in it), the ways taking turns; `--model` adds the step rate of MediaPipe's selfie model (the
recipe's start) on batches already in memory, for scale.

    .venv/bin/python benchmarks/input_pipeline.py [--epochs 2] [--copy-paste 0.5] [--model]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backdrop.data.loader import record_batches
from backdrop.data.pipeline_config import PipelineConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
ANCHOR = ROOT.parent / "shared" / "anchors" / "selfie_segmentation.tflite"
SIDE, BATCH = 256, 16
LOADERS = {  # name: RecordBatches' worker arguments
    "loader, workers 0": {"workers": 0},
    "loader, 2 prefetch threads (training's)": {"prefetch": 2},
    "loader, 1 worker process": {"workers": 1, "use_multiprocessing": True},
    "loader, 2 worker processes": {"workers": 2, "use_multiprocessing": True},
    "loader, 2 threads": {"workers": 2},
}


def prepare_data(scratch: Path) -> tuple[Path, Path]:
    """Records of picsart_selfies at side 288, and the recipe's backgrounds (links)."""
    records, backgrounds = scratch / "records", scratch / "backgrounds"
    if not (records / "metadata.json").is_file():
        backdrop = Path(sys.executable).parent / "backdrop"
        portraits = DATA / "picsart_selfies"
        command = [backdrop, "prepare", "--portrait", portraits, "-d", records, "--side", "288"]
        subprocess.run([*map(str, command), "-q"], check=True)
    if not backgrounds.is_dir():
        script = ROOT / "recipes" / "coco_backgrounds.py"
        subprocess.run([sys.executable, str(script), str(DATA), str(backgrounds)], check=True)
    return records, backgrounds


def loader_epochs(batches):
    """A function that reads one epoch of `batches` as `fit` does, and returns its batches."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(batches, shuffle=False)

    def epoch() -> int:
        adapter.on_epoch_begin()
        read = sum(1 for _ in adapter.get_numpy_iterator())
        adapter.on_epoch_end()
        return read

    return epoch


def model_rate(steps: int = 5) -> float | None:
    """Training steps/s of MediaPipe's selfie model at 256x256, batch 16, data in memory."""
    if not ANCHOR.is_file():
        return None
    import keras

    from backdrop.models.tflite_import import build_mediapipe_selfie
    from backdrop.training.losses import PersonIoU, bce_dice_loss

    model = build_mediapipe_selfie((SIDE, SIDE), init_from=ANCHOR)
    model.compile(keras.optimizers.Adam(1e-4), bce_dice_loss, metrics=[PersonIoU()])
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, SIDE, SIDE, 3), dtype=np.float32)
    targets = np.zeros((BATCH, SIDE, SIDE, 2), np.float32)
    targets[..., 0] = rng.random((BATCH, SIDE, SIDE)) > 0.5
    model.train_on_batch(images, targets)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs of each pipeline")
    parser.add_argument("--copy-paste", type=float, default=0.0, help="copy-paste probability")
    parser.add_argument("--scratch", type=Path, help="folder for the records (kept); else temp")
    parser.add_argument("--model", action="store_true", help="also time the model's steps")
    args = parser.parse_args()
    if not (DATA / "picsart_selfies").is_dir():
        sys.exit(f"{DATA / 'picsart_selfies'} is absent: this benchmark needs ../shared/datasets")
    with tempfile.TemporaryDirectory() as temporary:
        records, backgrounds = prepare_data(args.scratch or Path(temporary))
        config = PipelineConfig(
            (SIDE, SIDE),
            BATCH,
            background_folders=(backgrounds,),
            background_probability=0.3,
            copy_paste_probability=args.copy_paste,
            crop_aspect="input",
            cache=True,
            seed=0,
        )
        pipelines = {}
        for name, workers in LOADERS.items():
            batches = record_batches(records, "train", config, True, **workers)[0]
            pipelines[name] = loader_epochs(batches)
        seconds, read = dict.fromkeys(pipelines, 0.0), dict.fromkeys(pipelines, 0)
        for epoch in pipelines.values():
            epoch()  # the cache fills; every way warms up
        for _ in range(args.epochs):
            for name, epoch in pipelines.items():
                started = time.perf_counter()
                read[name] += epoch()
                seconds[name] += time.perf_counter() - started
    first = next(iter(pipelines))
    baseline = read[first] / seconds[first]
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"{read[first]} batches of {BATCH} at {SIDE}x{SIDE} per way, "
        f"copy-paste {args.copy_paste:g}"
    )
    print(f"| way | batches/s | images/s | vs {first} |\n|---|---|---|---|")
    for name in pipelines:
        rate = read[name] / seconds[name]
        print(f"| {name} | {rate:.2f} | {rate * BATCH:.1f} | {rate / baseline:.2f}x |")
    if args.model:
        rate = model_rate()
        shown = "absent" if rate is None else f"{rate:.2f} steps/s ({rate * BATCH:.1f} images/s)"
        print(f"MediaPipe selfie model, training steps on batches in memory: {shown}")


if __name__ == "__main__":
    main()
