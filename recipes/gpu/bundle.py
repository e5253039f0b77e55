"""Packs what a GPU machine with JAX but no TensorFlow and no registry needs to train the
recipe's student there (issue 46): run here, then carry OUT to the machine beside the working
tree and run `bash recipes/gpu/train.sh OUT` there.

    .venv/bin/python recipes/gpu/bundle.py RECORDS [-o gpu_bundle] [--budget-mib 60]
        [--python 3.12] [--quality 80] [--start ANCHOR.tflite]

RECORDS: a `backdrop prepare` folder, e.g. `make beat`'s square fine-tune's
(runs/beat_mediapipe/square/records). OUT (git-ignored) holds:
  wheels/      Keras and what it needs beyond what such a machine has (JAX, NumPy, OpenCV):
               `pip download` for --python on manylinux x86-64, nothing built
  records/     RECORDS re-encoded (JPEG at --quality) and, when they would not fit the budget,
               every Nth record of each split, N as small as fits
  start/       the start as a Backdrop checkpoint in its run folder (MediaPipe's general model
               rebuilt here: that machine has no TFLite schema to import it from)
  bundle.json  what went in and how
The budget counts everything the run carries: OUT plus the working tree (git's files).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = ROOT.parent / "shared" / "anchors" / "selfie_segmentation.tflite"
# Keras 3 and its dependencies, Backdrop's own beyond NumPy and OpenCV for training (records'
# checksums, progress bars, Pillow for the readers it imports).
WHEELS = [
    "keras==3.15.*",
    "absl-py",
    "namex",
    "optree",
    "typing-extensions",
    "h5py",
    "rich",
    "markdown-it-py",
    "mdurl",
    "pygments",
    "packaging",
    "google-crc32c",
    "tqdm",
    "pillow",
]
MIB = 1024 * 1024


def tree_bytes() -> int:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return sum(
        (ROOT / f.decode()).stat().st_size for f in files if f and (ROOT / f.decode()).is_file()
    )


def download_wheels(folder: Path, python: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ]
    command += ["--python-version", python, "--implementation", "cp", "-d", str(folder)]
    command += ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
    subprocess.run([*command, *WHEELS], check=True)


def write_start(folder: Path, anchor: Path) -> None:
    """MediaPipe's general model rebuilt as Keras, saved as a checkpoint in a run folder."""
    from backdrop.models.registry import build_model
    from backdrop.training.checkpoints import save_model_atomic
    from backdrop.training.config import TrainConfig

    config = TrainConfig(
        checkpoints=folder, model="mediapipe_selfie", input_shape=(256, 256), init_from=anchor
    )
    model = build_model(config.model, config.input_shape, config.filters, init_from=anchor)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config.to_json())
    save_model_atomic(model, folder / "start.keras")


def records_reader(folder: Path, stride: int):
    """The records of `folder` as a reader for `prepare`: every `stride`-th of each split."""
    from backdrop.data.readers.base import Reader
    from backdrop.data.records import read_records
    from backdrop.data.records_metadata import shard_paths
    from backdrop.data.sample import Sample

    class Records(Reader):
        source = "records"

        def __init__(self):
            super().__init__(folder)
            self.records = [
                record
                for split in ("train", "validation")
                for number, record in enumerate(read_records(shard_paths(folder, split)))
                if number % stride == 0
            ]

        def keys(self) -> list[str]:
            return [str(number) for number in range(len(self.records))]

        def load(self, key: str) -> Sample:
            record = self.records[int(key)]
            mask, ignore = record["mask"][..., 0], record["ignore"][..., 0] > 0
            return Sample(record["name"], record["image"], mask, ignore, record["source"])

    return Records()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "gpu_bundle")
    parser.add_argument("--budget-mib", type=float, default=60.0)
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--start", type=Path, default=ANCHOR)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    download_wheels(args.out / "wheels", args.python)
    write_start(args.out / "start", args.start)
    used = tree_bytes() + sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    left = args.budget_mib * MIB - used
    stride = 1
    while True:
        written = prepare_records(args, stride)
        size = sum(p.stat().st_size for p in (args.out / "records").iterdir())
        if size <= left:
            break
        stride = max(stride + 1, int(stride * size / left) + 1)
    info = {
        "records_from": str(args.records),
        "every": stride,
        "records": written["splits"],
        "jpeg_quality": args.quality,
        "python": args.python,
        "wheels": sorted(p.name for p in (args.out / "wheels").iterdir()),
        "start": str(args.start),
        "carried_mib": round((used + size) / MIB, 1),
    }
    (args.out / "bundle.json").write_text(json.dumps(info, indent=2))
    print(json.dumps({k: v for k, v in info.items() if k != "wheels"}, indent=2))


def prepare_records(args, stride: int) -> dict:
    from backdrop.data.prepare import PrepareConfig, prepare

    reader = records_reader(args.records, stride)
    side = min(min(record["image"].shape[:2]) for record in reader.records)
    config = PrepareConfig(
        args.out / "records",
        side=side,
        jpeg_quality=args.quality,
        workers=1,
        remove_previous=True,
    )
    return prepare([reader], config, progress=False)


if __name__ == "__main__":
    main()
