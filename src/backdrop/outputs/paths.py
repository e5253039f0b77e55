"""Paths in an output folder: atomic writes through hidden temporaries, which names a manifest
may hold (it is untrusted input: folders are copied, shared and downloaded with theirs), and which
folders may be cleared. TensorFlow-free; `backdrop.outputs` is what commands import."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

MANIFEST = ".backdrop-manifest.json"


class OutputError(ValueError):
    """An output cannot be written without touching what Backdrop did not write; the message
    names the file and the fix."""


class UnsafeRemovalError(OutputError):
    """Refused to delete in a folder; the message says why and what to do instead."""


def is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def temporary_path(path: Path) -> Path:
    """Where `path` is written before its final rename: hidden, and keeping the extension that
    some writers (Keras, OpenCV) read the format from."""
    return path.with_name(f".{path.name}.tmp{path.suffix}")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes `path` through a temporary file and a rename, so it is never seen half-written."""
    temporary = temporary_path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(temporary, mode) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def nothing_written_under(root: Path, name: str) -> bool:
    """Whether nothing was written under the claimed `name` (an empty subfolder counts)."""
    path = root / name.rstrip("/")
    if name.endswith("/") and is_empty_folder(path):
        return True
    return not (path.exists() or path.is_symlink())


def unsafe_name(root: Path, name: object) -> str | None:
    """Why `name`, read from the manifest of `root`, is not a name Backdrop could have written
    there (a plain relative path, `NAME/` for a subfolder, inside `root` with no symlinked
    parent); None when it is one."""
    if not isinstance(name, str) or not name:
        return "which is not a file name"
    if "\0" in name or (os.sep == "\\" and "\\" in name):
        return "which holds a NUL (or, on Windows, a backslash)"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "which is not a plain relative path inside the folder"
    if parts == [MANIFEST]:
        return "the manifest itself"
    parent = Path(root)
    for part in parts[:-1]:
        parent = parent / part
        if parent.is_symlink():
            return f"which passes through the symlink {parent}"
        if parent.exists() and not parent.is_dir():
            return f"which passes through the file {parent}"
    return None


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
        if is_within(source, resolved) or is_within(resolved, source):
            raise UnsafeRemovalError(
                f"refusing to remove previous results in {resolved}: it overlaps the input "
                f"dataset {source}; choose an output folder outside your datasets"
            )
    return resolved
