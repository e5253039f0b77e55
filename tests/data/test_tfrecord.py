"""TFRecord shards without TensorFlow: read_shard yields exactly the records framed, as
TensorFlow's own reader does, and a truncated or damaged shard is one RecordsFileError naming it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from backdrop.data.tfrecord import (
    _CHUNK,
    RecordsFileError,
    count_records,
    frame_record,
    read_record,
    read_shard,
    record_spans,
)
from tests.fuzzing import broken, one_line_naming

# Empty, tiny, and longer than the chunk a record is checked in.
RECORDS = [b"", b"x", bytes(range(256)) * 40, b"\x00\xff" * (_CHUNK // 2 + 3), b"last"]


@pytest.fixture
def shard(tmp_path) -> Path:
    path = tmp_path / "train-00000.tfrecord"
    path.write_bytes(b"".join(frame_record(record) for record in RECORDS))
    return path


def test_read_shard_yields_exactly_the_records_framed_as_tensorflow_reads_them(shard):
    import tensorflow as tf

    assert list(read_shard(shard)) == RECORDS
    assert count_records(shard) == len(RECORDS)
    assert [bytes(r) for r in tf.data.TFRecordDataset([str(shard)]).as_numpy_iterator()] == RECORDS


def test_record_spans_read_each_record_with_one_seek(shard):
    spans = record_spans(shard)
    assert spans.shape == (len(RECORDS), 2)
    assert [read_record(shard, int(offset), int(length)) for offset, length in spans] == RECORDS


def test_an_empty_shard_holds_no_records(tmp_path):
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert list(read_shard(tmp_path / "empty.tfrecord")) == []


@pytest.mark.parametrize(
    ("cut", "fragment"),
    [
        (lambda content: content[:-1], r"record 5: truncated, 4 bytes claimed"),
        (lambda content: content[:23], "byte 16 .record 2: truncated length"),
        (lambda content: content[:28] + b"y" + content[29:], "record 2: its data fails its CRC"),
        (lambda content: b"\xff" * 8 + content[8:], "record 1: its length fails its CRC"),
    ],
)
def test_a_truncated_or_damaged_shard_is_one_line_naming_it(shard, cut, fragment):
    content = shard.read_bytes()
    shard.write_bytes(cut(content))
    with pytest.raises(RecordsFileError, match=fragment) as caught:
        list(read_shard(shard))
    assert "backdrop prepare" in one_line_naming(caught.value, shard)


def test_any_damage_yields_the_records_before_it_or_is_one_line():
    content = b"".join(frame_record(record) for record in RECORDS[:3] + RECORDS[4:])
    expected = RECORDS[:3] + RECORDS[4:]

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(broken(content))
    def check(damaged):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "train-00000.tfrecord"
            path.write_bytes(damaged)
            yielded = []
            try:
                for record in read_shard(path):
                    yielded.append(record)
            except RecordsFileError as error:
                one_line_naming(error, path)
            else:  # cut between records
                assert len(yielded) < len(expected) or damaged == content
            assert yielded == expected[: len(yielded)]

    check()
