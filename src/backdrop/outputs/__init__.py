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

from backdrop.outputs.folder import OutputFolder
from backdrop.outputs.paths import (
    MANIFEST,
    OutputError,
    UnsafeRemovalError,
    check_removable,
    temporary_path,
    write_atomic,
)

__all__ = [
    "MANIFEST",
    "OutputError",
    "OutputFolder",
    "UnsafeRemovalError",
    "check_removable",
    "temporary_path",
    "write_atomic",
]
