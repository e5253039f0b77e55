"""Reading and writing video files (PyAV): timestamps, rotation, truncation, formats."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.runtime.media import (
    MediaError,
    check_output,
    open_video,
    open_writer,
    process_video,
    video_frames,
)
from backdrop.runtime.video_reader import VideoReader
from backdrop.runtime.video_writer import VIDEO_FORMATS, VideoFormat
from tests.runtime.videos import describe, write_video


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    times = [0.0, 0.033, 0.066, 0.15, 0.18, 0.4, 0.433, 0.9, 0.933, 1.5]
    source = write_video(tmp_path / "vfr.mkv", times=times)
    stats = process_video(source, tmp_path / "out.mp4", lambda frame: frame, progress=False)
    assert stats["frames"] == 10 and stats["incomplete"] is None
    assert describe(tmp_path / "out.mp4")["times"] == pytest.approx(times, abs=1e-3)


def test_a_timeline_that_starts_late_starts_at_zero(tmp_path):
    """As a cut from a longer recording, or MPEG-TS, has it: players would show a still first
    frame (or nothing) for that long."""
    source = write_video(tmp_path / "cut.mkv", times=[2.0 + index / 15 for index in range(20)])
    assert describe(source)["times"][0] == pytest.approx(2.0)
    for output in (tmp_path / "copied.mkv", tmp_path / "encoded.webm"):
        process_video(source, output, lambda frame: frame, progress=False)
        got = describe(output)
        assert got["times"][0] == pytest.approx(0.0, abs=1e-3)
        assert got["audio"][1] == pytest.approx(0.0, abs=0.03), "the audio moved with it"


def test_a_rotated_phone_video_is_segmented_upright(tmp_path):
    source = write_video(tmp_path / "phone.mp4", frames=3, rotation=90)
    seen = []
    process_video(source, tmp_path / "out.mp4", lambda f: seen.append(f) or f, progress=False)
    assert seen[0].shape == (64, 48, 3), "turned as players show it"
    assert seen[0][-20:, :].mean() > 200, "the bar at the left edge is at the bottom upright"
    assert describe(tmp_path / "out.mp4")["size"] == (48, 64)


def test_a_truncated_matroska_is_flagged_by_its_duration(tmp_path):
    source = write_video(tmp_path / "cut.mkv")
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    stats = process_video(source, tmp_path / "out.mkv", lambda frame: frame, progress=False)
    assert 0 < stats["frames"] < 20
    assert f"decoded {stats['frames']} frames, " in stats["incomplete"]
    assert "of the 1.33 s it declares" in stats["incomplete"]


def test_output_extensions_are_checked_before_any_work(tmp_path, monkeypatch):
    with pytest.raises(MediaError, match=r"\.mp4, .*\.webm; give the output one of those"):
        check_output(tmp_path / "out.avi", "video")
    missing = VideoFormat("webm", "no-such-encoder", "libopus", ())
    monkeypatch.setitem(VIDEO_FORMATS, ".webm", missing)
    with pytest.raises(MediaError, match="no no-such-encoder encoder for .webm; use .mp4"):
        check_output(tmp_path / "out.webm", "camera")


def test_reading_frames_and_writing_at_a_constant_rate(tmp_path):
    """What the camera records with, and what pseudo-labelling reads frames with."""
    source = write_video(tmp_path / "clip.mp4")
    reader, count, fps, size = open_video(source)
    frames = list(video_frames(reader))
    reader.release()
    assert (count, size) == (20, (64, 48)) and fps == pytest.approx(15, abs=0.01)
    assert len(frames) == 20 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    writer = open_writer(tmp_path / "camera.mp4", 29.97, (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.close()
    with VideoReader(tmp_path / "camera.mp4") as written:
        assert written.declared == 20 and written.fps == pytest.approx(29.97, abs=0.01)
