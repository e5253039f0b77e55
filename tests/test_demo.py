"""The quick demo produces every artefact, and each one is valid."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from PIL import Image

from backdrop.cli import main
from backdrop.runtime import Segmenter


@pytest.mark.slow
def test_quick_demo_writes_valid_artefacts(tmp_path, capsys):
    output = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "report:" in printed and "blurred clip:" in printed

    assert (output / "records" / "metadata.json").is_file()
    segmenter = Segmenter(output / "training" / "model_int8.tflite")
    mask = segmenter(np.zeros((50, 70, 3), np.uint8))
    assert mask.shape == (50, 70) and 0 <= mask.min() <= mask.max() <= 1

    capture = cv2.VideoCapture(str(output / "clip_blurred.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    ok, frame = capture.read()
    assert ok and frame.shape == (240, 320, 3)

    page = output / "training" / "report" / "index.html"
    text = page.read_text()
    images = re.findall(r'src="([^"]+\.png)"', text)
    assert set(images) == {"loss.png", "iou.png", "validation.png"}
    for name in images:
        with Image.open(page.parent / name) as image:
            image.verify()
    assert "model_int8.tflite" in text and "Settings" in text
    assert "model_int8.md" in text, "the report links the model card"
    card = (output / "training" / "model_int8.md").read_text()
    assert "| synthetic |" in card, "the card lists the training data by source"
    from backdrop.ship.metadata import writer_python

    if writer_python() is not None:  # MediaPipe Tasks can load what the demo exported
        import json

        contract = json.loads((output / "training" / "model_int8.tflite.json").read_text())
        assert contract["metadata"]["labels"] == ["person"]


def test_report_needs_a_training_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "not a training run" in capsys.readouterr().err
