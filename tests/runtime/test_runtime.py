"""The TensorFlow-free runtime: segmenter, effects, smoothing, video and the segment command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.cli import main
from backdrop.runtime import Segmenter, SegmenterError, refine_edges
from backdrop.runtime.effects import (
    blur_background,
    composite,
    parse_colour,
    replace_background,
    solid_background,
)
from backdrop.runtime.segmenter import (
    interleaved_latency_ms,
    isolated_latency_ms,
    latency_in_own_process_ms,
)
from backdrop.runtime.temporal import MaskSmoother


def test_importing_the_runtime_leaves_tensorflow_out():
    code = (
        "import sys, backdrop.runtime, backdrop.runtime.media, backdrop.runtime.pipeline, "
        "backdrop.evaluation.evaluate; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def gradient_frame(height=60, width=90) -> np.ndarray:
    """Dark left half, bright right half."""
    frame = np.full((height, width, 3), 20, np.uint8)
    frame[:, width // 2 :] = 235
    return frame


@pytest.mark.parametrize("kind", ["float32", "int8", "softmax"])
def test_segmenter_handles_float_quantized_and_two_channel_models(tiny_models, kind):
    segmenter = Segmenter(tiny_models[kind], threads=1)
    mask = segmenter(gradient_frame())
    assert mask.shape == (60, 90) and mask.dtype == np.float32
    assert mask[:, :40].max() < 0.2 and mask[:, 50:].min() > 0.8, "bright half is person"


def test_quantized_input_takes_camera_bytes_directly(tiny_models):
    segmenter = Segmenter(tiny_models["int8"])
    assert segmenter.input["dtype"] == np.uint8
    assert segmenter.input["quantization"] == pytest.approx((1 / 255, 0))
    frame = gradient_frame(32, 48)
    np.testing.assert_array_equal(segmenter.input_tensor(frame)[0], frame)


def test_shrinking_a_frame_averages_instead_of_aliasing(tiny_models):
    """A one-pixel checkerboard shrunk 2.5x (640 -> 256) must come out near-flat grey, as
    area-downscaled training images do; bilinear sampling keeps stripes 32 levels off grey."""
    segmenter = Segmenter(tiny_models["int8"])
    height, width = segmenter.height, segmenter.width
    board = (np.indices((height * 5 // 2, width * 5 // 2)).sum(axis=0) % 2 * 255).astype(np.uint8)
    tensor = segmenter.input_tensor(np.dstack([board] * 3))[0].astype(int)
    assert np.abs(tensor - 128).max() <= 8


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (1081, 1921), (256, 900)])
def test_shrinking_halves_first_and_stays_an_area_average(height, width):
    from backdrop.runtime.segmenter import shrink_area

    rows, columns = np.indices((height, width))
    smooth = np.dstack([rows * 255 // height, columns * 255 // width, (rows + columns) % 256])
    smooth = smooth.astype(np.uint8)
    direct = cv2.resize(smooth, (256, 256), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(shrink_area(smooth, 256, 256).astype(int) - direct)[..., :2].max() <= 2
    board = np.dstack([(rows + columns) % 2 * 255] * 3).astype(np.uint8)
    shrunk = shrink_area(board, 256, 256).astype(int)
    board_direct = cv2.resize(board, (256, 256), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(shrunk - board_direct).max() <= 8
    if height >= 512 and width >= 512:  # halved first: still no aliasing
        assert np.abs(shrunk - 128).max() <= 8


def test_models_that_are_not_segmenters_are_refused(tiny_models, tmp_path):
    with pytest.raises(SegmenterError, match="not a segmentation model"):
        Segmenter(tiny_models["classifier"])
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(SegmenterError, match="not a TFLite model"):
        Segmenter(tmp_path / "junk.tflite")
    with pytest.raises(SegmenterError, match="not found"):
        Segmenter(tmp_path / "missing.tflite")


def test_reference_model_runs(anchor_model):
    segmenter = Segmenter(anchor_model())
    assert (segmenter.height, segmenter.width) == (256, 256)
    assert segmenter(gradient_frame()).shape == (60, 90)
    assert 0 < segmenter.latency_ms(runs=5) < 1000


def test_latency_rounds_interleave_the_models():
    calls = []

    class Timed:  # stands in for a Segmenter: records when it is timed
        def __init__(self, name, ms):
            self.name, self.ms = name, ms

        def latency_ms(self, runs):
            calls.append((self.name, runs))
            return self.ms

    timings = interleaved_latency_ms([Timed("a", 1.0), Timed("b", 2.0)], rounds=3, runs=7)
    assert calls == [("a", 7), ("b", 7)] * 3  # every round times every model, in turn
    assert timings.shape == (3, 2) and (timings == [1.0, 2.0]).all()
    with pytest.raises(ValueError, match="rounds"):
        interleaved_latency_ms([Timed("a", 1.0)], rounds=0)


def test_isolated_latency_alternates_the_order_of_the_models():
    calls = []

    def time_file(path, threads, runs):
        calls.append((path, threads, runs))
        return {"a": 1.0, "b": 2.0, "c": 3.0}[path]

    timings = isolated_latency_ms(["a", "b", "c"], threads=2, rounds=3, runs=7, time_file=time_file)
    assert [path for path, _, _ in calls] == list("abccbaabc")
    assert {(threads, runs) for _, threads, runs in calls} == {(2, 7)}
    assert timings.shape == (3, 3) and (timings == [1.0, 2.0, 3.0]).all()  # columns keep order
    with pytest.raises(ValueError, match="rounds"):
        isolated_latency_ms(["a"], threads=2, rounds=0, time_file=time_file)


def test_a_model_is_timed_in_a_process_of_its_own(tiny_models):
    assert 0 < latency_in_own_process_ms(tiny_models["int8"], threads=1, runs=5) < 1000
    with pytest.raises(SegmenterError, match="not found"):  # the child's error reaches the caller
        latency_in_own_process_ms(tiny_models["int8"].with_name("missing.tflite"), 1, 5)


def test_composite_invariants():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ones, zeros = np.ones((20, 30), np.float32), np.zeros((20, 30), np.float32)
    np.testing.assert_array_equal(composite(frame, ones, background), frame)
    np.testing.assert_array_equal(composite(frame, zeros, background), background)
    half = composite(frame, ones * 0.5, background).astype(int)
    expected = (frame.astype(int) + background) / 2
    assert np.abs(half - expected).max() <= 1
    # Effects keep the person's pixels exactly where the mask is 1.
    mask = zeros.copy()
    mask[5:15, 10:20] = 1
    for result in (
        blur_background(frame, mask),
        solid_background(frame, mask, (0, 255, 0)),
        replace_background(frame, mask, rng.integers(0, 256, (7, 9, 3), np.uint8)),
    ):
        np.testing.assert_array_equal(result[5:15, 10:20], frame[5:15, 10:20])
    assert (solid_background(frame, mask, (0, 255, 0))[0, 0] == (0, 255, 0)).all()
    assert parse_colour("#00ff80") == (0, 255, 128)
    with pytest.raises(ValueError, match="RRGGBB"):
        parse_colour("green")


@pytest.mark.parametrize("size", [(723, 1283), (480, 640), (3, 500), (1, 1)])
def test_blur_covers_frames_of_any_size(size):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    frame[:, -(size[1] // 10) :] = 255  # a bright strip at the edge stays there
    blurred = blur_background(frame, np.zeros(size, np.float32))
    assert blurred.shape == frame.shape and blurred.dtype == np.uint8
    if min(size) >= 240:
        assert blurred.std() < 0.5 * frame.std(), "noise is smoothed away"
        assert blurred[:, -1].mean() > blurred[:, size[1] // 2].mean() + 60


def test_smoothing_damps_flicker_and_follows_motion():
    smoother = MaskSmoother(0.5)
    steady = np.full((4, 4), 0.8, np.float32)
    smoother(steady)
    flickered = smoother(steady - 0.1)
    assert abs(flickered.mean() - 0.75) < 0.03, "small jitter is damped"
    moved = smoother(np.zeros((4, 4), np.float32))
    assert moved.max() < 0.15, "large changes (real motion) are followed almost at once"


def test_edge_refinement_snaps_to_image_edges():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, 32:] = 255
    blocky = np.zeros((64, 64), np.float32)
    blocky[:, 28:] = 1  # the mask's edge is 4 px off the image's
    refined = refine_edges(frame, blocky, radius=8)
    assert refined[:, 29].mean() < blocky[:, 29].mean()
    assert refined[:, 40:].min() > 0.9 and refined[:, :16].max() < 0.1


def make_video(path, frames=12, size=(64, 48), fps=15.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for index in range(frames):
        frame = np.full((size[1], size[0], 3), 30, np.uint8)
        frame[:, index * 3 : index * 3 + 20] = 230
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("effect", ["blur", "color:#00ff00", "mask"])
def test_video_round_trip_keeps_frames_size_and_fps(tiny_models, tmp_path, effect, capsys):
    source = make_video(tmp_path / "clip.avi")  # AVI: no timestamps, frames go by index
    output = tmp_path / "out.mp4"
    code = main(
        [
            "segment",
            str(tiny_models["int8"]),
            "-i",
            str(source),
            "-e",
            effect,
            "-o",
            str(output),
            "-q",
        ]
    )
    assert code == 0
    assert "frames/s" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(output))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    ) == (64, 48)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    assert not list(tmp_path.glob(".*.tmp*")), "no temporary file left"


def test_segment_images_and_folders(tiny_models, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.jpg"), gradient_frame())
    background = tmp_path / "beach.png"
    cv2.imwrite(str(background), np.full((10, 10, 3), 99, np.uint8))
    assert (
        main(
            [
                "segment",
                str(tiny_models["float32"]),
                "-i",
                str(folder),
                "-e",
                f"replace:{background}",
                "-o",
                str(tmp_path / "out"),
                "-q",
            ]
        )
        == 0
    )
    result = cv2.imread(str(tmp_path / "out" / "f0.png"))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "f0.png",
        "f1.png",
        "f2.png",
    ]
    assert abs(int(result[30, 5, 0]) - 99) <= 2, "dark half is background -> replaced"


def test_segment_bad_inputs_give_clear_errors(tiny_models, tmp_path, capsys):
    model = str(tiny_models["float32"])
    assert main(["segment", model, "-i", str(tmp_path / "nope.mp4"), "-o", "x.mp4"]) == 1
    assert "not found" in capsys.readouterr().err
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    assert main(["segment", model, "-i", str(broken), "-o", str(tmp_path / "o.mp4")]) == 1
    assert "cannot open video" in capsys.readouterr().err
    out = str(tmp_path / "o.mp4")
    assert main(["segment", str(tiny_models["classifier"]), "-i", str(broken), "-o", out]) == 1
    assert "not a segmentation model" in capsys.readouterr().err
    assert main(["segment", model, "-i", str(broken), "-e", "sepia", "-o", out]) == 1
    assert "valid effects" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: usage and one line, exit code 2
        main(["segment", model, "-i", str(broken), "--threads", "0", "-o", out])
    assert "whole number >= 1" in capsys.readouterr().err


def test_the_carried_tiny_models_run_with_tensorflow_blocked():
    """The runtime and the tiny models its tests use need no TensorFlow at all."""
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # any import of it now fails\n"
        "import numpy as np\n"
        "from backdrop.runtime import Segmenter\n"
        "from tests.tiny_models import TINY, TINY_MODELS\n"
        "frame = np.zeros((40, 60, 3), np.uint8)\n"
        "frame[:, 30:] = 250\n"
        "for name in ('float32', 'int8', 'softmax'):\n"
        "    probability = Segmenter(TINY / TINY_MODELS[name])(frame)\n"
        "    assert probability[:, 40:].mean() > 0.8 > 0.2 > probability[:, :20].mean(), name\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
