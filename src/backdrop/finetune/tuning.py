"""The tuning steps of a fine-tune: train the start on the labels (one run per seed, each
continued where it stopped), average the seeds and then with the start, export."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from backdrop.finetune.start import StartModel
from backdrop.finetune.steps import start_of


def training_seeds(config) -> range:
    return range(config.seed, config.seed + config.seeds)


def run_folders(config, plan) -> list[Path]:
    return [
        plan.root / ("train" if seed == 0 else f"train-seed{seed}")
        for seed in training_seeds(config)
    ]


def _architecture(start: StartModel) -> dict:
    from backdrop.training.config import ARCHITECTURE, is_checkpoint
    from backdrop.training.run_folder import checkpoint_run

    if is_checkpoint(start.init_from):
        run = checkpoint_run(start.init_from)
        return {name: getattr(run, name) for name in ARCHITECTURE}
    return {"model": start.architecture, "input_shape": start.input_shape}


def train_config(config, plan, folder: Path, seed: int):
    from backdrop.training.config import TrainConfig

    start = start_of(plan)
    return TrainConfig(
        **_architecture(start),
        checkpoints=folder,
        records=plan.root / "records",
        init_from=start.init_from,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        cache=True,
        background_folders=config.backgrounds,
        background_probability=config.background_probability if config.backgrounds else 0.0,
        zoom_out_probability=config.zoom_out_probability,
        crop_aspect=config.crop_aspect,
        source_repeats=(("footage", config.footage_repeat),) if config.footage_repeat > 1 else (),
        seed=seed,
        export="none",
    )


def train(config, plan) -> None:
    import keras

    from backdrop.training.loop import train as train_run
    from backdrop.training.run_folder import RunFolder

    folders = run_folders(config, plan)
    plan.folder.claim(*(f"{folder.name}/" for folder in folders))

    class TimeLeft(keras.callbacks.Callback):
        """After each epoch: how long the training has left, at the pace so far (`run`: which
        of the seeds' runs this is, from 0)."""

        def __init__(self, run: int):
            super().__init__()
            self.run = run

        def on_train_begin(self, logs=None):
            self.began, self.first = time.monotonic(), None

        def on_epoch_end(self, epoch, logs=None):
            self.first = epoch if self.first is None else self.first
            pace = (time.monotonic() - self.began) / (epoch - self.first + 1)
            runs_after = len(folders) - self.run - 1
            left = pace * ((config.epochs - epoch - 1) + config.epochs * runs_after)
            print(
                f"  epoch {epoch + 1}/{config.epochs} of seed {self.run + 1}/{len(folders)}; "
                f"about {left / 60:.1f} min of training left",
                flush=True,
            )

    verbose = "auto" if sys.stdout.isatty() else 2
    for run, (seed, folder) in enumerate(zip(training_seeds(config), folders, strict=True)):
        restore = RunFolder(folder).state.is_file()
        train_run(
            train_config(config, plan, folder, seed),
            restore=restore,
            verbose=verbose,
            callbacks=[TimeLeft(run)],
        )


def average_weight(config, start: StartModel) -> float:
    """The share of the fine-tuned weights: as given, else the recipe's (0.5 square, 0.3
    landscape; benchmarks/README.md)."""
    if config.average_weight is not None:
        return config.average_weight
    return 0.3 if start.landscape else 0.5


def average(config, plan) -> None:
    from backdrop.training.average import average_checkpoint
    from backdrop.training.run_folder import RunFolder

    start = start_of(plan)
    lasts = [RunFolder(folder).epoch(config.epochs) for folder in run_folders(config, plan)]
    tuned = lasts[0]
    for count, last in enumerate(lasts[1:], 2):  # a running uniform mean of the seeds
        average_checkpoint(last, plan.root / "soup.keras", 1 / count, start=tuned)
        tuned = plan.root / "soup.keras"
    weight = average_weight(config, start)
    average_checkpoint(tuned, plan.root / "averaged.keras", weight, start=start.init_from)
    print(f"  averaged.keras: {weight:g} x fine-tuned + {1 - weight:g} x {start.description}")


def export(config, plan) -> None:
    from backdrop.ship.on_tensorflow import on_tensorflow

    if start_of(plan).tflite is None:  # a Backdrop checkpoint: its own .tflite to compare
        plan.folder.claim("start/")
    on_tensorflow(_export, config, PlanFiles(plan.root, plan.content))


class PlanFiles(NamedTuple):
    """What the export reads of a plan (the plan itself holds the run folder's lock)."""

    root: Path
    content: dict


def _export(config, plan: PlanFiles) -> None:
    from backdrop.ship.export import export_models, format_reports
    from backdrop.ship.model_card import training_data
    from backdrop.training.checkpoints import load_checkpoint
    from backdrop.training.config import TrainConfig
    from backdrop.training.datasets import export_data
    from backdrop.training.ranges import tail_rounded

    start = start_of(plan)
    records_folder = plan.root / "records"
    averaged = plan.root / "averaged.keras"
    model = load_checkpoint(averaged)
    shape = tuple(model.input_shape[1:3])
    calibration, validation = export_data(
        TrainConfig(checkpoints=plan.root, records=records_folder, input_shape=shape)
    )
    common = {
        "threads": config.threads,
        "training": training_data(records_folder),
    }
    extra = {"checkpoint": str(averaged), "model": model.name, "fine_tuned_from": start.description}
    floats = [mode for mode in config.modes if mode != "int8"]
    jobs = []  # export_models's (model, folder, modes, options), each timed for the estimate
    if floats:
        jobs.append((model, plan.root / "model", floats, {}))
    if "int8" in config.modes:
        rounded = tail_rounded(model, np.stack(calibration), config.int8_range_tail)
        tail = {"int8": {"int8_range_tail": config.int8_range_tail}}
        jobs.append((rounded, plan.root / "model", ["int8"], {"mode_extra": tail}))
    if start.tflite is None:
        begin = load_checkpoint(start.init_from)
        checkpoint = {"extra": {"checkpoint": str(start.init_from)}}
        jobs.append((begin, plan.root / "start", ["float16"], checkpoint))
    reports, began = [], time.monotonic()
    for number, (keras_model, folder, modes, options) in enumerate(jobs, 1):
        left = (time.monotonic() - began) / max(1, number - 1) * (len(jobs) - number + 1)
        estimate = f"; about {left / 60:.1f} min of export left" if number > 1 else ""
        print(
            f"  exporting {number}/{len(jobs)}: {folder.name}/ {', '.join(modes)}{estimate}",
            flush=True,
        )
        reports += export_models(
            keras_model,
            folder,
            modes,
            calibration,
            validation,
            **{"extra": extra, **options},
            **common,
        )
    print(format_reports(reports))
