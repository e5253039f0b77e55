"""`backdrop pseudo-label`: a Portrait folder with soft masks, resumable, read by prepare as
source "pseudo"; refusals that name the fix."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from backdrop.cli import main
from backdrop.data.readers.portrait import PortraitReader
from backdrop.teachers import EnsembleTeacher, TFLiteTeacher, load_teacher, load_teachers
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


def test_an_ensemble_labels_with_the_mean_of_its_teachers(tmp_path, tiny_models):
    pictures, _ = make_inputs(tmp_path, pictures=2)
    members = [TFLiteTeacher(tiny_models[k]) for k in ("float32", "softmax")]
    image = np.asarray(Image.open(pictures / "p0.jpg"))
    mean = (members[0](image) + members[1](image)) / 2
    assert np.abs(members[0](image) - members[1](image)).max() > 0.01  # they do differ
    assert np.allclose(EnsembleTeacher(members)(image), mean, atol=1e-6)
    teacher = load_teachers([tiny_models["float32"], tiny_models["softmax"]])
    config = LabelConfig((pictures,), tmp_path / "out")
    pseudo_label(teacher, config, progress=False)
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "p0.png")).astype(np.float32)
    written = np.asarray(Image.open(tmp_path / "out" / "images" / "p0.jpg"))
    assert np.abs(mask - EnsembleTeacher(members)(written) * 255).max() <= 1
    record = json.loads((tmp_path / "out" / RECORD).read_text())["teacher"]
    assert record["kind"] == "ensemble" and len(record["sha256"]) == 2
    moved = tiny_models["float32"].parent / ".." / tiny_models["float32"].parent.name
    again = load_teachers([moved / tiny_models["float32"].name, tiny_models["softmax"]])
    assert pseudo_label(again, config, progress=False)["already_labelled"] == 2  # same files
    with pytest.raises(ValueError, match="another teacher"):  # one member alone is another
        pseudo_label(members[0], config, progress=False)
    with pytest.raises(ValueError, match="at least two"):
        EnsembleTeacher(members[:1])


def _labelled(output):
    return {p.stem: np.asarray(Image.open(p)).astype(np.float32) / 255 for p in output.iterdir()}


@pytest.mark.parametrize("split", ["train", "validation"])
def test_a_dataset_split_is_labelled_with_its_truth_blended_in(tmp_path, tiny_models, split):
    from backdrop.data.readers import create_reader
    from backdrop.data.split import split_of_sample

    dataset = fixtures.make_portrait(tmp_path / "portrait", count=24)
    samples = {s.name: s for s in create_reader("portrait", dataset)}
    wanted = {n for n, s in samples.items() if split_of_sample(s, 0.1) == split}
    assert 0 < len(wanted) < len(samples)  # both splits are there to tell apart
    teacher = TFLiteTeacher(tiny_models["float32"])
    config = LabelConfig((), tmp_path / "out", datasets=(f"portrait:{dataset}",), split=split)
    run = pseudo_label(teacher, config, progress=False)
    assert run["labelled"] == len(wanted) and run["split"] == split
    masks = _labelled(tmp_path / "out" / "masks")
    assert set(masks) == {f"portrait_{name}" for name in wanted}
    for name in wanted:
        sample = samples[name]
        expected = 0.5 * sample.mask + 0.5 * teacher(sample.image)
        assert np.abs(masks[f"portrait_{name}"] - expected).max() <= 1 / 255 + 1e-6


def test_truth_weight_one_keeps_the_truth_and_ignored_pixels_take_the_teacher(
    tmp_path, tiny_models
):
    from backdrop.evaluation.evaluate import parse_data_spec

    voc = fixtures.make_voc(tmp_path / "voc")
    samples = {s.name: s for s in parse_data_spec(f"voc:{voc}")}  # negatives kept
    teacher = TFLiteTeacher(tiny_models["float32"])
    config = LabelConfig(
        (), tmp_path / "out", datasets=(f"voc:{voc}",), split="all", truth_weight=1.0
    )
    pseudo_label(teacher, config, progress=False)
    masks = _labelled(tmp_path / "out" / "masks")
    assert len(masks) == len(samples) == 3
    for name, sample in samples.items():
        mask = masks[f"voc_{name}"]
        kept = ~sample.ignore
        assert np.array_equal(mask[kept], sample.mask[kept])
        if sample.ignore.any():
            assert np.abs(mask[sample.ignore] - teacher(sample.image)[sample.ignore]).max() < 0.01
    other = dataclasses.replace(config, truth_weight=0.3)
    with pytest.raises(ValueError, match="truth weight 1.0"):
        pseudo_label(teacher, other, progress=False)
    with pytest.raises(ValueError, match="would overwrite the input"):
        pseudo_label(teacher, dataclasses.replace(config, output=voc / "labels"), progress=False)
    assert not (voc / "labels").exists()


def test_cli_labels_a_dataset_with_an_ensemble(tmp_path, tiny_models, capsys):
    dataset = fixtures.make_portrait(tmp_path / "portrait", count=24)
    models = [str(tiny_models["float32"]), "--with", str(tiny_models["int8"])]
    out = str(tmp_path / "out")
    assert main(["pseudo-label", *models, "--data", f"portrait:{dataset}", "-o", out]) == 0
    assert "labelled 22 pictures" in capsys.readouterr().out  # the training split: 22 of 24
    pictures, _ = make_inputs(tmp_path)  # named after an option, they still are the inputs
    assert main(["pseudo-label", *models, str(pictures), "-o", str(tmp_path / "more")]) == 0
    assert "labelled 3 pictures" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["pseudo-label", *models, str(pictures), "--bogus", "-o", out])
    assert "--bogus" in capsys.readouterr().err.splitlines()[-1]
    assert main(["pseudo-label", *models, "-o", out, "--truth-weight", "2"]) == 1
    assert "picture, folder, video or dataset" in capsys.readouterr().err
    args = ["--data", f"portrait:{dataset}", "--truth-weight", "2"]
    assert main(["pseudo-label", *models, *args, "-o", out]) == 1
    assert "--truth-weight must be in [0, 1]" in capsys.readouterr().err


SLOW_FIRST_RUN = """
import sys, time
from pathlib import Path
from backdrop.teachers import TFLiteTeacher
from backdrop.teachers.label import LabelConfig, pseudo_label

class Slow(TFLiteTeacher):
    def __call__(self, image):
        time.sleep(0.05)
        return super().__call__(image)

pseudo_label(Slow(Path(sys.argv[1])), LabelConfig((Path(sys.argv[2]),), Path(sys.argv[3])))
"""


def test_a_first_run_killed_part_way_resumes(tmp_path, tiny_models, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    pictures, _ = make_inputs(tmp_path, pictures=200, frames=1)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_FIRST_RUN, str(tiny_models["float32"]), str(pictures), out],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "masks").glob("*.png"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    labelled = len(list((out / "masks").glob("*.png")))
    assert 3 <= labelled < 200, "killed part-way through its first run"
    assert main(["pseudo-label", str(tiny_models["float32"]), str(pictures), "-o", str(out)]) == 0
    assert f"({labelled} already labelled" in capsys.readouterr().out
    runs = json.loads((out / RECORD).read_text())["runs"]
    assert "finished" not in runs[0] and runs[1]["finished"], "the killed run shows unfinished"
    assert len(list((out / "masks").glob("*.png"))) == 200


def test_a_record_of_the_wrong_shape_is_one_line(tmp_path, tiny_models, capsys):
    pictures, _ = make_inputs(tmp_path)
    for index, text in enumerate(
        ["[]", "{", '{"runs": [1]}', '{"teacher": 1, "runs": []}', "[" * 100_000 + "]" * 100_000]
    ):
        out = tmp_path / f"out{index}"
        out.mkdir()
        (out / RECORD).write_text(text)
        code = main(["pseudo-label", str(tiny_models["float32"]), str(pictures), "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err and str(out) in err, text
        assert err.count("\n") == 1, err
