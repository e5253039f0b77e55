"""MediaPipe Tasks for Web (`@mediapipe/tasks-vision`), fetched from npm once (`npm pack`) into a
cache, so the page works offline afterwards and never loads anything from a CDN."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from backdrop.web.errors import ServeError

TASKS_VISION = "@mediapipe/tasks-vision"
TASKS_VISION_VERSION = "0.10.21"
VENDOR_FILES = (
    "vision_bundle.mjs",
    "wasm/vision_wasm_internal.js",
    "wasm/vision_wasm_internal.wasm",
    "wasm/vision_wasm_nosimd_internal.js",
    "wasm/vision_wasm_nosimd_internal.wasm",
)


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "backdrop" / f"tasks-vision-{TASKS_VISION_VERSION}"


def tasks_vision() -> Path:
    """The unpacked npm package (downloaded once with `npm pack`, then cached)."""
    folder = cache_folder()
    if all((folder / name).is_file() for name in VENDOR_FILES):
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise ServeError(
            f"npm is needed once to fetch {TASKS_VISION}@{TASKS_VISION_VERSION}; install Node.js "
            "and npm (e.g. `apt-get install nodejs npm`)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [npm, "pack", f"{TASKS_VISION}@{TASKS_VISION_VERSION}"],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        archives = list(Path(scratch).glob("*.tgz"))
        if result.returncode != 0 or not archives:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise ServeError(f"npm pack {TASKS_VISION}@{TASKS_VISION_VERSION} failed: {last}")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(scratch, filter="data")
        unpacked = folder.with_name(folder.name + ".partial")
        shutil.rmtree(unpacked, ignore_errors=True)
        shutil.copytree(Path(scratch) / "package", unpacked)
        shutil.rmtree(folder, ignore_errors=True)
        unpacked.rename(folder)
    return folder


def vendor_files() -> dict[str, bytes]:
    """The files of the package that the page loads: name (e.g. "wasm/x.wasm") -> bytes."""
    folder = tasks_vision()
    return {name: (folder / name).read_bytes() for name in VENDOR_FILES}
