"""Frames in and out: images, folders of images, video files and cameras (OpenCV)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from backdrop.imageops import IMAGE_EXTENSIONS, PictureError, read_picture
from backdrop.outputs import temporary_path

# What `segment` can write: OpenCV encodes these picture and video formats.
WRITABLE_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
WRITABLE_VIDEOS = (".mp4", ".avi")


class MediaError(ValueError):
    """An input or output path that cannot be used; the message names the fix."""


def read_rgb(path: Path) -> np.ndarray:
    """A picture as `(H, W, 3)` uint8 RGB, upright (`imageops.read_picture`)."""
    try:
        return read_picture(path)
    except PictureError as error:
        raise MediaError(str(error)) from None


def write_rgb(path: Path, frame: np.ndarray) -> None:
    """Writes a picture through a temporary name, so it is never seen half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    if not cv2.imwrite(str(temporary), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
        temporary.unlink(missing_ok=True)
        raise MediaError(f"cannot write {path}; use one of {', '.join(WRITABLE_IMAGES)}")
    temporary.replace(path)


def check_output(path: Path, kind: str) -> None:
    """Refuses (before any work) an output that cannot hold what `kind` produces: a picture for
    "image", a video for "video" and "camera", a folder for "folder"."""
    suffix = path.suffix.lower()
    if kind == "image" and suffix not in WRITABLE_IMAGES:
        raise MediaError(
            f"--output {path}: a picture's result is a picture; use one of "
            f"{', '.join(WRITABLE_IMAGES)}"
        )
    if kind in ("video", "camera") and suffix not in WRITABLE_VIDEOS:
        raise MediaError(
            f"--output {path}: a {kind}'s result is a video; use {' or '.join(WRITABLE_VIDEOS)}"
        )
    if kind == "folder" and (path.is_file() or suffix in WRITABLE_IMAGES + WRITABLE_VIDEOS):
        raise MediaError(f"--output {path}: a folder's results go into a folder; give a folder")


def open_video(path: Path) -> tuple[cv2.VideoCapture, int, float, tuple[int, int]]:
    """Opens a video file; returns (capture, frame count, fps, (width, height))."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MediaError(f"cannot open video {path} (unreadable or unsupported codec)")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return capture, count, fps, size


def video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise MediaError(f"cannot write video {path}; use .mp4 or .avi")
    return writer


def process_video(
    source: Path,
    destination: Path,
    transform: Callable[[np.ndarray], np.ndarray],
    progress: bool = True,
) -> dict:
    """Applies `transform` to every frame; frame count, size and fps are kept.

    The output is written under a temporary name and renamed when complete.
    """
    capture, count, fps, size = open_video(source)
    temporary = temporary_path(destination)
    writer = open_writer(temporary, fps, size)
    frames, started = 0, time.perf_counter()
    try:
        for frame in tqdm(
            video_frames(capture), total=count or None, unit="frame", disable=not progress
        ):
            writer.write(cv2.cvtColor(transform(frame), cv2.COLOR_RGB2BGR))
            frames += 1
    finally:
        capture.release()
        writer.release()
    if frames == 0:
        temporary.unlink(missing_ok=True)
        raise MediaError(f"no frames could be decoded from {source}")
    temporary.replace(destination)
    elapsed = time.perf_counter() - started
    return {"frames": frames, "fps": fps, "size": size, "frames_per_second": frames / elapsed}


def image_outputs(source: Path, destination: Path) -> list[tuple[Path, Path]]:
    """`(picture, result)` pairs: one picture -> `destination`, a folder -> `destination/NAME.png`."""
    if not source.is_dir():
        return [(source, destination)]
    paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise MediaError(f"no images in {source} (looked for {', '.join(IMAGE_EXTENSIONS)})")
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
    """Live camera: shows a window where a display exists, records to `destination` if given."""
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
        for frame in video_frames(capture):
            result = transform(frame)
            if destination is not None:
                if writer is None:
                    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
                    writer = open_writer(destination, fps, (frame.shape[1], frame.shape[0]))
                writer.write(cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
            if show:
                cv2.imshow("backdrop (q to quit)", cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            frames += 1
            if max_frames and frames >= max_frames:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a live session; what was recorded is kept
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return {"frames": frames, "frames_per_second": frames / (time.perf_counter() - started)}


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
