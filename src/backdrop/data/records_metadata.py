"""A records folder's metadata.json read as data: counts, shard names and sources, each checked.

`backdrop prepare` writes it; training, export, report and the model cards read it, often from a
folder someone else prepared. Every shard it names must be a file in that folder (a plain name:
no separator, no `..`), and every count a whole number the shards can hold, so a hand-edited or
damaged file is one line naming it, never a KeyError or a read outside the folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from backdrop.data.tfrecord import PREPARE_AGAIN, RecordsFileError

MAX_METADATA_BYTES = 256 * 1024 * 1024  # a million skipped files with their reasons fit
MAX_COUNT = 2**40
MAX_SHARDS = 1_000_000
SPLITS = ("train", "validation")
METADATA = "metadata.json"


class PrepareError(RuntimeError):
    """The prepare run cannot go on, or a folder holds no complete records; the message names
    the fix."""


def load_metadata(folder: str | Path) -> dict:
    """Reads a records folder's metadata.json, with an error that names the fix when absent.

    Raises:
        PrepareError: there is none.
        RecordsFileError: it is malformed (`read_metadata`); one line naming it.
    """
    path = Path(folder) / METADATA
    if not path.is_file():
        raise PrepareError(
            f"{path} not found: {folder} is not a complete records folder; run `backdrop prepare`"
        )
    return read_metadata(path, SPLITS)


def shard_paths(folder: str | Path, split: str) -> list[Path]:
    """The shard files of one split that metadata.json claims, in order (each a file name in
    `folder`: `read_metadata` refuses any other)."""
    metadata = load_metadata(folder)
    return [Path(folder) / shard["file"] for shard in metadata["splits"][split]["shards"]]


def read_metadata(path: Path, splits: Sequence[str]) -> dict:
    """metadata.json at `path`, with `splits` (each: count, shards of file and count) and
    `sources` (each: source, root, a count per split) checked.

    Raises:
        RecordsFileError: one line naming the file and what is wrong with it.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_METADATA_BYTES + 1)
    try:
        if len(data) > MAX_METADATA_BYTES:
            raise ValueError("larger than any metadata Backdrop writes")
        metadata = json.loads(data.decode("utf-8"))
        _check(metadata, splits)
    except (ValueError, RecursionError) as error:
        raise RecordsFileError(
            f"{path} is not a records folder's metadata ({error}); {PREPARE_AGAIN}"
        ) from None
    return metadata


def is_file_name(name) -> bool:
    """Whether `name` is a plain file name: a file in the folder whose metadata names it."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name not in (".", "..")
        and not any(c in name for c in "/\\\0:")
    )


def _whole(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_COUNT


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _check(metadata, splits: Sequence[str]) -> None:
    """Raises ValueError naming the first entry unlike those `backdrop prepare` writes."""
    metadata = _object(metadata, "the file")
    found = _object(metadata.get("splits"), '"splits"')
    for split in splits:
        entry = _object(found.get(split), f'"splits"."{split}"')
        shards = entry.get("shards")
        if not isinstance(shards, list) or len(shards) > MAX_SHARDS:
            raise ValueError(f'"splits"."{split}"."shards" is not a list of shards')
        for shard in shards:
            shard = _object(shard, f'a shard of "{split}"')
            if not is_file_name(shard.get("file")):
                raise ValueError(
                    f'the shard file {_shown(shard.get("file"))} of "{split}" is not a file name '
                    "in the folder (a path, or not text)"
                )
            if not _whole(shard.get("count")):
                raise ValueError(f"the count of shard {shard['file']} is not a whole number")
        count = entry.get("count")
        if not _whole(count) or count != sum(shard["count"] for shard in shards):
            raise ValueError(f'"splits"."{split}"."count" is not the sum of its shards\' counts')
    sources = metadata.get("sources")
    if not isinstance(sources, list):
        raise ValueError('"sources" is not a list')
    for source in sources:
        source = _object(source, "a source")
        if not all(isinstance(source.get(key), str) for key in ("source", "root")):
            raise ValueError('a source has no "source" and "root" text')
        if not all(_whole(source.get(split)) for split in splits):
            raise ValueError(f"source {_shown(source['source'])} has no whole count per split")
        if not isinstance(source.get("masks", ""), str):
            raise ValueError(f'the "masks" of source {_shown(source["source"])} is not text')


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
