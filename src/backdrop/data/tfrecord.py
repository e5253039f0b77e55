"""TFRecord shards without TensorFlow: each record framed with its length and masked CRC32-C."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import numpy as np

PREPARE_AGAIN = "run `backdrop prepare` again to rewrite the records"
_CHUNK = 1024 * 1024  # bytes of a record checked at a time


class RecordsFileError(ValueError):
    """A file of a records folder (metadata.json or a shard) is damaged or malformed; the message
    names it and the fix."""


def _masked_crc(data: bytes) -> bytes:
    return _mask(google_crc32c.value(data))


def _mask(crc: int) -> bytes:
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_record(serialized: bytes) -> bytes:
    """One TFRecord entry: uint64 length, its masked CRC32-C, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(serialized))
    return length + _masked_crc(length) + serialized + _masked_crc(serialized)


def _walk(path: Path, keep: bool) -> Iterator[tuple[int, int, bytes]]:
    """Each record of the shard at `path`, its length and data checked against their CRCs (as
    TensorFlow's reader does) and every length bounded by the bytes left in the file, as
    `(offset, length, data)`: where its data starts, its length, and its bytes where `keep`,
    else b"" (then at most 1 MiB of the shard is in memory).

    Raises:
        RecordsFileError: the shard is truncated or damaged; one line naming it.
    """
    size = path.stat().st_size
    count = position = 0
    with open(path, "rb") as handle:
        while position < size:
            where = f"shard {path} is damaged at byte {position} (record {count + 1}"
            header = handle.read(12)
            if len(header) < 12:
                raise RecordsFileError(f"{where}: truncated length); {PREPARE_AGAIN}")
            if _masked_crc(header[:8]) != header[8:]:
                raise RecordsFileError(f"{where}: its length fails its CRC); {PREPARE_AGAIN}")
            (length,) = struct.unpack("<Q", header[:8])
            if length > size - position - 16:
                raise RecordsFileError(
                    f"{where}: truncated, {length} bytes claimed); {PREPARE_AGAIN}"
                )
            crc, left, chunks = 0, length, []
            while left:
                chunk = handle.read(min(left, _CHUNK))
                if not chunk:  # the file shrank while it was read
                    raise RecordsFileError(f"{where}: truncated); {PREPARE_AGAIN}")
                crc, left = google_crc32c.extend(crc, chunk), left - len(chunk)
                if keep:
                    chunks.append(chunk)
            if _mask(crc) != handle.read(4):
                raise RecordsFileError(f"{where}: its data fails its CRC); {PREPARE_AGAIN}")
            yield position + 12, length, b"".join(chunks)
            position, count = position + 16 + length, count + 1


def read_shard(path: Path) -> Iterator[bytes]:
    """Yields the bytes of each record in the shard at `path`, without TensorFlow, each checked
    as `count_records` checks it before it is yielded.

    Raises:
        RecordsFileError: the shard is truncated or damaged where it is reached; one line naming it.
    """
    for _, _, data in _walk(Path(path), keep=True):
        yield data


def count_records(path: Path) -> int:
    """The records in the shard at `path`, each length and record checked against its CRC (as
    TensorFlow's reader does), without TensorFlow and with at most 1 MiB in memory.

    Raises:
        RecordsFileError: the shard is truncated or damaged; one line naming it.
    """
    return sum(1 for _ in _walk(Path(path), keep=False))


def read_record(path: Path, offset: int, length: int) -> bytes:
    """The record whose data starts at `offset` of the shard at `path` (`record_spans` gives
    both), read with one seek and checked against its CRC.

    Raises:
        RecordsFileError: the bytes there are not that record (the shard changed since it was
            indexed); one line naming it.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length + 4)
    if len(data) != length + 4 or _masked_crc(data[:length]) != data[length:]:
        raise RecordsFileError(
            f"shard {path} changed after it was checked (the record at byte {offset - 12} fails its "
            f"CRC); {PREPARE_AGAIN}"
        )
    return data[:length]


_spans: dict[tuple, np.ndarray] = {}  # (path, size, mtime) -> record spans, for shards read again


def record_spans(path: Path) -> np.ndarray:
    """`(records, 2)` int64: where each record's data starts in the shard at `path`, and its
    length, every record checked as `count_records` checks it. An unchanged shard is read once
    per process (`check_shards` and an index of the records share the walk).

    Raises:
        RecordsFileError: the shard is truncated or damaged; one line naming it.
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _spans:
        spans = [(offset, length) for offset, length, _ in _walk(path, keep=False)]
        _spans[key] = np.array(spans, np.int64).reshape(-1, 2)
    return _spans[key]


def check_shards(paths: list[Path], counts: list[int] | None = None, named_by: str = "") -> None:
    """Raises unless every shard is there, intact, and holds its count of records (where
    `counts` gives them). An unchanged shard is read once per process.

    Raises:
        RecordsFileError: one line naming the first missing, damaged or short shard.
    """
    named = f", named by {named_by}," if named_by else ""
    for index, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise RecordsFileError(f"shard {path}{named} is missing; {PREPARE_AGAIN}")
        found = len(record_spans(path))
        if counts is not None and found != counts[index]:
            raise RecordsFileError(
                f"shard {path} holds {found} records, {named_by or 'its metadata'} says "
                f"{counts[index]}; {PREPARE_AGAIN}"
            )
