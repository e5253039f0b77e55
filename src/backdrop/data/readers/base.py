"""The reader interface: list cheap keys first, then load one sample per key (in any process)."""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from backdrop.data.sample import Sample, SkipSample


def printable(text: str) -> str:
    """`text` safe to print and store: a file name that is not valid UTF-8 keeps its bytes as
    `\\xNN` escapes instead of ending the program when printed."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


class DatasetError(ValueError):
    """A dataset cannot be read at all (wrong path, wrong layout); the message names the fix."""


class Reader(abc.ABC):
    """A dataset format. `keys()` lists samples without decoding them; `load(key)` decodes one.

    Keys are plain strings so that a key and its reader can be handed to a worker process.
    Problems found while listing (an empty folder, an image without a mask) are collected in
    `skipped` as `(file, reason)` pairs; `load` raises `SkipSample` for a sample it cannot use.
    """

    source: ClassVar[str]
    # How this format's masks become person masks (metadata.json records it); readers of mask
    # files decide a `masks.MaskEncoding` per dataset instead.
    MASKS: ClassVar[str] = ""
    mask_encoding = None

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

    def masks_read_as(self) -> str:
        """How this dataset's masks are read, and why (for metadata.json and reports)."""
        if self.mask_encoding is None:
            return self.MASKS
        return f"{self.mask_encoding} ({self.mask_encoding.reason})"

    def load_or_reason(self, key: str) -> tuple[Sample | None, str | None]:
        """`(sample, None)`, or `(None, one-line reason naming the file)` for a sample that
        cannot be used, whatever went wrong: one bad file never ends a run. Changes nothing, so
        worker processes may call it."""
        try:
            sample = self.load(key)
            sample.name.encode("utf-8")  # records, splits and logs need UTF-8 names
            return sample, None
        except SkipSample as reason:
            return None, printable(str(reason))
        except UnicodeEncodeError:
            return None, (
                f"{printable(key)} in {printable(str(self.root))}: the file name is not valid "
                "UTF-8; rename the file"
            )
        except Exception as error:  # noqa: BLE001 - one bad file must not end a long run
            return None, printable(f"{key}: {type(error).__name__}: {error}")

    def try_load(self, key: str) -> Sample | None:
        """The sample of `key`, or None after adding the reason to `skipped`."""
        sample, reason = self.load_or_reason(key)
        if reason is not None:
            self.skipped.append((printable(key), reason))
        return sample

    def input_paths(self) -> list[Path]:
        """Folders and files this reader reads from (prepare refuses to delete inside them)."""
        return [self.root]

    def __iter__(self) -> Iterator[Sample]:
        """Yields every usable sample; unusable ones are added to `skipped`."""
        for key in self.keys():
            sample = self.try_load(key)
            if sample is not None:
                yield sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"
