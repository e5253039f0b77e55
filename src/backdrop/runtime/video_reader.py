"""Video files in through PyAV (FFmpeg): whatever FFmpeg decodes, frame by frame with its
timestamps and audio packets, and how far reading got (a truncated file says so)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from backdrop.imageops import printable


class MediaError(ValueError):
    """An input or output path that cannot be used; the message names the fix."""


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as `(H, W, 3)` uint8 RGB, turned as its display matrix says (a phone held
    upright records sideways pixels and a rotation), in its own colour matrix and range."""
    image = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None)
    quarter_turns = round(frame.rotation / 90) % 4  # counterclockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


class VideoReader:
    """A video file's frames in order, and how far reading got.

    Attributes:
        stream: The first video stream; `audio` the first audio stream or None.
        fps: Average frame rate (variable-rate files keep their own timestamps regardless).
        timestamps: Whether frames' `pts` can be trusted (not in AVI).
        size: `(width, height)` as coded (before any display rotation).
        declared: Frames the container's index lists; None where it lists none (Matroska, WebM).
        duration: Seconds of video the file declares, or None.
        count: `declared`, or an estimate from `duration`; 0 if neither is known.
        start: Seconds where the timeline starts, when later than 0.
        decoded: Frames decoded so far; `damaged` packets the decoder refused; `error` the
            FFmpeg error that ended reading early, if one did.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        name = printable(str(path))
        try:
            self.container = av.open(os.fspath(path))
        except FileNotFoundError:
            raise MediaError(f"video {name} not found") from None
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise MediaError(
                f"cannot open video {name}: {reason}; it is not a video FFmpeg reads, or it is "
                "truncated before its index (re-export or re-download it)"
            ) from None
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(f"{name} has no video stream; give a video file")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        audio = self.container.streams.audio
        self.audio = audio[0] if audio else None
        self.fps = float(self.stream.average_rate or self.stream.guessed_rate or 30)
        # AVI has no timestamps (FFmpeg's guesses are wrong once frames are reordered): there a
        # frame's place is its index at the nominal rate.
        self.timestamps = self.container.format.name != "avi"
        self.size = (self.stream.codec_context.width, self.stream.codec_context.height)
        self.declared = self.stream.frames or None
        self.duration = self._declared_duration()
        estimate = round(self.duration * self.fps) if self.duration else 0
        self.count = self.declared or estimate
        self.decoded, self.damaged, self.error = 0, 0, None
        self.end = 0.0  # seconds: where the last decoded frame ends
        # Where the file's timeline starts, when later than 0 (MPEG-TS, a cut from a longer
        # recording); an earlier start (audio encoder priming) is the codec's own business.
        self.start = Fraction(max(0, self.container.start_time or 0), 1_000_000)

    def _declared_duration(self) -> float | None:
        if self.stream.duration and self.stream.time_base:
            return float(self.stream.duration * self.stream.time_base)
        tag = self.stream.metadata.get("DURATION", "")  # Matroska's per-stream statistics
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None

    def items(self, audio: bool = False) -> Iterator[av.VideoFrame | av.Packet]:
        """Decoded video frames and, if `audio`, the audio stream's packets, in file order. A
        demuxing error ends the file (in `error`); a packet the decoder refuses is skipped."""
        streams = [self.stream] + ([self.audio] if audio and self.audio else [])
        packets = self.container.demux(*streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as error:
                self.error = getattr(error, "strerror", None) or str(error)
                yield from self._decode(None)  # what the decoder still holds
                return
            if packet.stream.index == self.stream.index:
                yield from self._decode(packet)
            else:
                yield packet

    def _decode(self, packet: av.Packet | None) -> Iterator[av.VideoFrame]:
        try:
            frames = self.stream.codec_context.decode(packet)
        except av.FFmpegError as error:
            self.damaged += 1
            self.error = self.error or getattr(error, "strerror", None) or str(error)
            return
        for frame in frames:
            self.decoded += 1
            self.end = max(self.end, self.decoded / self.fps)
            if frame.pts is not None and frame.time_base:
                self.end = max(self.end, float(frame.pts * frame.time_base) + 1 / self.fps)
            yield frame

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame as upright `(H, W, 3)` uint8 RGB (`upright_rgb`)."""
        for frame in self.items():
            yield upright_rgb(frame)

    def shortfall(self) -> str | None:
        """One line naming the file when it was not read to its end (truncated or damaged),
        with how many frames were read of how many it declares; None when it was."""
        name = printable(str(self.path))
        if self.declared and self.decoded < self.declared:
            read = f"decoded {self.decoded} of the {self.declared} frames it declares"
        elif not self.declared and self.duration and self.end < self.duration - 2 / self.fps:
            read = (
                f"decoded {self.decoded} frames, {self.end:.2f} s of the {self.duration:.2f} s "
                "it declares"
            )
        elif self.error or self.damaged:
            read = f"decoded {self.decoded} frames"
        else:
            return None
        damaged = f"{self.damaged} damaged packets skipped; " if self.damaged else ""
        stopped = f" (FFmpeg: {self.error})" if self.error else ""
        return f"{name}: {read}; {damaged}the file looks truncated or damaged{stopped}"

    def close(self) -> None:
        self.container.close()

    release = close  # the name OpenCV's capture uses

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
