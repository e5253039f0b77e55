"""Random access to serialized records, without TensorFlow: shards indexed once, or bytes in memory.

A split's shards are checked and indexed in one walk of their framing (`tfrecord.record_spans`):
each record's shard, offset and length, so any record is then read with one seek. The folder
datasets, encoded in memory, are indexed as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backdrop.data.example_proto import ExampleFormatError
from backdrop.data.records import decode_example, decode_source
from backdrop.data.records_metadata import METADATA, load_metadata, shard_paths
from backdrop.data.tfrecord import (
    PREPARE_AGAIN,
    RecordsFileError,
    check_shards,
    read_record,
    record_spans,
)


class RecordIndex:
    """Serialized records by number, from shards (`(shard, offset, length)` of each) or from
    bytes held in memory. Picklable, and holds no open file, so worker processes can share it.
    """

    def __init__(self, paths: Sequence[Path] = (), examples: Sequence[bytes] | None = None):
        """Indexes the records of `paths` (already checked: `check_shards`), or `examples`."""
        self.paths = [Path(path) for path in paths]
        self.examples = None if examples is None else list(examples)
        spans = [record_spans(path) for path in self.paths]
        self.shard = np.concatenate(
            [np.full(len(found), number, np.int32) for number, found in enumerate(spans)]
            or [np.zeros(0, np.int32)]
        )
        self.spans = np.concatenate(spans or [np.zeros((0, 2), np.int64)])
        # Where each shard's records start, to name a damaged record by its number in its shard.
        self.first = np.cumsum([0] + [len(found) for found in spans])

    def __len__(self) -> int:
        return len(self.examples) if self.examples is not None else len(self.spans)

    def record(self, index: int) -> bytes:
        """The serialized record `index` (one seek into its shard, checked against its CRC)."""
        if self.examples is not None:
            return self.examples[index]
        offset, length = self.spans[index]
        return read_record(self.paths[self.shard[index]], int(offset), int(length))

    def example(self, index: int) -> dict:
        """Record `index` decoded as `records.decode_example` decodes it.

        Raises:
            RecordsFileError: the record is not one of Backdrop's; one line naming its shard.
        """
        try:
            return decode_example(self.record(index))
        except ExampleFormatError as error:
            raise RecordsFileError(f"{self._where(index)} ({error}); {PREPARE_AGAIN}") from None

    def sources(self) -> list[str]:
        """The source of every record, in order, without decoding a picture."""
        found = []
        for index in range(len(self)):
            try:
                found.append(decode_source(self.record(index)))
            except ExampleFormatError as error:
                raise RecordsFileError(f"{self._where(index)} ({error}); {PREPARE_AGAIN}") from None
        return found

    def loaded(self) -> RecordIndex:
        """The same records, their bytes read into memory (no more reads from the shards)."""
        if self.examples is not None:
            return self
        loaded = RecordIndex(examples=[self.record(index) for index in range(len(self))])
        loaded.paths, loaded.shard, loaded.first = self.paths, self.shard, self.first
        return loaded

    def _where(self, index: int) -> str:
        if not self.paths:
            return f"example {index + 1} of {len(self)} in memory is unreadable"
        shard = self.shard[index]
        return (
            f"shard {self.paths[shard]} is unreadable (record {index - self.first[shard] + 1}"
            " of it)"
        )


def split_index(folder: str | Path, split: str) -> RecordIndex:
    """The records of one split of a `backdrop prepare` folder, its shards checked first.

    Records written by other tools (no metadata.json) are the folder's `{split}*.tfrecord` files.

    Raises:
        RecordsFileError: a shard is missing, damaged, or holds another count than metadata.json
            says; one line naming it.
        PrepareError: the folder holds no records (the message names the fix).
        ValueError: the split is empty.
    """
    folder = Path(folder)
    if (folder / METADATA).is_file():
        shards = load_metadata(folder)["splits"][split]["shards"]
        paths = shard_paths(folder, split)
        check_shards(paths, [shard["count"] for shard in shards], str(folder / METADATA))
    else:
        paths = sorted(folder.glob(f"{split}*.tfrecord"))
        if not paths:
            load_metadata(folder)  # raises with the message that names the fix
        check_shards(paths)
    index = RecordIndex(paths)
    if not len(index):
        raise ValueError(f"the {split} split of {folder} is empty; prepare more data")
    return index


def memory_index(examples: Sequence[bytes]) -> RecordIndex:
    """Serialized examples held in memory (the folder-dataset path), as a `RecordIndex`."""
    if not examples:
        raise ValueError("no examples to train on")
    return RecordIndex(examples=examples)
