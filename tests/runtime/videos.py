"""Tiny test videos written with PyAV (a moving bar and a tone, as a call recording has
them), and what a player sees in a video file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = {  # what test inputs are written with, by extension
    ".mp4": ("libx264", "aac", 44100),
    ".mov": ("libx264", "pcm_s16le", 16000),
    ".mkv": ("libx264", "aac", 44100),
    ".webm": ("libvpx-vp9", "libopus", 48000),
}


def write_video(
    path: Path,
    frames: int = 20,
    size: tuple[int, int] = (64, 48),
    fps: int = 15,
    times: list[float] | None = None,
    rotation: int = 0,
    faststart: bool = True,
) -> Path:
    """A bright bar moving over a dark frame, with a 440 Hz tone interleaved as a recording
    has it. `times` (seconds) gives frames their own timestamps (a variable frame rate)."""
    video_codec, audio_codec, sample_rate = CODECS[path.suffix]
    options = {"movflags": "+faststart"} if faststart and path.suffix == ".mp4" else {}
    times = times or [index / fps for index in range(frames)]
    unit = Fraction(1, 1000)
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream(video_codec, rate=fps)
        odd = size[0] % 2 or size[1] % 2
        pixels = "yuv444p" if odd and video_codec == "libx264" else "yuv420p"
        video.width, video.height, video.pix_fmt = *size, pixels
        video.codec_context.time_base = video.time_base = unit
        if rotation:
            video.set_display_rotation(rotation)
        audio = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        first = round(times[0] * sample_rate)  # the tone starts with the first frame
        written = first
        for index, seconds in enumerate(times):
            image = np.full((size[1], size[0], 3), 30, np.uint8)
            image[:, index * 3 : index * 3 + 20] = 230
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(seconds * 1000), unit
            container.mux(video.encode(frame))
            end = round((times[index + 1] if index + 1 < len(times) else seconds + 1 / fps) * 1000)
            samples = np.arange(written, end * sample_rate // 1000)
            tone = (0.3 * np.sin(2 * np.pi * 440 * samples / sample_rate)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = sample_rate, written
            chunk.time_base = Fraction(1, sample_rate)
            container.mux(audio.encode(chunk))
            written += len(samples)
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def describe(path: Path) -> dict:
    """What a player sees: codec, pixel format, size, frame times, audio span."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video))
        result = {
            "codec": video.codec_context.name,
            "pixels": video.codec_context.pix_fmt,
            "size": (frames[0].width, frames[0].height),
            "times": [float(frame.pts * frame.time_base) for frame in frames],
            "first": frames[0].to_ndarray(format="rgb24"),
            "audio": None,
        }
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            packets = [p for p in container.demux(audio) if p.pts is not None]
            start = float(packets[0].pts * packets[0].time_base)
            end = float((packets[-1].pts + packets[-1].duration) * packets[-1].time_base)
            result["audio"] = (audio.codec_context.codec.canonical_name, start, end)
    return result
