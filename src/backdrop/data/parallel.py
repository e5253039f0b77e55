"""Fan work out over worker processes, with a progress bar, results in task order."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence

import cv2
from tqdm import tqdm

# Modules whose native thread pools make a forked worker deadlock.
THREADED_MODULES = ("tensorflow", "ai_edge_litert")

# Worker processes run OpenCV on one thread: the workers share the cores, not each call. It is
# set before each fork, in the parent, and restored after: a child that changes the thread
# count of a pool it inherited waits forever on the pool's threads, which it does not have.
_opencv_threads: list[int] = []


def _before_fork() -> None:
    _opencv_threads.append(cv2.getNumThreads())
    cv2.setNumThreads(1)


os.register_at_fork(
    before=_before_fork, after_in_parent=lambda: cv2.setNumThreads(_opencv_threads.pop())
)


def one_opencv_thread() -> None:
    """OpenCV on one thread in this worker. A forked worker has it already (see above) and must
    not set it again; one started otherwise (spawn, forkserver) sets it here."""
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


def parallel_map(
    function: Callable,
    tasks: Sequence,
    workers: int,
    initializer: Callable,
    initargs: tuple,
    progress: bool = True,
    unit: str = "img",
) -> Iterator:
    """Yields `function(task)` for every task, in order, computed by `workers` processes.

    `initializer(*initargs)` runs once per worker (and once here when `workers` is 1, which runs
    everything in this process). Workers are forked, which starts them at once, unless this
    process has imported TensorFlow or the TFLite runtime: their threads would be copied in a
    broken state (a deadlock), so then they are spawned. On any exit, Ctrl-C included, the workers are stopped.
    """
    pool = None
    try:
        if workers > 1 and len(tasks) > 1:
            threaded = any(name in sys.modules for name in THREADED_MODULES)
            method = "spawn" if threaded or sys.platform != "linux" else "fork"
            context = multiprocessing.get_context(method)
            pool = context.Pool(min(workers, len(tasks)), initializer, initargs)
            results = pool.imap(function, tasks, chunksize=4)
        else:
            initializer(*initargs)
            results = map(function, tasks)
        yield from tqdm(results, total=len(tasks), unit=unit, disable=not progress, file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def log(message: str) -> None:
    """Prints a line without breaking an active progress bar."""
    tqdm.write(message, file=sys.stderr)
