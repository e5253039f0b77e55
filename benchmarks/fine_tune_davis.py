"""`backdrop fine-tune` on footage a user would have: DAVIS people sequences given unlabelled as
"my footage", scored on the held-out clip it chose (the teacher's labels) and on OTHER
sequences' ground truth, never trained on.

    .venv/bin/python benchmarks/fine_tune_davis.py RUN [--no-rvm] [--epochs N] [--start START]
        [--crop-aspect frame|input] [--data FORMAT:PATH ...]

Prints the figures as a markdown table. The DAVIS folder: BACKDROP_DATA (default
../shared/datasets)/davis2016_people; the validation sequences are linked into RUN-validation/
in DAVIS's own layout (nothing copied).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

FOOTAGE = ("breakdance", "breakdance-flare", "tennis")
VALIDATION = ("dance-jump", "dance-twirl")
HELD_OUT = "breakdance-flare"  # the clip the command's hash chose when the figures were measured


def linked_davis(davis: Path, sequences, folder: Path) -> Path:
    """A DAVIS-layout folder holding only `sequences`, as links."""
    for part in ("JPEGImages", "Annotations"):
        (folder / part / "480p").mkdir(parents=True, exist_ok=True)
        for sequence in sequences:
            link = folder / part / "480p" / sequence
            if not link.exists():
                link.symlink_to((davis / part / "480p" / sequence).resolve())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--no-rvm", dest="rvm", action="store_false")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--start", default="mediapipe")
    parser.add_argument("--data", action="append", default=[], help="labelled data to add")
    parser.add_argument("--crop-aspect", choices=("input", "frame"), default="frame")
    args = parser.parse_args()
    import backdrop

    data = Path(os.environ.get("BACKDROP_DATA", Path(__file__).parents[1] / "../shared/datasets"))
    davis = data / "davis2016_people"
    validation = linked_davis(davis, VALIDATION, Path(f"{args.run}-validation"))
    began = time.monotonic()
    result = backdrop.fine_tune(
        [davis / "JPEGImages" / "480p" / s for s in FOOTAGE],
        start=args.start,
        output=args.run,
        hold_out=[davis / "JPEGImages" / "480p" / HELD_OUT],
        validate=[f"davis:{validation}"],
        data=args.data,
        rvm=args.rvm,
        epochs=args.epochs,
        crop_aspect=args.crop_aspect,
        progress=False,
    )
    print(f"wall time {(time.monotonic() - began) / 60:.1f} min")
    print(result.verdict)
    print(
        "| data | fine-tuned IoU | start IoU | teacher IoU | new - start (95%) | gap closed "
        "| flicker new / start / teacher |"
    )
    print("|---|---|---|---|---|---|---|")
    for entry in [result.held_out, *result.validation]:
        diff, teacher = entry["new_minus_start"], entry.get("teacher")
        closed = "-" if entry["gap_closed"] is None else f"{100 * entry['gap_closed']:.0f}%"
        flickers = [
            entry["new"]["flicker"],
            entry["start"]["flicker"],
            None if teacher is None else teacher["flicker"],
        ]
        print(
            f"| {entry['dataset']} ({entry['new']['images']}) | {entry['new']['mean_iou']:.4f} | "
            f"{entry['start']['mean_iou']:.4f} | "
            f"{'truth' if teacher is None else format(teacher['mean_iou'], '.4f')} | "
            f"{diff['mean']:+.4f} ({diff['low']:+.4f}, {diff['high']:+.4f}) | {closed} | "
            + " / ".join("-" if f is None else f"{f:.3f}" for f in flickers)
            + " |"
        )
    print("latency ms:", result.results["latency_ms"])


if __name__ == "__main__":
    main()
