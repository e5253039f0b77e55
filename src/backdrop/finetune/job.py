"""`backdrop fine-tune`: a team's own footage -> a model better on it, and an honest answer.

```
OUTPUT/
  fine_tune.json        settings, the start, the teacher, the clips (training / held out), steps done
  labels/clips/CLIP/    the teacher's labels of each clip (Portrait folders, `backdrop pseudo-label`)
  labels/data/          the --data training splits, truth blended in (--labels: elsewhere)
  records/              the training clips' and data's labels (`backdrop prepare`)
  train/ (train-seedN/) the fine-tuning run of each seed (seed 0 in train/; `backdrop train`)
  soup.keras            the seeds' uniform mean (several seeds only)
  averaged.keras        the fine-tuned weights averaged with the start's (WiSE-FT)
  model/                model_float16.tflite, model_int8.tflite (+ contracts, model cards)
  start/                the start exported to .tflite (a Backdrop checkpoint start only)
  evaluation/           evaluation.json: the new model, the start and the teacher, side by side
  results.json          the figures and the verdict; report/index.html shows them
```
Every step is resumable and skipped once done (`fine_tune.json` lists them), so a run cut off
at any point continues with the same command.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from backdrop.finetune.config import FineTuneConfig
from backdrop.finetune.footage import FootageError, choose_held_out, find_clips
from backdrop.finetune.start import resolve_start
from backdrop.outputs import OutputFolder, write_atomic

PLAN = "fine_tune.json"
RESULTS = "results.json"
STEPS = ("label", "records", "train", "average", "export", "evaluate", "report")
OUTPUTS = (
    PLAN,
    RESULTS,
    "records/",
    "soup.keras",  # the training runs' folders: the train step claims them, by seed
    "averaged.keras",
    "model/",
    "evaluation/",
    "report/",
)


class Plan:
    """`fine_tune.json`: what this run is, and which steps are done."""

    def __init__(self, folder: OutputFolder, content: dict):
        self.folder, self.root, self.content = folder, folder.root, content

    @property
    def done(self) -> list[str]:
        return self.content.setdefault("done", [])

    def finish(self, step: str) -> None:
        if step not in self.done:
            self.done.append(step)
        self.save()

    def save(self) -> None:
        write_atomic(self.root / PLAN, json.dumps(self.content, indent=2))


def _read_plan(root: Path, config: FineTuneConfig) -> dict | None:
    """The plan in `root` if it continues there: None when there is none, or when nothing was
    made from it yet (the new settings replace it)."""
    path = root / PLAN
    if not path.is_file():
        return None
    from backdrop.training.run_folder import read_run_json

    content = read_run_json(path, "remove it to start over", "fine-tune plan")
    if not isinstance(content, dict) or not isinstance(content.get("settings"), dict):
        raise ValueError(f"{path} is not a fine-tune plan; remove it or choose another --output")
    done = content.get("done")
    if not isinstance(done, list) or done != list(STEPS[: len(done)]):
        raise ValueError(f"{path}: its steps done {done!r} are not steps in order; remove it")
    if not done:
        return None
    settings = content["settings"]
    was = {key: settings.get(key, config.recorded_default(key)) for key in config.recorded()}
    changed = [
        f"{key} {was[key]!r} -> {value!r}"
        for key, value in config.recorded().items()
        if was[key] != value
    ]
    if changed:
        raise ValueError(
            f"{root} holds a fine-tune with other settings ({'; '.join(changed[:3])}); continue "
            "it with the same settings or choose another --output"
        )
    _check_derived(path, content, _derived(config))
    return content


def _check_derived(path: Path, content: dict, derived: dict) -> None:
    """Refuses a plan whose start, teacher or clips are not what its settings give now: a plan
    is trusted only as far as it can be derived again (a run folder may come from anyone, and
    its clip names become folders), and footage that changed mid-run is named."""
    differ = [key for key, value in derived.items() if content.get(key) != value]
    if not differ:
        return
    hint = ""
    if "clips" in differ:
        before, now = _clip_paths(content.get("clips")), _clip_paths(derived["clips"])
        if before is not None:
            hint = f" ({len(now - before)} clips new, {len(before - now)} gone)"
    raise ValueError(
        f"{path}: its {' and '.join(differ)} differ from what its settings give now{hint}; "
        "continue it with the footage and models it began with, or choose another --output"
    )


def _clip_paths(clips) -> set[str] | None:
    try:
        return {clip["path"] for part in clips.values() for clip in part}
    except (AttributeError, KeyError, TypeError):
        return None


def _derived(config: FineTuneConfig) -> dict:
    """What a plan holds besides its settings, derived from them: the start, the teacher and
    the clips (training / held out)."""
    from backdrop.finetune.teacher import default_teachers

    start = resolve_start(config.start)
    clips = find_clips(config.footage, config.split_pictures, config.photos)
    training, held_out = choose_held_out(clips, config.held_out_share, config.hold_out)
    if config.teachers:
        teachers, note = (
            list(config.teachers),
            "the mean of the teachers given" if len(config.teachers) > 1 else "the teacher given",
        )
    else:
        teachers, note = default_teachers(config.rvm)
    return {
        "start": start.as_json(),
        "teacher": {"files": [str(p) for p in teachers], "note": note},
        "clips": {
            "training": [c.as_json() for c in training],
            "held_out": [c.as_json() for c in held_out],
        },
    }


def _new_plan(config: FineTuneConfig) -> dict:
    from backdrop.teachers import load_teachers

    derived = _derived(config)
    load_teachers(derived["teacher"]["files"])  # a teacher that cannot label is one line now
    return {
        "settings": config.recorded(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **derived,
        "done": [],
    }


def fine_tune_run(config: FineTuneConfig) -> dict:
    """Runs (or continues) the fine-tune of `config`; returns the results (`results.json`).

    Raises:
        ValueError: bad footage, start model, teacher or settings (one line naming it).
        OutputError: another run holds the folder, or a file Backdrop did not write is in the way.
    """
    root = config.output
    content = _read_plan(root, config)
    if content is None:
        content = _new_plan(config)  # every input checked before anything is written
    inputs = [
        *config.footage,
        *config.photos,
        *(Path(spec.split(":")[1]) for spec in config.data + config.validate if ":" in spec),
    ]
    with OutputFolder(root, "fine-tune", "--output", inputs) as folder:
        folder.claim(*OUTPUTS, *([] if config.labels else ["labels/"]))
        plan = Plan(folder, content)
        plan.save()
        return _run_steps(config, plan)


def _run_steps(config: FineTuneConfig, plan: Plan) -> dict:
    from backdrop.finetune import steps, tuning

    actions = {
        "label": steps.label,
        "records": steps.records,
        "train": tuning.train,
        "average": tuning.average,
        "export": tuning.export,
        "evaluate": steps.evaluate,
        "report": steps.report,
    }
    for number, name in enumerate(STEPS, 1):
        if name in plan.done:
            print(f"[{number}/{len(STEPS)}] {name}: done before")
            continue
        print(f"[{number}/{len(STEPS)}] {name}: {steps.DESCRIPTIONS[name]}", flush=True)
        began = time.monotonic()
        actions[name](config, plan)
        plan.finish(name)
        print(
            f"[{number}/{len(STEPS)}] {name}: done in {_duration(time.monotonic() - began)}",
            flush=True,
        )
    return json.loads((plan.root / RESULTS).read_text())


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


__all__ = ["FootageError", "fine_tune_run"]
