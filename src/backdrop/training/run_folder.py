"""The folder of one training run: the one place that spells its paths.

```
RUN/
  config.json             every setting of the run (TrainConfig.to_json)
  state.json              last complete epoch, its checkpoint file, best validation IoU
  epoch-0007.keras        model + optimizer state (the last two epochs are kept)
  best.keras              the best epoch by validation IoU
  interrupted.keras       written on Ctrl-C (state.json then points to it)
  log.csv, tensorboard/   per-epoch logs
  model_int8.tflite       exports, each with model_int8.tflite.json (its contract) beside it
  report/                 `backdrop report`
```
Train, restore, export and report take their paths from here. TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from backdrop.training.config import (
    CONFIG,
    RunFileError,
    TrainConfig,
    TrainingError,
    is_checkpoint,
)
from backdrop.training.setting_checks import MAX_SETTING

STATE = "state.json"
EPOCH = re.compile(r"^epoch-(\d+)\.keras$")
# config.json, state.json, log.csv and the contracts are a few kilobytes; more is not Backdrop's.
MAX_RUN_FILE_BYTES = 16 * 1024 * 1024
RESTART = "start over with --remove-all-previous-results"


def read_run_file(path: Path, fix: str) -> str:
    """The text of a small file of a run (config.json, state.json, log.csv, a contract).

    Raises:
        RunFileError: it is larger than `MAX_RUN_FILE_BYTES` or not UTF-8 text; one line naming
            it and ending with `fix`.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_RUN_FILE_BYTES + 1)
    if len(data) > MAX_RUN_FILE_BYTES:
        raise RunFileError(f"{path} is larger than any file Backdrop writes there; {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunFileError(f"{path} is not UTF-8 text ({error.reason}); {fix}") from None


def read_run_json(path: Path, fix: str, what: str):
    """The JSON value of a small file of a run (`read_run_file`).

    Raises:
        RunFileError: it is not such a file or not JSON: "PATH is WHAT (REASON); FIX".
    """
    text = read_run_file(path, fix)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise RunFileError(f"{path} is {what} (not JSON: {error}); {fix}") from None


def is_file_name(name) -> bool:
    """Whether `name` is a plain file name: a file inside the folder that names it, never a path
    that leaves it (no separator, no "..", not absolute)."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name not in (".", "..")
        and not any(c in name for c in "/\\\0:")
    )


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """Paths of the training run in `root`."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def saved_config(self) -> TrainConfig | None:
        """The run's settings from its config.json, or None when it has none."""
        if not self.config.is_file():
            return None
        fix = "correct it, or give a folder that `backdrop train` wrote"
        return TrainConfig.from_json(read_run_file(self.config, fix), self.config)

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def best(self) -> Path:
        return self.root / "best.keras"

    @property
    def interrupted(self) -> Path:
        return self.root / "interrupted.keras"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def epoch(self, number: int) -> Path:
        return self.root / f"epoch-{number:04d}.keras"

    def epochs(self) -> list[Path]:
        """The epoch checkpoints present, in epoch order (by number: epoch-10000 after 9999)."""
        found = [
            (int(m.group(1)), p)
            for p in self.root.glob("epoch-*.keras")
            if (m := EPOCH.match(p.name))
        ]
        return [path for _, path in sorted(found)]

    def export(self, mode: str) -> Path:
        return self.root / f"model_{mode}.tflite"

    def holds_run(self) -> bool:
        return self.state.exists()

    def read_state(self) -> dict:
        """state.json; a missing or corrupt one is a TrainingError that names the fix.

        Returns:
            `epoch` (epochs completed), `checkpoint` (a file name in the run folder),
            `best_val_iou` (in [-1, 1]) and `best_epoch` (at most `epoch`).
        """
        if not self.state.is_file():
            raise TrainingError(
                f"nothing to restore in {self.root}: no {STATE}; start without --restore"
            )
        state = read_run_json(self.state, RESTART, "corrupt")
        problem = _state_problem(state)
        if problem:
            raise RunFileError(f"{self.state} is corrupt ({problem}); {RESTART}")
        return state

    def last_checkpoint(self) -> Path:
        """The checkpoint state.json names (the last complete one), in the run folder."""
        return self.root / self.read_state()["checkpoint"]

    def best_or_last(self) -> Path:
        """best.keras, or else the last checkpoint."""
        return self.best if self.best.is_file() else self.last_checkpoint()


def _state_problem(state) -> str | None:
    """What makes `state` (state.json's content) unlike any state Backdrop writes, if anything."""
    if not isinstance(state, dict):
        return "not a JSON object"
    missing = [k for k in ("epoch", "checkpoint", "best_val_iou", "best_epoch") if k not in state]
    if missing:
        return f"no {', '.join(missing)}"
    whole = [k for k in ("epoch", "best_epoch") if not _whole(state[k])]
    if whole:
        return f"{', '.join(whole)} must be whole numbers from 0 to {MAX_SETTING}"
    if state["best_epoch"] > state["epoch"]:
        return f"best_epoch {state['best_epoch']} is after the last epoch {state['epoch']}"
    iou = state["best_val_iou"]
    if type(iou) not in (int, float) or not -1 <= iou <= 1:
        return "best_val_iou must be a number from -1 to 1"
    name = state["checkpoint"]
    if not (is_file_name(name) and name.endswith(".keras")):
        return "checkpoint must name a .keras file in the run folder, not a path"
    return None


def _whole(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_SETTING


def check_init_from(config: TrainConfig) -> None:
    """Raises TrainingError unless `config.init_from` is a file that initialises its model: public
    weights, or a Backdrop checkpoint of this very architecture (input size included, as the
    checkpoint's model is trained as it is)."""
    if config.init_from is None:
        return
    if is_checkpoint(config.init_from):
        changed = checkpoint_run(config.init_from).architecture_changes(config)
        if changed:
            raise TrainingError(
                f"--init-from {config.init_from} is a checkpoint of another architecture "
                f"({'; '.join(changed)}); leave --model, --input, --filters, --depth, "
                "--width, --activation and --extra-blocks out to take its own"
            )
        return
    from backdrop.models.pretrained import identify_weights

    try:
        start = identify_weights(config.init_from)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    if start.architecture != config.model:
        raise TrainingError(
            f"--init-from {config.init_from} ({start.description}) initialises "
            f"{start.architecture}, not {config.model}; pass --model {start.architecture} or "
            "leave --model out"
        )


def checkpoint_run(checkpoint: Path) -> TrainConfig:
    """The settings of the run that wrote `checkpoint` (a `.keras` file in its run folder, e.g.
    an epoch or `backdrop average`'s output): they say which architecture its weights are.

    Raises:
        TrainingError: the file is missing, or no run's config.json is beside it.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise TrainingError(f"checkpoint {checkpoint} not found")
    config = RunFolder(checkpoint.parent).saved_config()
    if config is None:
        raise TrainingError(
            f"{checkpoint} has no {CONFIG} beside it saying its architecture; start from a "
            "checkpoint in the run folder that wrote it"
        )
    return config
