"""`backdrop average`: a fine-tuned checkpoint's weights averaged with those it started from.

Weight-space ensembling (WiSE-FT, Wortsman et al. 2022): every weight becomes
`(1 - weight) * start + weight * tuned`. Fine-tuning a public model on a few thousand pictures
moves it towards what those pictures teach and away from some of what its makers' far larger data
taught; the average keeps much of both, at the cost of nothing at inference (the same
architecture, the same size). The start is the run's `--init-from` file (read from the run's
config.json) or any checkpoint of the same architecture.
"""

from __future__ import annotations

from pathlib import Path

from backdrop.outputs import OutputFolder
from backdrop.tf_setup import quiet_tensorflow
from backdrop.training.checkpoints import load_checkpoint, save_model_atomic
from backdrop.training.config import CONFIG, TrainConfig, TrainingError, is_checkpoint
from backdrop.training.run_folder import RunFolder, check_init_from

quiet_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

DEFAULT_WEIGHT = 0.5  # WiSE-FT's own default; not tuned on Backdrop's data


def average_weights(start: keras.Model, tuned: keras.Model, weight: float) -> keras.Model:
    """`tuned` with each weight replaced by `(1 - weight) * start + weight * tuned`.

    Raises:
        TrainingError: the two models differ in architecture (weight count or shapes).
    """
    if not 0 <= weight <= 1:
        raise ValueError(f"the weight must be in [0, 1], got {weight}")
    pairs = list(zip(start.weights, tuned.weights, strict=False))
    if len(start.weights) != len(tuned.weights) or any(a.shape != b.shape for a, b in pairs):
        raise TrainingError(
            f"the start ({len(start.weights)} weights) and the checkpoint "
            f"({len(tuned.weights)} weights) are not the same architecture; give the file the "
            "run started from (--start)"
        )
    for a, b in pairs:
        b.assign((1.0 - weight) * a.numpy() + weight * b.numpy())
    return tuned


def start_model(checkpoint: Path, tuned: keras.Model, start: Path | None) -> keras.Model:
    """The model `checkpoint`'s run started from: `start` (a `.keras` checkpoint, or public
    weights as `--init-from` takes them), else the `init_from` of the run's config.json."""
    if start is not None and is_checkpoint(start):
        return load_checkpoint(start)
    config = RunFolder(checkpoint.parent).saved_config()
    if config is None and start is not None:  # e.g. an average of two runs, in no run folder
        return _public_model(start, tuned)
    if config is None:
        raise TrainingError(
            f"{checkpoint.parent} has no {CONFIG} saying what the run started from; give --start"
        )
    init_from = start or config.init_from
    if init_from is None:
        raise TrainingError(
            f"the run in {checkpoint.parent} started from random weights (no --init-from); "
            "averaging with them makes no sense: give --start"
        )
    if is_checkpoint(init_from):  # the run fine-tuned a Backdrop checkpoint
        return load_checkpoint(Path(init_from))
    from backdrop.models.registry import build_model

    if start is None:
        check_init_from(config)  # the file is still there and starts this architecture
    begin = build_model(
        config.model,
        tuple(tuned.input_shape[1:3]),
        config.filters,
        depth=config.depth,
        width=config.width,
        activation=config.activation,
        extra_blocks=config.extra_blocks,
        init_from=Path(init_from),
    )
    return _blocks_as_tuned(begin, tuned)


def _blocks_as_tuned(begin: keras.Model, tuned: keras.Model) -> keras.Model:
    """`begin` with its extra blocks' inner weights taken from `tuned`. A block starts as the
    identity because its projection is zero, whatever its other weights: of all the starts that
    give the file's function, this is the one nearest `tuned`, so the average scales each
    block's output instead of mixing in random initial weights."""
    from backdrop.models.tflite_import import EXTRA_BLOCK, is_zero_start

    for layer in begin.layers:
        if layer.name.startswith(EXTRA_BLOCK) and not is_zero_start(layer.name):
            layer.set_weights(tuned.get_layer(layer.name).get_weights())
    return begin


def _public_model(path: Path, tuned: keras.Model) -> keras.Model:
    """The public weights at `path` in the architecture they start, at `tuned`'s input size."""
    from backdrop.models.pretrained import identify_weights
    from backdrop.models.registry import build_model

    try:
        architecture = identify_weights(path).architecture
    except ValueError as error:
        raise TrainingError(str(error)) from None
    from backdrop.models.tflite_import import count_extra_blocks

    input_shape = tuple(tuned.input_shape[1:3])
    blocks = count_extra_blocks(tuned)
    begin = build_model(
        architecture, input_shape, TrainConfig.filters, extra_blocks=blocks, init_from=path
    )
    return _blocks_as_tuned(begin, tuned)


def average_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    weight: float = DEFAULT_WEIGHT,
    start: str | Path | None = None,
) -> Path:
    """Writes the average of `checkpoint` and its start to `output` (a `.keras` checkpoint that
    `backdrop export` takes); returns its path."""
    checkpoint, output = Path(checkpoint), Path(output)
    if output.suffix != ".keras":
        raise ValueError(f"the output must be a .keras file, got {output}")
    if not 0 <= weight <= 1:
        raise ValueError(f"--weight must be in [0, 1], got {weight}")
    tuned = load_checkpoint(checkpoint)
    begin = start_model(checkpoint, tuned, Path(start) if start else None)
    average_weights(begin, tuned, weight)
    inputs = [checkpoint, *([Path(start)] if start else [])]
    with OutputFolder(output.parent, "average", "--output", inputs) as folder:
        save_model_atomic(tuned, folder.claim(output.name)[0])
    return output
