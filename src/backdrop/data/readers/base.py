"""The reader interface: list cheap keys first, then load one sample per key (in any process)."""

from __future__ import annotations

import abc
import json
import math
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from backdrop.data.sample import Sample, SkipSample
from backdrop.imageops import printable


class DatasetError(ValueError):
    """A dataset cannot be read at all (wrong path, wrong layout); the message names the fix."""


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def read_json(path: Path, error: type[Exception]) -> object:
    """The JSON value in `path`, every number in it finite.

    Raises:
        error: `path` cannot be read, is not a regular file, is not UTF-8 or is not JSON (too
            deeply nested, NaN, a number too long to convert); the one-line message names it.
    """
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError as reason:
        raise error(printable(f"{path}: cannot read it ({reason.strerror or reason})")) from None
    if not regular:  # a FIFO would block the run forever
        raise error(printable(f"{path}: not a regular file"))
    try:
        return json.loads(
            path.read_bytes().decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except OSError as reason:
        raise error(printable(f"{path}: cannot read it ({reason.strerror or reason})")) from None
    except RecursionError:
        raise error(printable(f"{path}: malformed JSON (nested too deeply)")) from None
    except ValueError as reason:  # not UTF-8, not JSON, NaN, a number too long to convert
        raise error(printable(f"{path}: malformed JSON ({reason})")) from None


def inside(folder: Path, name: object, named_in: Path) -> Path:
    """`folder / name`, for a file name that a dataset file (`named_in`: an annotations JSON,
    a list file) gives: a dataset is data, so what it names stays inside its folder.

    Raises:
        SkipSample: `name` is not a non-empty relative path, or climbs out with `..` (read with
            `/` or `\\` as separators); the reason names `named_in` and `name`.
    """
    parts = name.replace("\\", "/").split("/") if isinstance(name, str) else []
    if (
        not parts
        or not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or name[1:2] == ":"  # a Windows drive (C:)
        or ".." in parts
    ):
        shown = printable(repr(name)[:200])
        raise SkipSample(
            printable(
                f"{named_in}: names {shown}, which is not a relative path inside {folder}; "
                "nothing outside a dataset's folder is read"
            )
        )
    return folder / name


class Reader(abc.ABC):
    """A dataset format. `keys()` lists samples without decoding them; `load(key)` decodes one.

    Keys are plain strings so that a key and its reader can be handed to a worker process.
    Problems found while listing (an empty folder, an image without a mask) are collected in
    `skipped` as `(file, reason)` pairs; `load` raises `SkipSample` for a sample it cannot use.

    A dataset is data from outside, never instructions: a malformed file skips its sample with
    one reason naming it, and a file that makes the whole dataset unreadable (an annotations
    JSON that is not one) is one `DatasetError` naming it. Sizes in a file never drive an
    allocation by themselves: masks are drawn at the size of the picture that is there. A path
    that a dataset's file names (a COCO `file_name`, a line of a VOC list) must be relative and
    stay inside the dataset's folder (`inside`). Symlinks inside the folder are followed: a
    dataset assembled from links is common and legitimate, and whatever a link reaches is only
    ever decoded as a picture.
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
            return None, printable(f"{key} in {self.root}: {type(error).__name__}: {error}")

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
