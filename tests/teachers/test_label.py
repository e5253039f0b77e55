"""`backdrop pseudo-label`: a Portrait folder with soft masks, resumable, read by prepare as
source "pseudo"; refusals that name the fix."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from backdrop.cli import main
from backdrop.data.readers.portrait import PortraitReader
from backdrop.teachers import TFLiteTeacher, load_teacher
from backdrop.teachers.label import RECORD, LabelConfig, pseudo_label
from tests import fixtures


def make_inputs(root, pictures=3, frames=25):
    """Pictures (a bright box on dark) and one video of `frames` frames."""
    rng = np.random.default_rng(0)
    folder = root / "pictures"
    folder.mkdir(parents=True)
    for i in range(pictures):
        image = (rng.random((48, 64, 3)) * 40).astype(np.uint8)
        image[10:40, 20 + i : 44 + i] = 230
        Image.fromarray(image).save(folder / f"p{i}.jpg")
    video = root / "call.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(frames):
        frame = np.full((48, 64, 3), 20, np.uint8)
        frame[10:40, i : i + 20] = 230
        writer.write(frame)
    writer.release()
    return folder, video


def test_labels_pictures_and_every_nth_frame_with_soft_masks(tmp_path, tiny_models):
    pictures, video = make_inputs(tmp_path)
    teacher = TFLiteTeacher(tiny_models["float32"])
    config = LabelConfig((pictures, video), tmp_path / "out", every=10)
    run = pseudo_label(teacher, config, progress=False)
    assert run["labelled"] == 3 + 3  # frames 0, 10, 20
    names = sorted(p.stem for p in (tmp_path / "out" / "masks").iterdir())
    assert names == ["call_000000", "call_000010", "call_000020", "p0", "p1", "p2"]
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "p1.png"))
    picture = np.asarray(Image.open(tmp_path / "out" / "images" / "p1.jpg"))
    assert mask.shape == picture.shape[:2] and mask.dtype == np.uint8
    # The teacher's probability, not a thresholded mask: the box is person, the rest is not,
    # and values between 0 and 255 remain.
    assert mask[25, 32] > 200 and mask[2, 2] < 50
    assert len(np.unique(mask)) > 2
    record = json.loads((tmp_path / "out" / RECORD).read_text())
    assert record["teacher"]["kind"] == "tflite"
    assert record["teacher"]["sha256"][tiny_models["float32"].name]
    assert record["runs"][0]["every"] == 10 and record["runs"][0]["finished"]


def test_resumes_by_skipping_what_is_labelled_and_refuses_another_teacher(tmp_path, tiny_models):
    pictures, video = make_inputs(tmp_path)
    config = LabelConfig((pictures,), tmp_path / "out")
    first = pseudo_label(TFLiteTeacher(tiny_models["float32"]), config, progress=False)
    (tmp_path / "out" / "masks" / "p0.png").unlink()  # as if cut off before this one
    again = pseudo_label(TFLiteTeacher(tiny_models["float32"]), config, progress=False)
    assert (first["labelled"], again["labelled"], again["already_labelled"]) == (3, 1, 2)
    assert len(json.loads((tmp_path / "out" / RECORD).read_text())["runs"]) == 2
    with pytest.raises(ValueError, match="another teacher"):
        pseudo_label(TFLiteTeacher(tiny_models["int8"]), config, progress=False)


def test_prepare_reads_the_folder_as_source_pseudo(tmp_path, tiny_models):
    from backdrop.data.prepare import PrepareConfig, prepare

    pictures, _ = make_inputs(tmp_path, pictures=4)
    pseudo_label(
        TFLiteTeacher(tiny_models["float32"]),
        LabelConfig((pictures,), tmp_path / "out"),
        progress=False,
    )
    reader = PortraitReader(tmp_path / "out")
    assert reader.source == "pseudo"
    assert PortraitReader(fixtures.make_portrait(tmp_path / "portrait")).source == "portrait"
    prepare([reader], PrepareConfig(tmp_path / "records", side=64, workers=1), progress=False)
    metadata = json.loads((tmp_path / "records" / "metadata.json").read_text())
    assert [s["source"] for s in metadata["sources"]] == ["pseudo"]


def test_cli_labels_and_explains_bad_input(tmp_path, tiny_models, capsys):
    pictures, _ = make_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["pseudo-label", str(tiny_models["float32"]), str(pictures), "-o", str(out)]) == 0
    assert "labelled 3 pictures" in capsys.readouterr().out
    assert main(["pseudo-label", str(tiny_models["float32"]), str(pictures), "-o", str(out)]) == 0
    assert "labelled 0 pictures (3 already labelled" in capsys.readouterr().out
    assert main(["pseudo-label", str(tmp_path / "none.tflite"), str(pictures), "-o", str(out)]) == 1
    assert "expected a segmentation .tflite" in capsys.readouterr().err
    assert main(["pseudo-label", str(tiny_models["float32"]), str(tmp_path / "x"), "-o", "o"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["pseudo-label", str(tiny_models["classifier"]), str(pictures), "-o", "o2"]) == 1
    assert "not a" in capsys.readouterr().err
    inside = pictures / "labels"
    assert (
        main(["pseudo-label", str(tiny_models["float32"]), str(pictures), "-o", str(pictures)]) == 1
    )
    assert "must not hold the input" in capsys.readouterr().err
    assert not inside.exists()


def test_load_teacher_picks_by_file(tiny_models, tmp_path):
    assert load_teacher(tiny_models["float32"]).kind == "tflite"
    with pytest.raises(ValueError, match="Robust Video Matting"):
        load_teacher(tmp_path)
