"""The honest answer of a fine-tune: the new model against the start and the teacher, on the
held-out clips (the teacher's labels are their truth) and on labelled data, and the verdict."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from backdrop.data.masks import MaskEncoding
from backdrop.data.readers.base import Reader
from backdrop.data.readers.portrait import PSEUDO_LABELS, PortraitReader
from backdrop.data.sample import Sample
from backdrop.data.split import VALIDATION_FRACTION, split_samples
from backdrop.outputs import OutputFolder, write_atomic


class ClipLabels(PortraitReader):
    """One clip's teacher labels (`labels/CLIP/`): soft masks, source "footage".

    The records' validation split takes frames by name, so it holds near-duplicates of training
    frames: it only gauges training (a split by clip would often leave it empty). Every decision
    and figure of the fine-tune comes from the held-out clips, which never reach the records.
    """

    def __init__(self, folder: Path):
        soft = MaskEncoding("soft", reason=f"teacher probabilities ({PSEUDO_LABELS})")
        super().__init__(folder, source="footage", mask_encoding=soft)


class DataLabels(PortraitReader):
    """The `--data` labels (`labels/data/`) of one fine-tune: only the stems in `names`, since
    the folder may be shared with fine-tunes of other data. `names` None (a plan written before
    they were recorded) takes every label there."""

    def __init__(self, folder: Path, names: list[str] | None):
        super().__init__(folder)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(name, str) for name in names)
        ):
            raise ValueError(f"{folder}: the plan's data_labels is not a list of names")
        self.names = None if names is None else set(names)

    def keys(self) -> list[str]:
        keys = super().keys()
        return keys if self.names is None else [k for k in keys if Path(k).stem in self.names]


class HeldOutReader(Reader):
    """The held-out clips' teacher labels (`labels/CLIP/`, Portrait folders) as one dataset,
    each clip a sequence (flicker) when its pictures are frames."""

    source = "footage"

    def __init__(self, labels: Path, clips):
        super().__init__(labels)
        self.clips = list(clips)
        self.parts = {clip.name: ClipLabels(labels / clip.name) for clip in self.clips}
        self.mask_encoding = next(iter(self.parts.values())).mask_encoding
        if all(clip.is_sequence for clip in self.clips):
            self.sequences = self._sequences

    def _sequences(self) -> dict[str, list[str]]:
        return {name: [f"{name}/{key}" for key in part.keys()] for name, part in self.parts.items()}

    def keys(self) -> list[str]:
        return [
            key for name, part in self.parts.items() for key in (f"{name}/{k}" for k in part.keys())
        ]

    def load(self, key: str) -> Sample:
        name, _, rest = key.partition("/")
        sample = self.parts[name].load(rest)
        return dataclasses.replace(sample, name=f"{name}/{sample.name}", group=name)

    def input_paths(self) -> list[Path]:
        return [self.root / clip.name for clip in self.clips]


def has_validation_split(reader: Reader) -> bool:
    """Whether any picture of `reader` falls in the validation split evaluate scores (it
    stops at the first; a video reader's are whole sequences)."""
    return next(split_samples(reader, "validation", VALIDATION_FRACTION), None) is not None


def teacher_scores(teacher, reader: Reader, split: str | None, progress: bool) -> dict:
    """The teacher's IoU, boundary IoU and flicker on `reader` (as `evaluate` scores a model),
    and its milliseconds a picture."""
    from backdrop.evaluation.evaluate import score_reader

    scored = score_reader([teacher], reader, split, VALIDATION_FRACTION, progress, desc="teacher")
    summary = scored.models[0].summary()
    seconds = scored.seconds[0]
    summary["ms_a_picture"] = 1000 * float(np.median(seconds)) if seconds else None
    return summary


def _compare(results: dict, name: str, new: Path, start: Path, teacher: dict | None) -> dict:
    """One dataset's figures: new, start, teacher, the new-minus-start interval and the share
    of the start-to-teacher gap the new model closed."""
    by_path = {Path(m["model"]).resolve(): m for m in results["models"]}
    mine, theirs = by_path[new.resolve()], by_path[start.resolve()]
    difference = next(
        d["datasets"][name]
        for d in results["differences"]
        if Path(d["model"]).resolve() == new.resolve()
        and Path(d["reference"]).resolve() == start.resolve()
    )
    figures = {
        key: {k: v for k, v in entry["datasets"][name].items() if k != "image_ious"}
        for key, entry in (("new", mine), ("start", theirs))
    }
    teacher_iou = 1.0 if teacher is None else teacher["mean_iou"]
    if teacher is not None:
        figures["teacher"] = {k: v for k, v in teacher.items() if k != "image_ious"}
    gap = teacher_iou - figures["start"]["mean_iou"]
    closed = (figures["new"]["mean_iou"] - figures["start"]["mean_iou"]) / gap if gap > 0 else None
    return {
        "dataset": name,
        "truth": "the teacher's labels" if teacher is None else "the dataset's own masks",
        **figures,
        "new_minus_start": difference,
        "gap_closed": closed,
    }


def verdict(
    held_out: dict, new: Path, start: Path, start_name: str, teacher_is_start: bool = False
) -> dict:
    """Better or not on the held-out footage, in plain words, and the file to use."""
    caveat = (
        " The teacher is the start model itself, so its labels of the held-out clips favour the "
        "start: only labelled data (--data, --validate) can show a gain."
        if teacher_is_start
        else ""
    )
    diff = held_out["new_minus_start"]
    interval = f"{diff['mean']:+.4f} IoU (95% interval {diff['low']:+.4f} to {diff['high']:+.4f})"
    if diff["high"] - diff["low"] < 1e-9:
        interval = f"{diff['mean']:+.4f} IoU (one held-out clip too short to give an interval)"
    if diff["mean"] > 0:
        sure = (
            ""
            if diff["low"] > 0 and diff["high"] > diff["low"]
            else "; the interval does not exclude 0, so the lead is not certain"
        )
        return {
            "better": True,
            "recommended": str(new),
            "text": f"The fine-tuned model is better than {start_name} on your held-out footage: "
            f"{interval}{sure}. Use {new}.{caveat}",
        }
    return {
        "better": False,
        "recommended": str(start),
        "text": f"The fine-tuned model is NOT better than {start_name} on your held-out footage "
        f"({interval}). Keep the start: {start}.{caveat}",
    }


def evaluate_fine_tune(config, plan) -> dict:
    """Scores the new model (each mode), the start and the teacher; writes `evaluation/` and
    `results.json`; returns the results."""
    from backdrop.evaluation.evaluate import evaluate, parse_data_spec
    from backdrop.finetune.steps import _teacher, clips_of, labels_folder, model_paths, start_of
    from backdrop.teachers import file_digest

    new_models, start_file = model_paths(config, plan)
    shipped = new_models[0]
    models = [*new_models, start_file]
    held = HeldOutReader(labels_folder(config, plan) / "clips", clips_of(plan, "held_out"))
    data = []
    for spec in config.data:  # each probed by a reader of its own (what it skipped stays out)
        if has_validation_split(parse_data_spec(spec)):
            data.append(spec)
        else:  # e.g. DAVIS sequences without the one the split's hash holds out: all trained on
            print(f"  {spec}: no picture falls in its validation split: not scored")
    scored = [
        (held, None),
        *((parse_data_spec(s), None) for s in config.validate),
        *((parse_data_spec(s), "validation") for s in data),
    ]
    teacher = _teacher(config, plan)
    groups = {}
    for reader, split in scored:
        groups.setdefault(split, []).append(reader)
    evaluations = {
        split: evaluate(
            models,
            readers,
            config.threads,
            split=split,
            progress=config.progress,
            references=[start_file],
        )
        for split, readers in groups.items()
    }
    held_name = next(iter(evaluations[None]["sequences"]))
    datasets = []
    for split, results in evaluations.items():
        for reader, name in zip(groups[split], results["sequences"], strict=True):
            teacher_figures = (
                None if reader is held else teacher_scores(teacher, reader, split, config.progress)
            )
            datasets.append(
                _compare(results, name, shipped, start_file, teacher_figures)
                | {"split": split or "all"}
            )
    with OutputFolder(plan.root / "evaluation", "fine-tune evaluate", "--output") as folder:
        for split, results in evaluations.items():
            name = f"evaluation_{split or 'all'}.json"
            folder.claim(name)
            write_atomic(folder.root / name, json.dumps(results, indent=2))
    start = start_of(plan)
    first = evaluations[None]["models"]
    latency = {
        "start" if Path(m["model"]).resolve() == start_file.resolve() else Path(m["model"]).name: (
            m["latency_ms"]
        )
        for m in first
    }
    results = {
        "start": start.as_json(),
        "teacher": plan.content["teacher"],
        "models": {"new": [str(p) for p in new_models], "start": str(start_file)},
        "sha256": {str(p): file_digest(p) for p in new_models},
        "clips": plan.content["clips"],
        "held_out": next(d for d in datasets if d["dataset"] == held_name),
        "validation": [d for d in datasets if d["dataset"] != held_name],
        "latency_ms": latency,
        "threads": config.threads,
    }
    teachers = plan.content["teacher"]["files"]
    teacher_is_start = (
        len(teachers) == 1
        and Path(teachers[0]).is_file()
        and file_digest(Path(teachers[0])) == file_digest(start_file)
    )
    results["verdict"] = verdict(
        results["held_out"], shipped, start_file, start.description, teacher_is_start
    )
    write_atomic(plan.root / "results.json", json.dumps(results, indent=2))
    return results


def format_results(results: dict) -> str:
    """The figures as a plain-text table, one block per dataset, then the verdict."""
    new_name = Path(results["models"]["new"][0]).name
    lines = []
    for entry in [results["held_out"], *results["validation"]]:
        diff, closed = entry["new_minus_start"], entry["gap_closed"]
        lines.append(
            f"{entry['dataset']} ({entry['new']['images']} pictures; truth: {entry['truth']})"
        )
        lines.append(f"  {'model':<12} {'IoU':>7} {'boundary':>9} {'flicker':>8} {'latency':>12}")
        for key in ("new", "start", "teacher"):
            figures = entry.get(key)
            if figures is None:
                lines.append(f"  {key:<12} {'(the truth here)':>7}")
                continue
            latency = (
                results["latency_ms"][new_name if key == "new" else "start"]
                if key != "teacher"
                else figures.get("ms_a_picture")
            )
            flicker = "-" if figures.get("flicker") is None else f"{figures['flicker']:.3f}"
            speed = "-" if latency is None else f"{latency:.2f} ms"
            lines.append(
                f"  {key:<12} {figures['mean_iou']:>7.4f} {figures['boundary_iou']:>9.4f} "
                f"{flicker:>8} {speed:>12}"
            )
        gap = "" if closed is None else f"; {100 * closed:.0f}% of the gap to the teacher closed"
        lines.append(
            f"  new - start: {diff['mean']:+.4f} IoU (95% interval {diff['low']:+.4f} to "
            f"{diff['high']:+.4f}){gap}"
        )
    lines.append(results["verdict"]["text"])
    return "\n".join(lines)
