"""A records folder's shard files: their names, and the writer that renames each when complete."""

from __future__ import annotations

import os
from pathlib import Path

from backdrop.data.records_metadata import SPLITS
from backdrop.outputs import OutputFolder, temporary_path

SHARD_NAMES = rf"({'|'.join(SPLITS)})-\d{{5}}\.tfrecord"  # train-00000.tfrecord, ...


class ShardWriter:
    """Writes one split's shards under temporary names, renaming each when it is complete."""

    def __init__(self, folder: OutputFolder, split: str, shard_size: int):
        self.folder, self.split, self.shard_size = folder, split, shard_size
        self.shards: list[dict] = []
        self._writer = None
        self._count = 0

    def _paths(self) -> tuple[Path, Path]:
        final = self.folder.root / f"{self.split}-{len(self.shards):05d}.tfrecord"
        return final, temporary_path(final)

    def write(self, framed: bytes) -> None:
        """Appends one framed record (see `tfrecord.frame_record`)."""
        if self._writer is None:
            self.folder.path(self._paths()[0].name)  # claimed before it is written
            self._writer = open(self._paths()[1], "wb")  # noqa: SIM115 - closed in close()
        self._writer.write(framed)
        self._count += 1
        if self._count == self.shard_size:
            self.close()

    def close(self) -> None:
        """Finishes the open shard, if any: flush, close, rename to its final name."""
        if self._writer is None:
            return
        self._writer.flush()
        os.fsync(self._writer.fileno())
        self._writer.close()
        final, temporary = self._paths()
        os.replace(temporary, final)
        self.shards.append({"file": final.name, "count": self._count})
        self._writer, self._count = None, 0

    def abandon(self) -> None:
        """Drops the open shard (after an interruption): its temporary file is removed."""
        if self._writer is not None:
            self._writer.close()
            self._paths()[1].unlink(missing_ok=True)
            self._writer, self._count = None, 0
