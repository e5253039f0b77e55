"""Runtime speed: end-to-end blur frames/s beside the model's own time, and export-mode latency.

1. End to end, per frame: decode (PyAV) -> segment (resize, invoke, resize back) -> blur
   composite -> encode (H.264, PyAV, as `backdrop segment` writes it; beside it OpenCV's mp4v
   writer, what segment wrote until 2026-12-06), on generated 640x480 and 1280x720 clips. Goal
   (issue 4): the pipeline adds no more than the model's own inference time.
2. Latency (median ms of one invoke) of the Attention U-Net (256 px, 8 filters) exported as
   float32, float16 and int8, beside MediaPipe's selfie segmenter at the same thread count.

    .venv/bin/python benchmarks/runtime_throughput.py [--threads 2] [--frames 90]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from backdrop.data.synthetic import generate_sample
from backdrop.runtime.media import open_video, open_writer, video_frames
from backdrop.runtime.pipeline import FramePipeline, parse_effect
from backdrop.runtime.segmenter import Segmenter

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    image, _ = generate_sample(0, height, width)
    for index in range(frames):
        writer.write(cv2.cvtColor(np.roll(image, index * 4, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def end_to_end(model: Path, clip: Path, output: Path, threads: int) -> dict[str, float]:
    """Milliseconds per frame of each stage of the blur pipeline over `clip`, and of the same
    frames written by OpenCV's MPEG-4 Part 2 (`mp4v`) writer, what segment wrote before H.264
    (the baseline, in the same run)."""
    segmenter = Segmenter(model, threads)
    pipeline = FramePipeline(segmenter, parse_effect("blur"), smooth=0.6)
    reader, _, fps, size = open_video(clip)
    frames = video_frames(reader)
    writer = open_writer(output, fps, size)
    baseline = cv2.VideoWriter(
        str(output.with_suffix(".mp4v.mp4")), cv2.VideoWriter_fourcc(*"mp4v"), fps, size
    )
    totals = {"decode": 0.0, "process": 0.0, "encode": 0.0, "encode mp4v": 0.0}
    count = 0
    while True:
        started = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            break
        decoded = time.perf_counter()
        result = pipeline(frame)
        processed = time.perf_counter()
        writer.write(result)
        encoded = time.perf_counter()
        baseline.write(cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
        totals["decode"] += decoded - started
        totals["process"] += processed - decoded
        totals["encode"] += encoded - processed
        totals["encode mp4v"] += time.perf_counter() - encoded
        count += 1
    closing = time.perf_counter()
    writer.close()  # flushes the encoder's delayed frames: part of the encode
    totals["encode"] += time.perf_counter() - closing
    reader.release()
    baseline.release()
    stages = {name: 1000 * value / count for name, value in totals.items()}
    stages["model"] = segmenter.latency_ms()
    return stages


def export_modes(folder: Path) -> dict[str, Path]:
    from backdrop.models.attention_unet import build_attention_unet
    from backdrop.ship.export import export_tflite

    model = build_attention_unet(256, 8)
    rng = np.random.default_rng(0)
    calibration = [rng.random((256, 256, 3), dtype=np.float32) for _ in range(16)]
    return {
        mode: export_tflite(model, folder / f"aunet_{mode}.tflite", mode, calibration)
        for mode in ("float32", "float16", "int8")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        models = {f"attention_unet {mode}": path for mode, path in export_modes(scratch).items()}
        reference = ANCHORS / "selfie_segmentation.tflite"
        if reference.is_file():
            models["mediapipe selfie (reference)"] = reference
        print(f"threads: {args.threads}")
        print("\n| model | size KiB | latency ms |")
        print("|---|---|---|")
        for name, path in models.items():
            latency = Segmenter(path, args.threads).latency_ms(100)
            print(f"| {name} | {path.stat().st_size / 1024:.0f} | {latency:.2f} |")
        print(
            "\n| model | frame | decode ms | segment+blur ms | encode ms (H.264) | end to end fps "
            "| model ms | segment+blur - model ms | that / model (goal <= 1) "
            "| encode ms (mp4v, baseline) | H.264 / mp4v encode |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for width, height in ((640, 480), (1280, 720)):
            clip = make_clip(scratch / f"clip{width}.avi", width, height, args.frames)
            for name in ("attention_unet int8", "mediapipe selfie (reference)"):
                if name not in models:
                    continue
                ms = end_to_end(models[name], clip, scratch / "out.mp4", args.threads)
                total = ms["decode"] + ms["process"] + ms["encode"]
                added = ms["process"] - ms["model"]
                print(
                    f"| {name} | {width}x{height} | {ms['decode']:.2f} | {ms['process']:.2f} "
                    f"| {ms['encode']:.2f} | {1000 / total:.1f} | {ms['model']:.2f} "
                    f"| {added:.2f} | {added / ms['model']:.2f} | {ms['encode mp4v']:.2f} "
                    f"| {ms['encode'] / ms['encode mp4v']:.2f} |"
                )


if __name__ == "__main__":
    main()
