"""The training run's settings: one typed, validated config whose defaults the CLI reads.

TensorFlow-free, so `backdrop train --help` and config checks start fast.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from backdrop.data import (
    CROP_ASPECTS,
    DEFAULT_CROP_ASPECT,
    DEFAULT_INPUT_SHAPE,
    WHOLE_FRAME_PROBABILITY,
)
from backdrop.data.masks import MaskEncoding
from backdrop.data.split import VALIDATION_FRACTION
from backdrop.models.registry import GROWABLE_MODELS, MOBILE_ACTIVATIONS, MODEL_NAMES
from backdrop.training.setting_checks import setting_problem

CONFIG = "config.json"
# TFLite export modes (backdrop.ship.export), and "none" for no export after training.
EXPORT_MODES = ("float32", "float16", "int8")
DISTRIBUTE = ("auto", "none", "mirrored", "multiworker")
FIT_INT8_PASSES = 3  # `backdrop fit-int8`'s passes over the training pictures (here: no TensorFlow)


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message names the fix."""


class RunFileError(TrainingError, ValueError):
    """A file of a training run (config.json, state.json, log.csv, a contract, a `.keras`
    checkpoint) is malformed or unsafe; the message names the file and the fix."""


# The settings that fix a model's weights: a run restored or started from a checkpoint keeps them.
ARCHITECTURE = ("model", "input_shape", "filters", "depth", "width", "activation", "extra_blocks")


def is_checkpoint(path: Path) -> bool:
    """Whether a `--init-from` file is a Backdrop `.keras` checkpoint (else public weights)."""
    return Path(path).suffix == ".keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (saved as config.json beside the checkpoints).

    Attributes:
        checkpoints: Folder for checkpoints, logs and the exported model.
        records: A `backdrop prepare` folder; or give folder datasets instead.
        portrait_folders, voc_folders: Folder datasets read into memory (the "DS v1-2" path).
        mask_encoding: How the portrait folders' mask files are read (`backdrop.data.masks`).
        model: Registered model name.
        input_shape: Model input `(height, width)`.
        filters: Filters of the first layer.
        depth: Down-sampling steps of the U-Net.
        width: Channel multiplier of the mobile segmenter's encoder.
        activation: The mobile segmenter's activation: "relu", "relu6" or "hard_swish".
        extra_blocks: Identity-starting blocks added to a public segmenter rebuilt from its
            file (`backdrop.models.tflite_import.extra_block`).
        quantize_aware_epochs: The last epochs (of `epochs`) simulate int8 rounding
            (`backdrop.training.quantize_aware`), for a better int8 export.
        epochs: Total epochs, counting those of a restored run.
        batch_size: Examples per batch on each replica.
        learning_rate: Peak learning rate of the cosine schedule.
        weight_decay: Decoupled weight decay (AdamW) of every trainable weight; 0: plain Adam.
        background_folders: Interior/exterior image folders for background replacement.
        background_probability: Chance an example gets a new background.
        copy_paste_probability: Chance an example's people are pasted over another example.
        zoom_out_probability: Chance an example is shrunk onto a background (people small in
            the frame); see `pipeline_config.PipelineConfig`.
        whole_frame_probability: Chance a training example is the whole frame, stretched.
        crop_aspect: "input" (undistorted crops) or "frame" (crops stretched like the runtime
            stretches whole frames); see `pipeline_config.PipelineConfig`.
        source_repeats: `(source, times)`: each example of that source counts `times` per epoch.
        augment: Geometric and colour augmentation of training examples.
        cache: Keep decoded training records in memory.
        number_of_examples: Training examples, used only when records carry no count.
        validation_fraction: Share of folder-dataset samples held out for validation.
        distribute: "auto", "none", "mirrored" (GPUs of one machine) or "multiworker" (TF_CONFIG).
        seed: Seed for weights and augmentation.
        export: TFLite export mode run after training ("none" to skip).
        init_from: Public weights the model starts from (`backdrop.models.pretrained`): a
            segmenter `.tflite` rebuilt in Keras, or an ImageNet encoder's file.
        source_weights: `(source, weight)`: the loss of that source's examples is multiplied by
            `weight` (e.g. ("pseudo", 0.5) for teacher labels); other sources weigh 1.
    """

    checkpoints: Path = Path("training_grid")
    records: Path | None = None
    portrait_folders: tuple[Path, ...] = ()
    mask_encoding: str = "auto"
    voc_folders: tuple[Path, ...] = ()
    model: str = "attention_unet"
    input_shape: tuple[int, int] = DEFAULT_INPUT_SHAPE
    filters: int = 8
    depth: int = 4
    width: float = 1.0
    activation: str = "relu"
    extra_blocks: int = 0
    quantize_aware_epochs: int = 0
    epochs: int = 100
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    background_folders: tuple[Path, ...] = ()
    background_probability: float = 0.5
    copy_paste_probability: float = 0.0
    zoom_out_probability: float = 0.0
    whole_frame_probability: float = WHOLE_FRAME_PROBABILITY
    crop_aspect: str = DEFAULT_CROP_ASPECT
    source_repeats: tuple[tuple[str, int], ...] = ()
    augment: bool = True
    cache: bool = False
    number_of_examples: int = 27781
    validation_fraction: float = VALIDATION_FRACTION
    distribute: str = "auto"
    seed: int = 0
    export: str = "int8"
    init_from: Path | None = None
    source_weights: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        def paths(values):
            return tuple(Path(v) for v in values if v)

        object.__setattr__(self, "checkpoints", Path(self.checkpoints))
        object.__setattr__(self, "records", Path(self.records) if self.records else None)
        object.__setattr__(self, "portrait_folders", paths(self.portrait_folders))
        object.__setattr__(self, "voc_folders", paths(self.voc_folders))
        object.__setattr__(self, "background_folders", paths(self.background_folders))
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(
            self, "source_repeats", tuple((str(s), int(n)) for s, n in self.source_repeats)
        )
        object.__setattr__(self, "init_from", Path(self.init_from) if self.init_from else None)
        object.__setattr__(
            self, "source_weights", tuple((str(s), float(w)) for s, w in self.source_weights)
        )
        for source, weight in self.source_weights:
            if not weight >= 0:
                raise ValueError(f"the weight of source {source!r} must be >= 0, got {weight}")
        if self.epochs < 1 or self.batch_size < 1 or self.filters < 1:
            raise ValueError("epochs, batch_size and filters must be >= 1")
        if len(self.input_shape) != 2 or min(self.input_shape) < 1:
            raise ValueError(f"input must be a side or HEIGHTxWIDTH >= 1, got {self.input_shape}")
        if not self.learning_rate >= 0:
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}")
        MaskEncoding.parse(self.mask_encoding)  # a MaskEncodingError (ValueError) names the fix
        if self.export not in (*EXPORT_MODES, "none"):
            raise ValueError(
                f"export must be one of {', '.join(EXPORT_MODES)} or none, got {self.export!r}"
            )
        if self.crop_aspect not in CROP_ASPECTS:
            raise ValueError(
                f"crop_aspect must be one of {', '.join(CROP_ASPECTS)}, got {self.crop_aspect!r}"
            )
        if self.model not in MODEL_NAMES:
            raise ValueError(
                f"unknown model {self.model!r}; valid models: {', '.join(MODEL_NAMES)}"
            )
        probabilities = (
            "background_probability",
            "copy_paste_probability",
            "zoom_out_probability",
            "whole_frame_probability",
        )
        for name in probabilities:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if not 0 <= self.quantize_aware_epochs <= self.epochs:
            raise ValueError(
                f"quantize_aware_epochs ({self.quantize_aware_epochs}) must be between 0 and "
                f"epochs ({self.epochs}); to fine-tune a finished run, raise the epochs by as many"
            )
        if self.width <= 0:
            raise ValueError("width must be > 0")
        if self.extra_blocks < 0:
            raise ValueError(f"extra_blocks must be >= 0, got {self.extra_blocks}")
        if self.extra_blocks and self.model not in GROWABLE_MODELS:
            raise ValueError(
                f"extra blocks are added to {' and '.join(GROWABLE_MODELS)} models only (public "
                f"segmenters rebuilt from their files), not {self.model}"
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.activation not in MOBILE_ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(MOBILE_ACTIVATIONS)}")
        if self.distribute not in DISTRIBUTE:
            raise ValueError(f"distribute must be one of {', '.join(DISTRIBUTE)}")

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        return json.dumps(values, indent=2, default=str)

    @classmethod
    def from_json(cls, text: str, source: str | Path = CONFIG) -> TrainConfig:
        """The config `to_json` wrote (settings a newer Backdrop added keep their defaults).

        Raises:
            RunFileError: `text` (the file `source`) is not such a config: one line naming it.
        """
        fix = "correct it, or give a folder that `backdrop train` wrote"
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise RunFileError(
                f"{source} is not a run's config (not JSON: {error}); {fix}"
            ) from None
        if not isinstance(values, dict):
            raise RunFileError(f"{source} is not a run's config (not a JSON object); {fix}")
        known = {field.name: field for field in dataclasses.fields(cls)}
        settings = {}
        for key, value in values.items():
            if key not in known:
                continue
            problem = setting_problem(known[key].type, value)
            if problem:
                raise RunFileError(f"{source}: setting {key!r} {problem}; {fix}")
            settings[key] = value
        try:
            return cls(**settings)
        except ValueError as error:
            raise RunFileError(f"{source}: {error}; {fix}") from None

    def input_paths(self) -> list[Path]:
        """Every dataset folder this run reads (never deleted by --remove-all-previous-results)."""
        records = [self.records] if self.records else []
        return [*records, *self.portrait_folders, *self.voc_folders, *self.background_folders]

    def check_inputs(self) -> None:
        """Raises ValueError for input folders that are not there, PrepareError for records
        without metadata.json (checked when a run starts, not on creation, so a run's saved config
        loads on a machine without its data)."""
        for folder in self.background_folders:
            if not folder.is_dir():
                raise ValueError(f"background folder {folder} not found")
        for folder in (*self.portrait_folders, *self.voc_folders):
            if not folder.is_dir():
                raise ValueError(f"dataset folder {folder} not found")
        if self.records is not None:
            from backdrop.data.records_metadata import load_metadata

            load_metadata(self.records)  # a PrepareError names the fix

    def architecture_changes(self, other: TrainConfig) -> list[str]:
        """One "SETTING MINE -> OTHER'S" line for each `ARCHITECTURE` setting `other` changes."""
        return [
            f"{name} {getattr(self, name)} -> {getattr(other, name)}"
            for name in ARCHITECTURE
            if getattr(self, name) != getattr(other, name)
        ]
