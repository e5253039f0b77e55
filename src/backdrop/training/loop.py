"""Training: the fit loop with resumable checkpoints and quantization-aware epochs (the export
after training is training/export_step.py's). Every path of a run comes from `RunFolder`
(training/run_folder.py); every file is written under a temporary name and renamed, state.json
last, so it only ever names a complete checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from backdrop.outputs import OutputFolder, write_atomic
from backdrop.tf_setup import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402  (TensorFlow, when it is the backend, imported quietly)

from backdrop.models.registry import build_model  # noqa: E402
from backdrop.training import losses  # noqa: E402
from backdrop.training.checkpoints import (  # noqa: E402
    CtrlC,
    EpochCheckpoint,
    load_checkpoint,
    save_model_atomic,
)
from backdrop.training.config import TrainConfig, TrainingError, is_checkpoint  # noqa: E402
from backdrop.training.datasets import evaluation_data, fit_data, make_datasets  # noqa: E402
from backdrop.training.distribute import select_strategy  # noqa: E402
from backdrop.training.jax_cpu import use_fast_cpu_convolutions  # noqa: E402
from backdrop.training.quantize_aware import add_fake_quant, has_fake_quant  # noqa: E402
from backdrop.training.run_folder import RunFolder, check_init_from  # noqa: E402

__all__ = [
    "TrainConfig",
    "TrainingError",
    "load_checkpoint",
    "train",
]

FINAL_LEARNING_RATE = 0.05  # of the peak, where the cosine schedule ends
# What --restore's user can do when the checkpoint state.json names is missing or unreadable.
RESUME_REMEDY = (
    "point state.json at an earlier epoch-*.keras of the run, or start over with "
    "--remove-all-previous-results"
)


def _compile(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    model.compile(optimizer=optimizer, loss=losses.bce_dice_loss, metrics=[losses.PersonIoU()])


def _optimizer(schedule, config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam, or AdamW with `config.weight_decay` on every trainable weight (no exclusions: a
    checkpoint does not keep them, so a restored run would decay differently)."""
    if not config.weight_decay:
        return keras.optimizers.Adam(schedule)
    return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)


def _quantize_aware(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """`model` with int8 rounding simulated, compiled to go on from its learning rate.

    Its trainable variables differ (batch norm is frozen), so it gets a new optimizer whose
    cosine decay runs from the rate reached so far to the float schedule's final rate.
    """
    start = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    final = config.learning_rate * FINAL_LEARNING_RATE
    schedule = keras.optimizers.schedules.CosineDecay(
        start,
        decay_steps=max(1, config.quantize_aware_epochs * steps_per_epoch),
        alpha=min(1.0, final / start) if start > 0 else 1.0,
    )
    quantize_aware = add_fake_quant(model)
    _compile(quantize_aware, _optimizer(schedule, config))
    return quantize_aware


def _initial_model(config: TrainConfig) -> keras.Model:
    """The model a new run starts from: a Backdrop checkpoint's own (its optimizer is replaced
    by the new run's), else the architecture built, from public weights if `init_from` names
    them."""
    if config.init_from is not None and is_checkpoint(config.init_from):
        return load_checkpoint(config.init_from)
    return build_model(
        config.model,
        config.input_shape,
        config.filters,
        depth=config.depth,
        width=config.width,
        activation=config.activation,
        extra_blocks=config.extra_blocks,
        init_from=config.init_from,
    )


def check_restorable(config: TrainConfig, run: RunFolder) -> dict:
    """The state to continue from; refuses (before anything is written) a run whose saved
    architecture differs from `config`'s."""
    state = run.read_state()
    saved = run.saved_config()
    if saved is not None:
        changed = saved.architecture_changes(config)
        if changed:
            raise TrainingError(
                f"cannot restore {run.root} with another architecture ({'; '.join(changed)}); "
                "give the run's own settings, or start a new run in another --checkpoints folder"
            )
    return state


def claim_run_folder(
    folder: OutputFolder, run: RunFolder, restore: bool, remove_previous: bool
) -> None:
    """Clears (if asked) and claims the files a run writes; anything in the way that Backdrop
    did not write is an error naming it."""
    if remove_previous:
        folder.remove_all()
    if not restore and folder.holds(run.state.name):
        raise TrainingError(
            f"{run.root} holds a training run; pass --restore to continue it or "
            "--remove-all-previous-results to start over"
        )
    for checkpoint in run.epochs():
        folder.check(checkpoint.name)
    folder.claim(
        run.config.name,
        run.state.name,
        run.log.name,
        run.best.name,
        run.interrupted.name,
        f"{run.tensorboard.name}/",
    )


def train(
    config: TrainConfig,
    restore: bool = False,
    remove_previous: bool = False,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict:
    """Trains (or continues) a run up to `config.epochs` epochs.

    Every argument is checked before anything is written; the run folder is locked while it runs.

    Returns:
        The final state: epochs completed, checkpoint, best validation IoU and its epoch.

    Raises:
        TrainingError: bad folder state, a missing or corrupt checkpoint, or a NaN loss.
        OutputError: another run holds the folder, or a file Backdrop did not write is in the way.
        KeyboardInterrupt: after Ctrl-C, once the interrupted checkpoint is saved.
    """
    if restore and remove_previous:
        raise TrainingError(
            "--restore continues a run, --remove-all-previous-results deletes it: pass one"
        )
    config.check_inputs()
    run = RunFolder(config.checkpoints)
    if restore:
        state = check_restorable(config, run)
    else:
        check_init_from(config)
        state = {"epoch": 0, "best_val_iou": -1.0, "best_epoch": 0}
    with OutputFolder(run.root, "train", "--checkpoints folder", config.input_paths()) as folder:
        claim_run_folder(folder, run, restore, remove_previous)
        return _train(config, run, folder, state, restore, verbose, callbacks)


def _tensorboard(run: RunFolder) -> list[keras.callbacks.Callback]:
    """TensorBoard's logs, where TensorFlow is installed (Keras writes them with `tf.summary`,
    whatever the backend); none on a machine without it (a JAX-only GPU image)."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return []
    return [keras.callbacks.TensorBoard(str(run.tensorboard), profile_batch=0)]


def _train(config, run, folder, state, restore, verbose, callbacks) -> dict:
    keras.utils.set_random_seed(config.seed)  # as the run started: its data draws the same seeds
    use_fast_cpu_convolutions()
    strategy = select_strategy(config.distribute)
    train_data, validation_data, count = make_datasets(config, strategy.num_replicas_in_sync)
    steps_per_epoch = math.ceil(count / (config.batch_size * strategy.num_replicas_in_sync))
    with strategy.scope():
        if restore:
            model = load_checkpoint(run.root / state["checkpoint"], RESUME_REMEDY)
        else:
            model = _initial_model(config)
            schedule = keras.optimizers.schedules.CosineDecay(
                config.learning_rate,
                decay_steps=max(1, config.epochs * steps_per_epoch),
                alpha=FINAL_LEARNING_RATE,
            )
            _compile(model, _optimizer(schedule, config))
    write_atomic(run.config, config.to_json())
    checkpoint = EpochCheckpoint(run, folder, state["best_val_iou"], state["best_epoch"])
    checkpoint.completed_epochs = state["epoch"]
    ctrl_c = CtrlC()
    all_callbacks = [
        checkpoint,
        keras.callbacks.CSVLogger(str(run.log), append=restore),
        *_tensorboard(run),
        *callbacks,
        ctrl_c,  # last: a finished epoch is saved before the interrupt is raised
    ]
    if state["epoch"] >= config.epochs:
        print(f"{run.root} already completed {state['epoch']} of {config.epochs} epochs")
        return state
    float_epochs = config.epochs - config.quantize_aware_epochs

    validation = evaluation_data(validation_data)

    def fit(stop: int) -> None:
        # Epoch e reads the batches of epoch e in every run, a restored one included:
        # tests/training/test_loop.py checks that a killed and restored run ends with the
        # uninterrupted run's weights.
        data, steps = fit_data(train_data, checkpoint.completed_epochs, stop)
        model.fit(
            data,
            steps_per_epoch=steps,
            validation_data=validation,
            epochs=stop,
            initial_epoch=checkpoint.completed_epochs,
            callbacks=all_callbacks,
            verbose=verbose,
            shuffle=False,  # the batches shuffle themselves, the same in every run
        )

    try:
        with ctrl_c:
            rounding = has_fake_quant(model)  # a checkpoint of the rounding phase goes on in it
            if not rounding and checkpoint.completed_epochs < float_epochs:
                fit(float_epochs)
            float_done = rounding or checkpoint.completed_epochs >= float_epochs
            if (
                checkpoint.nan_at is None
                and float_done
                and checkpoint.completed_epochs < config.epochs
            ):
                if not rounding:
                    with strategy.scope():
                        model = _quantize_aware(model, config, steps_per_epoch)
                    # best.keras is then the best epoch of the form that is exported.
                    checkpoint.best_iou = -1.0
                fit(config.epochs)
    except KeyboardInterrupt:
        if checkpoint.chief:
            save_model_atomic(model, run.interrupted)
            checkpoint.write_state(run.interrupted.name)
            print(
                f"\ninterrupted: saved {run.interrupted} (after epoch "
                f"{checkpoint.completed_epochs}); continue with --restore"
            )
        raise
    if checkpoint.nan_at is not None:
        raise TrainingError(
            f"the loss became NaN in epoch {checkpoint.completed_epochs + 1} (batch "
            f"{checkpoint.nan_at}); nothing was saved for it. Lower the learning rate or check "
            f"the data, then continue from epoch {checkpoint.completed_epochs} with --restore"
        )
    return run.read_state()
