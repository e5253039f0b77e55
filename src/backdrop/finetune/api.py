"""`backdrop.fine_tune`: the whole of `backdrop fine-tune` as one call, for notebooks."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from pathlib import Path

from backdrop.finetune.config import FineTuneConfig


@dataclasses.dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tune made, and how good it is.

    Attributes:
        output: The run folder.
        models: The fine-tuned model in each export mode (`{"float16": Path, "int8": Path}`).
        start: The start model's `.tflite`, as compared.
        report: The report page (figures, verdict, gallery).
        better: Whether the fine-tuned model beats the start on the held-out footage.
        recommended: The file to ship: the fine-tuned model when better, else the start.
        verdict: The answer in words.
        held_out: The held-out clips' figures (`new`, `start`: IoU, boundary IoU, flicker;
            `new_minus_start` with its 95% interval; `gap_closed` toward the teacher).
        validation: The same for every labelled dataset scored (with the teacher's figures).
        results: Everything, as `results.json` holds it.
    """

    output: Path
    models: dict[str, Path]
    start: Path
    report: Path
    better: bool
    recommended: Path
    verdict: str
    held_out: dict
    validation: list[dict]
    results: dict

    @classmethod
    def from_results(cls, output: Path, results: dict) -> FineTuneResult:
        models = {Path(p).stem.removeprefix("model_"): Path(p) for p in results["models"]["new"]}
        return cls(
            output=output,
            models=models,
            start=Path(results["models"]["start"]),
            report=output / "report" / "index.html",
            better=results["verdict"]["better"],
            recommended=Path(results["verdict"]["recommended"]),
            verdict=results["verdict"]["text"],
            held_out=results["held_out"],
            validation=results["validation"],
            results=results,
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(entry['dataset'])}</td>"
            f"<td>{entry['new']['mean_iou']:.4f}</td><td>{entry['start']['mean_iou']:.4f}</td>"
            f"<td>{entry['teacher']['mean_iou'] if 'teacher' in entry else 1.0:.4f}</td></tr>"
            for entry in [self.held_out, *self.validation]
        )
        return (
            f"<p><b>{html.escape(self.verdict)}</b></p><table><tr><th>data</th><th>fine-tuned "
            f"IoU</th><th>start IoU</th><th>teacher IoU</th></tr>{rows}</table>"
            f"<p>Report: <code>{html.escape(str(self.report))}</code></p>"
        )


def fine_tune(
    footage: str | Path | Sequence[str | Path],
    start: str | Path = "mediapipe",
    output: str | Path = "fine_tune",
    *,
    data: Sequence[str] = (),
    validate: Sequence[str] = (),
    teachers: Sequence[str | Path] = (),
    rvm: bool = True,
    held_out_share: float = 0.2,
    hold_out: Sequence[str | Path] = (),
    split_pictures: bool = False,
    photos: Sequence[str | Path] = (),
    every: int = 10,
    truth_weight: float = 0.5,
    footage_repeat: int = 1,
    epochs: int = 20,
    learning_rate: float = 2e-4,
    seeds: int = 1,
    seed: int = 0,
    average_weight: float | None = None,
    crop_aspect: str = "frame",
    backgrounds: Sequence[str | Path] = (),
    background_probability: float = 0.3,
    zoom_out_probability: float = 0.0,
    modes: Sequence[str] = ("float16", "int8"),
    int8_range_tail: float = 1e-4,
    labels: str | Path | None = None,
    side: int | None = None,
    threads: int = 2,
    progress: bool = True,
) -> FineTuneResult:
    """Fine-tunes a person segmenter on a team's own footage; the same job as `backdrop
    fine-tune`, continued where it stopped when called again with the same arguments.

    The teacher (by default the mean of MediaPipe's general selfie model and Robust Video
    Matting) labels the footage; part of it, whole clips, is held out and labelled for scoring
    only. The start model is fine-tuned on the rest (with any labelled `data`), averaged with its
    own weights, exported with TFLite metadata, and scored against the start and the teacher.

    Args:
        footage: Videos, pictures, or folders of them (each video and each folder of pictures
            is a clip; clips are never split between training and scoring).
        photos: Folders of unrelated photos: each picture a clip of its own.
        start: "mediapipe", "mediapipe-landscape", a MediaPipe or Meet segmenter `.tflite`, or
            a Backdrop run folder or `.keras` checkpoint.
        output: The run folder.
        Every other argument is documented in `backdrop.finetune.config.FineTuneConfig`.

    Returns:
        The models, the report page, the figures and the verdict (`FineTuneResult`).

    Raises:
        ValueError: bad footage (none found, no people in a clip, one clip only), a start that
            cannot be fine-tuned, or settings that differ from the run already in `output`.

    In a script (not a notebook), call it under `if __name__ == "__main__":`: the records are
    written by worker processes that import the script again, as Python's multiprocessing does.

    Example:
        >>> result = backdrop.fine_tune(["calls/"], start="mediapipe", output="runs/office")
        >>> result.better, result.recommended
    """
    from backdrop.finetune.job import fine_tune_run

    settings = {key: value for key, value in locals().items() if key != "fine_tune_run"}
    if isinstance(footage, str | Path):
        settings["footage"] = (footage,)
    config = FineTuneConfig(**settings)
    results = fine_tune_run(config)
    return FineTuneResult.from_results(config.output, results)
