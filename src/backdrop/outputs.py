"""Output folders: Backdrop deletes or replaces only what it wrote, one writer at a time.

Every folder a command writes into gets a manifest, `.backdrop-manifest.json`: each file (or
subfolder, written `NAME/`) Backdrop created there, with the command and run that wrote it, and
the writer holding the folder now. The rules:

- a name is claimed in the manifest before anything is written to it;
- only claimed names are ever replaced or deleted (`--remove-all-previous-results` included);
  anything else in the way is an `OutputError` naming the file and what resolves it;
- nothing is written into an input (a dataset file or folder the same command reads);
- one writer per folder: an exclusive lock on the folder itself, released by the operating system
  when the process ends however it ends, so a crash never leaves a stale lock.

A hidden temporary `.NAME.tmp` or `.NAME.tmp.EXT` (see `temporary_path`) belongs to whoever owns
NAME. TensorFlow-free.

A manifest is untrusted input: folders are copied, shared and downloaded with theirs. Every name in
it must be a plain relative path (no absolute path, no `..`, `.` or empty part, no backslash or
NUL, not the manifest itself) that resolves inside the folder without passing through a symlinked
parent; a manifest holding any other name is refused as a whole, in one line naming it, and
nothing is deleted. The parents are checked again just before each deletion.
"""

from __future__ import annotations

import datetime
import errno
import glob
import json
import os
import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from backdrop.output_paths import (  # noqa: F401 - this module is where commands find them
    MANIFEST,
    OutputError,
    UnsafeRemovalError,
    check_removable,
    is_empty_folder,
    is_within,
    nothing_written_under,
    temporary_path,
    unsafe_name,
    write_atomic,
)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the manifest rules still hold
    fcntl = None

MANIFEST_FORMAT = "backdrop-manifest-v1"
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
        self._lock()
        self._key, self._depth = key, 1
        _HELD[key] = self
        manifest = self._read()
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

    def _lock(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            writer = self._read().get("writer") or {}
            holder = (
                f"`backdrop {writer.get('command', '?')}`, process {writer.get('pid', '?')} on "
                f"{writer.get('host', '?')}, since {writer.get('started', '?')}"
            )
            raise OutputError(
                f"{self.root} is in use by another Backdrop run ({holder}); wait for it to end "
                f"or choose another {self.option}"
            ) from None
        self._fd = fd

    def _release(self) -> None:
        if _HELD.get(self._key) is self:
            del _HELD[self._key]
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def _read(self) -> dict:
        try:
            text = self.manifest.read_text()
        except FileNotFoundError:
            return {}
        try:
            manifest = json.loads(text)
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
            if manifest.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {manifest.get('format')!r}")
            files = manifest.get("files", {})
            if not isinstance(files, dict):
                raise ValueError("its files are not a JSON object")
            if not isinstance(manifest.get("writer", {}), dict):
                raise ValueError("its writer is not a JSON object")
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
            raise OutputError(
                f"{self.manifest} is unreadable ({error}); Backdrop cannot tell what it wrote in "
                f"{self.root}: move that folder's contents away or choose another {self.option}"
            ) from None
        for name in files:
            problem = unsafe_name(self.root, name)
            if problem:
                raise OutputError(
                    f"{self.manifest} names {name!r}, {problem}: the manifest is refused as a "
                    f"whole and nothing was deleted; Backdrop writes only plain paths inside "
                    f"its folder, so this one was edited or came from elsewhere: move that "
                    f"folder's contents away or choose another {self.option}"
                )
        return manifest

    def _save(self) -> None:
        writer = {
            "command": self.command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": self.started,
        }
        manifest = {"format": MANIFEST_FORMAT, "writer": writer, "files": self.files}
        write_atomic(self.manifest, json.dumps(manifest, indent=1, sort_keys=True))

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
