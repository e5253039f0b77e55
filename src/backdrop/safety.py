"""Guards for `--remove-all-previous-results`: delete only what Backdrop wrote, never a dataset."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class UnsafeRemovalError(ValueError):
    """Refused to delete in a folder; the message says why and what to do instead."""


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_removable(folder: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Raises `UnsafeRemovalError` unless deleting Backdrop's outputs in `folder` is safe.

    Refuses the filesystem root, the home folder, the current folder, any folder holding one of
    `inputs` and any folder inside one of them.

    Returns:
        The resolved folder.
    """
    resolved = Path(folder).expanduser().resolve()
    forbidden = {
        Path(resolved.anchor): "the filesystem root",
        Path.home().resolve(): "the home folder",
        Path.cwd().resolve(): "the current folder",
    }
    if resolved in forbidden:
        raise UnsafeRemovalError(
            f"refusing to remove previous results in {resolved}: it is {forbidden[resolved]}; "
            "choose a dedicated output folder"
        )
    for source in inputs:
        source = Path(source).expanduser().resolve()
        if _is_within(source, resolved) or _is_within(resolved, source):
            raise UnsafeRemovalError(
                f"refusing to remove previous results in {resolved}: it overlaps the input "
                f"dataset {source}; choose an output folder outside your datasets"
            )
    return resolved


def remove_matching(folder: Path, patterns: Iterable[str]) -> list[Path]:
    """Deletes the files directly in `folder` that match any glob pattern; returns them."""
    removed = []
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes `path` through a temporary file and a rename, so it is never seen half-written."""
    temporary = path.with_name(f".{path.name}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(temporary, mode) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
