"""Video files out through PyAV (FFmpeg): H.264 (VP9 for .webm) at the exact frame size, with
a source's timestamps and audio."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from backdrop.imageops import printable
from backdrop.runtime.video_reader import MediaError


@dataclass(frozen=True)
class VideoFormat:
    """How one output extension is written: its container, video and audio encoders, and the
    input audio codecs it stores as they are (any other audio is re-encoded)."""

    container: str
    video: str
    audio: str
    copied_audio: tuple[str, ...]


# H.264 + AAC plays in every browser and player; .webm is the web's own VP9 + Opus. Not AVI:
# it cannot hold timestamps or reordered (B-) frames, and browsers do not play it.
VIDEO_FORMATS = {
    ".mp4": VideoFormat("mp4", "libx264", "aac", ("aac", "mp3")),
    ".m4v": VideoFormat("mp4", "libx264", "aac", ("aac", "mp3")),
    ".mov": VideoFormat("mov", "libx264", "aac", ("aac", "mp3")),
    ".mkv": VideoFormat("matroska", "libx264", "aac", ("aac", "mp3", "opus", "vorbis", "flac")),
    ".webm": VideoFormat("webm", "libvpx-vp9", "libopus", ("opus", "vorbis")),
}
# Constant quality high enough that a call recording loses no visible detail to the re-encode,
# at presets that keep encoding from outweighing segmentation: x264's veryfast (OBS's default)
# ran about 2x medium's speed on 720p (2 shared cores: 30 against 13-19 frames/s); VP9's own
# defaults are several times slower still, cpu-used 6 with row threads about 13 frames/s.
ENCODER_OPTIONS = {
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "30", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "6"},
}


def video_format(path: Path) -> VideoFormat:
    """The format `path`'s extension asks for, checked against this PyAV build's encoders.

    Raises:
        MediaError: an extension Backdrop does not write, or an encoder PyAV lacks.
    """
    chosen = VIDEO_FORMATS.get(path.suffix.lower())
    if chosen is None:
        raise MediaError(
            f"--output {printable(str(path))}: a video's result is a video, written as one of "
            f"{', '.join(VIDEO_FORMATS)}; give the output one of those extensions (.mp4 plays "
            "everywhere)"
        )
    for codec in (chosen.video, chosen.audio):
        try:
            av.Codec(codec, "w")
        except (av.FFmpegError, ValueError):  # UnknownCodecError is a ValueError
            raise MediaError(
                f"--output {printable(str(path))}: this PyAV build has no {codec} encoder for "
                f"{path.suffix}; use .mp4 (H.264 + AAC)"
            ) from None
    return chosen


class VideoWriter:
    """Writes `(H, W, 3)` uint8 RGB frames, and a source's audio, to a video file.

    The extension picks the format (`VIDEO_FORMATS`). The size is kept exactly: H.264 is
    yuv420p (BT.709), which every player decodes, when both sides are even; 4:2:0 cannot hold an
    odd side, so such a frame is written yuv444p instead (`notes` says so: some players, Safari
    and phones among them, refuse it; VP9 in .webm keeps odd sizes in 4:2:0).

    Args:
        path: The file; its extension picks the format.
        size: `(width, height)`.
        rate: Nominal frame rate (what encoders plan their bitrate by).
        time_base: Unit of the timestamps `write` receives; default `1 / rate`.
        audio: An input audio stream whose packets `write_audio` receives: stored as they are
            where the container takes its codec, otherwise re-encoded.
        start: Seconds taken off every timestamp given (a source's start), so the output
            starts at 0 as players expect.
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        rate: Fraction,
        time_base: Fraction | None = None,
        audio: av.audio.stream.AudioStream | None = None,
        start: Fraction = Fraction(0),
    ):
        chosen = video_format(path)
        width, height = size
        odd = width % 2 or height % 2
        self.pixel_format = "yuv444p" if odd and chosen.video == "libx264" else "yuv420p"
        self.notes = []  # what a user should know about the file, one line each
        if self.pixel_format == "yuv444p":
            self.notes.append(
                f"{width}x{height} has an odd side, which H.264 4:2:0 cannot hold; written as "
                "H.264 4:4:4, which some players (Safari, phones) do not play; for those, use a "
                ".webm output or even-sized input"
            )
        options = {"movflags": "+faststart"} if chosen.container in ("mp4", "mov") else {}
        self.container = av.open(os.fspath(path), "w", format=chosen.container, options=options)
        try:
            self.video = self.container.add_stream(chosen.video, rate=rate)
            self.time_base = time_base or 1 / Fraction(rate)
            context = self.video.codec_context
            context.width, context.height, context.pix_fmt = width, height, self.pixel_format
            context.time_base = self.video.time_base = self.time_base
            context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
            context.color_range = 1  # video (limited) range, as players assume
            context.options = ENCODER_OPTIONS.get(chosen.video, {})
            self.audio, self.copy_audio, self.audio_note, self.damaged_audio = None, False, None, 0
            if audio is not None:
                self._add_audio(audio, chosen)
        except BaseException:
            self.container.close()
            raise
        self.last_pts: int | None = None
        self.start = start

    def _add_audio(self, source: av.audio.stream.AudioStream, chosen: VideoFormat) -> None:
        codec = source.codec_context.codec.canonical_name  # "mp3", not its decoder "mp3float"
        if codec in chosen.copied_audio:
            self.audio = self.container.add_stream_from_template(source)
            self.audio.codec_context.codec_tag = "\0\0\0\0"  # the container picks its own tag
            self.copy_audio, self.audio_note = True, f"audio {codec} kept as it is"
            return
        rate = source.codec_context.sample_rate
        if rate not in (av.Codec(chosen.audio, "w").audio_rates or (rate,)):
            rate = 48000  # e.g. Opus, which takes 48 kHz and a few fractions of it
        layout = "mono" if source.codec_context.channels == 1 else "stereo"  # 5.1 is mixed down
        self.audio = self.container.add_stream(chosen.audio, rate=rate, layout=layout)
        self.audio_note = f"audio {codec} re-encoded as {self.audio.codec_context.name}"

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encodes one frame at `pts` (in `time_base`; default: one unit after the last). A
        timestamp that does not move forward is nudged one unit on, as encoders require."""
        if pts is not None:
            pts -= round(self.start / self.time_base)
        if self.last_pts is not None and (pts is None or pts <= self.last_pts):
            pts = self.last_pts + 1
        pts = pts or 0
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(
            format=self.pixel_format, dst_colorspace="itu709", dst_color_range="MPEG"
        )
        frame.pts, frame.time_base, self.last_pts = pts, self.time_base, pts
        self.container.mux(self.video.encode(frame))

    def write_audio(self, packet: av.Packet) -> None:
        """Stores (or re-encodes) one packet of the `audio` stream given to the constructor."""
        if self.audio is None:
            return
        # A damaged audio packet is a moment of silence, not the end of the video.
        try:
            if self.copy_audio:
                if packet.dts is not None and packet.size:  # demux ends with empty packets
                    shift = round(self.start / packet.time_base)
                    packet.dts -= shift
                    packet.pts = None if packet.pts is None else packet.pts - shift
                    packet.stream = self.audio
                    self.container.mux(packet)
                return
            for frame in packet.decode():
                # In samples: the encoder re-cuts audio into its own frame size, where
                # timestamps in a coarser unit (one per AVI MP3 frame, Matroska's milliseconds)
                # would collide.
                if frame.pts is not None and frame.time_base:
                    seconds = frame.pts * frame.time_base - self.start
                    frame.pts = round(seconds * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
                self.container.mux(self.audio.encode(frame))
        except av.FFmpegError:
            self.damaged_audio += 1

    def close(self) -> None:
        """Flushes the encoders and writes the container's index."""
        if self.damaged_audio:
            self.notes.append(f"{self.damaged_audio} damaged audio packets left out (silence)")
        self.container.mux(self.video.encode(None))
        if self.audio is not None and not self.copy_audio:
            self.container.mux(self.audio.encode(None))
        self.container.close()

    def abort(self) -> None:
        """Closes the file without flushing (the caller deletes it)."""
        try:
            self.container.close()
        except (av.FFmpegError, OSError):
            pass
