"""Training: it learns, resumes exactly after a kill, handles Ctrl-C, NaN and bad checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.synthetic import write_synthetic_dataset
from backdrop.training.loop import TrainConfig, TrainingError, train
from backdrop.training.run_folder import check_init_from

ROOT = Path(__file__).resolve().parents[2]


def write_synthetic_records(folder: Path, count: int, side: int) -> Path:
    """`count` synthetic `side` x `side` figures as records in `folder/records`, 20% validation."""
    data = write_synthetic_dataset(folder / "data", count=count, height=side, width=side)
    config = PrepareConfig(folder / "records", side=side, validation_fraction=0.2, workers=1)
    prepare([PortraitReader(data)], config, progress=False)
    return folder / "records"


@pytest.fixture(scope="module")
def synthetic_records(tmp_path_factory) -> Path:
    """240 synthetic 64x64 figures as records, 20% validation."""
    return write_synthetic_records(tmp_path_factory.mktemp("synthetic"), 240, 64)


def small_config(records: Path, checkpoints: Path, **overrides) -> TrainConfig:
    settings = dict(
        checkpoints=checkpoints,
        records=records,
        input_shape=(64, 64),
        filters=8,
        epochs=2,
        batch_size=16,
        learning_rate=3e-3,
        export="none",
    )
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.slow
def test_short_run_learns_the_synthetic_task(synthetic_records, tmp_path):
    started = time.perf_counter()
    state = train(small_config(synthetic_records, tmp_path / "run", epochs=30), verbose=0)
    assert state["best_val_iou"] > 0.8, state
    assert state["epoch"] == 30
    print(f"learned to IoU {state['best_val_iou']:.3f} in {time.perf_counter() - started:.0f} s")
    folder = tmp_path / "run"
    assert {"config.json", "state.json", "best.keras", "log.csv", "tensorboard"} <= {
        p.name for p in folder.iterdir()
    }
    assert len(list(folder.glob("epoch-*.keras"))) == 2, "only the last two epochs are kept"
    config = json.loads((folder / "config.json").read_text())
    assert config["filters"] == 8 and config["input_shape"] == [64, 64]
    assert len((folder / "log.csv").read_text().splitlines()) == 31


class Probe(keras.callbacks.Callback):
    """Records the weights and optimizer step when training (re)starts, and the epochs run."""

    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        self.iterations = int(self.model.optimizer.iterations.numpy())
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def start_training(records: Path, folder: Path, **popen_options) -> subprocess.Popen:
    """Starts `backdrop train` (50 epochs) in a process and returns once an epoch is saved."""
    command = [
        sys.executable,
        "-m",
        "backdrop.cli",
        "train",
        "-r",
        str(records),
        "--input",
        "64",
        "-b",
        "16",
        "-e",
        "50",
        "-o",
        str(folder),
        "--export",
        "none",
    ]
    process = subprocess.Popen(command, **popen_options)
    deadline = time.time() + 240
    while not (folder / "state.json").exists():
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.2)
    return process


@pytest.mark.slow
def test_killed_run_resumes_from_the_saved_epoch(synthetic_records, tmp_path):
    folder = tmp_path / "run"
    process = start_training(
        synthetic_records, folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    state = json.loads((folder / "state.json").read_text())
    done = state["epoch"]
    saved = keras.saving.load_model(folder / state["checkpoint"])

    with pytest.raises(TrainingError, match="--restore"):
        train(small_config(synthetic_records, folder), verbose=0)
    probe = Probe()
    final = train(
        small_config(synthetic_records, folder, epochs=done + 2),
        restore=True,
        verbose=0,
        callbacks=[probe],
    )
    assert probe.epochs == [done, done + 1], "resumes at the next epoch and reaches the total"
    for restored, expected in zip(probe.weights, saved.get_weights(), strict=True):
        np.testing.assert_array_equal(restored, expected)
    assert probe.iterations == done * 12, "optimizer state (and the LR schedule) carried over"
    assert final["epoch"] == done + 2


# Trains the run of the config given as JSON and kills it (kill -9) once its first epoch is saved.
KILLED_AFTER_ONE_EPOCH = """
import os, signal, sys
import keras
from backdrop.training.loop import TrainConfig, train

class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):  # after the run's own checkpoint callback
        os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig.from_json(sys.argv[1]), verbose=0, callbacks=[Kill()])
"""


def assert_restored_run_ends_as_uninterrupted(config: TrainConfig, tmp_path: Path) -> None:
    """Trains `config` (3 epochs) killed after epoch 1 and restored, and uninterrupted: the
    final weights must be the same to the bit (same examples, order and augmentation in every
    epoch, same optimizer state and learning rate)."""
    killed = dataclasses.replace(config, checkpoints=tmp_path / "killed")
    process = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ONE_EPOCH, killed.to_json()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    assert json.loads((killed.checkpoints / "state.json").read_text())["epoch"] == 1
    restored = train(killed, restore=True, verbose=0)
    uninterrupted = train(dataclasses.replace(config, checkpoints=tmp_path / "whole"), verbose=0)
    assert restored["epoch"] == uninterrupted["epoch"] == 3
    ours = keras.saving.load_model(killed.checkpoints / restored["checkpoint"])
    theirs = keras.saving.load_model(tmp_path / "whole" / uninterrupted["checkpoint"])
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.slow
def test_killed_and_restored_run_ends_with_the_uninterrupted_weights(synthetic_records, tmp_path):
    config = small_config(synthetic_records, tmp_path, epochs=3)
    assert_restored_run_ends_as_uninterrupted(config, tmp_path)


@pytest.mark.slow
@pytest.mark.integration
def test_killed_and_restored_mediapipe_run_ends_with_the_uninterrupted_weights(
    synthetic_records, tmp_path, anchor_model
):
    config = small_config(
        synthetic_records, tmp_path, model="mediapipe_selfie", init_from=anchor_model(), epochs=3
    )
    assert_restored_run_ends_as_uninterrupted(config, tmp_path)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_to_restore_from(synthetic_records, tmp_path):
    folder = tmp_path / "run"
    process = start_training(
        synthetic_records, folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-2000:]
    assert "saved" in output and "--restore" in output
    state = json.loads((folder / "state.json").read_text())
    assert state["checkpoint"] == "interrupted.keras"
    keras.saving.load_model(folder / "interrupted.keras")


def test_restore_errors_are_clear(synthetic_records, tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(TrainingError, match="nothing to restore"):
        train(small_config(synthetic_records, folder), restore=True, verbose=0)
    from backdrop.outputs import OutputFolder

    with OutputFolder(folder, "train") as outputs:  # as a crashed run of Backdrop leaves them
        outputs.claim("epoch-0001.keras", "state.json")
    (folder / "epoch-0001.keras").write_bytes(b"not a zip file")
    (folder / "state.json").write_text(
        json.dumps(
            {"epoch": 1, "checkpoint": "epoch-0001.keras", "best_val_iou": 0.5, "best_epoch": 1}
        )
    )
    with pytest.raises(TrainingError, match="corrupt or unreadable.*--remove-all-previous"):
        train(small_config(synthetic_records, folder), restore=True, verbose=0)
    (folder / "epoch-0001.keras").unlink()
    with pytest.raises(TrainingError, match="is missing; point state.json"):
        train(small_config(synthetic_records, folder), restore=True, verbose=0)


def test_nan_loss_stops_with_a_clear_message(synthetic_records, tmp_path):
    config = small_config(synthetic_records, tmp_path / "run", learning_rate=1e30, epochs=3)
    with pytest.raises(TrainingError, match="NaN"):
        train(config, verbose=0)
    assert not list((tmp_path / "run").glob("epoch-*.keras")), "no NaN checkpoint is saved"


def test_remove_previous_results_deletes_only_backdrop_files(synthetic_records, tmp_path):
    folder = tmp_path / "run"
    train(small_config(synthetic_records, folder, epochs=1), verbose=0)
    (folder / "notes.txt").write_text("mine")
    train(small_config(synthetic_records, folder, epochs=1), remove_previous=True, verbose=0)
    assert (folder / "notes.txt").exists()
    from backdrop.outputs import OutputError

    # Checkpoints into the records folder are refused before anything there is touched.
    with pytest.raises(OutputError, match="would overwrite the input"):
        train(small_config(synthetic_records, synthetic_records), remove_previous=True, verbose=0)


@pytest.mark.slow
def test_mirrored_strategy_runs_on_two_cpu_devices(synthetic_records, tmp_path):
    """The distributed code path (MirroredStrategy, 2 replicas) on CPU, in its own process."""
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from backdrop.training.loop import TrainConfig, select_strategy, train
assert select_strategy("mirrored").num_replicas_in_sync == 2
state = train(TrainConfig(checkpoints={str(tmp_path / "run")!r}, records={str(synthetic_records)!r},
              input_shape=(64, 64), filters=4, epochs=1, batch_size=8, distribute="mirrored",
              export="none"), verbose=0)
print("EPOCHS", state["epoch"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EPOCHS 1" in result.stdout


def test_repeated_sources_and_copy_paste_reach_the_training_data(synthetic_records, tmp_path):
    from backdrop.training.datasets import make_datasets

    _, _, plain = make_datasets(small_config(synthetic_records, tmp_path))
    config = small_config(
        synthetic_records,
        tmp_path,
        source_repeats=[["portrait", 3]],  # as read back from config.json
        copy_paste_probability=0.5,
    )
    data, _, count = make_datasets(config)
    assert count == 3 * plain
    assert len(data) == -(-count // config.batch_size)
    images, targets = data[0]
    assert images.shape == (16, 64, 64, 3) and targets.shape == (16, 64, 64, 2)


def test_crop_flags_reach_the_training_data(synthetic_records, tmp_path):
    from backdrop.cli import build_parser
    from backdrop.training.datasets import make_datasets

    parser = build_parser()
    args = parser.parse_args(
        ["train", "--crop-aspect", "frame", "--whole-frame-probability", "0.6"]
    )
    assert (args.crop_aspect, args.whole_frame_probability) == ("frame", 0.6)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--crop-aspect", "square"])
    # The synthetic frames are square: a landscape input makes the two crop shapes differ.
    first = {
        aspect: make_datasets(
            small_config(synthetic_records, tmp_path, input_shape=(32, 64), crop_aspect=aspect)
        )[0][0]
        for aspect in ("input", "frame")
    }
    assert not np.array_equal(first["input"][1], first["frame"][1])
    whole = make_datasets(
        small_config(synthetic_records, tmp_path, input_shape=(32, 64), whole_frame_probability=1.0)
    )
    whole_targets = whole[0][0][1]
    # Same shape, same seed: only the share of whole frames differs (it once compared a 64x64
    # batch with a 32x64 one, which can never be equal).
    assert whole_targets.shape == first["input"][1].shape
    assert not np.array_equal(whole_targets, first["input"][1])


def test_repeat_source_flag_rejects_bad_values():
    import argparse

    from backdrop.cli.train_flags import parse_repeat

    assert parse_repeat("portrait=2") == ("portrait", 2)
    for bad in ("portrait", "portrait=0", "=2", "portrait=two"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_repeat(bad)


def test_ctrl_c_is_raised_at_a_batch_boundary_where_nothing_swallows_it():
    from backdrop.training.checkpoints import CtrlC

    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        os.kill(os.getpid(), signal.SIGINT)  # recorded, not raised mid-step
        assert ctrl_c.requested
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.on_train_batch_end(0)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_weight_decay_shrinks_weights_and_survives_a_restore(synthetic_records, tmp_path):
    from backdrop.training.loop import _optimizer, load_checkpoint, train

    for decay, expected in ((0.0, 1.0), (0.5, 1.0 - 0.1 * 0.5)):
        variable = keras.Variable(np.ones(3, np.float32))
        optimizer = _optimizer(0.1, small_config(synthetic_records, tmp_path, weight_decay=decay))
        optimizer.apply_gradients([(np.zeros(3, np.float32), variable)])  # no gradient: decay only
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="weight_decay"):
        small_config(synthetic_records, tmp_path, weight_decay=-1.0)
    config = small_config(synthetic_records, tmp_path / "run", epochs=1, weight_decay=1e-3)
    state = train(config, verbose=0)
    optimizer = load_checkpoint(config.checkpoints / state["checkpoint"]).optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == 1e-3


def test_a_source_weighted_zero_teaches_nothing(synthetic_records, tmp_path):
    """Per-source weights reach the loss: all examples weighted 0 leave every trainable weight
    where it started (BatchNorm's moving statistics still move: they are not learned)."""
    from backdrop.models.registry import build_model

    config = small_config(
        synthetic_records, tmp_path / "run", epochs=1, source_weights=[["portrait", 0.0]]
    )
    train(config, verbose=0)
    trained = keras.models.load_model(tmp_path / "run" / "epoch-0001.keras")
    keras.utils.set_random_seed(config.seed)
    initial = build_model(config.model, config.input_shape, config.filters, depth=config.depth)
    for before, after in zip(initial.trainable_weights, trained.trainable_weights, strict=True):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["source_weights"] == [["portrait", 0.0]]


def test_init_from_a_file_of_another_architecture_is_refused_before_writing(
    synthetic_records, tmp_path, tiny_models
):
    config = small_config(synthetic_records, tmp_path / "run", init_from=tiny_models["float32"])
    with pytest.raises(TrainingError, match="expected one of"):
        train(config, verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.integration
def test_init_from_mediapipe_starts_from_its_weights_and_trains(
    synthetic_records, tmp_path, anchor_model
):
    from backdrop.cli import build_parser
    from backdrop.cli.train import _architecture
    from backdrop.models.tflite_import import import_segmenter

    path = anchor_model()

    def model_and_input(*extra):
        chosen = _architecture(
            build_parser().parse_args(["train", "--init-from", str(path), *extra])
        )
        return chosen["model"], chosen["input_shape"]

    assert model_and_input() == ("mediapipe_selfie", (256, 256))
    assert model_and_input("--input", "64") == ("mediapipe_selfie", (64, 64))
    with pytest.raises(TrainingError, match="initialises mediapipe_selfie, not mobile_segmenter"):
        check_init_from(
            small_config(
                synthetic_records, tmp_path / "x", model="mobile_segmenter", init_from=path
            )
        )
    config = small_config(
        synthetic_records,
        tmp_path / "run",
        model="mediapipe_selfie",
        init_from=path,
        epochs=1,
        learning_rate=0.0,
        export="float32",
    )
    train(config, verbose=0)
    trained = keras.models.load_model(tmp_path / "run" / "epoch-0001.keras")
    imported = import_segmenter(path, (64, 64))
    # Learning rate 0: the checkpoint holds exactly MediaPipe's weights.
    for ours, theirs in zip(trained.weights, imported.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    from backdrop.training.export_step import export_after_training

    reports = export_after_training(config)
    assert reports and (tmp_path / "run" / "model_float32.tflite").is_file()


@pytest.mark.integration
def test_extra_blocks_train_restore_and_average_back_to_the_file(
    synthetic_records, tmp_path, anchor_model
):
    """A larger model from MediaPipe's file: it starts as the file's function, trains, keeps its
    blocks on --restore, and averages with a start whose blocks are off (weight 0: the file's
    function again; weight w: each block's output scaled by w)."""
    from backdrop.cli import build_parser
    from backdrop.cli.train import _architecture
    from backdrop.models.tflite_import import import_segmenter
    from backdrop.training.average import average_checkpoint
    from backdrop.training.checkpoints import load_checkpoint

    path = anchor_model()
    config = small_config(
        synthetic_records,
        tmp_path / "run",
        model="mediapipe_selfie",
        init_from=path,
        extra_blocks=2,
        epochs=1,
        learning_rate=1e-3,
    )
    train(config, verbose=0)
    checkpoint = tmp_path / "run" / "epoch-0001.keras"
    tuned = keras.models.load_model(checkpoint)
    plain = import_segmenter(path, (64, 64))
    assert len(tuned.weights) == len(plain.weights) + 2 * 6  # 2 blocks, 3 kernels and 3 biases each
    project = tuned.get_layer("extra_block_1_project").get_weights()[0]
    assert np.abs(project).max() > 0  # it trained away from its zero start
    restored = build_parser().parse_args(["train", "-o", str(tmp_path / "run"), "--restore"])
    assert _architecture(restored)["extra_blocks"] == 2

    image = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    back = load_checkpoint(average_checkpoint(checkpoint, tmp_path / "w0.keras", 0.0))
    expected = plain.predict(image, verbose=0)
    np.testing.assert_allclose(back.predict(image, verbose=0), expected, atol=1e-5)
    assert np.abs(tuned.predict(image, verbose=0) - expected).max() > 1e-3  # it was moved
    tuned.save(tmp_path / "loose.keras")  # in no run folder: the blocks are counted
    loose = average_checkpoint(tmp_path / "loose.keras", tmp_path / "back.keras", 0.0, path)
    np.testing.assert_allclose(
        load_checkpoint(loose).predict(image, verbose=0), expected, atol=1e-5
    )
    half = load_checkpoint(average_checkpoint(checkpoint, tmp_path / "w5.keras", 0.5))
    for name in ("extra_block_1_expand", "extra_block_1_depthwise", "extra_block_1_project"):
        scale = 0.5 if name.endswith("project") else 1.0
        for ours, theirs in zip(
            half.get_layer(name).get_weights(), tuned.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_allclose(ours, scale * theirs, rtol=1e-6, atol=1e-7)


def test_extra_blocks_only_grow_public_segmenters(tmp_path):
    with pytest.raises(ValueError, match="extra blocks are added to mediapipe_selfie"):
        TrainConfig(checkpoints=tmp_path, model="mobile_segmenter", extra_blocks=1)
    with pytest.raises(ValueError, match="extra_blocks must be >= 0"):
        TrainConfig(checkpoints=tmp_path, model="meet_segmenter", extra_blocks=-1)


def test_init_from_an_unknown_file_is_one_line_from_the_cli(tmp_path, tiny_models, capsys):
    from backdrop.cli import main

    code = main(
        [
            "train",
            "-r",
            str(tmp_path),
            "-o",
            str(tmp_path / "run"),
            "--init-from",
            str(tiny_models["float32"]),
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in error and "expected one of" in error
    assert not (tmp_path / "run").exists()


def test_imported_architectures_need_their_file():
    from backdrop.models.registry import build_model
    from backdrop.models.tflite_graph import TFLiteFormatError

    for name, expected in (
        ("mediapipe_selfie", "selfie_segmentation"),
        ("meet_segmenter", "segm_full"),
    ):
        with pytest.raises(TFLiteFormatError, match=f"--init-from.*{expected}"):
            build_model(name, (64, 64), 8)


def test_config_validates_on_creation_and_round_trips_through_json(tmp_path):
    config = TrainConfig(
        checkpoints=tmp_path / "run",
        input_shape=(144, 256),
        source_repeats=[("portrait", 2)],
        source_weights=[("pseudo", 0.5)],
        background_folders=[tmp_path / "gone"],  # checked when a run starts, not here
    )
    assert TrainConfig.from_json(config.to_json()) == config
    for bad, message in [
        ({"export": "int4"}, "export must be one of float32, float16, int8 or none"),
        ({"crop_aspect": "square"}, "crop_aspect must be one of"),
        ({"input_shape": (0, 64)}, "input must be"),
        ({"learning_rate": -1.0}, "learning_rate must be >= 0"),
        ({"model": "unet3000"}, "valid models"),
        ({"copy_paste_probability": 2.0}, "copy_paste_probability must be in"),
        ({"zoom_out_probability": -0.1}, "zoom_out_probability must be in"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="background folder"):
        config.check_inputs()


def test_cli_defaults_are_the_configs():
    import dataclasses

    from backdrop.cli import build_parser
    from backdrop.cli.train import _architecture

    args = build_parser().parse_args(["train"])
    defaults = TrainConfig()
    architecture = _architecture(args)  # flags left out: from the run (--restore) or defaults
    for field in dataclasses.fields(TrainConfig):
        if field.name in architecture:
            assert architecture[field.name] == getattr(defaults, field.name), field.name
        elif hasattr(args, field.name):
            assert getattr(args, field.name) == getattr(defaults, field.name), field.name
    assert (defaults.epochs, defaults.export) == (100, "int8")  # as the README documents


def test_init_from_a_checkpoint_fine_tunes_it_with_a_new_optimizer(synthetic_records, tmp_path):
    """A Backdrop checkpoint starts a new run: its architecture (from its run's config.json),
    its weights, a fresh optimizer; with every epoch quantization-aware, only rounding is
    trained (how `backdrop average`'s output gets an int8-ready fine-tune)."""
    from backdrop.cli import build_parser
    from backdrop.cli.train import _architecture
    from backdrop.training.checkpoints import load_checkpoint
    from backdrop.training.quantize_aware import has_fake_quant

    first = small_config(synthetic_records, tmp_path / "first", model="mobile_segmenter", epochs=1)
    train(first, verbose=0)
    start = tmp_path / "first" / "epoch-0001.keras"
    chosen = _architecture(build_parser().parse_args(["train", "--init-from", str(start)]))
    assert (chosen["model"], chosen["input_shape"], chosen["filters"]) == (
        "mobile_segmenter",
        (64, 64),
        8,
    )
    with pytest.raises(TrainingError, match="another architecture.*filters 8 -> 4"):
        check_init_from(dataclasses.replace(first, filters=4, init_from=start))
    orphan = tmp_path / "orphan.keras"
    orphan.write_bytes(start.read_bytes())
    with pytest.raises(TrainingError, match="no config.json beside it"):
        check_init_from(dataclasses.replace(first, init_from=orphan))

    tuned = dataclasses.replace(
        first, checkpoints=tmp_path / "tuned", init_from=start, learning_rate=0.0
    )
    train(tuned, verbose=0)
    before, after = load_checkpoint(start), load_checkpoint(tmp_path / "tuned" / "epoch-0001.keras")
    for a, b in zip(before.trainable_weights, after.trainable_weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # learning rate 0: its weights
    steps = int(before.optimizer.iterations.numpy())
    assert int(after.optimizer.iterations.numpy()) == steps, "a new optimizer, not the old one's"

    rounding = dataclasses.replace(
        tuned, checkpoints=tmp_path / "rounding", learning_rate=1e-4, quantize_aware_epochs=1
    )
    train(rounding, verbose=0)
    assert has_fake_quant(load_checkpoint(tmp_path / "rounding" / "epoch-0001.keras"))
    saved = json.loads((tmp_path / "rounding" / "config.json").read_text())
    assert saved["init_from"] == str(start)
