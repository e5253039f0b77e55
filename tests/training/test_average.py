"""`backdrop average`: WiSE-FT weight averaging of a fine-tuned checkpoint with its start."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.cli import main
from backdrop.tf_setup import import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from backdrop.models.registry import build_model  # noqa: E402
from backdrop.training.average import average_checkpoint  # noqa: E402
from backdrop.training.checkpoints import load_checkpoint  # noqa: E402
from backdrop.training.config import CONFIG, TrainConfig, TrainingError  # noqa: E402


def _model(seed: int, filters: int = 4):
    keras.utils.set_random_seed(seed)
    return build_model("mobile_segmenter", (32, 32), filters)


def _weights(model):
    return [w.numpy() for w in model.weights]


@pytest.fixture
def run(tmp_path):
    """A run folder holding a checkpoint and its config (trained from random weights), and
    another checkpoint of the same architecture to start from."""
    folder = tmp_path / "run"
    folder.mkdir()
    _model(1).save(tmp_path / "start.keras")
    _model(2).save(folder / "epoch-0001.keras")
    config = TrainConfig(checkpoints=folder, model="mobile_segmenter", input_shape=(32, 32))
    (folder / CONFIG).write_text(config.to_json())
    return tmp_path


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_every_weight_is_the_weighted_mean(run, weight):
    start, tuned = _weights(_model(1)), _weights(_model(2))
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(start, tuned, strict=True))
    output = average_checkpoint(
        run / "run" / "epoch-0001.keras", run / "out" / "avg.keras", weight, run / "start.keras"
    )
    averaged = _weights(load_checkpoint(output))
    for a, b, c in zip(start, tuned, averaged, strict=True):
        assert np.allclose(c, (1 - weight) * a + weight * b, atol=1e-6)


def test_refuses_what_cannot_be_averaged(run):
    checkpoint = run / "run" / "epoch-0001.keras"
    with pytest.raises(TrainingError, match="random weights"):
        average_checkpoint(checkpoint, run / "avg.keras")  # its config has no --init-from
    with pytest.raises(TrainingError, match="no config.json"):
        average_checkpoint(run / "start.keras", run / "avg.keras")  # no run folder, no --start
    (run / "notes.tflite").write_bytes(b"not a model")
    with pytest.raises(TrainingError, match="not a (readable )?TFLite model"):
        average_checkpoint(run / "start.keras", run / "avg.keras", 0.5, run / "notes.tflite")
    _model(3, filters=8).save(run / "other.keras")
    with pytest.raises(TrainingError, match="not the same architecture"):
        average_checkpoint(checkpoint, run / "avg.keras", 0.5, run / "other.keras")
    assert not (run / "avg.keras").exists()


def test_cli_writes_the_average_and_explains_bad_arguments(run, capsys):
    checkpoint = str(run / "run" / "epoch-0001.keras")
    start = ["--start", str(run / "start.keras")]
    assert main(["average", checkpoint, *start, "-o", str(run / "avg.keras")]) == 0
    assert "wrote" in capsys.readouterr().out and (run / "avg.keras").is_file()
    assert main(["average", checkpoint, *start, "-o", str(run / "avg.h5")]) == 1
    assert "must be a .keras file" in capsys.readouterr().err
    assert main(["average", checkpoint, *start, "--weight", "2", "-o", str(run / "a.keras")]) == 1
    assert "--weight must be in [0, 1]" in capsys.readouterr().err


def test_the_start_is_the_runs_init_from_file(tmp_path, shared_model):
    """A run fine-tuned from MediaPipe's file: weight 0 gives back MediaPipe's own model."""
    mediapipe = shared_model("anchors/selfie_segmentation.tflite")
    folder = tmp_path / "run"
    folder.mkdir()
    untouched = build_model("mediapipe_selfie", (256, 256), 8, init_from=mediapipe)
    tuned = build_model("mediapipe_selfie", (256, 256), 8, init_from=mediapipe)
    for weight in tuned.weights:
        weight.assign(weight.numpy() + 0.05)
    tuned.save(folder / "epoch-0001.keras")
    config = TrainConfig(checkpoints=folder, model="mediapipe_selfie", init_from=mediapipe)
    (folder / CONFIG).write_text(config.to_json())
    average_checkpoint(folder / "epoch-0001.keras", folder / "start.keras", 0.0)
    image = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    restored = load_checkpoint(folder / "start.keras")
    expected = untouched.predict(image, verbose=0)
    assert np.abs(restored.predict(image, verbose=0) - expected).max() < 1e-5
    assert np.abs(tuned.predict(image, verbose=0) - expected).max() > 1e-2  # it was moved
    # A checkpoint outside any run folder (e.g. two runs averaged) names its start itself.
    tuned.save(tmp_path / "loose.keras")
    average_checkpoint(tmp_path / "loose.keras", tmp_path / "back.keras", 0.0, mediapipe)
    back = load_checkpoint(tmp_path / "back.keras").predict(image, verbose=0)
    assert np.abs(back - expected).max() < 1e-5


def test_a_run_started_from_a_checkpoint_averages_with_that_checkpoint(run):
    """`--init-from CHECKPOINT.keras` runs (e.g. a rounding fine-tune of an average) average
    with the checkpoint they started from."""
    folder = run / "run"
    config = TrainConfig(
        checkpoints=folder,
        model="mobile_segmenter",
        input_shape=(32, 32),
        init_from=run / "start.keras",
    )
    (folder / CONFIG).write_text(config.to_json())
    output = average_checkpoint(folder / "epoch-0001.keras", run / "avg.keras", 0.0)
    for a, b in zip(_weights(load_checkpoint(output)), _weights(_model(1)), strict=True):
        assert np.allclose(a, b, atol=1e-6)
