"""Instructions one inference executes, each model beside a reference: a cost that the machine's
load cannot move.

On the 2-core VM the same two files timed 0.91x and then 1.14x of each other 25 minutes apart
(docs/lab/2026-11-issue-14-latency.md, "one process and a file's place"); wall time there cannot
settle a difference of a few percent. Valgrind's callgrind counts the instructions a program
executes, the same count on every run, busy machine or not. Each model runs in a fresh process under
callgrind twice, with `--warm` and with `--warm + --invokes` invokes after one warm-up; the
difference over `--invokes` is one inference, with the process start, the imports and the model's
preparation subtracted. Beside the instructions: the data reads and writes, and callgrind's
simulated first-level data cache misses (the host's cache sizes), also the same on every run.

What it is not: latency. It times nothing and simulates no memory stall, and valgrind reports a CPU
without AVX-512, so XNNPACK runs its AVX2/FMA kernels here whatever the host has. With more than
one thread the workers' spin-waiting is counted too; the default is one.

    .venv/bin/python benchmarks/instruction_count.py --reference REF.tflite MODEL.tflite... \
        [--threads 1] [--invokes 20] [--warm 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import Segmenter, SegmenterError

_CHILD = (  # this very package first, as the latency's child does
    "import sys; sys.path.insert(0, sys.argv[4]); import numpy as np; "
    "from backdrop.runtime.segmenter import Segmenter; "
    "s = Segmenter(sys.argv[1], int(sys.argv[2])); "
    "s.interpreter.set_tensor(s.input['index'], np.zeros(s.input['shape'], s.input['dtype'])); "
    "[s.interpreter.invoke() for _ in range(1 + int(sys.argv[3]))]"
)


EVENTS = ("Ir", "Dr", "Dw", "D1mr", "D1mw")  # instructions, data reads, writes, L1 misses


def counts(path: Path, threads: int, invokes: int) -> np.ndarray:
    """`EVENTS` counted by callgrind in a fresh process that loads `path` and invokes it
    1 + `invokes` times."""
    package_root = str(Path(__file__).resolve().parents[1] / "src")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--cache-sim=yes",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        _CHILD,
        str(path),
        str(threads),
        str(invokes),
        package_root,
    ]
    # numpy's BLAS threads spin while they wait; one thread keeps them out of the count.
    environment = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",  # the same dictionaries, so the same count, every run
    }
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    names = re.search(r"Events\s*:\s*(.+)", result.stderr)
    values = re.search(r"Collected\s*:\s*(.+)", result.stderr)
    if result.returncode != 0 or not names or not values:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SegmenterError(f"counting {path} under valgrind failed: {last}")
    found = dict(zip(names.group(1).split(), map(int, values.group(1).split()), strict=True))
    return np.array([found[event] for event in EVENTS], dtype=np.float64)


def per_invoke(path: Path, threads: int, invokes: int, warm: int) -> np.ndarray:
    """`EVENTS` of one inference: the difference of two runs over their extra invokes."""
    return (counts(path, threads, warm + invokes) - counts(path, threads, warm)) / invokes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the .tflite files to count")
    parser.add_argument("--reference", required=True, help="the .tflite the ratios are against")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (1)")
    parser.add_argument("--invokes", type=int, default=20, help="invokes the count is over (20)")
    parser.add_argument("--warm", type=int, default=2, help="invokes of the shorter run (2)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    if args.invokes < 1 or args.warm < 0 or args.threads < 1:
        parser.error("--invokes and --threads must be at least 1, --warm at least 0")
    paths = [Path(args.reference), *(Path(m) for m in args.models)]
    try:
        shapes = [(s.height, s.width) for s in (Segmenter(p, args.threads) for p in paths)]
        found = []
        for number, path in enumerate(paths, 1):  # progress on stderr: 1-3 min a model
            print(f"[{number}/{len(paths)}] {path} under valgrind", file=sys.stderr, flush=True)
            found.append(per_invoke(path, args.threads, args.invokes, args.warm))
    except SegmenterError as error:
        parser.error(str(error))
    print(
        f"threads {args.threads}, callgrind, instructions of one invoke "
        f"((run of {args.warm + args.invokes}) - (run of {args.warm})) / {args.invokes}\n"
    )
    print(
        "| model | input | million instructions | ratio | million data reads / writes | "
        "thousand L1 data misses (read + write) | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    reference = found[0]
    short = [f"{path.parent.name}/{path.name}" for path in paths]
    names = [str(p) if short.count(s) > 1 else s for p, s in zip(paths, short, strict=True)]
    for i, ((height, width), count) in enumerate(zip(shapes, found, strict=True)):
        name = names[i] + (" (reference)" if i == 0 else "")
        misses, reference_misses = count[3] + count[4], reference[3] + reference[4]
        print(
            f"| {name} | {height}x{width} | {count[0] / 1e6:.2f} | {count[0] / reference[0]:.3f}x "
            f"| {count[1] / 1e6:.2f} / {count[2] / 1e6:.2f} | {misses / 1e3:.0f} "
            f"| {misses / reference_misses:.3f}x |"
        )


if __name__ == "__main__":
    main()
