"""Every command that writes touches only what Backdrop wrote: a folder of someone else's files is
hashed before and after each one, and two writers never share a folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from backdrop.cli import main
from backdrop.outputs import MANIFEST
from tests import fixtures
from tests.data.test_prepare import prepare_command
from tests.outputs.test_folder import hold_lock

# Files users keep in their folders, named like Backdrop's outputs or nothing like them.
FOREIGN = {
    "train-00000-of-00004.tfrecord": b"deeplab shard",
    "selfie_segmentation.tflite": b"mediapipe model",
    "selfie_segmentation.tflite.json": b"{}",
    "tensorboard/events.out.tfevents.1": b"my curves",
    "notes.txt": b"mine",
}


def plant(folder: Path, files: dict[str, bytes] = FOREIGN) -> dict[str, str]:
    """Writes `files` into `folder`; returns their hashes."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return hashes(folder, files)


def hashes(folder: Path, names) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if (folder / name).exists()
        else "gone"
        for name in names
    }


def one_line_error(capsys, *fragments: str) -> str:
    """The error of a failed command: its last line on stderr (above it only progress bars and
    skip reasons), without a traceback, holding every fragment."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    line = err.splitlines()[-1]
    assert line.startswith("backdrop: error:"), err
    for fragment in fragments:
        assert fragment in line, err
    return line


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    from backdrop.data.synthetic import write_synthetic_dataset

    folder = tmp_path_factory.mktemp("records")
    data = write_synthetic_dataset(folder / "data", count=24, height=40, width=40)
    assert (
        main(
            [
                "prepare",
                "--portrait",
                str(data),
                "-d",
                str(folder / "r"),
                "-q",
                "--validation-fraction",
                "0.25",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    return folder / "r"


@pytest.fixture(scope="module")
def run(records, tmp_path_factory) -> Path:
    """A finished one-epoch run with a float32 export."""
    folder = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "-r", str(records), "-o", str(folder), *TINY_TRAINING]) == 0
    return folder


TINY_TRAINING = [
    "--input",
    "32",
    "--filters",
    "4",
    "-e",
    "1",
    "-b",
    "8",
    "--export",
    "float32",
    "--quantize-aware-epochs",
    "0",
]


def test_prepare_leaves_foreign_files_alone_with_and_without_the_flag(tmp_path, monkeypatch):
    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    out = tmp_path / "out"
    out.mkdir()
    before = plant(out)
    for extra in ([], ["--remove-all-previous-results"]):
        assert main(["prepare", "--portrait", str(portrait), "-d", str(out), "-q", *extra]) == 0
        assert hashes(out, FOREIGN) == before
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = plant(cwd)
    monkeypatch.chdir(cwd)
    assert main(["prepare", "--portrait", str(portrait), "-d", ".", "-q"]) == 0
    assert hashes(cwd, FOREIGN) == before and (cwd / "metadata.json").exists()


def test_prepare_refuses_a_metadata_json_it_did_not_write(tmp_path, capsys):
    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    before = plant(tmp_path / "out", {"metadata.json": b"{}"})
    code = main(
        [
            "prepare",
            "--portrait",
            str(portrait),
            "-d",
            str(tmp_path / "out"),
            "-q",
            "--remove-all-previous-results",
        ]
    )
    assert code == 1
    one_line_error(capsys, "metadata.json is in the way", "destination (-d)")
    assert hashes(tmp_path / "out", ["metadata.json"]) == before
    assert not list((tmp_path / "out").glob("*.tfrecord"))


@pytest.mark.slow
def test_train_keeps_foreign_files_and_refuses_what_is_in_its_way(records, tmp_path, capsys):
    # A model, its contract and notes beside the run survive --remove-all-previous-results.
    out = tmp_path / "out"
    files = {k: v for k, v in FOREIGN.items() if not k.startswith("tensorboard")}
    before = plant(out, files)
    args = ["train", "-r", str(records), "-o", str(out), *TINY_TRAINING]
    assert main([*args, "--remove-all-previous-results"]) == 0
    assert hashes(out, files) == before
    assert main([*args, "--remove-all-previous-results"]) == 0, "its own run is replaced"
    assert hashes(out, files) == before
    capsys.readouterr()

    # Someone's tensorboard/ or another run's files are in the way: refused before writing.
    for planted, named in [
        ({"tensorboard/events.out.tfevents.1": b"my curves"}, "tensorboard"),
        (
            {"config.json": b"{}", "log.csv": b"epoch\n", "epoch-0007.keras": b"k"},
            "epoch-0007.keras",
        ),
    ]:
        folder = tmp_path / named
        before = plant(folder, planted)
        for extra in ([], ["--remove-all-previous-results"]):
            assert (
                main(["train", "-r", str(records), "-o", str(folder), *TINY_TRAINING, *extra]) == 1
            )
            one_line_error(capsys, named, "is in the way", "--checkpoints folder")
            assert hashes(folder, planted) == before
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                {Path(name).parts[0] for name in planted}
            ), "nothing written, not even a manifest"


@pytest.mark.slow
def test_a_refused_restore_changes_nothing_and_the_run_still_reports(
    run, records, tmp_path, capsys
):
    before = hashes(run, ["config.json", "state.json", "log.csv"])
    code = main(
        [
            "train",
            "-r",
            str(records),
            "-o",
            str(run),
            *TINY_TRAINING,
            "--input",
            "48",
            "-e",
            "2",
            "--restore",
        ]
    )
    assert code == 1
    one_line_error(capsys, "cannot restore", "input_shape (32, 32) -> (48, 48)")
    assert hashes(run, before) == before
    assert main(["report", str(run)]) == 0


@pytest.mark.slow
def test_a_restore_takes_the_runs_own_architecture(run, records, tmp_path, capsys):
    """Without --input/--filters, --restore goes on with the run's own (32 px, 4 filters), not
    the defaults (which the architecture check would refuse)."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    args = ["train", "-r", str(records), "-o", str(copy), "-e", "2", "--export", "none"]
    assert main([*args, "--restore"]) == 0
    assert json.loads((copy / "state.json").read_text())["epoch"] == 2
    saved = json.loads((copy / "config.json").read_text())
    assert saved["input_shape"] == [32, 32] and saved["filters"] == 4 and saved["epochs"] == 2


@pytest.mark.slow
def test_export_report_evaluate_and_segment_leave_foreign_files_alone(
    run, records, tmp_path, capsys, tiny_models
):
    out = tmp_path / "out"
    before = plant(out)
    model = run / "model_float32.tflite"
    pictures = fixtures.make_portrait(tmp_path / "p", count=3)
    assert main(["export", str(run), "-r", str(records), "--modes", "float32", "-o", str(out)]) == 0
    assert main(["report", str(run), "-o", str(out)]) == 0
    assert (
        main(["evaluate", str(model), "--data", f"portrait:{pictures}", "-o", str(out), "-q"]) == 0
    )
    assert (
        main(["segment", str(model), "-i", str(pictures / "images"), "-o", str(out / "seg"), "-q"])
        == 0
    )
    image = next((pictures / "images").iterdir())
    assert main(["segment", str(model), "-i", str(image), "-o", str(out / "one.png")]) == 0
    assert hashes(out, FOREIGN) == before
    capsys.readouterr()

    # A file of the same name as an output is refused, before any work.
    theirs = {
        "model_float32.tflite": b"theirs",
        "evaluation.json": b"{}",
        "index.html": b"<p>",
        "p0.png": b"theirs",
        "out.png": b"theirs",
    }
    out = tmp_path / "theirs"
    before = plant(out, theirs)
    for command, named in [
        (
            ["export", str(run), "-r", str(records), "--modes", "float32", "-o", str(out)],
            "model_float32",
        ),
        (
            ["evaluate", str(model), "--data", f"portrait:{pictures}", "-o", str(out), "-q"],
            "evaluation.json",
        ),
        (["report", str(run), "-o", str(out)], "index.html"),
        (["segment", str(model), "-i", str(pictures / "images"), "-o", str(out), "-q"], "p0.png"),
        (["segment", str(model), "-i", str(image), "-o", str(out / "out.png")], "out.png"),
    ]:
        assert main(command) == 1, command
        one_line_error(capsys, named, "is in the way")
    assert hashes(out, theirs) == before


def test_segment_never_writes_over_its_inputs(tiny_models, tmp_path, capsys):
    pictures = fixtures.make_portrait(tmp_path / "p", count=3, size=(40, 56))
    before = hashes(pictures / "images", [p.name for p in (pictures / "images").iterdir()])
    for output in (pictures / "images", pictures / "images" / "p0.png"):
        source = pictures / "images" if output.suffix == "" else output
        assert (
            main(
                ["segment", str(tiny_models["float32"]), "-i", str(source), "-o", str(output), "-q"]
            )
            == 1
        )
        one_line_error(capsys, "would overwrite the input")
    assert hashes(pictures / "images", before) == before


def test_supervisely_never_mixes_two_conversions(tmp_path, capsys):
    source = fixtures.make_supervisely(tmp_path / "sly")
    dest = tmp_path / "dest"
    before = plant(dest, {"images/theirs.png": b"x"})
    assert main(["supervisely", str(source), str(dest), "-q"]) == 1
    one_line_error(capsys, "images is in the way")
    assert hashes(dest, before) == before
    assert main(["supervisely", str(source), str(tmp_path / "fresh"), "-q"]) == 0
    capsys.readouterr()
    assert main(["supervisely", str(source), str(tmp_path / "fresh"), "-q"]) == 1
    one_line_error(capsys, "already holds a conversion")


def test_pseudo_label_leaves_foreign_files_alone(tiny_models, tmp_path, capsys):
    pictures = fixtures.make_portrait(tmp_path / "p", count=2)
    out = tmp_path / "labels"
    before = plant(out)
    command = [
        "pseudo-label",
        str(tiny_models["float32"]),
        str(pictures / "images"),
        "-o",
        str(out),
        "-q",
    ]
    assert main(command) == 0
    assert hashes(out, FOREIGN) == before and len(list((out / "masks").iterdir())) == 2
    taken = tmp_path / "taken"
    before = plant(taken, {"masks/theirs.png": b"x"})
    assert main([*command[:-3], "-o", str(taken), "-q"]) == 1
    one_line_error(capsys, "taken/masks", "choose another")
    assert hashes(taken, before) == before


def test_a_second_writer_exits_with_one_line_naming_the_holder(tmp_path, capsys):
    """Any second command into a folder held by a running one (here: held as prepare holds it)."""
    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    out = tmp_path / "out"
    out.mkdir()
    holder = hold_lock(out)
    try:
        assert main(["prepare", "--portrait", str(portrait), "-d", str(out), "-q"]) == 1
        one_line_error(capsys, "in use by another Backdrop run", f"process {holder.pid}")
        assert main(["train", "--portrait", str(portrait), "-o", str(out), *TINY_TRAINING]) == 1
        one_line_error(capsys, "in use by another Backdrop run")
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "metadata.json").exists() and not (out / "config.json").exists()


@pytest.mark.slow
def test_two_real_prepare_runs_into_one_folder(tmp_path):
    portrait = fixtures.make_portrait(tmp_path / "p", count=800, size=(160, 160))
    out = tmp_path / "out"
    command = prepare_command(portrait, out)
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(out.glob("train-*.tfrecord")):
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True)
    assert second.returncode == 1
    assert "in use by another Backdrop run (`backdrop prepare`" in second.stderr
    assert first.wait(timeout=120) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["splits"]["train"]["count"] + metadata["splits"]["validation"]["count"] == 800


def test_a_file_name_that_is_not_utf8_is_skipped_naming_it(tmp_path, capsys):
    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    bad = b"caf\xe9"  # Latin-1, as old cameras and zip files name things
    for folder in ("images", "masks"):
        source = portrait / folder / "p1.png"
        (portrait / folder / (bad.decode("utf-8", "surrogateescape") + ".png")).write_bytes(
            source.read_bytes()
        )
    assert main(["prepare", "--portrait", str(portrait), "-d", str(tmp_path / "r"), "-q"]) == 0
    metadata = json.loads((tmp_path / "r/metadata.json").read_text())
    reasons = [s["reason"] for s in metadata["skipped"]]
    assert len(reasons) == 1 and "caf\\xe9.png" in reasons[0] and "not valid UTF-8" in reasons[0]
    assert metadata["splits"]["train"]["count"] + metadata["splits"]["validation"]["count"] == 3
    from backdrop.data.prepare import encode_in_memory  # train --portrait's path
    from backdrop.data.readers.portrait import PortraitReader

    splits = encode_in_memory([PortraitReader(portrait)], 32, 0.1)
    assert len(splits["train"]) + len(splits["validation"]) == 3
    assert "not valid UTF-8" in capsys.readouterr().err


def test_evaluate_and_segment_go_on_past_bad_files(tiny_models, tmp_path, capsys):
    pictures = fixtures.make_portrait(tmp_path / "p", count=3)
    (pictures / "images" / "broken.png").write_bytes(b"not a picture")
    (pictures / "masks" / "broken.png").write_bytes(b"not a mask")
    model = str(tiny_models["float32"])
    assert (
        main(["evaluate", model, "--data", f"portrait:{pictures}", "-o", str(tmp_path / "e"), "-q"])
        == 0
    )
    out = capsys.readouterr().out
    assert "skipped 1 pictures" in out and "broken.png" in out
    results = json.loads((tmp_path / "e/evaluation.json").read_text())
    assert next(iter(results["models"][0]["datasets"].values()))["images"] == 3
    assert (
        main(["segment", model, "-i", str(pictures / "images"), "-o", str(tmp_path / "s"), "-q"])
        == 0
    )
    assert "skipped 1 pictures" in capsys.readouterr().out
    assert len(list((tmp_path / "s").glob("*.png"))) == 3


def test_real_supervisely_evaluation_skips_what_prepare_skips(
    shared_dataset, tiny_models, tmp_path, capsys
):
    """The real annotations with blank stand-in pictures (not shipped), plus one broken one."""
    project = tmp_path / "project"
    for annotation_path in (shared_dataset("supervisely_persons_sample") / "project").glob(
        "*/ann/*.json"
    ):
        size = json.loads(annotation_path.read_text())["size"]
        dataset = project / annotation_path.parent.parent.name
        (dataset / "ann").mkdir(parents=True, exist_ok=True)
        (dataset / "ann" / annotation_path.name).write_text(annotation_path.read_text())
        blank = np.zeros((size["height"], size["width"], 3), np.uint8)
        fixtures.save(dataset / "img" / annotation_path.name[: -len(".json")], blank)
    broken = {"size": {"height": 8, "width": 8}, "objects": [{"classTitle": "person_bmp"}]}
    (project / "bad" / "ann").mkdir(parents=True)
    (project / "bad" / "ann" / "x.png.json").write_text(json.dumps(broken))
    fixtures.save(project / "bad" / "img" / "x.png", np.zeros((8, 8, 3), np.uint8))

    model = str(tiny_models["float32"])
    evaluate = ["evaluate", model, "--data", f"supervisely:{project}", "-o", str(tmp_path / "e")]
    assert main([*evaluate, "-q"]) == 0, capsys.readouterr().err
    assert main(["prepare", "--supervisely", str(project), "-d", str(tmp_path / "r"), "-q"]) == 0
    results = json.loads((tmp_path / "e/evaluation.json").read_text())
    metadata = json.loads((tmp_path / "r/metadata.json").read_text())
    evaluated = next(iter(results["models"][0]["datasets"].values()))["images"]
    prepared = sum(metadata["splits"][split]["count"] for split in ("train", "validation"))
    assert evaluated == prepared > 0
    skipped = next(iter(results["skipped"].values()))
    assert len(skipped) == len(metadata["skipped"]) == 1 and "x.png" in skipped[0][1]


def full_disk(tmp_path):
    """A 3 MiB filesystem (needs root and tmpfs), or a skip."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    return mount


def test_a_full_disk_during_prepare_is_one_line(tmp_path, capsys):
    mount = full_disk(tmp_path)
    try:
        rng = np.random.default_rng(0)
        portrait = tmp_path / "noise"
        for i in range(40):  # incompressible pictures: about 6 MiB of records
            fixtures.save(
                portrait / "images" / f"n{i}.png", rng.integers(0, 255, (256, 256, 3), np.uint8)
            )
            fixtures.save(
                portrait / "masks" / f"n{i}.png",
                fixtures.box_mask(256, 256, 10, 10, 200, 200) * 255,
            )
        code = main(
            [
                "prepare",
                "--portrait",
                str(portrait),
                "-d",
                str(mount / "r"),
                "-q",
                "--image-format",
                "png",
                "--workers",
                "1",
            ]
        )
        assert code == 1
        one_line_error(capsys, "no space left on device")
        assert not (mount / "r" / "metadata.json").exists()
    finally:
        subprocess.run(["umount", str(mount)])


def test_a_tampered_manifest_deletes_nothing_through_prepare_or_train(records, tmp_path, capsys):
    from tests.outputs.test_folder import sacrificial, tamper

    portrait = fixtures.make_portrait(tmp_path / "p", count=3)
    target = sacrificial(tmp_path)
    victim = target["victim"]
    commands = [
        ["prepare", "--portrait", str(portrait), "-q", "--remove-all-previous-results", "-d"],
        ["prepare", "--portrait", str(portrait), "-q", "-d"],  # clears leftovers: no metadata
        ["train", "-r", str(records), *TINY_TRAINING, "--remove-all-previous-results", "-o"],
    ]
    for index, command in enumerate(commands):
        for names in (
            [str(victim / "file.txt")],
            ["../victim/tree/"],
            ["link/file.txt"],
            [f"{victim}/"],
        ):
            out = tmp_path / f"out{index}-{len(names[0])}"
            out.mkdir()
            (out / "link").symlink_to(victim, target_is_directory=True)
            tamper(out, names)
            assert main([*command, str(out)]) == 1
            one_line_error(capsys, str(out / MANIFEST), "nothing was deleted")
            assert sorted(victim.rglob("*")) == target["paths"], (command, names)
            assert (victim / "file.txt").read_text() == "precious"


def test_a_planted_manifest_deletes_nothing_without_the_flag(tmp_path, monkeypatch, capsys):
    """A manifest in a dataset bundle or a working folder named the input and the user's files:
    a plain prepare or supervisely deleted them as an interrupted run's leftovers."""
    from tests.outputs.test_folder import tamper

    bundle = tmp_path / "bundle"
    portrait = fixtures.make_portrait(bundle / "portrait", count=3)
    (bundle / "notes.txt").write_text("mine")
    tamper(bundle, ["portrait/", "notes.txt"])
    before = hashes(bundle, [str(p.relative_to(bundle)) for p in portrait.rglob("*.png")])
    assert main(["prepare", "--portrait", str(portrait), "-d", str(bundle), "-q"]) == 0
    assert hashes(bundle, before) == before and (bundle / "notes.txt").read_text() == "mine"

    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "main.py").write_text("code")
    (work / "README").write_text("keep")
    tamper(work, ["src/", "README"])
    monkeypatch.chdir(work)
    assert main(["prepare", "--portrait", str(portrait), "-d", ".", "-q"]) == 0
    assert (work / "src" / "main.py").read_text() == "code" and (work / "README").exists()

    source = fixtures.make_supervisely(tmp_path / "sv")
    destination = tmp_path / "dst"
    (destination / "photos").mkdir(parents=True)
    (destination / "photos" / "a.jpg").write_text("x")
    (destination / "thesis.tex").write_text("keep")
    tamper(destination, ["thesis.tex", "photos/"], command="convert")
    assert main(["supervisely", str(source), str(destination)]) == 0
    assert (destination / "thesis.tex").exists() and (destination / "photos" / "a.jpg").exists()
    capsys.readouterr()
