"""prepare: records round-trip, splits, metadata, bad input, interruption and safe deletion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backdrop.cli import main
from backdrop.data.prepare import PrepareConfig, downscale, prepare
from backdrop.data.readers import READERS
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.records import quantize_mask, read_records
from backdrop.data.records_metadata import PrepareError, shard_paths
from backdrop.data.split import split_of
from backdrop.outputs import MANIFEST, UnsafeRemovalError, check_removable
from tests import fixtures
from tests.data.readers.test_readers import build_reader


def records_by_name(folder: Path) -> dict[str, dict]:
    paths = shard_paths(folder, "train") + shard_paths(folder, "validation")
    return {record["name"]: record for record in read_records(paths)}


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.parametrize("side", [1000, 16])
def test_every_reader_round_trips_through_records(name, side, tmp_path):
    reader = build_reader(name, tmp_path / "data")
    config = PrepareConfig(
        tmp_path / "records", side=side, validation_fraction=0.5, image_format="png", workers=1
    )
    metadata = prepare([reader], config, progress=False)
    expected = {s.name: downscale(s, side) for s in build_reader(name, tmp_path / "again")}
    stored = records_by_name(tmp_path / "records")
    assert set(stored) == set(expected)
    assert metadata["sources"][0]["train"] + metadata["sources"][0]["validation"] == len(expected)
    for sample_name, sample in expected.items():
        record = stored[sample_name]
        assert record["source"] == name
        assert min(record["image"].shape[:2]) == min(side, *sample.image.shape[:2])
        np.testing.assert_array_equal(record["image"], sample.image)  # PNG: lossless
        np.testing.assert_array_equal(
            np.rint(record["mask"][..., 0] * 255).astype(np.uint8), quantize_mask(sample.mask)
        )
        ignore = np.zeros_like(sample.mask, bool) if sample.ignore is None else sample.ignore
        np.testing.assert_array_equal(record["ignore"][..., 0] > 0, ignore)


def test_downscale_keeps_aspect_and_never_upscales():
    rng = np.random.default_rng(0)
    from backdrop.data.sample import Sample

    sample = Sample("s", fixtures.random_image(rng, 100, 300), np.ones((100, 300), np.float32))
    small = downscale(sample, 50)
    assert small.image.shape == (50, 150, 3) and small.mask.shape == (50, 150)
    assert downscale(sample, 400) is sample


def test_split_is_stable_when_datasets_are_added(tmp_path):
    portrait = fixtures.make_portrait(tmp_path / "a", count=40, size=(16, 16))
    first = prepare(
        [PortraitReader(portrait)],
        PrepareConfig(tmp_path / "r1", workers=1, validation_fraction=0.3),
        progress=False,
    )
    voc = fixtures.make_voc(tmp_path / "voc")
    from backdrop.data.readers.voc import VOCReader

    prepare(
        [VOCReader(voc), PortraitReader(portrait)],
        PrepareConfig(tmp_path / "r2", workers=1, validation_fraction=0.3),
        progress=False,
    )
    validation = lambda folder: {  # noqa: E731
        r["name"]
        for r in read_records(shard_paths(folder, "validation"))
        if r["source"] == "portrait"
    }
    assert validation(tmp_path / "r1") == validation(tmp_path / "r2")
    assert 0 < len(validation(tmp_path / "r1")) < 40
    assert first["splits"]["validation"]["count"] == len(validation(tmp_path / "r1"))
    assert split_of("portrait/p1", 0.3) == split_of("portrait/p1", 0.3)


def test_shards_and_metadata(tmp_path):
    portrait = fixtures.make_portrait(tmp_path / "a", count=25, size=(16, 16))
    config = PrepareConfig(tmp_path / "r", shard_size=4, validation_fraction=0.0, workers=2)
    metadata = prepare([PortraitReader(portrait)], config, progress=False)
    shards = metadata["splits"]["train"]["shards"]
    assert [s["count"] for s in shards] == [4, 4, 4, 4, 4, 4, 1]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(
        [s["file"] for s in shards] + ["metadata.json", MANIFEST]
    ), "no temporary files left behind"
    assert json.loads((tmp_path / "r/metadata.json").read_text()) == metadata
    assert metadata["side"] == 256 and metadata["sources"][0]["train"] == 25


def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    root = fixtures.make_portrait(tmp_path / "p", count=6)
    (root / "images/p1.png").write_bytes((root / "images/p1.png").read_bytes()[:200])  # truncated
    (root / "images/p2.png").write_bytes(b"not an image at all")
    (root / "masks/p3.png").unlink()  # missing mask
    fixtures.save(root / "masks/p4.png", np.zeros((10, 40), np.uint8))  # other aspect ratio
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    config = PrepareConfig(tmp_path / "r", workers=2)
    metadata = prepare([PortraitReader(root), PortraitReader(empty)], config, progress=False)
    reasons = {Path(s["file"]).name: s["reason"] for s in metadata["skipped"]}
    assert "cannot decode image" in reasons["p1.png"] and "p1.png" in reasons["p1.png"]
    assert "cannot decode image" in reasons["p2.png"]
    assert "no mask" in reasons["p3.png"]
    assert "different aspect ratio" in reasons["p4.png"]
    assert "no images found" in reasons["images"]
    assert metadata["splits"]["train"]["count"] + metadata["splits"]["validation"]["count"] == 2


def test_zero_usable_samples_exits_non_zero_naming_the_fix(tmp_path, capsys):
    root = fixtures.make_portrait(tmp_path / "p", count=2)
    for mask in (root / "masks").iterdir():
        mask.unlink()
    code = main(["prepare", "--portrait", str(root), "-d", str(tmp_path / "r"), "-q"])
    assert code != 0
    assert "no usable samples" in capsys.readouterr().err
    assert not (tmp_path / "r/metadata.json").exists()


def test_missing_dataset_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["prepare", "--voc", str(tmp_path / "nope"), "-d", str(tmp_path / "r")])
    assert code == 1 and "is not a folder" in capsys.readouterr().err


def test_existing_records_are_not_overwritten_without_the_flag(tmp_path):
    root = fixtures.make_portrait(tmp_path / "p", count=3)
    prepare([PortraitReader(root)], PrepareConfig(tmp_path / "r", workers=1), progress=False)
    (tmp_path / "r/notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="--remove-all-previous-results"):
        prepare([PortraitReader(root)], PrepareConfig(tmp_path / "r", workers=1), progress=False)
    config = PrepareConfig(tmp_path / "r", workers=1, remove_previous=True, side=8)
    assert prepare([PortraitReader(root)], config, progress=False)["side"] == 8
    assert (tmp_path / "r/notes.txt").read_text() == "mine", "only Backdrop's files are removed"


def test_removal_refuses_dangerous_folders(tmp_path, monkeypatch):
    dataset = tmp_path / "data" / "voc"
    dataset.mkdir(parents=True)
    for folder, why in [
        ("/", "filesystem root"),
        (Path.home(), "home folder"),
        (tmp_path / "data", "overlaps the input"),
        (dataset / "out", "overlaps the input"),
    ]:
        with pytest.raises(UnsafeRemovalError, match=why):
            check_removable(folder, [dataset])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeRemovalError, match="current folder"):
        check_removable(".", [])
    assert check_removable(tmp_path / "out", [dataset]) == (tmp_path / "out").resolve()


def test_remove_flag_refuses_the_dataset_folder_itself(tmp_path, capsys):
    root = fixtures.make_portrait(tmp_path / "p", count=2)
    code = main(
        ["prepare", "--portrait", str(root), "-d", str(root), "-q", "--remove-all-previous-results"]
    )
    assert code == 1 and "overlaps the input dataset" in capsys.readouterr().err
    assert len(list((root / "images").iterdir())) == 2


def prepare_command(portrait: Path, destination: Path, *extra: str) -> list[str]:
    """`backdrop prepare` in its own process: one worker, shards of 10, no progress bar."""
    return [
        *(sys.executable, "-m", "backdrop.cli", "prepare", "--portrait", str(portrait)),
        *("-d", str(destination), "--shard-size", "10", "--workers", "1", "-q", *extra),
    ]


@pytest.mark.slow
def test_killed_prepare_leaves_no_claimed_partial_shard_and_rerun_completes(tmp_path):
    root = fixtures.make_portrait(tmp_path / "p", count=400, size=(96, 96))
    destination = tmp_path / "r"
    command = prepare_command(
        root, destination, "--image-format", "png", "--validation-fraction", "0"
    )

    def run_and_kill(extra=()):
        process = subprocess.Popen(
            [*command, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started, deadline = time.time(), time.time() + 120
        third_shard = destination / "train-00002.tfrecord"
        # Wait until this run has renamed its third shard (an earlier run's file does not count).
        while not (third_shard.exists() and third_shard.stat().st_mtime >= started):
            assert process.poll() is None, "prepare ended before it could be interrupted"
            assert time.time() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    run_and_kill()
    assert not (destination / "metadata.json").exists()
    assert subprocess.run(command).returncode == 0
    metadata = json.loads((destination / "metadata.json").read_text())
    assert metadata["splits"]["train"]["count"] == 400
    assert len(list(read_records(shard_paths(destination, "train")))) == 400
    assert not list(destination.glob(".*.tmp*"))

    # Killing a replacing run must not leave the old metadata claiming rewritten shards.
    run_and_kill(["--remove-all-previous-results"])
    assert not (destination / "metadata.json").exists()
    assert subprocess.run([*command, "--remove-all-previous-results"]).returncode == 0
    assert len(list(read_records(shard_paths(destination, "train")))) == 400


def test_prepare_runs_without_importing_tensorflow(tmp_path):
    """Its speed depends on it: records are written with Backdrop's own TFRecord writer."""
    data = fixtures.make_portrait(tmp_path / "portrait", count=6)
    code = (
        "import sys\n"
        "from backdrop.cli import main\n"
        f"code = main(['prepare', '--portrait', {str(data)!r}, '-d', {str(tmp_path / 'records')!r},"
        " '-q', '--workers', '1'])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0 False False"
    assert (tmp_path / "records" / "metadata.json").is_file()


AFTER_OPENCV_RAN = """
import sys, time
from pathlib import Path
import cv2, numpy as np
from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.portrait import PortraitReader
from tests import fixtures

cv2.setNumThreads(4)
cv2.warpAffine(np.zeros((2000, 2000, 3), np.float32), np.eye(2, 3), (2000, 2000))
time.sleep(1)  # OpenCV's threads wait for work: a worker that reconfigured them would hang
root = Path(sys.argv[1])
folder = fixtures.make_portrait(root / "portrait", count=8)
config = PrepareConfig(root / "records", side=32, workers=2)
prepare([PortraitReader(folder)], config, progress=False)
assert cv2.getNumThreads() == 4
print("prepared")
"""


def test_prepare_workers_forked_after_opencv_ran_do_not_hang(tmp_path):
    """A fine-tune labels with OpenCV, then prepares records in the same process: its forked
    workers must not wait forever on OpenCV's thread pool."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", AFTER_OPENCV_RAN, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    assert result.returncode == 0 and "prepared" in result.stdout, result.stderr[-2000:]
