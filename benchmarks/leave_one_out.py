"""Leave one sequence out: a fine-tune's settings judged on every DAVIS people sequence, each
scored by a model that never trained on it.

For each sequence S of davis2016_people, `backdrop fine-tune` runs with the other sequences'
training split as labelled data (`--data`, truth blended with the teacher as the recipe does) and
S alone scored (`--validate`), beside whatever footage and other data are given. One run folder
per sequence (RUN/S), each resumable: run the same command again to continue. The table gives,
per sequence, the new model, the start and the difference with its 95% block-bootstrap interval,
and how many sequences the settings win and lose: a setting that wins the mean and loses a
sequence shows it here.

    .venv/bin/python benchmarks/leave_one_out.py RUN [--sequences A B ...] [--start START]
        [--footage PATH ...] [--no-footage] [--photos FOLDER ...] [--data FORMAT:PATH ...]
        [--epochs N] [--truth-weight W] [--average-weight W] [--no-rvm] [--labels FOLDER]
        [--crop-aspect input|frame] [--held-out-share S] [--background FOLDER] [--seed S]
        [--seeds N] [--zoom-out-probability P]
        [--against OTHER_RUN]

The DAVIS folder: BACKDROP_DATA (default ../shared/datasets)/davis2016_people; each fold's data
is linked into RUN/folds/S/davis2016_people in DAVIS's own layout (nothing copied; the folder's
name is the dataset's, so its labels are named as in any other run). The sequence the records'
hash puts in the validation split (breakdance-flare) is never trained on in any fold.

Every fold labels into one folder (--labels, default RUN/labels; `make beat`'s labels folder, or a
copy, spares labelling what it holds): each fold's records take only its own data's labels.
--against OTHER_RUN adds, per sequence, this run's model minus OTHER_RUN's on the same frames
(another setting's folds of the same sequences), with its interval.

Labelled still sets given with --data (their validation splits scored in every fold, never
trained on) get a table of their own: each fold's model on each set, so a setting that wins
the sequences and loses a still set shows it too. `benchmarks/leave_one_out_recipe.sh` runs
`make beat`'s square recipe this way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fine_tune_davis import linked_davis  # noqa: E402


def fold(args, davis: Path, sequences: list[str], left_out: str):
    """The fine-tune that leaves `left_out` out (run or continued); its result."""
    import backdrop

    root = Path(args.run)
    others = [s for s in sequences if s != left_out]
    train = linked_davis(davis, others, root / "folds" / left_out / davis.name)
    scored = linked_davis(davis, [left_out], root / "folds" / left_out / "scored")
    footage, photos = list(args.footage), list(args.photos)
    if not footage and args.more_video:
        # davis2016_more's seven sequences: their masks hold what the people ride, so only the
        # teacher labels them.
        footage = [davis.parent / "davis2016_more" / "JPEGImages" / "480p"]
    if not photos:
        # The sam2 bedroom video's frames, each its own clip: footage every fold has, so a fold
        # without davis2016_more still has clips to hold out.
        photos = [davis.parent / "sam2_bedroom" / "frames"]
    return backdrop.fine_tune(
        footage,
        start=args.start,
        output=root / left_out,
        photos=photos,
        data=[f"davis:{train}", *args.data],
        validate=[f"davis:{scored}"],
        rvm=args.rvm,
        epochs=args.epochs,
        truth_weight=args.truth_weight,
        average_weight=args.average_weight,
        seed=args.seed,
        seeds=args.seeds,
        crop_aspect=args.crop_aspect,
        held_out_share=args.held_out_share,
        backgrounds=args.background,
        zoom_out_probability=args.zoom_out_probability,
        labels=args.labels or root / "labels",
        progress=False,
    )


def scored_ious(
    run: Path, left_out: str, dataset: str = "scored", model: str = "model_float16.tflite"
) -> list[float] | None:
    """Per-frame IoU of a fold's float16 model (or `model`) on its left-out sequence (or on the
    dataset whose name holds `dataset`), or None if not there."""
    import json

    for path in sorted((run / left_out / "evaluation").glob("evaluation_*.json")):
        results = json.loads(path.read_text())
        for entry in results["models"]:
            if Path(entry["model"]).name != model:
                continue
            for name, figures in entry["datasets"].items():
                if dataset in name:
                    return figures["image_ious"]
    return None


def int8_minus_float(run: Path, left_out: str, dataset: str = "scored") -> str:
    """A fold's int8 model's mean IoU minus its float16 model's, on the same pictures."""
    import numpy as np

    floats, ints = (
        scored_ious(run, left_out, dataset),
        scored_ious(run, left_out, dataset, "model_int8.tflite"),
    )
    if floats is None or ints is None:
        return "-"
    return f"{np.mean(ints) - np.mean(floats):+.4f}"


def still_sets(args) -> list[str]:
    """The names of the labelled still sets given with --data (not DAVIS-style video)."""
    return [
        Path(spec.partition(":")[2]).name for spec in args.data if not spec.startswith("davis:")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--sequences", nargs="+", help="default: every one of davis2016_people")
    parser.add_argument("--start", default="mediapipe")
    parser.add_argument("--footage", nargs="+", default=[], help="unlabelled footage")
    parser.add_argument(
        "--no-footage",
        dest="more_video",
        action="store_false",
        help="no davis2016_more footage by default (sam2_bedroom's frames stay, as --photos)",
    )
    parser.add_argument("--labels", type=Path, help="the labels folder every fold shares")
    parser.add_argument("--against", type=Path, help="another run of the same folds")
    parser.add_argument("--photos", nargs="+", default=[], help="folders of unrelated photos")
    parser.add_argument("--data", action="append", default=[], help="more labelled data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--truth-weight", type=float, default=0.5)
    parser.add_argument("--average-weight", type=float)
    parser.add_argument("--no-rvm", dest="rvm", action="store_false")
    parser.add_argument("--crop-aspect", choices=("input", "frame"), default="frame")
    parser.add_argument("--seed", type=int, default=0, help="the training seed (its noise)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds trained and averaged")
    parser.add_argument("--held-out-share", type=float, default=0.2)
    parser.add_argument(
        "--zoom-out-probability", type=float, default=0.0, help="people shrunk onto backgrounds"
    )
    parser.add_argument(
        "--background", nargs="+", default=[], help="folders of replacement backgrounds"
    )
    args = parser.parse_args()

    data = Path(os.environ.get("BACKDROP_DATA", Path(__file__).parents[1] / "../shared/datasets"))
    davis = data / "davis2016_people"
    sequences = sorted(p.name for p in (davis / "JPEGImages" / "480p").iterdir() if p.is_dir())
    for wanted in args.sequences or []:
        if wanted not in sequences:
            parser.error(f"{wanted} is not a sequence of {davis}: {', '.join(sequences)}")
    rows, stills = [], []
    for left_out in args.sequences or sequences:
        began = time.monotonic()
        result = fold(args, davis, sequences, left_out)
        (entry,) = [e for e in result.validation if "scored" in e["dataset"]]
        rows.append((left_out, entry))
        for still in still_sets(args):
            stills += [(left_out, e) for e in result.validation if still in e["dataset"]]
        print(f"{left_out}: {(time.monotonic() - began) / 60:.1f} min", flush=True)
    print(
        "\n| left out (frames) | fine-tuned IoU | int8 - float | start IoU | teacher IoU "
        "| new - start (95%) |"
    )
    print("|---|---|---|---|---|---|")
    for left_out, entry in rows:
        diff = entry["new_minus_start"]
        print(
            f"| {left_out} ({entry['new']['images']}) | {entry['new']['mean_iou']:.4f} | "
            f"{int8_minus_float(Path(args.run), left_out)} | "
            f"{entry['start']['mean_iou']:.4f} | {entry.get('teacher', {}).get('mean_iou', 1):.4f} | "
            f"{diff['mean']:+.4f} ({diff['low']:+.4f}, {diff['high']:+.4f}) |"
        )
    means = [entry["new_minus_start"] for _, entry in rows]
    print(
        f"\nahead on {sum(d['mean'] > 0 for d in means)} of {len(means)} sequences "
        f"({sum(d['low'] > 0 for d in means)} with the interval above 0), behind on "
        f"{sum(d['mean'] < 0 for d in means)} ({sum(d['high'] < 0 for d in means)} below 0)"
    )
    if stills:
        print(
            "\n| still set (pictures) | fold | fine-tuned IoU | int8 - float | start IoU "
            "| new - start (95%) |"
        )
        print("|---|---|---|---|---|---|")
        for left_out, entry in sorted(stills, key=lambda row: row[1]["dataset"]):
            diff = entry["new_minus_start"]
            name = Path(entry["dataset"].partition(":")[2]).name
            print(
                f"| {name} ({entry['new']['images']}) | without {left_out} | "
                f"{entry['new']['mean_iou']:.4f} | "
                f"{int8_minus_float(Path(args.run), left_out, name)} | "
                f"{entry['start']['mean_iou']:.4f} | "
                f"{diff['mean']:+.4f} ({diff['low']:+.4f}, {diff['high']:+.4f}) |"
            )
    if args.against:
        folds = [left_out for left_out, _ in rows]
        against(Path(args.run), args.against, folds)
        for still in still_sets(args):
            against(Path(args.run), args.against, folds, still)


def against(run: Path, other: Path, sequences: list[str], dataset: str = "scored") -> None:
    """Per sequence: this run's model minus `other`'s, frame by frame, with its interval, on
    the left-out sequence (or on the still set named `dataset`, as each fold scored it)."""
    import numpy as np

    from backdrop.evaluation.differences import bootstrap_interval

    scored = "left out" if dataset == "scored" else f"{dataset}, fold without"
    print(f"\n| {scored} | {run.name} | {other.name} | {run.name} - {other.name} (95%) |")
    print("|---|---|---|---|")
    for left_out in sequences:
        ours, theirs = scored_ious(run, left_out, dataset), scored_ious(other, left_out, dataset)
        if ours is None or theirs is None or len(ours) != len(theirs):
            print(f"| {left_out} | - | - | not both scored on the same frames |")
            continue
        difference = np.subtract(ours, theirs)
        # The left-out sequence's frames in blocks; a still set's pictures one by one.
        groups = [left_out if dataset == "scored" else None] * len(difference)
        mean, low, high = bootstrap_interval(difference, groups)
        print(
            f"| {left_out} | {np.mean(ours):.4f} | {np.mean(theirs):.4f} | "
            f"{mean:+.4f} ({low:+.4f}, {high:+.4f}) |"
        )


if __name__ == "__main__":
    main()
