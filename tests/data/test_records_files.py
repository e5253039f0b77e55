"""A records folder is data from anywhere: its metadata.json reads as checked counts and shard
names inside the folder, and a truncated, bit-flipped or missing shard is one RecordsFileError
naming it, before TensorFlow reads it, never a DataLossError traceback."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers import create_reader
from backdrop.data.records import read_records
from backdrop.data.records_metadata import load_metadata, shard_paths
from backdrop.data.tfrecord import RecordsFileError, check_shards, count_records
from tests import fixtures
from tests.fuzzing import broken, mutated, one_line_naming

ODD_VALUES = [None, True, -1, 1e300, 10**20, "", "..", "../outside.tfrecord", "/etc/passwd", [], {}]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """A records folder of 12 small portraits, both splits in shards of 4."""
    root = tmp_path_factory.mktemp("records")
    portraits = fixtures.make_portrait(root / "portraits", count=12)
    config = PrepareConfig(
        root / "records", side=32, validation_fraction=0.34, shard_size=4, workers=1
    )
    prepare([create_reader("portrait", portraits)], config, progress=False)
    return root / "records"


@pytest.fixture
def copied(records, tmp_path) -> Path:
    """A copy of the records folder the test may break."""
    return Path(shutil.copytree(records, tmp_path / "records"))


def _metadata(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def test_the_prepared_folder_reads_and_checks(records):
    metadata = load_metadata(records)
    for split in ("train", "validation"):
        paths = shard_paths(records, split)
        counts = [shard["count"] for shard in metadata["splits"][split]["shards"]]
        assert paths and all(path.parent == records for path in paths)
        check_shards(paths, counts)
        assert [count_records(path) for path in paths] == counts


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda m: m["splits"]["train"]["shards"][0].update(file="../outside.tfrecord"),
            "file name",
        ),
        (lambda m: m["splits"]["train"]["shards"][0].update(file="/etc/passwd"), "file name"),
        (lambda m: m["splits"]["train"]["shards"][0].update(file="sub/x.tfrecord"), "file name"),
        (lambda m: m["splits"]["train"]["shards"][0].update(count=-1), "not a whole number"),
        (lambda m: m["splits"]["train"].update(count=10**9), "not the sum"),
        (lambda m: m["splits"]["train"].update(count=1e300), "not the sum"),
        (lambda m: m["splits"].pop("validation"), '"validation" is not a JSON object'),
        (lambda m: m.pop("splits"), '"splits" is not a JSON object'),
        (lambda m: m.update(sources={"a": 1}), '"sources" is not a list'),
        (lambda m: m["sources"][0].pop("train"), "no whole count per split"),
        (lambda m: m["sources"][0].update(root=None), '"root" text'),
    ],
)
def test_a_bad_metadata_is_one_line_naming_it(copied, change, fragment):
    metadata = _metadata(copied)
    change(metadata)
    (copied / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(RecordsFileError) as caught:
        load_metadata(copied)
    message = one_line_naming(caught.value, copied / "metadata.json")
    assert fragment in message and "backdrop prepare" in message


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\xff\xfe", b"[" * 50_000])
def test_a_metadata_that_is_not_a_json_object_is_one_line(copied, content):
    (copied / "metadata.json").write_bytes(content)
    with pytest.raises(RecordsFileError) as caught:
        load_metadata(copied)
    one_line_naming(caught.value, copied / "metadata.json")


def test_any_edit_of_a_metadata_reads_or_is_refused_in_one_line(records):
    original = _metadata(records)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        metadata = mutated(data.draw, copy.deepcopy(original), ODD_VALUES)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "metadata.json"
            path.write_text(json.dumps(metadata))
            try:
                load_metadata(folder)
            except RecordsFileError as error:
                one_line_naming(error, path)
            else:
                for split in ("train", "validation"):
                    assert all(p.parent == Path(folder) for p in shard_paths(folder, split))

    check()


def _damaged(shard: bytes) -> dict[str, bytes]:
    flipped_data, flipped_length = bytearray(shard), bytearray(shard)
    flipped_data[len(shard) // 2] ^= 0x04
    flipped_length[2] ^= 0x01
    return {
        "truncated": shard[: len(shard) - 7],
        "cut in a header": shard[:10],
        "data bit flipped": bytes(flipped_data),
        "length bit flipped": bytes(flipped_length),
        "huge length": b"\xff" * 8 + shard[8:],
    }


@pytest.mark.parametrize("kind", sorted(_damaged(b"x" * 40)))
def test_a_damaged_shard_is_one_line_naming_it_before_training_reads_it(copied, kind):
    from backdrop.data.loader import record_batches
    from backdrop.data.pipeline_config import PipelineConfig

    shard = shard_paths(copied, "train")[1]
    shard.write_bytes(_damaged(shard.read_bytes())[kind])
    with pytest.raises(RecordsFileError) as caught:
        record_batches(copied, "train", PipelineConfig((32, 32), batch_size=2), training=True)
    assert "backdrop prepare" in one_line_naming(caught.value, shard)
    with pytest.raises(RecordsFileError) as caught:
        list(read_records([shard]))  # the reader without TensorFlow, reaching it
    one_line_naming(caught.value, shard)


def test_a_missing_or_short_shard_is_one_line_naming_it(copied):
    from backdrop.data.loader import record_batches
    from backdrop.data.pipeline_config import PipelineConfig

    settings_ = PipelineConfig((32, 32), batch_size=2)
    first, second = shard_paths(copied, "train")[:2]
    original = first.read_bytes()
    first.write_bytes(original + second.read_bytes())  # more records than it claims
    with pytest.raises(RecordsFileError, match="holds 8 records, .*metadata.json says 4") as caught:
        record_batches(copied, "train", settings_, training=True)
    one_line_naming(caught.value, first)
    first.write_bytes(original)
    second.unlink()
    with pytest.raises(RecordsFileError, match="is missing") as caught:
        record_batches(copied, "train", settings_, training=True)
    one_line_naming(caught.value, second)


def test_a_truncated_or_flipped_shard_is_counted_or_refused_in_one_line(records):
    shard = shard_paths(records, "train")[0].read_bytes()
    records_in_it = len(list(read_records([shard_paths(records, "train")[0]])))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(broken(shard))
    def check(content):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "train-00000.tfrecord"
            path.write_bytes(content)
            try:
                count = count_records(path)
            except RecordsFileError as error:
                one_line_naming(error, path)
            else:  # cut between records, or a change that leaves every CRC right
                assert count <= records_in_it

    check()


def test_training_on_a_damaged_shard_is_one_line(copied, tmp_path, capsys):
    from backdrop.cli import main

    shard = shard_paths(copied, "validation")[0]
    shard.write_bytes(shard.read_bytes()[:-3])
    args = ["train", "-r", str(copied), "-o", str(tmp_path / "run"), "-e", "1", "--input", "32"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and str(shard) in err.splitlines()[-1], err
