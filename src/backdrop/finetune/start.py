"""The model a fine-tune starts from, and the `.tflite` it is compared with.

TensorFlow-free: the start is identified (and a wrong one refused in one line) before any work.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

# MediaPipe's selfie segmenters by name: the files of PyPI mediapipe==0.10.21 (Apache-2.0), from
# the interpreter running Backdrop or the source checkout's .venv-mediapipe (`make mediapipe`).
MEDIAPIPE_MODELS = {
    "mediapipe": "selfie_segmentation.tflite",
    "mediapipe-general": "selfie_segmentation.tflite",
    "mediapipe-landscape": "selfie_segmentation_landscape.tflite",
}
FINE_TUNABLE = ("mediapipe_selfie", "meet_segmenter")


class StartError(ValueError):
    """The start model cannot be fine-tuned; the message says what can."""


@dataclasses.dataclass(frozen=True)
class StartModel:
    """What a fine-tune starts from.

    Attributes:
        init_from: The file training starts from (a public `.tflite` or a `.keras` checkpoint).
        tflite: The start as a `.tflite` to compare against; None when it must be exported
            first (a Backdrop checkpoint).
        architecture: The registered architecture it rebuilds as.
        input_shape: `(height, width)`: the fine-tuned model's too.
        description: In words, for the report.
    """

    init_from: Path
    tflite: Path | None
    architecture: str
    input_shape: tuple[int, int]
    description: str

    @property
    def landscape(self) -> bool:
        return self.input_shape[0] != self.input_shape[1]

    def as_json(self) -> dict:
        return {
            "init_from": str(self.init_from),
            "tflite": None if self.tflite is None else str(self.tflite),
            "architecture": self.architecture,
            "input_shape": list(self.input_shape),
            "description": self.description,
        }


def mediapipe_file(name: str) -> Path:
    """The `.tflite` of MediaPipe's model `name` (a key of `MEDIAPIPE_MODELS`) in an installed
    mediapipe package."""
    from backdrop.ship.metadata import HELPER_VENV

    folders = []
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent)
    folders += sorted(HELPER_VENV.glob("lib/python*/site-packages/mediapipe"))
    for folder in folders:
        path = folder / "modules" / "selfie_segmentation" / MEDIAPIPE_MODELS[name]
        if path.is_file():
            return path
    raise StartError(
        f"{name}: MediaPipe's {MEDIAPIPE_MODELS[name]} was not found in an installed mediapipe "
        "package; run `make mediapipe` (or pip install mediapipe==0.10.21), or give the file's path"
    )


def _checkpoint_start(path: Path, description: str) -> StartModel:
    from backdrop.training.config import TrainingError
    from backdrop.training.run_folder import checkpoint_run

    try:
        run = checkpoint_run(path)
    except (TrainingError, ValueError, OSError) as error:
        raise StartError(f"start {path}: {error}") from None
    return StartModel(path, None, run.model, tuple(run.input_shape), description)


def _exported_start(path: Path) -> StartModel | None:
    """A Backdrop export: the checkpoint its contract names, when that is still there."""
    contract = path.with_name(path.name + ".json")
    try:
        checkpoint = json.loads(contract.read_text()).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(checkpoint, str) and Path(checkpoint).is_file():
        start = _checkpoint_start(Path(checkpoint), f"Backdrop model {path.name}")
        return dataclasses.replace(start, tflite=path)
    return None


def resolve_start(given: str | Path) -> StartModel:
    """The start model named by `given`: `mediapipe` (general), `mediapipe-landscape`, a public
    segmenter's `.tflite` (MediaPipe's, Meet's), a Backdrop run folder (its best checkpoint), a
    `.keras` checkpoint, or a Backdrop `.tflite` whose checkpoint is still where its contract
    says.

    Raises:
        StartError: anything else, in one line naming what can be fine-tuned.
    """
    from backdrop.models.pretrained import identify_weights
    from backdrop.training.config import is_checkpoint
    from backdrop.training.run_folder import RunFolder

    can = (
        "fine-tune starts from mediapipe, mediapipe-landscape, a MediaPipe or Meet segmenter "
        ".tflite, a Backdrop run folder or its .keras checkpoint"
    )
    if str(given) in MEDIAPIPE_MODELS:
        given = mediapipe_file(str(given))
    path = Path(given)
    if path.is_dir():
        run = RunFolder(path)
        if not run.holds_run():
            raise StartError(
                f"start {path} is a folder but not a Backdrop run (no state.json); {can}"
            )
        try:
            checkpoint = run.best_or_last()
        except (ValueError, OSError) as error:
            raise StartError(f"start {path}: {error}") from None
        return _checkpoint_start(checkpoint, f"Backdrop run {path.name}")
    if not path.is_file():
        raise StartError(f"start {path} not found; {can}")
    if is_checkpoint(path):
        return _checkpoint_start(path, f"Backdrop checkpoint {path.name}")
    if path.suffix != ".tflite":
        raise StartError(f"start {path} is not a model {can.split(' starts ')[0]} can use; {can}")
    try:
        known = identify_weights(path)
    except ValueError:
        exported = _exported_start(path)
        if exported is not None:
            return exported
        raise StartError(
            f"start {path} is a .tflite Backdrop cannot fine-tune (not a known segmenter, and no "
            f"checkpoint named in its contract); {can}"
        ) from None
    if known.architecture not in FINE_TUNABLE or known.input_shape is None:
        raise StartError(
            f"start {path} is {known.description}, not a person segmenter; {can} (an ImageNet "
            "encoder starts `backdrop train --init-from`)"
        )
    return StartModel(path, path, known.architecture, known.input_shape, known.description)
