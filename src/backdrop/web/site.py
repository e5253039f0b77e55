"""The page `backdrop serve` publishes: its own files, MediaPipe's and the models, held in memory
(the server answers from these bytes only) and, with `--folder`, written to an output folder."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from backdrop.outputs import OutputError, OutputFolder, temporary_path, write_atomic
from backdrop.web.model_file import read_model
from backdrop.web.vendor import vendor_files

PAGE = Path(__file__).resolve().parent / "page"
PAGE_FILES = ("index.html", "app.js")
SUBFOLDERS = ("models", "tasks-vision")


@dataclass
class Site:
    """The page as served.

    Attributes:
        files: URL path ("/", "/app.js", "/models/0-model.tflite", ...) -> the bytes answered;
            nothing else is served.
        models: The models it shows, in order.
        folder: Where it was also written (`--folder`), or None.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    models: list[Path] = field(default_factory=list)
    folder: Path | None = None


def served_name(index: int, model: Path) -> str:
    """The model's file name on the page: numbered, and plain ASCII so no URL needs escaping."""
    return f"{index}-{re.sub(r'[^A-Za-z0-9._-]', '_', model.name)}"


def build_site(models: list[Path], folder: Path | None = None) -> Site:
    """The page for `models` (one, or two side by side), and with `folder` written there too.

    `folder` is an output folder: it gets a manifest and a lock, files Backdrop did not write are
    never replaced, and a rerun replaces its own.

    Raises:
        ServeError: a model is refused (one line naming it) or MediaPipe's files are missing.
        OutputError: something in `folder` is in the way.
    """
    models = [Path(model) for model in models]
    contents = [read_model(model) for model in models]
    written: dict[str, bytes] = {name: (PAGE / name).read_bytes() for name in PAGE_FILES}
    for name, data in vendor_files().items():
        written[f"tasks-vision/{name}"] = data
    entries = []
    for index, (model, data) in enumerate(zip(models, contents, strict=True)):
        path = f"models/{served_name(index, model)}"
        written[path] = data
        entries.append({"label": model.name, "path": path})
    written["models.json"] = json.dumps(entries).encode()
    site = Site({f"/{name}": data for name, data in written.items()}, models)
    site.files["/"] = written["index.html"]
    if folder is not None:
        site.folder = Path(folder)
        _write_site(written, site.folder, models)
    return site


def _write_site(written: dict[str, bytes], root: Path, models: list[Path]) -> None:
    """Writes `written` (name relative to `root` -> bytes) into the output folder `root`."""
    top = sorted({name.split("/")[0] + ("/" if "/" in name else "") for name in written})
    with OutputFolder(root, "serve", "--folder", inputs=models) as output:
        output.claim(*top)  # every name checked before anything is written
        inputs = {model.resolve() for model in models}
        for name in SUBFOLDERS:
            _remove_stale(
                output.root / name, {n for n in written if n.startswith(f"{name}/")}, inputs
            )
        for name, data in written.items():
            path = output.root / name
            _real_folder(path.parent, output.root)
            temporary_path(path).unlink(missing_ok=True)  # never written through a planted link
            write_atomic(path, data)


def _real_folder(folder: Path, root: Path) -> None:
    """Makes `folder` (inside `root`), refusing a link or a file in its place: nothing is written
    through a link."""
    for part in [*reversed(folder.relative_to(root).parents), folder.relative_to(root)]:
        path = root / part
        if path == root:
            continue
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise OutputError(
                f"{path} is a link or a file where Backdrop writes a folder; move it away or "
                "choose another --folder"
            )
        path.mkdir(exist_ok=True)


def _remove_stale(folder: Path, keep: set[str], inputs: set[Path]) -> None:
    """Deletes files an earlier run wrote in Backdrop's own subfolder `folder` that this page no
    longer has (an old model), except an input of this run."""
    if folder.is_symlink() or not folder.is_dir():
        return  # `_real_folder` refuses it before anything is written
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder.parent).as_posix()
        if name in keep or path.is_dir() and not path.is_symlink():
            continue
        if path.resolve() not in inputs:
            path.unlink(missing_ok=True)
