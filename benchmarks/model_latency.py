"""Latency of exported models beside a reference, each in a process of its own.

The same timing as `backdrop evaluate` and `backdrop export` use (`isolated_latency_ms`: round
after round, every model timed in a fresh process of its own on the same threads, in alternating
order), with more rounds and invokes, without the data, and with each model's range over rounds
and its ratio to the reference's median. `--control` times the reference twice: the second one's
ratio is what the method cannot tell apart from 1.00x.

`--one-process` times every model in turn in this one process (`interleaved_latency_ms`), the
method before 2026-11-27: there, MediaPipe landscape's own time rose by a third beside our file
of its architecture, and copies of one file read up to 25% apart
(docs/lab/2026-11-issue-14-latency.md).

    .venv/bin/python benchmarks/model_latency.py --reference REF.tflite MODEL.tflite... \
        [--threads 2] [--rounds 7] [--runs 200] [--control] [--one-process]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import (
    Segmenter,
    SegmenterError,
    interleaved_latency_ms,
    isolated_latency_ms,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the .tflite files to time")
    parser.add_argument("--reference", required=True, help="the .tflite the ratios are against")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="invokes per model and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is reported")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="time the models in turn in this one process (the method before 2026-11-27)",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="time the reference a second time, as a model: its ratio is the method's noise floor",
    )
    args = parser.parse_args()
    paths = [Path(args.reference), *(Path(m) for m in args.models)]
    if args.control:
        paths.append(Path(args.reference))
    try:
        segmenters = [Segmenter(path, args.threads) for path in paths]  # checks every file first
    except SegmenterError as error:
        parser.error(str(error))
    if args.one_process:
        rounds = interleaved_latency_ms(segmenters, args.rounds, args.runs)  # (rounds, models)
        mode = "interleaved rounds in one process,"
    else:
        rounds = isolated_latency_ms(paths, args.threads, args.rounds, args.runs)
        mode = "rounds, each model in its own process, alternating order,"
    medians = np.median(rounds, axis=0)
    print(f"threads {args.threads}, {args.rounds} {mode} {args.runs} invokes each\n")
    print("| model | input | median ms | min-max ms over rounds | ratio to reference |")
    print("|---|---|---|---|---|")
    for i, (path, segmenter) in enumerate(zip(paths, segmenters, strict=True)):
        name = f"{path.parent.name}/{path.name}"
        if i == 0:
            name += " (reference)"
        elif args.control and i == len(paths) - 1:
            name += " (reference again: the noise floor)"
        print(
            f"| {name} | {segmenter.height}x{segmenter.width} | {medians[i]:.2f} | "
            f"{rounds[:, i].min():.2f}-{rounds[:, i].max():.2f} | {medians[i] / medians[0]:.2f}x |"
        )


if __name__ == "__main__":
    main()
