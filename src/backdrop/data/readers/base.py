"""The reader interface: list cheap keys first, then load one sample per key (in any process)."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from backdrop.data.sample import Sample, SkipSample


class DatasetError(ValueError):
    """A dataset cannot be read at all (wrong path, wrong layout); the message names the fix."""


class Reader(abc.ABC):
    """A dataset format. `keys()` lists samples without decoding them; `load(key)` decodes one.

    Keys are plain strings so that a key and its reader can be handed to a worker process.
    Problems found while listing (an empty folder, an image without a mask) are collected in
    `skipped` as `(file, reason)` pairs; `load` raises `SkipSample` for a sample it cannot use.
    """

    source: ClassVar[str]

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.source}: {self.root} is not a folder")
        self.skipped: list[tuple[str, str]] = []

    @abc.abstractmethod
    def keys(self) -> list[str]:
        """Identifiers of every candidate sample, in a deterministic order."""

    @abc.abstractmethod
    def load(self, key: str) -> Sample:
        """Decodes one sample. Raises `SkipSample` with a one-line reason when it is unusable."""

    def input_paths(self) -> list[Path]:
        """Folders and files this reader reads from (prepare refuses to delete inside them)."""
        return [self.root]

    def __iter__(self) -> Iterator[Sample]:
        """Yields every usable sample; unusable ones are added to `skipped`."""
        for key in self.keys():
            try:
                yield self.load(key)
            except SkipSample as reason:
                self.skipped.append((key, str(reason)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"
