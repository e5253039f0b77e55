"""An output folder's manifest read and written: what Backdrop wrote there, and who writes now."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from backdrop.outputs.paths import MANIFEST, OutputError, unsafe_name, write_atomic

MANIFEST_FORMAT = "backdrop-manifest-v1"


def read_manifest(root: Path, option: str) -> dict:
    """The manifest of the folder `root` ({} when it has none), its shape and every name checked.

    Args:
        root: The output folder.
        option: How the user names this folder, for messages, e.g. "--destination".

    Raises:
        OutputError: the manifest is unreadable, or names a path Backdrop could not have written;
            nothing is deleted, and the message names the file and the fix.
    """
    path = root / MANIFEST
    try:
        text = path.read_text()
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
            f"{path} is unreadable ({error}); Backdrop cannot tell what it wrote in "
            f"{root}: move that folder's contents away or choose another {option}"
        ) from None
    for name in files:
        problem = unsafe_name(root, name)
        if problem:
            raise OutputError(
                f"{path} names {name!r}, {problem}: the manifest is refused as a "
                f"whole and nothing was deleted; Backdrop writes only plain paths inside "
                f"its folder, so this one was edited or came from elsewhere: move that "
                f"folder's contents away or choose another {option}"
            )
    return manifest


def write_manifest(root: Path, command: str, started: str, files: dict[str, dict]) -> None:
    """Writes the manifest of `root` atomically: `files`, and this process as the writer of
    `command` since `started`."""
    writer = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": started,
    }
    manifest = {"format": MANIFEST_FORMAT, "writer": writer, "files": files}
    write_atomic(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
