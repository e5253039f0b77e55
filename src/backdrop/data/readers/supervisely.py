"""Supervise.ly Person in its native project layout (bitmap and polygon objects in JSON)."""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import Sample, SkipSample, read_image

DEFAULT_PERSON_CLASSES = ("person_bmp", "person_poly")
DEFAULT_IGNORE_CLASSES = ("neutral",)


def decode_bitmap(data: str) -> np.ndarray:
    """Decodes a Supervise.ly `bitmap.data` string (base64 of zlib of a PNG) to a bool mask.

    The PNG is usually a 1-bit palette image with transparency: its palette indices are 0/1.
    Other modes use the alpha channel if present, else any nonzero value.
    """
    png = zlib.decompress(base64.b64decode(data))
    with Image.open(io.BytesIO(png)) as image:
        if image.mode == "P":
            return np.asarray(image) > 0
        if image.mode in ("RGBA", "LA"):
            return np.asarray(image.getchannel("A")) > 0
        return np.asarray(image.convert("L")) > 0


def _draw_polygon(canvas: Image.Image, points: list, value: int) -> None:
    if len(points) >= 3:
        ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=value)


def rasterize_object(obj: dict, height: int, width: int) -> np.ndarray:
    """Rasterizes one annotation object to a `(height, width)` bool mask.

    Raises:
        SkipSample: the geometry type is not bitmap or polygon, or its data is malformed.
    """
    geometry = obj.get("geometryType")
    try:
        if geometry == "bitmap":
            bitmap = decode_bitmap(obj["bitmap"]["data"])
            x, y = (int(v) for v in obj["bitmap"]["origin"])
            mask = np.zeros((height, width), bool)
            # Clip to the image: bitmaps near the border may stick out.
            top, left = max(y, 0), max(x, 0)
            bottom = min(y + bitmap.shape[0], height)
            right = min(x + bitmap.shape[1], width)
            if bottom > top and right > left:
                mask[top:bottom, left:right] = bitmap[top - y : bottom - y, left - x : right - x]
            return mask
        if geometry == "polygon":
            canvas = Image.new("L", (width, height), 0)
            _draw_polygon(canvas, obj["points"]["exterior"], 1)
            for hole in obj["points"].get("interior", []):
                _draw_polygon(canvas, hole, 0)
            return np.asarray(canvas) > 0
    except (KeyError, TypeError, ValueError, OSError, zlib.error) as error:
        raise SkipSample(f"malformed {geometry} object: {type(error).__name__}: {error}") from None
    raise SkipSample(f"unsupported geometry type {geometry!r} (expected bitmap or polygon)")


def rasterize_annotation(
    annotation: dict,
    person_classes: Iterable[str] = DEFAULT_PERSON_CLASSES,
    ignore_classes: Iterable[str] = DEFAULT_IGNORE_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """Turns one annotation JSON into `(person, ignore)` bool masks of its `size`.

    Objects are chosen by `classTitle` (the files' `classId`s do not match meta.json). Person
    pixels win over ignore pixels; objects of other classes are background.
    """
    try:
        height, width = int(annotation["size"]["height"]), int(annotation["size"]["width"])
        objects = annotation["objects"]
    except (KeyError, TypeError, ValueError):
        raise SkipSample("annotation has no size.height/size.width or no objects list") from None
    person_classes, ignore_classes = set(person_classes), set(ignore_classes)
    person = np.zeros((height, width), bool)
    ignore = np.zeros((height, width), bool)
    for obj in objects:
        title = obj.get("classTitle")
        if title in person_classes:
            person |= rasterize_object(obj, height, width)
        elif title in ignore_classes:
            ignore |= rasterize_object(obj, height, width)
    return person, ignore & ~person


class SuperviselyReader(Reader):
    """Supervise.ly Person, native project layout.

    ```
    ROOT/
      meta.json
      ds1/img/pexels-photo-1.png
      ds1/ann/pexels-photo-1.png.json
      ds2/...
    ```
    Person: objects whose `classTitle` is in `person_classes` (default person_bmp, person_poly);
    `neutral` objects become the ignore mask. Bitmaps are placed at their `origin` [x, y];
    polygons are their exterior minus interior holes.
    """

    source = "supervisely"
    MASKS = "bitmap and polygon objects of the person classes"

    def __init__(
        self,
        root: str | Path,
        person_classes: Iterable[str] = DEFAULT_PERSON_CLASSES,
        ignore_classes: Iterable[str] = DEFAULT_IGNORE_CLASSES,
    ):
        super().__init__(root)
        self.person_classes = tuple(person_classes)
        self.ignore_classes = tuple(ignore_classes)
        self.datasets = sorted(p.parent for p in self.root.glob("*/ann") if p.is_dir())
        if not self.datasets:
            raise DatasetError(
                f"supervisely: no dataset folders in {self.root}; expected "
                f"{self.root}/meta.json and {self.root}/DATASET/ann/IMAGE.json with "
                f"{self.root}/DATASET/img/IMAGE"
            )

    def keys(self) -> list[str]:
        keys = []
        for dataset in self.datasets:
            annotations = sorted((dataset / "ann").glob("*.json"))
            if not annotations:
                self.skipped.append((str(dataset / "ann"), "no annotation files (*.json)"))
            keys += [f"{dataset.name}/{path.name[: -len('.json')]}" for path in annotations]
        return keys

    def load(self, key: str) -> Sample:
        dataset, image_name = key.split("/", 1)
        annotation_path = self.root / dataset / "ann" / f"{image_name}.json"
        try:
            annotation = json.loads(annotation_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SkipSample(f"{annotation_path}: malformed JSON ({error})") from None
        try:
            person, ignore = rasterize_annotation(
                annotation, self.person_classes, self.ignore_classes
            )
        except SkipSample as reason:
            raise SkipSample(f"{annotation_path}: {reason}") from None
        image_path = self.root / dataset / "img" / image_name
        image = read_image(image_path)
        if image.shape[:2] != person.shape:
            raise SkipSample(
                f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but its annotation "
                f"says {person.shape[1]}x{person.shape[0]}"
            )
        name = f"{dataset}-{Path(image_name).stem}"
        return Sample(name, image, person.astype(np.float32), ignore, self.source)
