"""Checkpoints of a training run: atomic saves, state.json, loading with clear errors."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
from pathlib import Path

from backdrop.outputs import OutputFolder, temporary_path, write_atomic
from backdrop.tf_setup import quiet_tensorflow
from backdrop.training.config import TrainingError
from backdrop.training.distribute import is_chief
from backdrop.training.run_folder import RunFolder
from backdrop.training.safe_keras import check_keras_file

quiet_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

try:  # safe mode on even where something turned unsafe deserialization on for the process
    from keras.src.saving.serialization_lib import SafeModeScope
except ImportError:  # a Keras that moved it: `safe_mode=True` alone
    SafeModeScope = None

KEEP_EPOCHS = 2


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Saves a `.keras` file through a temporary name, so a crash never leaves half a file."""
    temporary = temporary_path(path)
    model.save(temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path, remedy: str = "") -> keras.Model:
    """Loads a checkpoint with its optimizer state; a missing, corrupt or unsafe file is a clear
    error, ending with `remedy` (what the caller's user can do about it) where one is given.

    Every `.keras` file Backdrop reads comes through here: it is checked as data first
    (`safe_keras.check_keras_file`: only Keras's and Backdrop's own objects, no other file), then
    loaded in Keras's safe mode.

    Raises:
        TrainingError: the file is missing or fails to load.
        RunFileError: (a TrainingError and ValueError) the file is damaged or names code.
    """
    path = Path(path)
    ending = f"; {remedy}" if remedy else ""
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} is missing{ending}")
    check_keras_file(path, remedy)
    try:
        with SafeModeScope(True) if SafeModeScope else contextlib.nullcontext():
            return keras.saving.load_model(path, compile=True, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure to load means the file is unusable
        raise TrainingError(
            f"checkpoint {path} is corrupt or unreadable ({type(error).__name__}: {error}){ending}"
        ) from None


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: checkpoint, best copy, state.json (last); stops on a NaN loss."""

    def __init__(
        self, run: RunFolder, folder: OutputFolder, best_iou: float = -1.0, best_epoch: int = 0
    ):
        super().__init__()
        self.run, self.folder = run, folder
        self.best_iou, self.best_epoch = best_iou, best_epoch
        self.completed_epochs = 0
        self.nan_at: int | None = None
        self.chief = is_chief()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_at = batch
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_at is not None:
            return
        if not self.chief:  # counts epochs like the chief, writes nothing
            self.completed_epochs = epoch + 1
            return
        logs = logs or {}
        path = self.folder.path(self.run.epoch(epoch + 1).name)
        save_model_atomic(self.model, path)
        iou = float(logs.get("val_iou", logs.get("iou", 0.0)))
        if iou > self.best_iou:
            self.best_iou, self.best_epoch = iou, epoch + 1
            temporary = temporary_path(self.run.best)
            shutil.copyfile(path, temporary)
            os.replace(temporary, self.run.best)
        self.completed_epochs = epoch + 1
        self.write_state(path.name)
        for old in self.run.epochs()[:-KEEP_EPOCHS]:
            self.folder.remove(old.name)  # only its own: foreign files were refused at the start

    def write_state(self, checkpoint: str) -> None:
        state = {
            "epoch": self.completed_epochs,
            "checkpoint": checkpoint,
            "best_val_iou": self.best_iou,
            "best_epoch": self.best_epoch,
        }
        write_atomic(self.run.state, json.dumps(state, indent=2))


class CtrlC(keras.callbacks.Callback):
    """Turns Ctrl-C into a KeyboardInterrupt at the next batch boundary.

    Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a
    finalizer (a tf.data iterator collected between epochs) the exception is printed and
    swallowed, and training went on. The handler only records the request; the callback raises
    it where nothing can catch it. A second Ctrl-C raises at once. Use as a context manager
    around `fit` (it installs and restores the handler; a no-op outside the main thread).
    """

    def __init__(self):
        super().__init__()
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _check(self, *args, **kwargs):
        if self.requested:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check
