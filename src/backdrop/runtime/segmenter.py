"""Segmenter: any person-segmentation .tflite -> a probability mask at the frame's own size."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from backdrop.runtime.contract import check_model_bytes

LATENCY_ROUNDS = 9  # the default number of rounds the latency functions time
# Invokes a round. At 5 rounds of 50, two same-size files of one architecture read 19% apart
# in one evaluate; at 9 of 200, 1-2% in one run and 14-19% in another: the 2-core VM drifts
# more than either (docs/lab/2026-11-issue-14-latency.md, "one process and a file's place").
LATENCY_RUNS = 200


def shrink_area(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Averages pixel areas down to `width` x `height`.

    While both sides are at least twice the target it first halves the image: OpenCV's integer
    2x area path is several times faster than its general one (1280x720 -> 256x256: 1.84 ms
    direct, 0.79 ms halved first; docs/lab/2026-11-issue-4-runtime.md), and two box filters in
    a row anti-alias as well as one. An odd last row or column is left out of a halving.
    """
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        even_height, even_width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        image = cv2.resize(
            image[:even_height, :even_width],
            (even_width // 2, even_height // 2),
            interpolation=cv2.INTER_AREA,
        )
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def stretch_to_input(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame stretched to the model input: shrunk by pixel area, enlarged bilinearly.

    Shrinking averages pixel areas (as `backdrop prepare` does to training images): bilinear
    sampling of a 640x480 frame down to 256x256 aliases fine texture into noise that the
    model never saw in training (it cost the mobile model 0.07 portrait IoU;
    docs/lab/2026-11-issue-4-runtime.md). Enlarging stays bilinear.
    """
    if frame.shape[1] >= width and frame.shape[0] >= height:
        return shrink_area(frame, width, height)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def probability_at(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    """A probability at the model's resolution resized back to a frame's (bilinear, clipped)."""
    resized = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


class SegmenterError(ValueError):
    """The file is not a usable segmentation model; the message says what was found."""


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if values.dtype in (np.uint8, np.int8, np.int16) and scale:
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32)


def load_interpreter(model: Path, content: bytes, threads: int = 1):
    """A LiteRT interpreter of `content`, the bytes of `model`, with its tensors allocated, once
    they are checked to be the file its contract names (if it has one).

    Raises:
        ModelFileError: `content` is not the file the contract names.
        SegmenterError: LiteRT cannot load it (its flatbuffer verifier bounds every offset and
            size by the bytes that are there); one line naming `model`.
    """
    from ai_edge_litert.interpreter import Interpreter

    check_model_bytes(model, content)
    try:
        # From memory, not mapped from the file: on the 2-core VM, MediaPipe's file mapped in
        # place ran 8-16% slower than a byte-identical copy on the same disk, and from memory
        # the copies time alike (benchmarks/README.md, "one process and a file's place").
        interpreter = Interpreter(model_content=content, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise SegmenterError(f"{model} is not a TFLite model ({reason})") from None
    return interpreter


class Segmenter:
    """Runs a segmentation `.tflite` with ai-edge-litert and returns person probability.

    Works with Backdrop's exports and with other segmenters such as MediaPipe's selfie
    segmentation: float or quantized (uint8/int8) input and output; a 1-channel probability (or
    logit) output, or a 2-channel softmax/logit output whose channel 1 is person. The frame is
    stretched to the model input (bilinear) and the probability resized back (bilinear).

    Args:
        model_path: The `.tflite` file.
        threads: CPU threads for the interpreter.
    """

    def __init__(self, model_path: str | Path, threads: int = 2):
        self.model_path = Path(model_path)
        if not (isinstance(threads, int) and threads >= 1):
            raise SegmenterError(f"threads must be a whole number >= 1, got {threads}")
        if not self.model_path.is_file():
            raise SegmenterError(f"model {self.model_path} not found")
        self.interpreter = load_interpreter(self.model_path, self.model_path.read_bytes(), threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][-1] != 3:
            shapes = [list(d["shape"]) for d in inputs]
            raise SegmenterError(
                f"{self.model_path} is not an image segmentation model: expected one "
                f"[1, H, W, 3] input, found {shapes}"
            )
        self.input, self.output = inputs[0], outputs[0]
        shape = self.output["shape"]
        if len(shape) != 4 or shape[-1] not in (1, 2):
            raise SegmenterError(
                f"{self.model_path} is not a segmentation model: expected a [1, H, W, 1 or 2] "
                f"output, found {list(shape)}"
            )
        self.height, self.width = (int(v) for v in self.input["shape"][1:3])
        self.threads = threads

    def input_tensor(self, frame: np.ndarray) -> np.ndarray:
        """`(H, W, 3)` uint8 RGB frame -> the model's input tensor (`stretch_to_input`)."""
        resized = stretch_to_input(frame, self.width, self.height)
        dtype = self.input["dtype"]
        scale, zero_point = self.input["quantization"]
        if dtype == np.float32:
            return (resized.astype(np.float32) / 255.0)[None]
        if dtype == np.uint8 and np.isclose(scale, 1 / 255) and zero_point == 0:
            return resized[None]  # camera bytes go straight in
        quantized = np.rint(resized.astype(np.float32) / 255.0 / scale + zero_point)
        info = np.iinfo(dtype)
        return np.clip(quantized, info.min, info.max).astype(dtype)[None]

    def raw_probability(self, frame: np.ndarray) -> np.ndarray:
        """Person probability at the model's own resolution, `(h, w)` float32 in [0, 1]."""
        self.interpreter.set_tensor(self.input["index"], self.input_tensor(frame))
        self.interpreter.invoke()
        output = _dequantize(self.interpreter.get_tensor(self.output["index"])[0], self.output)
        if output.shape[-1] == 2:
            if (
                output.min() < 0
                or output.max() > 1
                or not np.allclose(output.sum(-1), 1, atol=1e-2)
            ):
                output = np.exp(output - output.max(-1, keepdims=True))
                output /= output.sum(-1, keepdims=True)
            return output[..., 1]
        output = output[..., 0]
        if output.min() < 0 or output.max() > 1:  # logits
            output = 1.0 / (1.0 + np.exp(-output))
        return output

    def latency_ms(self, runs: int = 50) -> float:
        """Median milliseconds of one inference (the interpreter alone) on this machine."""
        self.interpreter.set_tensor(
            self.input["index"], np.zeros(self.input["shape"], self.input["dtype"])
        )
        self.interpreter.invoke()
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            self.interpreter.invoke()
            timings.append((time.perf_counter() - started) * 1000)
        return float(np.median(timings))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """`(H, W, 3)` uint8 RGB frame -> `(H, W)` float32 person probability in [0, 1]."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}"
            )
        return probability_at(self.raw_probability(frame), *frame.shape[:2])


def interleaved_latency_ms(
    segmenters: Sequence[Segmenter], rounds: int = LATENCY_ROUNDS, runs: int = 50
) -> np.ndarray:
    """`(rounds, models)` milliseconds: each round times every model once (`latency_ms(runs)`),
    one after another, so a busy moment of the machine lands on all models, not on one.

    The median over rounds (axis 0) is each model's latency; models compare in one process, on
    the same threads. On the 2-core VM that process biased copies of one file by up to 25%:
    `isolated_latency_ms` is what evaluate and export use.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    return np.array([[s.latency_ms(runs) for s in segmenters] for _ in range(rounds)])


def _latency_in_this_process(path: str, threads: int, runs: int) -> float:
    segmenter = Segmenter(path, threads)
    segmenter.latency_ms(max(1, runs // 4))  # warm-up: caches and the CPU's clock settle
    return segmenter.latency_ms(runs)


def latency_in_own_process_ms(path: str | Path, threads: int, runs: int) -> float:
    """`Segmenter(path, threads).latency_ms(runs)` after a warm-up, in a fresh Python process of
    its own: nothing loaded here is shared with it. A plain subprocess, not `multiprocessing`,
    which would re-run a calling script that lacks a `__main__` guard.

    Raises:
        SegmenterError: The file is missing or not a usable model (the child's message).
    """
    code = (  # this very package first: a source checkout (python/_shim.py) is not installed
        "import sys; sys.path.insert(0, sys.argv[4]); "
        "from backdrop.runtime.segmenter import _latency_in_this_process as f; "
        "print(f(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))"
    )
    package_root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(threads), str(runs), package_root],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SegmenterError(f"timing {path} in its own process failed: {last}")
    return float(result.stdout.split()[-1])


def isolated_latency_ms(
    paths: Sequence[str | Path],
    threads: int,
    rounds: int = LATENCY_ROUNDS,
    runs: int = LATENCY_RUNS,
    time_file=latency_in_own_process_ms,
) -> np.ndarray:
    """`(rounds, models)` milliseconds like `interleaved_latency_ms`, but every timing is taken in
    a process of its own (`time_file`), the models in the given order in even rounds and in
    reverse in odd ones, so that neither a file's neighbour in the process nor its place in the
    round can favour it.

    Interleaving in one process is not enough: on the 2-core VM three copies of one file timed
    in turn in one process read up to 25% apart, and in own processes within 2-5%
    (benchmarks/README.md, "one process and a file's place").
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    timings = np.zeros((rounds, len(paths)))
    for r in range(rounds):
        order = range(len(paths)) if r % 2 == 0 else reversed(range(len(paths)))
        for m in order:
            timings[r, m] = time_file(paths[m], threads, runs)
    return timings
