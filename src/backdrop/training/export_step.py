"""The export after training: the run's best (or last) checkpoint as TFLite beside it."""

from __future__ import annotations

from collections.abc import Sequence

from backdrop.training.checkpoints import load_checkpoint
from backdrop.training.config import TrainConfig
from backdrop.training.datasets import export_data
from backdrop.training.run_folder import RunFolder


def export_after_training(
    config: TrainConfig, modes: Sequence[str] | None = None, threads: int = 2
) -> list[dict]:
    """Exports the best (or else the last) checkpoint as TFLite into the checkpoints folder, on
    TensorFlow whatever the backend that trained it (`ship.on_tensorflow`)."""
    from backdrop.ship.on_tensorflow import on_tensorflow

    modes = [mode for mode in (modes or [config.export]) if mode != "none"]
    if not modes:
        return []
    return on_tensorflow(_export, config, modes, threads)


def _export(config: TrainConfig, modes: list[str], threads: int) -> list[dict]:
    from backdrop.ship.export import export_models
    from backdrop.ship.model_card import training_data

    run = RunFolder(config.checkpoints)
    source = run.best_or_last()
    model = load_checkpoint(source)
    calibration, validation = export_data(config)
    return export_models(
        model,
        run.root,
        modes,
        calibration,
        validation,
        threads,
        extra={"checkpoint": source.name, "model": config.model},
        training=training_data(config.records, (*config.portrait_folders, *config.voc_folders)),
    )
