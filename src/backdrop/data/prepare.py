"""Readers -> downscaled samples -> sharded TFRecords with a metadata.json, on all cores."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from backdrop.data import records
from backdrop.data.parallel import log, one_opencv_thread, parallel_map
from backdrop.data.readers.base import Reader, printable
from backdrop.data.records_metadata import METADATA, SPLITS, PrepareError
from backdrop.data.sample import Sample
from backdrop.data.shards import SHARD_NAMES, ShardWriter
from backdrop.data.split import VALIDATION_FRACTION, split_of_sample
from backdrop.data.tfrecord import frame_record
from backdrop.outputs import OutputFolder, write_atomic

# A dataset whose masks mark less than this share of pixels as person is reported: its masks are
# probably read the wrong way (class ids read as grey levels, 0/1 masks read as soft).
MIN_PERSON_SHARE = 0.001


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Settings of one prepare run.

    Attributes:
        destination: Folder that receives the shards and metadata.json.
        side: Shorter image side in the records; larger images are downscaled (aspect kept),
            smaller ones are kept as they are.
        validation_fraction: Share of samples (by a hash of their name) in the validation split.
        shard_size: Samples per shard file.
        image_format: "jpeg" or "png" for `image/encoded`.
        jpeg_quality: JPEG's quality, 1-100 (95: near-lossless; lower for compact records).
        workers: Worker processes; 1 runs in this process.
        remove_previous: Delete Backdrop's earlier outputs in `destination` first.
    """

    destination: Path
    side: int = 256
    validation_fraction: float = VALIDATION_FRACTION
    shard_size: int = 1000
    image_format: str = "jpeg"
    jpeg_quality: int = records.JPEG_QUALITY
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    remove_previous: bool = False

    def __post_init__(self):
        object.__setattr__(self, "destination", Path(self.destination))
        if self.side < 8:
            raise ValueError(f"side must be at least 8 pixels, got {self.side}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.image_format not in records.IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {records.IMAGE_FORMATS}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")


def encode_sample(
    sample: Sample,
    validation_fraction: float,
    image_format: str,
    jpeg_quality: int = records.JPEG_QUALITY,
) -> tuple[str, bytes]:
    """`(split, serialized record)` of one (downscaled) sample: prepare's per-sample path,
    which training straight from folder datasets takes too."""
    serialized = records.encode_example(
        sample.name,
        sample.source,
        sample.image,
        sample.mask,
        sample.ignore,
        image_format,
        jpeg_quality,
    )
    return split_of_sample(sample, validation_fraction), serialized


def encode_in_memory(
    readers, side: int, validation_fraction: float, image_format: str = "png"
) -> dict[str, list[bytes]]:
    """`{"train": [...], "validation": [...]}` serialized records of every sample, downscaled and
    split as `prepare` does, held in memory (training straight from folder datasets)."""
    splits: dict[str, list[bytes]] = {"train": [], "validation": []}
    for reader in readers:
        for sample in reader:
            sample = downscale(sample, side)
            split, serialized = encode_sample(sample, validation_fraction, image_format)
            splits[split].append(serialized)
        for _, reason in reader.skipped:
            log(f"skipped {reason}")
    return splits


def downscale(sample: Sample, side: int) -> Sample:
    """Scales a sample so its shorter side is `side` (never up). The image and the soft mask
    use area interpolation (a mask pixel becomes the person share of its area); the ignore mask
    uses nearest neighbour."""
    height, width = sample.mask.shape
    scale = side / min(height, width)
    if scale >= 1:
        return sample
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA)
    mask = np.clip(cv2.resize(sample.mask, size, interpolation=cv2.INTER_AREA), 0, 1)
    ignore = None
    if sample.ignore is not None:
        ignore = cv2.resize(sample.ignore.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return dataclasses.replace(sample, image=image, mask=mask, ignore=ignore)


_worker_state: tuple[Sequence[Reader], PrepareConfig] | None = None


def _init_worker(readers: Sequence[Reader], config: PrepareConfig) -> None:
    global _worker_state
    _worker_state = (readers, config)
    one_opencv_thread()  # one process per core already


def _process(task: tuple[int, str]) -> tuple:
    """Loads, downscales and serializes one sample; returns ("ok", ...) or ("skip", ...)."""
    reader_index, key = task
    readers, config = _worker_state
    sample, reason = readers[reader_index].load_or_reason(key)
    if reason is not None:
        return ("skip", reader_index, printable(key), reason)
    sample = downscale(sample, config.side)
    split, serialized = encode_sample(
        sample, config.validation_fraction, config.image_format, config.jpeg_quality
    )
    person = float(np.mean(sample.mask >= 0.5))
    return ("ok", reader_index, sample.name, split, frame_record(serialized), person)


def _prepare_destination(folder: OutputFolder, remove_previous: bool) -> None:
    """Clears what Backdrop wrote in the destination before a new set of records."""
    if remove_previous:
        folder.remove_all()
    if folder.holds(METADATA):
        raise PrepareError(
            f"{folder.root} already holds records from an earlier run ({METADATA}); pass "
            "--remove-all-previous-results to replace them, or choose another destination"
        )
    # Without metadata.json, Backdrop's shards here come from an interrupted run: nothing refers
    # to them, so they are cleared before writing a complete set.
    folder.clear_leftovers(SHARD_NAMES)
    folder.path(METADATA)  # a metadata.json Backdrop did not write is refused before any work


def prepare(readers: Sequence[Reader], config: PrepareConfig, progress: bool = True) -> dict:
    """Writes every usable sample of `readers` to sharded TFRecords in `config.destination`.

    Returns:
        The metadata written to `destination/metadata.json` (written last, atomically).

    Raises:
        PrepareError: the destination holds an earlier run, or no sample was usable.
    """
    started = time.perf_counter()
    skipped: list[dict] = []
    tasks = []
    for index, reader in enumerate(readers):
        tasks += [(index, key) for key in reader.keys()]
        for file, reason in reader.skipped:
            skipped.append({"source": reader.source, "file": file, "reason": reason})
            log(f"skipped {reason}")
    if not tasks:  # refused before anything is written
        raise PrepareError(
            f"no pictures found ({len(skipped)} reasons above); check the dataset paths and "
            "their folder layout (see `backdrop prepare --help`)"
        )
    inputs = [path for reader in readers for path in reader.input_paths()]
    with OutputFolder(config.destination, "prepare", "destination (-d)", inputs) as folder:
        _prepare_destination(folder, config.remove_previous)
        return _prepare(readers, config, folder, tasks, skipped, started, progress)


def _prepare(
    readers: Sequence[Reader],
    config: PrepareConfig,
    folder: OutputFolder,
    tasks: list[tuple[int, str]],
    skipped: list[dict],
    started: float,
    progress: bool,
) -> dict:
    counts = [dict.fromkeys(SPLITS, 0) for _ in readers]
    person = [0.0] * len(readers)  # sum over samples of the share of pixels >= 0.5
    writers = {split: ShardWriter(folder, split, config.shard_size) for split in SPLITS}
    try:
        results = parallel_map(
            _process, tasks, config.workers, _init_worker, (readers, config), progress
        )
        for result in results:
            if result[0] == "skip":
                _, index, key, reason = result
                skipped.append({"source": readers[index].source, "file": key, "reason": reason})
                log(f"skipped {reason}")
                continue
            _, index, _name, split, serialized, share = result
            writers[split].write(serialized)
            counts[index][split] += 1
            person[index] += share
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise

    written = sum(sum(split_counts.values()) for split_counts in counts)
    if written == 0:
        why = f"{len(skipped)} skipped, reasons above" if skipped else "no pictures found"
        raise PrepareError(
            f"no usable samples among {len(tasks)} candidates ({why}); check the dataset paths "
            "and their folder layout (see `backdrop prepare --help`)"
        )
    # Per source: the mean share of person pixels over its masks.
    shares = [total / max(1, sum(c.values())) for total, c in zip(person, counts, strict=True)]
    warnings = []
    for reader, split_counts, share in zip(readers, counts, shares, strict=True):
        samples = sum(split_counts.values())
        if samples and share < MIN_PERSON_SHARE:
            warnings.append(
                f"{reader.source} {reader.root}: almost no person pixel ({100 * share:.3f}% "
                f"of pixels >= 0.5 over {samples} masks, read as {reader.masks_read_as()}); check "
                "its masks and --mask-encoding"
            )
            log(f"warning: {warnings[-1]}")
    elapsed = time.perf_counter() - started
    metadata = {
        "format": "backdrop-tfrecords-v1",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "side": config.side,
        "image_format": config.image_format,
        "validation_fraction": config.validation_fraction,
        "schema": {
            "image": records.IMAGE_KEY,
            "mask": records.MASK_KEY,
            "ignore": records.IGNORE_KEY,
        },
        "sources": [
            {
                "source": reader.source,
                "format": type(reader).__name__,
                "root": str(reader.root),
                "masks": reader.masks_read_as(),
                "person_pixel_share": round(share, 4),
                **split_counts,
            }
            for reader, split_counts, share in zip(readers, counts, shares, strict=True)
        ],
        "splits": {
            split: {
                "count": sum(shard["count"] for shard in writers[split].shards),
                "shards": writers[split].shards,
            }
            for split in SPLITS
        },
        "skipped": skipped,
        "warnings": warnings,
        "seconds": round(elapsed, 2),
        "images_per_second": round(len(tasks) / elapsed, 2),
    }
    write_atomic(config.destination / METADATA, json.dumps(metadata, indent=2))
    return metadata
