"""The steps of a fine-tune, each resumable: it finds what an interrupted run finished and
continues from there (labels skip what is labelled, training continues from its last epoch)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from backdrop.finetune.footage import Clip, FootageError
from backdrop.finetune.start import StartModel
from backdrop.imageops import IMAGE_EXTENSIONS

DESCRIPTIONS = {
    "label": "the teacher labels every clip (held-out ones for scoring only) and the --data",
    "records": "the training clips' and data's labels become records",
    "train": "fine-tuning the start model on them",
    "average": "the fine-tuned weights averaged with the start's",
    "export": "export with TFLite metadata and model cards",
    "evaluate": "the new model, the start and the teacher on the held-out clips and labelled data",
    "report": "the report page, with the held-out frames where the new model and the start differ",
}
VALIDATION_SHARES = (0.1, 0.2, 0.35, 0.5)
# A clip whose labels mark a person on no frame (at least this share of pixels) is refused.
PERSON_SHARE = 0.01


def clips_of(plan, which: str) -> list[Clip]:
    return [
        Clip(c["name"], Path(c["path"]), c["kind"], c["count"])
        for c in plan.content["clips"][which]
    ]


def start_of(plan) -> StartModel:
    start = plan.content["start"]
    return StartModel(
        Path(start["init_from"]),
        None if start["tflite"] is None else Path(start["tflite"]),
        start["architecture"],
        tuple(start["input_shape"]),
        start["description"],
    )


def clip_files(clip: Clip) -> list[Path]:
    if clip.kind != "pictures":
        return [clip.path]
    return sorted(
        p for p in clip.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def labels_folder(config, plan) -> Path:
    """Where the teacher's labels are: `labels/clips/CLIP/` and `labels/data/`."""
    return config.labels or plan.root / "labels"


def _teacher(config, plan):
    from backdrop.teachers import load_teachers

    return load_teachers(plan.content["teacher"]["files"], config.threads)


def _check_people(clip: Clip, folder: Path) -> None:
    """Refuses a clip in whose labels the teacher found no person."""
    from PIL import Image

    masks = sorted((folder / "masks").glob("*.png"))
    found = 0
    for mask in masks:
        values = np.asarray(Image.open(mask))
        found += int(np.count_nonzero(values >= 128) >= PERSON_SHARE * values.size)
    if masks and not found:
        raise FootageError(
            f"footage {clip.path}: the teacher finds no person in any of its {len(masks)} "
            "labelled frames; leave it out (a clip without people teaches nothing here)"
        )
    if not masks:
        raise FootageError(f"footage {clip.path}: no frame could be read from it")


def label(config, plan) -> None:
    from backdrop.teachers.label import LabelConfig, pseudo_label

    teacher = _teacher(config, plan)
    print(f"  teacher: {plan.content['teacher']['note']}")
    clips = clips_of(plan, "training") + clips_of(plan, "held_out")
    began, every = time.monotonic(), max(1, len(clips) // 20)
    for number, clip in enumerate(clips, 1):
        folder = labels_folder(config, plan) / "clips" / clip.name
        if clip.kind != "picture" or number % every == 1:
            print(f"  clip {number}/{len(clips)}: {clip.path}", flush=True)
        run = pseudo_label(
            teacher,
            LabelConfig(inputs=tuple(clip_files(clip)), output=folder, every=config.every),
            progress=config.progress and clip.kind != "picture",
        )
        if clip.kind != "picture":  # a photo without people is a fair example; a clip is not
            _check_people(clip, folder)
        if run["labelled"] and number < len(clips) and number % every == 0:
            left = (time.monotonic() - began) / number * (len(clips) - number)
            print(f"  about {left / 60:.1f} min of labelling left", flush=True)
    if config.data:
        print(
            f"  labelled data (training split, truth weight {config.truth_weight}): "
            f"{', '.join(config.data)}",
            flush=True,
        )
        run = pseudo_label(
            teacher,
            LabelConfig(
                inputs=(),
                output=labels_folder(config, plan) / "data",
                datasets=config.data,
                split="train",
                truth_weight=config.truth_weight,
            ),
            progress=config.progress,
        )
        # A labels folder may be shared with fine-tunes of other data (--labels): the records
        # take this run's data alone, by name.
        plan.content["data_labels"] = run["data_names"]


def records_side(config, start: StartModel) -> int:
    """The records' shorter side: as given, else 9/8 of the input's longer side (crops have
    room to move), a multiple of 8."""
    return config.side or int(round(max(start.input_shape) * 9 / 8 / 8) * 8)


def records(config, plan) -> None:
    from backdrop.data.prepare import PrepareConfig, prepare
    from backdrop.finetune.scoring import ClipLabels, DataLabels

    labels = labels_folder(config, plan)
    readers = [ClipLabels(labels / "clips" / clip.name) for clip in clips_of(plan, "training")]
    if config.data:
        readers.append(DataLabels(labels / "data", plan.content.get("data_labels")))
    side = records_side(config, start_of(plan))
    # Training needs a validation split; it takes frames by a hash of their names, so a little
    # footage may give none at 10%: then a larger share (recorded in metadata.json).
    for share in VALIDATION_SHARES:
        written = prepare(
            readers,
            PrepareConfig(
                plan.root / "records", side=side, validation_fraction=share, remove_previous=True
            ),
            progress=config.progress,
        )
        if written["splits"]["validation"]["count"]:
            return
    raise FootageError(
        f"too little footage: its {written['splits']['train']['count']} training frames gave none "
        "to the records' validation split; give more footage or hold fewer clips out"
    )


def model_paths(config, plan) -> tuple[list[Path], Path]:
    """(the new model in each mode, the start as a .tflite)."""
    start = start_of(plan)
    new = [plan.root / "model" / f"model_{mode}.tflite" for mode in config.modes]
    return new, start.tflite or plan.root / "start" / "model_float16.tflite"


def evaluate(config, plan) -> None:
    from backdrop.finetune.scoring import evaluate_fine_tune

    evaluate_fine_tune(config, plan)


def report(config, plan) -> None:
    from backdrop.finetune.page import write_fine_tune_report
    from backdrop.finetune.scoring import format_results

    page = write_fine_tune_report(config, plan)
    results = json.loads((plan.root / "results.json").read_text())
    print(format_results(results))
    print(f"report: {page}")
