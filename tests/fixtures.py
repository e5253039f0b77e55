"""Tiny generated datasets, one maker per format, written in each reader's on-disk layout."""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def box_mask(height: int, width: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode is None else Image.fromarray(array).convert(
        mode
    ).save(path)
    return path


def make_portrait(root: Path, count: int = 4, size=(40, 56), seed: int = 0) -> Path:
    """images/NAME.png + masks/NAME.png (0/255); sample 0 has a half-size mask."""
    rng = np.random.default_rng(seed)
    height, width = size
    for i in range(count):
        save(root / "images" / f"p{i}.png", random_image(rng, height, width))
        mask = box_mask(height, width, 8, 8 + i, 32, 40) * 255
        if i == 0:
            mask = mask[::2, ::2]
        save(root / "masks" / f"p{i}.png", mask)
    return root


def make_voc(root: Path, seed: int = 0) -> Path:
    """Three images: a person with a void border, a person beside a bus, and no person."""
    rng = np.random.default_rng(seed)
    palette = np.zeros((256, 3), np.uint8)
    palette[15] = (192, 128, 128)
    palette[255] = (224, 224, 192)
    for i, name in enumerate(["2007_000001", "2007_000002", "2007_000003"]):
        labels = np.zeros((30, 44), np.uint8)
        if i < 2:
            labels[5:25, 10:30] = 15
            labels[4, 9:31] = 255
        if i > 0:
            labels[2:8, 32:42] = 6  # a bus
        image = Image.fromarray(labels, "P")
        image.putpalette(palette.flatten().tolist())
        (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        image.save(root / "SegmentationClass" / f"{name}.png")
        save(root / "JPEGImages" / f"{name}.jpg", random_image(rng, 30, 44))
    return root


def make_coco(root: Path, split: str = "train2017", seed: int = 0) -> Path:
    """Two person images (one polygon each, one also a crowd RLE) and one without a person."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in (1, 2, 3):
        name = f"{image_id:012d}.jpg"
        save(root / split / name, random_image(rng, 32, 48))
        images.append({"id": image_id, "file_name": name, "height": 32, "width": 48})
    annotations.append(
        {
            "id": 10,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [[4, 4, 20, 4, 20, 24, 4, 24]],
        }
    )
    annotations.append(
        {
            "id": 11,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [[30, 2, 44, 2, 44, 12, 30, 12]],
        }
    )
    crowd = box_mask(32, 48, 20, 2, 30, 6)
    annotations.append(
        {
            "id": 12,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": {"counts": uncompressed_rle(crowd), "size": [32, 48]},
        }
    )
    annotations.append(
        {
            "id": 13,
            "image_id": 3,
            "category_id": 2,
            "iscrowd": 0,
            "segmentation": [[1, 1, 10, 1, 10, 10]],
        }
    )
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    counts, current, run = [], 0, 0
    for value in mask.flatten(order="F"):
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    return counts + [run]


def encode_bitmap(mask: np.ndarray) -> str:
    """Supervise.ly bitmap data: a 1-bit palette PNG with transparency, zlib, base64."""
    image = Image.fromarray(mask.astype(np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0, bits=1)
    return base64.b64encode(zlib.compress(buffer.getvalue())).decode()


def make_supervisely(root: Path, seed: int = 0) -> Path:
    """ds1: a bitmap person at an origin plus a neutral polygon; ds2: a polygon with a hole."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(
        json.dumps(
            {
                "classes": [
                    {"id": 827, "title": "person_bmp", "shape": "bitmap"},
                    {"id": 828, "title": "person_poly", "shape": "polygon"},
                    {"id": 826, "title": "neutral", "shape": "polygon"},
                ]
            }
        )
    )
    bitmap = np.zeros((10, 6), np.uint8)
    bitmap[2:9, 1:5] = 1
    samples = {
        ("ds1", "a.png"): [
            {
                "classId": 1846336,
                "classTitle": "person_bmp",
                "geometryType": "bitmap",
                "bitmap": {"data": encode_bitmap(bitmap), "origin": [7, 3]},
            },
            {
                "classId": 1846337,
                "classTitle": "neutral",
                "geometryType": "polygon",
                "points": {"exterior": [[20, 20], [28, 20], [28, 26], [20, 26]], "interior": []},
            },
        ],
        ("ds2", "b.png"): [
            {
                "classId": 1846335,
                "classTitle": "person_poly",
                "geometryType": "polygon",
                "points": {
                    "exterior": [[2, 2], [25, 2], [25, 25], [2, 25]],
                    "interior": [[[10, 10], [15, 10], [15, 15], [10, 15]]],
                },
            },
        ],
    }
    for (dataset, image_name), objects in samples.items():
        save(root / dataset / "img" / image_name, random_image(rng, 30, 32))
        annotation = {"size": {"height": 30, "width": 32}, "tags": [], "objects": objects}
        (root / dataset / "ann").mkdir(parents=True, exist_ok=True)
        (root / dataset / "ann" / f"{image_name}.json").write_text(json.dumps(annotation))
    return root


def make_matting(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """fg/ + alpha/ (soft ramp) and a background folder of three images of other sizes."""
    rng = np.random.default_rng(seed)
    for i in range(2):
        save(root / "fg" / f"f{i}.png", random_image(rng, 24, 20))
        alpha = np.zeros((24, 20), np.uint8)
        alpha[4:20, 4:16] = 255
        alpha[4:20, 16] = 128  # a soft edge
        save(root / "alpha" / f"f{i}.png", alpha)
    backgrounds = root.parent / f"{root.name}_backgrounds"
    for i, size in enumerate([(30, 40), (50, 30), (24, 20)]):
        save(backgrounds / f"b{i}.jpg", random_image(rng, *size))
    return root, backgrounds


def make_davis(root: Path, frames: int = 3, seed: int = 0) -> Path:
    """Two sequences of `frames` frames, a box moving one pixel per frame."""
    rng = np.random.default_rng(seed)
    for sequence in ("walk", "wave"):
        for f in range(frames):
            save(root / "JPEGImages/480p" / sequence / f"{f:05d}.jpg", random_image(rng, 24, 40))
            mask = box_mask(24, 40, 4, 4 + f, 20, 20 + f) * 255
            save(root / "Annotations/480p" / sequence / f"{f:05d}.png", mask)
    return root
