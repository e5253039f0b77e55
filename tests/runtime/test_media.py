"""`segment` on videos, pictures and cameras as a user expects: H.264 with the audio kept, exact
size, truncated inputs flagged, any file name, Ctrl-C leaving no half-written output."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from backdrop.cli import main
from backdrop.runtime.media import process_video
from tests.runtime.videos import describe, write_video


def segment(model: Path, source: Path, output: Path, effect: str = "mask") -> int:
    return main(["segment", str(model), "-i", str(source), "-e", effect, "-o", str(output), "-q"])


@pytest.mark.parametrize(
    ("size", "pixels"), [((64, 48), "yuv420p"), ((65, 49), "yuv444p"), ((66, 49), "yuv444p")]
)
def test_a_call_recording_keeps_its_audio_size_and_frames(
    tiny_models, tmp_path, capsys, size, pixels
):
    source = write_video(tmp_path / "call.mp4", size=size)
    output = tmp_path / "out" / "call.mp4"
    assert segment(tiny_models["int8"], source, output, "blur") == 0
    captured = capsys.readouterr()
    got, expected = describe(output), describe(source)
    assert got["codec"] == "h264" and got["pixels"] == pixels
    assert got["size"] == size, "exactly the input's size, odd sides included"
    assert got["times"] == pytest.approx(expected["times"], abs=1e-3)
    assert got["audio"][0] == "aac"
    assert got["audio"][1:] == pytest.approx(expected["audio"][1:], abs=0.03), "audio in sync"
    assert "aac kept" in captured.out
    if pixels == "yuv444p":
        assert "odd side" in captured.err and "call.mp4" in captured.err
    else:
        assert captured.err == ""
    assert sorted(p.name for p in output.parent.iterdir()) == [
        ".backdrop-manifest.json",
        "call.mp4",
    ]
    with open(output, "rb") as handle:  # +faststart: the index (moov) comes before the data
        head = handle.read(4096)
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


@pytest.mark.parametrize(
    ("source_name", "output_name", "codecs"),
    [
        ("clip.webm", "out.mp4", ("h264", "aac")),  # opus re-encoded for browsers' mp4
        ("clip.mkv", "out.webm", ("vp9", "opus")),
        ("clip.mov", "out.mkv", ("h264", "aac")),  # PCM re-encoded
        ("clip.mp4", "out.mov", ("h264", "aac")),
    ],
)
def test_other_containers_in_and_out(tiny_models, tmp_path, source_name, output_name, codecs):
    source = write_video(tmp_path / source_name, size=(65, 49))
    output = tmp_path / output_name
    assert segment(tiny_models["int8"], source, output) == 0
    got, expected = describe(output), describe(source)
    assert (got["codec"], got["audio"][0]) == codecs
    assert got["size"] == (65, 49)
    assert len(got["times"]) == 20
    assert got["audio"][2] == pytest.approx(expected["audio"][2], abs=0.05)
    mask = got["first"].astype(int)  # the "mask" effect: the bright bar is person (white)
    assert mask[:, 5].mean() > 200 and mask[:, 50].mean() < 60


def test_a_truncated_video_is_kept_and_flagged(tiny_models, tmp_path, capsys):
    source = write_video(tmp_path / "cut.mp4")
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    output = tmp_path / "out.mp4"
    assert segment(tiny_models["int8"], source, output) == 1
    error = capsys.readouterr().err
    read = len(describe(output)["times"])
    assert 0 < read < 20
    assert error.count("\n") == 1 and str(source) in error
    assert f"decoded {read} of the 20 frames it declares" in error and str(output) in error


def test_files_that_are_not_whole_videos_are_one_line(tiny_models, tmp_path, capsys):
    index_at_end = write_video(tmp_path / "late.mp4", faststart=False)
    data = index_at_end.read_bytes()
    index_at_end.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("minutes of the meeting\n" * 20)
    audio_only = tmp_path / "voice.mkv"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), "flt", "mono")
        chunk.sample_rate = 16000
        container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    for source, reason in [
        (index_at_end, "cannot open video"),
        (text, "cannot open video"),
        (audio_only, "no video stream"),
    ]:
        output = tmp_path / "out.mp4"
        assert segment(tiny_models["int8"], source, output) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and reason in error and str(source) in error
        assert not output.exists()


def test_ctrl_c_leaves_no_half_written_output(tmp_path):
    source = write_video(tmp_path / "clip.mp4")
    output = tmp_path / "out.mp4"
    output.write_bytes(b"the previous result")
    seen = []

    def interrupted(frame):
        seen.append(frame)
        if len(seen) == 5:
            raise KeyboardInterrupt
        return frame

    with pytest.raises(KeyboardInterrupt):
        process_video(source, output, interrupted, progress=False)
    assert output.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]


def test_pictures_with_any_file_name(tiny_models, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    names = [b"\xff\xfe latin-1 caf\xe9.png", b"plain.png", "ümlaut.png".encode()]
    image = np.full((40, 60, 3), 30, np.uint8)
    image[:, 30:] = 230
    for name in names:
        _, png = cv2.imencode(".png", image)
        with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
            handle.write(png.tobytes())
    with open(os.path.join(os.fsencode(folder), b"\xfe broken.jpg"), "wb") as handle:
        handle.write(b"not a picture")
    output = tmp_path / "out"
    assert segment(tiny_models["float32"], folder, output) == 0
    said = capsys.readouterr().out
    assert "skipped" in said and "\\xfe broken.jpg" in said, "named, with its odd byte escaped"
    written = sorted(name for name in os.listdir(os.fsencode(output)) if not name.startswith(b"."))
    assert written == sorted(names), "each result keeps its picture's own bytes"
    with open(os.path.join(os.fsencode(output), names[0]), "rb") as handle:
        result = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    assert result[:, 45].mean() > 200 and result[:, 10].mean() < 60


def test_a_video_with_any_file_name(tiny_models, tmp_path, capsys):
    source = write_video(tmp_path / os.fsdecode(b"\xff call.mp4"), frames=5)
    output = tmp_path / os.fsdecode(b"\xfe out.mp4")
    assert segment(tiny_models["int8"], source, output) == 0
    assert "\\xfe out.mp4" in capsys.readouterr().out
    assert b"\xfe out.mp4" in os.listdir(os.fsencode(tmp_path))
    assert len(describe(output)["times"]) == 5


def test_a_camera_session_ended_by_ctrl_c_keeps_its_recording(tmp_path, monkeypatch):
    from backdrop.runtime import media

    class FakeCamera:  # stands in for cv2.VideoCapture(index)
        def __init__(self, index):
            self.frames = 0

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return True

        def get(self, prop):
            return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def read(self):
            self.frames += 1
            return True, np.full((48, 64, 3), 10 * self.frames, np.uint8)

        def release(self):
            pass

    def transform(frame):
        if frame[0, 0, 0] == 60:  # the sixth frame: the user presses Ctrl-C
            raise KeyboardInterrupt
        return frame

    monkeypatch.setattr(media.cv2, "VideoCapture", FakeCamera)
    monkeypatch.setattr(media, "_can_show", lambda: False)
    output = tmp_path / "session.mp4"
    assert media.process_camera(0, transform, output)["frames"] == 5
    got = describe(output)
    assert got["codec"] == "h264" and len(got["times"]) == 5
    assert got["times"][1] == pytest.approx(1 / 25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.mp4"]
