"""TFLite metadata: MediaPipe Tasks' ImageSegmenter (the real client, CPU) runs every exported mode
in IMAGE and VIDEO modes and agrees with Backdrop's own runtime."""

from __future__ import annotations

import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from backdrop.evaluation.metrics import iou
from backdrop.runtime.segmenter import Segmenter
from backdrop.ship.export import export_models
from backdrop.ship.metadata import read_metadata, writer_python

CLIENT = Path(__file__).resolve().parents[1] / "mediapipe_client.py"
MODES = ("float32", "float16", "int8")

pytestmark = pytest.mark.skipif(
    writer_python() is None,
    reason="MediaPipe 0.10.21 is not installed (`make mediapipe` creates .venv-mediapipe)",
)


def redness_model(side: int = 128) -> keras.Model:
    """A fixed model whose person probability is how red a neighbourhood is: real, smooth masks
    on any picture, without training. It ends as MediaPipe's and Meet's models do, in a 2x2
    transposed convolution of stride 2 (which the float exports write as DEPTH_TO_SPACE)."""
    inputs = keras.Input((side, side, 3))
    conv = keras.layers.Conv2D(1, 5, strides=2, padding="same")
    upsample = keras.layers.Conv2DTranspose(1, 2, strides=2, activation="sigmoid")
    outputs = upsample(conv(inputs))
    kernel = np.zeros((5, 5, 3, 1), np.float32)
    kernel[..., 0, 0], kernel[..., 1, 0], kernel[..., 2, 0] = 0.6, -0.3, -0.3
    conv.set_weights([kernel, np.array([-1.0], np.float32)])
    upsample.set_weights([np.ones((2, 2, 1, 1), np.float32), np.zeros(1, np.float32)])
    return keras.Model(inputs, outputs)


def pictures(count: int = 6, seed: int = 0) -> np.ndarray:
    """Frames of a video call: a reddish figure moving over a cool background."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((count, 180, 240, 3), np.uint8)
    frames[...] = (40, 90, 140)
    yy, xx = np.mgrid[:180, :240]
    for i, frame in enumerate(frames):
        figure = ((yy - 110) / 80) ** 2 + ((xx - 110 - 6 * i) / 70) ** 2 < 1
        frame[figure] = (210, 120, 100)
        frame[...] = np.clip(frame + rng.integers(-6, 6, frame.shape), 0, 255)
    return frames


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exported")
    model = redness_model()
    calibration = [frame.astype(np.float32) / 255 for frame in pictures(8, seed=1)]
    calibration = [keras.ops.image.resize(c, (128, 128)).numpy() for c in calibration]
    export_models(model, folder, MODES, calibration, [], threads=1)
    return {mode: folder / f"model_{mode}.tflite" for mode in MODES}


def mediapipe_masks(model: Path, mode: str, frames: np.ndarray, scratch: Path) -> np.ndarray:
    np.save(scratch / "frames.npy", frames)
    result = subprocess.run(
        [
            writer_python(),
            str(CLIENT),
            str(model),
            mode,
            str(scratch / "frames.npy"),
            str(scratch / "masks.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return np.load(scratch / "masks.npy")


def agree(model: Path, frames: np.ndarray, scratch: Path) -> None:
    segmenter = Segmenter(model, threads=1)
    ours = np.stack([segmenter(frame) for frame in frames])
    for mode in ("IMAGE", "VIDEO"):
        theirs = mediapipe_masks(model, mode, frames, scratch)
        assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
        ious = [
            iou(t >= 0.5, o >= 0.5, np.ones(o.shape, bool))
            for t, o in zip(theirs, ours, strict=True)
        ]
        # Mean over pictures above 0.98; a single picture can sit lower where an int8 model meets
        # the two clients' slightly different resizing of its input.
        assert np.mean(ious) > 0.98 and min(ious) > 0.95, (model.name, mode, ious)
        print(f"{model.name} {mode}: IoU mean {np.mean(ious):.4f} min {min(ious):.4f}")
        assert float(np.abs(theirs - ours).mean()) < 0.02, (model.name, mode)
        assert 0.05 < float((ours >= 0.5).mean()) < 0.95, "the masks are not trivial"


@pytest.mark.parametrize("mode", MODES)
def test_mediapipe_tasks_runs_every_export_and_agrees_with_the_runtime(exported, mode, tmp_path):
    agree(exported[mode], pictures(), tmp_path)


def test_the_metadata_says_what_the_contract_says(exported):
    for mode, path in exported.items():
        metadata = read_metadata(path)
        tensor = metadata["subgraph_metadata"][0]["input_tensor_metadata"][0]
        std = tensor["process_units"][0]["options"]["std"]
        assert std == ([1.0] if mode == "int8" else [255.0])
        assert tensor["content"]["content_properties"]["color_space"] == "RGB"
        assert metadata["author"] == "Backdrop" and metadata["version"]
        import json

        contract = json.loads(path.with_suffix(".tflite.json").read_text())
        assert contract["metadata"]["input_normalization"]["std"] == std
        card = path.with_suffix(".md").read_text()
        assert "setModelAssetPath" in card and path.name in card and "## Limitations" in card


@pytest.mark.slow
def test_real_selfies_agree(anchor_model, shared_dataset, tmp_path):
    """MediaPipe's selfie segmenter, imported and exported by Backdrop, on real phone selfies."""
    from backdrop.imageops import read_picture
    from backdrop.models.tflite_import import import_segmenter

    folder = shared_dataset("picsart_selfies") / "images"
    frames = [read_picture(path) for path in sorted(folder.iterdir())[:12]]
    frames = np.stack([frame for frame in frames if frame.shape == frames[0].shape])
    model = import_segmenter(anchor_model(), (256, 256))
    calibration = [keras.ops.image.resize(f / 255, (256, 256)).numpy() for f in frames]
    export_models(model, tmp_path / "models", MODES, calibration, [], threads=1)
    for mode in MODES:
        agree(tmp_path / "models" / f"model_{mode}.tflite", frames, tmp_path)


def test_evaluate_writes_its_table_into_the_model_card(exported, tmp_path, tiny_models):
    from backdrop.cli import main
    from tests import fixtures

    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    model = exported["int8"]
    before = model.with_suffix(".md").read_text()
    assert "Not measured yet" in before
    args = ["evaluate", str(model), str(tiny_models["float32"]), "--data", f"portrait:{portrait}"]
    assert main([*args, "-o", str(tmp_path / "e"), "-q"]) == 0
    card = model.with_suffix(".md").read_text()
    assert "Not measured yet" not in card and "tiny_float32.tflite" in card
    assert card.count("## Limitations") == 1 and card.split("## Limitations")[0] != before

    # Other data adds its own section; the same data and split again replaces its own; another
    # validation fraction is other pictures, so a section of its own.
    other = fixtures.make_portrait(tmp_path / "q", count=6)
    second = ["evaluate", str(model), "--data", f"portrait:{other}", "--split", "validation"]
    assert main([*second, "--validation-fraction", "0.5", "-o", str(tmp_path / "e2"), "-q"]) == 0
    assert main([*args, "-o", str(tmp_path / "e3"), "-q"]) == 0
    assert main([*second, "--validation-fraction", "0.3", "-o", str(tmp_path / "e4"), "-q"]) == 0
    card = model.with_suffix(".md").read_text()
    sections = card.split("Measured by `backdrop evaluate` on ")[1:]
    assert len(sections) == 3
    assert sections[0].startswith(f"`portrait:{portrait}`, split all:")
    assert sections[1].startswith(f"`portrait:{other}`, split validation of 0.5:")
    assert sections[2].startswith(f"`portrait:{other}`, split validation of 0.3:")
    assert card.count("## Limitations") == 1 and card.count("### Beside reference models") == 1
    assert sections[0].count("tiny_float32.tflite") == 1, "the first section was replaced"


def test_the_same_model_gets_the_same_bytes(tmp_path):
    """labels.txt, packed after the model as a zip entry, carried the clock's date: one
    checkpoint exported twice gave two files (the recipe's int8 files differed in two bytes)."""
    import time

    from backdrop.ship.export import add_metadata, export_tflite

    plain = export_tflite(redness_model(32), tmp_path / "plain.tflite", "float32", [])
    files = []
    for copy in ("first", "second"):
        files.append(tmp_path / f"{copy}.tflite")
        files[-1].write_bytes(plain.read_bytes())
        assert add_metadata(files[-1], "float32") is not None
        time.sleep(2.1)  # zip dates count in 2 s steps
    assert files[0].read_bytes() == files[1].read_bytes()
    assert files[0].read_bytes() != plain.read_bytes(), "the metadata was written"
