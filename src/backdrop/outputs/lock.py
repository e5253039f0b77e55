"""One writer per output folder: an exclusive lock the system drops when the process ends."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from backdrop.outputs.manifest import read_manifest
from backdrop.outputs.paths import OutputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the manifest rules still hold
    fcntl = None


def lock_folder(root: Path, option: str) -> int | None:
    """Locks the folder `root` for this process, however it ends: a crash never leaves a stale lock.

    Args:
        root: The output folder (it exists).
        option: How the user names this folder, for messages, e.g. "--destination".

    Returns:
        The descriptor holding the lock (closing it releases the lock); None where the system has
        no advisory locks.

    Raises:
        OutputError: another Backdrop run holds the folder; the message names it, from the manifest.
    """
    if fcntl is None:
        return None
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        writer = read_manifest(root, option).get("writer") or {}
        holder = (
            f"`backdrop {writer.get('command', '?')}`, process {writer.get('pid', '?')} on "
            f"{writer.get('host', '?')}, since {writer.get('started', '?')}"
        )
        raise OutputError(
            f"{root} is in use by another Backdrop run ({holder}); wait for it to end "
            f"or choose another {option}"
        ) from None
    return fd
