"""Procedural person-like figures over varied backgrounds: a bundled dataset that needs no download.

Each figure has a head, hair, neck, shoulders and torso and two arms in a random pose, in random
colours, sizes and positions, over a gradient, a texture, random shapes or noise. Figures are drawn
at 4x and area-downsampled, so mask edges are soft like real matting data.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from backdrop.outputs import write_atomic

SUPERSAMPLE = 4


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    kind = rng.integers(4)
    if kind == 0:  # linear gradient between two colours
        start, end = rng.integers(0, 256, (2, 3))
        angle = rng.uniform(0, np.pi)
        y, x = np.mgrid[0:height, 0:width]
        t = (np.cos(angle) * x / width + np.sin(angle) * y / height) / 2 + 0.25
        image = start + np.clip(t, 0, 1)[..., None] * (end - start)
    elif kind == 1:  # texture: blurred noise at a random scale, tinted
        cells = rng.integers(4, 24)
        noise = rng.random((cells, cells, 3)).astype(np.float32)
        image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 255
    elif kind == 2:  # shapes on a flat colour
        image = np.full((height, width, 3), rng.integers(0, 256, 3), np.float64)
        for _ in range(rng.integers(3, 12)):
            colour = rng.integers(0, 256, 3).tolist()
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            if rng.random() < 0.5:
                cv2.circle(image, centre, int(rng.integers(4, width // 3)), colour, -1)
            else:
                corner = (int(rng.integers(width)), int(rng.integers(height)))
                cv2.rectangle(image, centre, corner, colour, -1)
    else:  # coloured noise
        image = rng.normal(rng.integers(40, 216), rng.uniform(10, 60), (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _figure(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one figure at SUPERSAMPLE x size; returns (colour layer, 0/255 mask)."""
    h, w = height * SUPERSAMPLE, width * SUPERSAMPLE
    colour = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    scale = rng.uniform(0.55, 1.0) * min(h, w)
    cx = int(w * rng.uniform(0.3, 0.7))
    head_y = int(h * rng.uniform(0.2, 0.45))
    head = (int(scale * rng.uniform(0.09, 0.13)), int(scale * rng.uniform(0.12, 0.16)))
    skin = (rng.uniform(0.3, 1.0) * np.array([255, 205, 170])).astype(int).tolist()
    shirt = rng.integers(0, 256, 3).tolist()
    hair = (rng.uniform(0.05, 0.7) * np.array([200, 150, 100])).astype(int).tolist()
    shoulder_y = head_y + int(head[1] * 1.6)
    half = int(scale * rng.uniform(0.22, 0.32))

    def draw(shape, paint, **kw):
        shape(colour, color=paint, **kw)
        shape(mask, color=255, **kw)

    torso = np.array(
        [
            [cx - half, shoulder_y],
            [cx + half, shoulder_y],
            [cx + int(half * 1.1), h],
            [cx - int(half * 1.1), h],
        ],
        np.int32,
    )
    draw(cv2.fillPoly, shirt, pts=[torso])
    for side in (-1, 1):  # rounded shoulders and an arm in a random pose
        shoulder = (cx + side * half, shoulder_y + half // 3)
        draw(cv2.circle, shirt, center=shoulder, radius=half // 3, thickness=-1)
        angle = rng.uniform(-0.4, 1.3)
        length = scale * rng.uniform(0.3, 0.5)
        elbow = (
            int(shoulder[0] + side * np.sin(angle) * length),
            int(shoulder[1] + np.cos(angle) * length),
        )
        draw(cv2.line, shirt, pt1=shoulder, pt2=elbow, thickness=max(2, half // 3))
        bend = angle + rng.uniform(-1.5, 1.5)
        hand = (int(elbow[0] + side * np.sin(bend) * length), int(elbow[1] + np.cos(bend) * length))
        draw(cv2.line, skin, pt1=elbow, pt2=hand, thickness=max(2, half // 4))
    draw(
        cv2.rectangle,
        skin,
        pt1=(cx - head[0] // 2, head_y),
        pt2=(cx + head[0] // 2, shoulder_y + 2),
        thickness=-1,
    )  # neck
    draw(
        cv2.ellipse,
        skin,
        center=(cx, head_y),
        axes=head,
        angle=float(rng.uniform(-10, 10)),
        startAngle=0,
        endAngle=360,
        thickness=-1,
    )
    hair_axes = (int(head[0] * rng.uniform(1.0, 1.3)), int(head[1] * rng.uniform(0.6, 1.1)))
    draw(
        cv2.ellipse,
        hair,
        center=(cx, head_y - head[1] // 4),
        axes=hair_axes,
        angle=0.0,
        startAngle=180,
        endAngle=360,
        thickness=-1,
    )
    return colour, mask


def generate_sample(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic example.

    Returns:
        `(H, W, 3)` uint8 RGB image and `(H, W)` uint8 mask, 0..255 (soft at the edges).
    """
    rng = np.random.default_rng(seed)
    background = _background(rng, height, width)
    colour, mask = _figure(rng, height, width)
    size = (width, height)
    colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(mask, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    # Colour was drawn over black: divide by coverage to undo the dark fringe.
    colour = colour / np.maximum(alpha, 1e-3)[..., None]
    image = alpha[..., None] * colour + (1 - alpha[..., None]) * background
    image += rng.normal(0, 3, image.shape)  # sensor noise
    return np.clip(image, 0, 255).astype(np.uint8), np.rint(alpha * 255).astype(np.uint8)


def write_synthetic_dataset(
    destination: str | Path, count: int = 300, height: int = 192, width: int = 192, seed: int = 0
) -> Path:
    """Writes `count` samples as a Portrait folder (images/NAME.jpg, masks/NAME.png)."""
    destination = Path(destination)
    (destination / "images").mkdir(parents=True, exist_ok=True)
    (destination / "masks").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, mask = generate_sample(seed * 1_000_003 + index, height, width)
        name = f"synthetic-{index:05d}"
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        ok_mask, png = cv2.imencode(".png", mask)
        assert ok and ok_mask
        write_atomic(destination / "masks" / f"{name}.png", png.tobytes())
        write_atomic(destination / "images" / f"{name}.jpg", jpeg.tobytes())
    return destination


def write_backgrounds(
    destination: str | Path, count: int = 40, height: int = 240, width: int = 320, seed: int = 1
) -> Path:
    """Writes `count` person-free backgrounds (for background replacement) as JPEGs."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        image = _background(rng, height, width)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok
        write_atomic(destination / f"background-{index:04d}.jpg", jpeg.tobytes())
    return destination


def write_clip(
    path: str | Path,
    frames: int = 90,
    height: int = 240,
    width: int = 320,
    fps: float = 15.0,
    seed: int = 4,
) -> Path:
    """A clip of one figure swaying across a still background (for the segment demo)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    background = _background(rng, height, width).astype(np.float32)
    figure, mask = _figure(rng, height, width)
    size = (width, height)
    colour = cv2.resize(figure, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(mask, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    colour /= np.maximum(alpha, 1e-3)[..., None]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for index in range(frames):
        shift = np.float32([[1, 0, 0.12 * width * np.sin(2 * np.pi * index / frames)], [0, 1, 0]])
        moved_colour = cv2.warpAffine(colour, shift, size)
        moved_alpha = cv2.warpAffine(alpha, shift, size)[..., None]
        frame = moved_alpha * moved_colour + (1 - moved_alpha) * background
        frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
