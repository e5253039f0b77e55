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

from backdrop.training.config import CONFIG, TrainConfig, TrainingError

STATE = "state.json"
EPOCH = re.compile(r"^epoch-(\d+)\.keras$")


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
        return TrainConfig.from_json(self.config.read_text())

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
        """state.json; a missing or corrupt one is a TrainingError that names the fix."""
        if not self.state.is_file():
            raise TrainingError(
                f"nothing to restore in {self.root}: no {STATE}; start without --restore"
            )
        try:
            return json.loads(self.state.read_text())
        except json.JSONDecodeError as error:
            raise TrainingError(
                f"{self.state} is corrupt ({error}); start over with --remove-all-previous-results"
            ) from None

    def last_checkpoint(self) -> Path:
        """The checkpoint state.json names (the last complete one)."""
        return self.root / self.read_state()["checkpoint"]

    def best_or_last(self) -> Path:
        """best.keras, or else the last checkpoint."""
        return self.best if self.best.is_file() else self.last_checkpoint()


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
