"""Record reading: `read_records` (no TensorFlow) records/s against TensorFlow's parser.

The baseline, timed in the same process on the same shard, is what `read_records` did before it
needed no TensorFlow: `tf.data.TFRecordDataset` -> `parse_example` -> numpy, one record at a time.
Each side is warmed up once, then the best of `--repeats` passes is kept.

    .venv/bin/python benchmarks/record_reading.py [--side 288] [--image-format jpeg] [--repeats 3]

Prepares human_seg_vikram and davis2016_people from ../shared/datasets into one shard when they
are present, else 600 generated 640x480 images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.davis import DAVISReader
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.records import parse_example, read_records
from backdrop.data.records_metadata import shard_paths
from backdrop.data.synthetic import write_synthetic_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def read_with_tensorflow(paths: list[Path]):
    """The baseline: every record parsed by TensorFlow, as numpy."""
    from backdrop.tf_setup import import_tensorflow

    tf = import_tensorflow()
    for path in paths:
        for record in tf.data.TFRecordDataset([str(path)]).map(parse_example).as_numpy_iterator():
            record["name"], record["source"] = record["name"].decode(), record["source"].decode()
            yield record


def best_rate(read, paths: list[Path], repeats: int) -> tuple[float, int]:
    """Records/s of the fastest of `repeats` passes after one warm-up, and the record count."""
    count = sum(1 for _ in read(paths))
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in read(paths):
            pass
        fastest = min(fastest, time.perf_counter() - started)
    return count / fastest, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=288)
    parser.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if (SHARED / "human_seg_vikram").is_dir():
            readers = [
                PortraitReader(SHARED / "human_seg_vikram"),
                DAVISReader(SHARED / "davis2016_people"),
            ]
            data = "human_seg_vikram + davis2016_people"
        else:
            readers = [PortraitReader(write_synthetic_dataset(Path(scratch) / "s", 600, 480, 640))]
            data = "600 generated 640x480 images"
        config = PrepareConfig(
            Path(scratch) / "records",
            side=args.side,
            validation_fraction=0.0,
            image_format=args.image_format,
            shard_size=1_000_000,
        )
        prepare(readers, config, progress=False)
        paths = shard_paths(config.destination, "train")
        baseline, count = best_rate(read_with_tensorflow, paths, args.repeats)
        rate, _ = best_rate(read_records, paths, args.repeats)
    print(f"data: {data}, {count} records in one shard, side {args.side}, {args.image_format}")
    print(f"TensorFlow (tf.data + parse_example): {baseline:.1f} records/s")
    print(f"read_records (no TensorFlow): {rate:.1f} records/s = {rate / baseline:.2f} x")


if __name__ == "__main__":
    main()
