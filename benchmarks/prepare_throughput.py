"""Prepare throughput: `backdrop prepare` images/s against a one-process floor loop.

The floor only decodes each image, downscales it to the same side and PNG-encodes it, in this
process; prepare also decodes and resamples the mask, encodes both, builds the records and writes
the shards, on all cores. Goal (issue 2): prepare >= 0.8 x cores x floor.

    .venv/bin/python benchmarks/prepare_throughput.py [--side 256] [--data DIR ...]

Uses the portraits and DAVIS frames in ../shared/datasets when present, else generated data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.davis import DAVISReader
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.synthetic import write_synthetic_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def image_paths(readers) -> list[Path]:
    paths = []
    for reader in readers:
        if isinstance(reader, PortraitReader):
            paths += [reader.images / key for key in reader.keys()]
        else:
            paths += [reader.frames / key for key in reader.keys()]
    return paths


def floor_loop(paths: list[Path], side: int) -> float:
    """Images/s of decode -> downscale -> PNG encode, one process, one OpenCV thread."""
    cv2.setNumThreads(1)
    started = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        scale = min(1.0, side / min(height, width))
        size = (round(width * scale), round(height * scale))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        cv2.imencode(".png", pixels)
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if (SHARED / "human_seg_vikram").is_dir():
            readers = [
                PortraitReader(SHARED / "human_seg_vikram"),
                DAVISReader(SHARED / "davis2016_people"),
            ]
            data = "human_seg_vikram (232) + davis2016_people (375)"
        else:
            folder = write_synthetic_dataset(Path(scratch) / "synthetic", 600, 480, 640)
            readers = [PortraitReader(folder)]
            data = "600 generated 640x480 images"
        paths = image_paths(readers)
        floor = floor_loop(paths, args.side)
        rates = {}
        for image_format in ("jpeg", "png"):
            config = PrepareConfig(
                Path(scratch) / f"records-{image_format}",
                side=args.side,
                image_format=image_format,
                workers=args.workers,
            )
            started = time.perf_counter()
            metadata = prepare(readers, config, progress=False)
            written = sum(s["train"] + s["validation"] for s in metadata["sources"])
            rates[image_format] = written / (time.perf_counter() - started)
    print(f"data: {data}, {len(paths)} images, side {args.side}, {args.workers} workers")
    print(f"floor (decode+resize+PNG, 1 process): {floor:.1f} images/s")
    for image_format, rate in rates.items():
        ratio = rate / (args.workers * floor)
        print(
            f"prepare --image-format {image_format}: {rate:.1f} images/s = "
            f"{ratio:.2f} x cores x floor (goal >= 0.8)"
        )


if __name__ == "__main__":
    main()
