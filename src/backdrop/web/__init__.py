"""`backdrop serve`: a local web page that runs exported models in the browser with MediaPipe Tasks
for Web, on the webcam or a video file. TensorFlow-free.

The page's files (`page/`) are copied with the models and MediaPipe's vendored WASM into a static
folder, which a standard-library HTTP server serves on localhost. `@mediapipe/tasks-vision` comes
from npm once (`npm pack`) into a cache, so the page works offline afterwards and never loads
anything from a CDN.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

TASKS_VISION = "@mediapipe/tasks-vision"
TASKS_VISION_VERSION = "0.10.21"
PAGE = Path(__file__).resolve().parent / "page"
VENDOR_FILES = (
    "vision_bundle.mjs",
    "wasm/vision_wasm_internal.js",
    "wasm/vision_wasm_internal.wasm",
    "wasm/vision_wasm_nosimd_internal.js",
    "wasm/vision_wasm_nosimd_internal.wasm",
)


class ServeError(RuntimeError):
    """The page cannot be built or served; the message says what to install or change."""


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


def build_site(models: list[Path], folder: Path) -> Path:
    """Writes the static page for `models` (one, or two side by side) into `folder`."""
    models = [Path(model) for model in models]
    for model in models:
        if not model.is_file():
            raise ServeError(f"model {model} not found")
        if model.suffix != ".tflite":
            raise ServeError(f"{model} is not a .tflite model")
        if b"TFLITE_METADATA" not in model.read_bytes():
            raise ServeError(
                f"{model} has no TFLite metadata, which MediaPipe Tasks needs; export it again "
                "with `backdrop export` (which writes it)"
            )
    vendor = tasks_vision()
    folder.mkdir(parents=True, exist_ok=True)
    for item in PAGE.iterdir():
        shutil.copy(item, folder / item.name)
    for name in VENDOR_FILES:
        (folder / "tasks-vision" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(vendor / name, folder / "tasks-vision" / name)
    (folder / "models").mkdir(exist_ok=True)
    entries = []
    for index, model in enumerate(models):
        name = f"{index}-{model.name}"
        shutil.copy(model, folder / "models" / name)
        entries.append({"label": model.name, "path": f"models/{name}"})
    (folder / "models.json").write_text(json.dumps(entries))
    return folder


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".tflite": "application/octet-stream",
    }

    def log_message(self, *args) -> None:  # quiet: the page shows what matters
        pass


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 8000):
    """An HTTP server of `folder` (port 0: any free port); `server.server_address` says where."""
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise ServeError(
            f"cannot listen on {host}:{port} ({error}); choose another --port"
        ) from None
