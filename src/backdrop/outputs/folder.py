"""OutputFolder: a folder one command writes into, its manifest claimed and its lock held."""

from __future__ import annotations

import datetime
import glob
import os
import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from backdrop.outputs.lock import lock_folder
from backdrop.outputs.manifest import read_manifest, write_manifest
from backdrop.outputs.paths import (
    MANIFEST,
    OutputError,
    check_removable,
    is_empty_folder,
    is_within,
    nothing_written_under,
    unsafe_name,
)

_TEMPORARY = re.compile(r"^\.(.+)\.tmp(\.[^./]*)?$")
# Folders this process holds, so nested users (train, then its export) share one lock.
_HELD: dict[Path, OutputFolder] = {}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class OutputFolder:
    """A folder one command writes into, locked for its lifetime (a context manager).

    Args:
        root: The folder; created if missing.
        command: What writes, e.g. "prepare" (recorded in the manifest, named to a second writer).
        option: How the user names this folder, for messages, e.g. "--destination".
        inputs: Files and folders the command reads: nothing is written into them.
    """

    def __init__(
        self,
        root: str | Path,
        command: str,
        option: str = "output folder",
        inputs: Iterable[str | Path] = (),
    ):
        self.root = Path(root).expanduser()
        self.command, self.option = command, option
        self.inputs = [Path(path).expanduser().resolve() for path in inputs]
        self.started = _now()
        self.run = f"{self.started}/{socket.gethostname()}/{os.getpid()}"
        self.files: dict[str, dict] = {}
        self._fd: int | None = None
        self._key: Path | None = None
        self._depth = 0

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def __enter__(self) -> OutputFolder:
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"{self.root} is a file, not a folder; give {self.option} a folder")
        self._check_not_input(self.root)  # refused before the folder is made
        self._created = not self.root.exists()
        self._had_manifest = self.manifest.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        held = _HELD.get(key)
        if held is not None:  # this process already writes here (train, then its export)
            held._depth += 1
            self._shared = held
            return held
        self._shared = None
        self._fd = lock_folder(self.root, self.option)
        self._key, self._depth = key, 1
        _HELD[key] = self
        manifest = read_manifest(self.root, self.option)
        self.files = manifest.get("files", {})
        self._save()
        return self

    def __exit__(self, kind, *exc) -> None:
        owner = self._shared or self
        owner._depth -= 1
        if owner._depth == 0:
            try:
                if kind is not None:
                    owner._forget_unwritten()
            finally:
                owner._release()

    def _forget_unwritten(self) -> None:
        """After a failure: this run's claims on names it never wrote are dropped, and a folder
        that holds nothing of it goes (its manifest, and the folder if this run made it), so a
        failed command leaves nothing that looks like a result."""
        unwritten = [
            name
            for name, entry in self.files.items()
            if isinstance(entry, dict)
            and entry.get("run") == self.run
            and nothing_written_under(self.root, name)
        ]
        for name in unwritten:
            path = self.root / name.rstrip("/")
            if is_empty_folder(path):
                path.rmdir()
            for temporary in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
                if not temporary.is_dir() or temporary.is_symlink():
                    temporary.unlink(missing_ok=True)
            del self.files[name]
        if self.files or self._had_manifest:
            if unwritten:
                self._save()
            return
        self.manifest.unlink(missing_ok=True)
        if self._created and not any(self.root.iterdir()):
            self.root.rmdir()

    def _release(self) -> None:
        if _HELD.get(self._key) is self:
            del _HELD[self._key]
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def _save(self) -> None:
        write_manifest(self.root, self.command, self.started, self.files)

    def owns(self, name: str) -> bool:
        """Whether Backdrop wrote `name` (a path relative to the folder) here."""
        parts = Path(name).parts
        match = _TEMPORARY.match(parts[-1]) if parts else None
        if match:  # a temporary belongs to the owner of its final name
            parts = (*parts[:-1], match.group(1))
        name = "/".join(parts)
        return (
            name in self.files
            or f"{name}/" in self.files
            or any(name.startswith(claimed) for claimed in self.files if claimed.endswith("/"))
        )

    def holds(self, name: str) -> bool:
        """Whether `name` is here and Backdrop wrote it (an earlier run's output)."""
        return self.owns(name) and (self.root / name).exists()

    def check(self, name: str) -> Path:
        """The path of `name`; raises `OutputError` if writing it would replace a file Backdrop did
        not write or an input."""
        path = self.root / name
        self._check_not_input(path)
        problem = unsafe_name(self.root, name)
        if problem is None and name.endswith("/") and path.is_symlink():
            problem = f"a subfolder that is the symlink {path}"
        if problem:
            raise OutputError(f"refusing to write {path}: {problem}; choose another {self.option}")
        if (path.exists() or path.is_symlink()) and not self.owns(name):
            raise OutputError(
                f"{path} is in the way: Backdrop did not write it (it is not in {self.manifest}); "
                f"move it away or choose another {self.option}"
            )
        return path

    def _check_not_input(self, path: Path) -> None:
        resolved = path.resolve()
        for source in self.inputs:
            if is_within(resolved, source):
                raise OutputError(
                    f"{path} would overwrite the input {source}; choose another {self.option}"
                )

    def claim(self, *names: str) -> list[Path]:
        """Claims files (names relative to the folder; `NAME/` claims a whole subfolder) before
        they are written, after checking all of them. Returns their paths.

        Raises:
            OutputError: one of them exists and Backdrop did not write it, or it is an input.
        """
        paths = [self.check(name) for name in names]
        new = [name for name in names if name not in self.files]
        for name in new:
            self.files[name] = {"command": self.command, "run": self.run}
        if new:
            self._save()
        for name, path in zip(names, paths, strict=True):
            if name.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
        return paths

    def path(self, name: str) -> Path:
        """Claims one name (see `claim`) and returns its path."""
        return self.claim(name)[0]

    def remove(self, name: str) -> None:
        """Deletes a claimed file or subfolder and its temporaries; anything else is refused."""
        if name not in self.files:
            raise OutputError(f"refusing to delete {self.root / name}: Backdrop did not write it")
        problem = unsafe_name(self.root, name)  # again: a parent may have changed since
        if problem:
            raise OutputError(f"refusing to delete {self.root / name}: {problem}")
        path = self.root / name.rstrip("/")
        resolved = path.resolve()
        for source in self.inputs:  # never an input, nor a folder holding one
            if is_within(source, resolved) or is_within(resolved, source):
                raise OutputError(
                    f"refusing to delete {path}: it is or holds the input {source}; choose "
                    f"another {self.option}"
                )
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # never follows a symlink inside the tree
        else:
            path.unlink(missing_ok=True)
        for temporary in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
            if not temporary.is_dir() or temporary.is_symlink():
                temporary.unlink(missing_ok=True)
        del self.files[name]
        self._save()

    def remove_all(self) -> list[str]:
        """Deletes everything Backdrop wrote here (`--remove-all-previous-results`, after the
        checks of `check_removable`); files it did not write stay. Returns the names."""
        check_removable(self.root, self.inputs)
        names = sorted(self.files)
        for name in names:
            self.remove(name)
        return names

    def clear_leftovers(self, pattern: str) -> list[str]:
        """Deletes an interrupted run's files, unasked: only the names this command writes
        (`pattern`, a regular expression a whole manifest name matches) that the manifest says
        this command wrote. A manifest planted in a folder a user points Backdrop at can name
        anything; without the user's `--remove-all-previous-results`, only these go. Returns
        the names."""
        names = sorted(
            name
            for name, entry in self.files.items()
            if isinstance(entry, dict)
            and entry.get("command") == self.command
            and re.fullmatch(pattern, name)
        )
        for name in names:
            self.remove(name)
        return names
