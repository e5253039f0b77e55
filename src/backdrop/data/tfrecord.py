"""TFRecord shards without TensorFlow: each record framed with its length and masked CRC32-C."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c

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


def _walk(path: Path, keep: bool) -> Iterator[bytes]:
    """Each record of the shard at `path`, its length and data checked against their CRCs (as
    TensorFlow's reader does) and every length bounded by the bytes left in the file: its bytes
    where `keep`, else b"" (then at most 1 MiB of the shard is in memory).

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
            position, count = position + 16 + length, count + 1
            yield b"".join(chunks)


def read_shard(path: Path) -> Iterator[bytes]:
    """Yields the bytes of each record in the shard at `path`, without TensorFlow, each checked
    as `count_records` checks it before it is yielded.

    Raises:
        RecordsFileError: the shard is truncated or damaged where it is reached; one line naming it.
    """
    yield from _walk(Path(path), keep=True)


def count_records(path: Path) -> int:
    """The records in the shard at `path`, each length and record checked against its CRC (as
    TensorFlow's reader does), without TensorFlow and with at most 1 MiB in memory.

    Raises:
        RecordsFileError: the shard is truncated or damaged; one line naming it.
    """
    return sum(1 for _ in _walk(Path(path), keep=False))


_checked: dict[tuple, int] = {}  # (path, size, mtime) -> records, for shards read again


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
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _checked:
            _checked[key] = count_records(path)
        if counts is not None and _checked[key] != counts[index]:
            raise RecordsFileError(
                f"shard {path} holds {_checked[key]} records, {named_by or 'its metadata'} says "
                f"{counts[index]}; {PREPARE_AGAIN}"
            )
