"""The bundled first run: synthetic data -> records -> a small Attention U-Net -> int8 -> a
blurred clip -> an HTML report. Nothing is downloaded."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers import create_reader
from backdrop.data.synthetic import write_backgrounds, write_clip, write_synthetic_dataset
from backdrop.outputs import OutputFolder


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; `quick` is the CI-sized one."""

    samples: int = 600
    image_side: int = 192
    input_side: int = 128
    filters: int = 8
    epochs: int = 30
    clip_frames: int = 90

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(samples=96, image_side=96, input_side=64, filters=4, epochs=3, clip_frames=20)


def run_demo(output: str | Path, settings: DemoSettings = DemoSettings()) -> dict[str, Path]:
    """Runs every step into `output`; returns the artefacts by name."""
    with OutputFolder(output, "demo", "--output") as folder:
        # Each step's own folder has its own manifest and lock; the demo claims them all here,
        # so a file of yours in the way stops it before any work.
        folder.claim(*DEMO_OUTPUTS)
        return _run_demo(folder.root, settings)


# What the demo writes in its output folder.
DEMO_OUTPUTS = (
    "synthetic/",
    "backgrounds/",
    "records/",
    "training/",
    "clip.mp4",
    "clip_blurred.mp4",
)


def _run_demo(output: Path, settings: DemoSettings) -> dict[str, Path]:
    from backdrop.evaluation.report import write_report
    from backdrop.runtime.media import process_video
    from backdrop.runtime.pipeline import FramePipeline, parse_effect
    from backdrop.runtime.segmenter import Segmenter
    from backdrop.ship.export import format_reports
    from backdrop.training.export_step import export_after_training
    from backdrop.training.loop import TrainConfig, train

    started = time.perf_counter()

    def step(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    step(f"generating {settings.samples} synthetic figures and 40 backgrounds")
    side = settings.image_side
    dataset = write_synthetic_dataset(output / "synthetic", settings.samples, side, side)
    backgrounds = write_backgrounds(output / "backgrounds", 40, side, side)
    step("preparing records")
    records = output / "records"
    prepare(
        [create_reader("portrait", dataset, source="synthetic")],
        PrepareConfig(
            records,
            side=settings.input_side * 9 // 8,
            workers=os.cpu_count() or 1,
            remove_previous=True,
        ),
        progress=False,
    )
    step(f"training a {settings.input_side} px Attention U-Net for {settings.epochs} epochs")
    config = TrainConfig(
        checkpoints=output / "training",
        records=records,
        input_shape=(settings.input_side, settings.input_side),
        filters=settings.filters,
        epochs=settings.epochs,
        batch_size=16,
        learning_rate=3e-3,
        background_folders=(backgrounds,),
        export="int8",
    )
    state = train(config, remove_previous=True, verbose=2)
    step(f"best validation IoU {state['best_val_iou']:.3f}; exporting float32 and int8")
    reports = export_after_training(config, modes=["float32", "int8"])
    print(format_reports(reports))
    model = output / "training" / "model_int8.tflite"
    step("segmenting a generated clip with the blur effect")
    clip = write_clip(output / "clip.mp4", frames=settings.clip_frames)
    blurred = output / "clip_blurred.mp4"
    pipeline = FramePipeline(Segmenter(model), parse_effect("blur"), smooth=0.6)
    stats = process_video(clip, blurred, pipeline, progress=False)
    step(f"{stats['frames']} frames at {stats['frames_per_second']:.0f} frames/s; writing report")
    report = write_report(output / "training")
    artefacts = {
        "dataset": dataset,
        "records": records,
        "checkpoints": output / "training",
        "model": model,
        "clip": clip,
        "blurred clip": blurred,
        "report": report,
    }
    step("done")
    for name, path in artefacts.items():
        print(f"{name:>13}: {path}")
    return artefacts
