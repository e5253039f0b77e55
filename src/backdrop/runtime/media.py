"""Frames in and out: pictures and folders of them, video files (PyAV: `video_reader`,
`video_writer`) and cameras (OpenCV capture)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from backdrop.imageops import IMAGE_EXTENSIONS, PictureError, printable, read_picture
from backdrop.outputs import temporary_path, write_atomic
from backdrop.runtime.video_reader import MediaError, VideoReader, upright_rgb
from backdrop.runtime.video_writer import VIDEO_FORMATS, VideoWriter, video_format

# What `segment` can write: OpenCV encodes these pictures; `video_writer` the videos.
WRITABLE_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
WRITABLE_VIDEOS = tuple(VIDEO_FORMATS)


def read_rgb(path: Path) -> np.ndarray:
    """A picture as `(H, W, 3)` uint8 RGB, upright (`imageops.read_picture`)."""
    try:
        return read_picture(path)
    except PictureError as error:
        raise MediaError(str(error)) from None


def write_rgb(path: Path, frame: np.ndarray) -> None:
    """Writes a picture through a temporary name, so it is never seen half-written. Encoded in
    memory and written by Python, so any file name works (OpenCV's own file writing crashes on a
    name that is not valid UTF-8)."""
    suffix = path.suffix.lower()
    ok = suffix in WRITABLE_IMAGES
    if ok:
        ok, encoded = cv2.imencode(suffix, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError(
            f"cannot write {printable(str(path))}; use one of {', '.join(WRITABLE_IMAGES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, encoded.tobytes())
    except BaseException:
        temporary_path(path).unlink(missing_ok=True)
        raise


def check_output(path: Path, kind: str) -> None:
    """Refuses (before any work) an output that cannot hold what `kind` produces: a picture for
    "image", a video for "video" and "camera", a folder for "folder"."""
    suffix = path.suffix.lower()
    shown = printable(str(path))
    if kind == "image" and suffix not in WRITABLE_IMAGES:
        raise MediaError(
            f"--output {shown}: a picture's result is a picture; use one of "
            f"{', '.join(WRITABLE_IMAGES)}"
        )
    if kind in ("video", "camera"):
        video_format(path)
    if kind == "folder" and (path.is_file() or suffix in WRITABLE_IMAGES + WRITABLE_VIDEOS):
        raise MediaError(f"--output {shown}: a folder's results go into a folder; give a folder")


def open_video(path: Path) -> tuple[VideoReader, int, float, tuple[int, int]]:
    """Opens a video file; returns (reader, frame count, fps, (width, height)).

    The count is what the file declares, or an estimate from its duration (0 if neither);
    the size is as coded, before any display rotation `video_frames` applies.

    Raises:
        MediaError: the file is missing, not a video, or truncated before its index.
    """
    reader = VideoReader(path)
    return reader, reader.count, reader.fps, reader.size


def video_frames(reader: VideoReader) -> Iterator[np.ndarray]:
    """The frames of `open_video`'s reader as upright `(H, W, 3)` uint8 RGB."""
    return reader.frames()


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> VideoWriter:
    """A `VideoWriter` at a constant `fps` (frames written without timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return VideoWriter(path, size, Fraction(fps).limit_denominator(1001))


def process_video(
    source: Path,
    destination: Path,
    transform: Callable[[np.ndarray], np.ndarray],
    progress: bool = True,
) -> dict:
    """Applies `transform` to every frame of a video file and writes the result.

    What a user expects of a video is kept: frame count, exact size (`VideoWriter` says how odd
    sizes are stored), each frame's timestamp (variable frame rates stay variable) and the
    first audio track, in sync (copied where the output container takes its codec, else
    re-encoded). Frames are turned upright as the file's rotation says. Other streams
    (subtitles, further audio tracks) are left out. The output's format follows its
    extension (`video_writer.VIDEO_FORMATS`: H.264 + AAC for .mp4, index at the front).

    The output is written under a temporary name and renamed when complete; an error or Ctrl-C
    deletes the temporary, so the final name is never half-written.

    A truncated or damaged input is not an error here: the frames that could be read are
    written and `stats["incomplete"]` says what was missing (one line naming the file, the
    frames read and the frames it declares); callers decide what that means (`segment` exits
    with an error after keeping the output).

    Returns:
        Stats: "frames", "declared_frames" (None when the file declares none), "fps", "size"
        `(width, height)`, "frames_per_second" (processing speed), "audio" (what became of the
        audio, or None), "notes" (lines about the output a user should know) and "incomplete".

    Raises:
        MediaError: the input is not a video or no frame of it could be decoded.
    """
    reader = VideoReader(source)
    temporary = temporary_path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    writer, waiting = None, []
    started = time.perf_counter()
    try:
        bar = tqdm(total=reader.count or None, unit="frame", disable=not progress)
        with bar:
            for item in reader.items(audio=True):
                if isinstance(item, av.Packet):  # audio, in file order
                    if writer is None:
                        waiting.append(item)  # until the first frame opens the writer
                    else:
                        writer.write_audio(item)
                    continue
                image = transform(upright_rgb(item))
                if writer is None:
                    size = (image.shape[1], image.shape[0])
                    rate = Fraction(reader.stream.average_rate or reader.fps)
                    rate = rate.limit_denominator(1001)
                    unit = reader.stream.time_base if reader.timestamps else None
                    writer = VideoWriter(temporary, size, rate, unit, reader.audio, reader.start)
                    for packet in waiting:
                        writer.write_audio(packet)
                writer.write(image, item.pts if reader.timestamps else None)
                bar.update()
        if writer is None:
            reason = f" ({reader.error})" if reader.error else ""
            raise MediaError(
                f"no frame of {printable(str(source))} could be decoded{reason}; check that it "
                "plays in a video player"
            )
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        temporary.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    temporary.replace(destination)
    elapsed = time.perf_counter() - started
    return {
        "frames": reader.decoded,
        "declared_frames": reader.declared,
        "fps": reader.fps,
        "size": size,
        "frames_per_second": reader.decoded / elapsed,
        "audio": writer.audio_note,
        "notes": [f"{printable(str(destination))}: {note}" for note in writer.notes],
        "incomplete": reader.shortfall(),
    }


def image_outputs(source: Path, destination: Path) -> list[tuple[Path, Path]]:
    """`(picture, result)` pairs: one picture -> `destination`, a folder -> `destination/NAME.png`
    (NAME keeps the picture's own bytes, valid UTF-8 or not)."""
    if not source.is_dir():
        return [(source, destination)]
    paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise MediaError(
            f"no images in {printable(str(source))} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return [(path, destination / f"{path.stem}.png") for path in paths]


def process_images(
    pairs: list[tuple[Path, Path]],
    transform: Callable[[np.ndarray], np.ndarray],
    progress: bool = True,
) -> dict:
    """Writes `transform(picture)` for each `(picture, result)` pair. A picture that cannot be
    read is skipped with its reason (in the returned "skipped"); none readable is an error."""
    started = time.perf_counter()
    skipped = []
    for path, output in tqdm(pairs, unit="img", disable=not progress or len(pairs) == 1):
        try:
            frame = read_rgb(path)
        except MediaError as error:
            if len(pairs) == 1:
                raise
            skipped.append(str(error))
            tqdm.write(f"skipped {error}")
            continue
        write_rgb(output, transform(frame))
    frames = len(pairs) - len(skipped)
    if frames == 0:
        raise MediaError(f"none of the {len(pairs)} pictures could be read (reasons above)")
    elapsed = time.perf_counter() - started
    return {"frames": frames, "frames_per_second": frames / elapsed, "skipped": skipped}


def process_camera(
    index: int,
    transform: Callable[[np.ndarray], np.ndarray],
    destination: Path | None,
    max_frames: int | None = None,
) -> dict:
    """Live camera: shows a window where a display exists, records to `destination` if given
    (through a temporary name, renamed when the session ends, Ctrl-C included)."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise MediaError(f"cannot open camera {index}")
    show = _can_show()
    if not show and destination is None:
        capture.release()
        raise MediaError("no display to show the camera in; pass --output FILE.mp4 to record")
    writer = None
    frames, started = 0, time.perf_counter()
    try:
        for frame in _camera_frames(capture):
            result = transform(frame)
            if destination is not None:
                if writer is None:
                    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
                    size = (frame.shape[1], frame.shape[0])
                    writer = open_writer(temporary_path(destination), fps, size)
                writer.write(result)
            if show:
                cv2.imshow("backdrop (q to quit)", cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            frames += 1
            if max_frames and frames >= max_frames:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a live session; what was recorded is kept
    except BaseException:
        if writer is not None:
            writer.abort()
            temporary_path(destination).unlink(missing_ok=True)
        raise
    finally:
        capture.release()
    if writer is not None:
        writer.close()
        temporary_path(destination).replace(destination)
    return {"frames": frames, "frames_per_second": frames / (time.perf_counter() - started)}


def _camera_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _can_show() -> bool:
    """Whether OpenCV has a GUI backend and a display (opencv-python-headless has none)."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("backdrop-probe")
        cv2.destroyWindow("backdrop-probe")
        return True
    except cv2.error:
        return False
