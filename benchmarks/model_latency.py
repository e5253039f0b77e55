"""Latency of exported models beside a reference, interleaved in one process or each in its own.

By default the same interleaved timing as `backdrop evaluate` and `backdrop export` use
(`interleaved_latency_ms`: every model timed in turn, round after round, the same threads and
process), with more rounds and invokes, without the data, and with each model's range over rounds
and its ratio to the reference's median.

`--isolated` times every model in a fresh process of its own each round, in alternating order
(`isolated_latency_ms`). Use it when two files share an architecture: in one process, MediaPipe
landscape's own time rose by a third beside our file of its architecture (benchmarks/README.md).

    .venv/bin/python benchmarks/model_latency.py --reference REF.tflite MODEL.tflite... \
        [--threads 2] [--rounds 7] [--runs 200] [--isolated]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import Segmenter, interleaved_latency_ms, isolated_latency_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the .tflite files to time")
    parser.add_argument("--reference", required=True, help="the .tflite the ratios are against")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="invokes per model and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is reported")
    parser.add_argument(
        "--isolated",
        action="store_true",
        help="time each model in a fresh process of its own, in alternating order each round",
    )
    args = parser.parse_args()
    paths = [Path(args.reference), *(Path(m) for m in args.models)]
    segmenters = [Segmenter(path, args.threads) for path in paths]  # checks every file first
    if args.isolated:
        rounds = isolated_latency_ms(paths, args.threads, args.rounds, args.runs)
        mode = "rounds, each model in its own process, alternating order,"
    else:
        rounds = interleaved_latency_ms(segmenters, args.rounds, args.runs)  # (rounds, models)
        mode = "interleaved rounds in one process,"
    medians = np.median(rounds, axis=0)
    print(f"threads {args.threads}, {args.rounds} {mode} {args.runs} invokes each\n")
    print("| model | input | median ms | min-max ms over rounds | ratio to reference |")
    print("|---|---|---|---|---|")
    for i, (path, segmenter) in enumerate(zip(paths, segmenters, strict=True)):
        name = f"{path.parent.name}/{path.name}" + (" (reference)" if i == 0 else "")
        print(
            f"| {name} | {segmenter.height}x{segmenter.width} | {medians[i]:.2f} | "
            f"{rounds[:, i].min():.2f}-{rounds[:, i].max():.2f} | {medians[i] / medians[0]:.2f}x |"
        )


if __name__ == "__main__":
    main()
