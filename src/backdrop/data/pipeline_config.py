"""How records become batches: the settings every input pipeline honours (no TensorFlow)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backdrop.data import (
    CROP_ASPECTS,
    DEFAULT_CROP_ASPECT,
    DEFAULT_INPUT_SHAPE,
    WHOLE_FRAME_PROBABILITY,
)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How records become batches.

    Attributes:
        input_shape: Model input `(height, width)`.
        batch_size: Examples per batch.
        augment: Random resized crop, flip, rotation/scale and colour jitter (training only).
        background_folders: Image folders whose pictures replace the background.
        background_probability: Chance that an example gets a new background.
        copy_paste_probability: Chance that an example's people are pasted over another
            training example (whose own people stay labelled): new scenes, new clutter.
        zoom_out_probability: Chance that an example is shrunk to 30-90% of its side and placed
            at a random spot of a background picture (of `background_folders`; without any, of
            another training example, its people labelled): people small in the frame.
        whole_frame_probability: Chance that the crop is the whole frame, stretched to the
            input as the runtime stretches every frame.
        crop_aspect: Shape of the random crops: "input" (square crops for a square input, so
            people keep their proportions) or "frame" (crops shaped like the source frame, so
            stretching them to the input distorts people as the runtime's stretched frames do).
        source_repeats: `(source, times)` pairs: examples of that source appear `times` times
            per epoch (weights the data that matches the target use, e.g. portraits).
        source_weights: `(source, weight)` pairs: training batches become `(image, target,
            weight)`, each example weighted by its source (1 for sources not named), so teacher
            labels can count less (or more) than ground truth in the loss.
        cache: Keep decoded records in memory after the first epoch (`loader.RecordBatches`:
            the serialized records, read once).
        shuffle_buffer: Examples in the shuffle buffer (0: no shuffling; `loader.RecordBatches`
            shuffles whole epochs for any other value).
        seed: Seed of the random augmentation choices.
        drop_remainder: Drop the last partial batch (needed when batches are split across
            replicas, which must all get the same number of examples).
    """

    input_shape: tuple[int, int] = DEFAULT_INPUT_SHAPE
    batch_size: int = 8
    augment: bool = True
    background_folders: tuple[Path, ...] = ()
    background_probability: float = 0.5
    copy_paste_probability: float = 0.0
    zoom_out_probability: float = 0.0
    whole_frame_probability: float = WHOLE_FRAME_PROBABILITY
    crop_aspect: str = DEFAULT_CROP_ASPECT
    source_repeats: tuple[tuple[str, int], ...] = ()
    source_weights: tuple[tuple[str, float], ...] = ()
    cache: bool = False
    shuffle_buffer: int = 1000
    seed: int | None = None
    drop_remainder: bool = False

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.background_probability <= 1:
            raise ValueError("background_probability must be in [0, 1]")
        if not 0 <= self.copy_paste_probability <= 1:
            raise ValueError("copy_paste_probability must be in [0, 1]")
        if not 0 <= self.zoom_out_probability <= 1:
            raise ValueError("zoom_out_probability must be in [0, 1]")
        if not 0 <= self.whole_frame_probability <= 1:
            raise ValueError("whole_frame_probability must be in [0, 1]")
        if self.crop_aspect not in CROP_ASPECTS:
            raise ValueError(
                f"crop_aspect must be one of {', '.join(CROP_ASPECTS)}, got {self.crop_aspect!r}"
            )
        for source, times in self.source_repeats:
            if times < 1:
                raise ValueError(f"source {source!r} must repeat at least once, got {times}")
        for source, weight in self.source_weights:
            if not weight >= 0:
                raise ValueError(f"the weight of source {source!r} must be >= 0, got {weight}")
        for folder in self.background_folders:
            if not Path(folder).is_dir():
                raise ValueError(f"background folder {folder} not found")
