"""Supervise.ly Person in its native project layout (bitmap and polygon objects in JSON)."""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from backdrop.data.readers.base import DatasetError, Reader, printable, read_json
from backdrop.data.sample import Sample, SkipSample, read_image

DEFAULT_PERSON_CLASSES = ("person_bmp", "person_poly")
DEFAULT_IGNORE_CLASSES = ("neutral",)
# The most bytes a bitmap's PNG may hold per pixel of its image: 16-bit RGBA stored without
# compression, plus a row filter byte; beyond that the zlib stream is a bomb.
PNG_BYTES_PER_PIXEL = 9
PNG_SLACK = 1 << 20
# Points a polygon object may have per pixel of its image's height + width (drawing one costs
# its points times the image's rows; a real outline has far fewer).
MAX_POINTS_PER_SIDE = 16


def decode_bitmap(data: str, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Decodes a Supervise.ly `bitmap.data` string (base64 of zlib of a PNG) to a bool mask.

    The PNG is usually a 1-bit palette image with transparency: its palette indices are 0/1.
    Other modes use the alpha channel if present, else any nonzero value. `height` and `width`,
    the image's, bound the bitmap (and the bytes unpacked on the way) before anything is decoded.

    Raises:
        ValueError: the data is not base64 of zlib of a PNG, or the bitmap is larger than the
            image (or than Pillow decodes safely).
    """
    if not isinstance(data, str):
        raise ValueError(f"bitmap data is a {type(data).__name__}, not a string")
    pixels = height * width if height and width else Image.MAX_IMAGE_PIXELS or 1 << 26
    limit = PNG_BYTES_PER_PIXEL * pixels + PNG_SLACK
    try:
        unpacker = zlib.decompressobj()
        png = unpacker.decompress(base64.b64decode(data), limit)
        if unpacker.unconsumed_tail:
            raise ValueError(f"bitmap data unpacks to more than {limit} bytes")
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            if height and width and (image.height > height or image.width > width):
                raise ValueError(
                    f"the bitmap is {image.width}x{image.height}, larger than its "
                    f"{width}x{height} image"
                )
            image.load()
            if image.mode == "P":
                return np.asarray(image) > 0
            if image.mode in ("RGBA", "LA", "PA"):
                return np.asarray(image.getchannel("A")) > 0
            return np.asarray(image.convert("L")) > 0
    except (zlib.error, OSError, SyntaxError, EOFError, struct.error) as error:
        raise ValueError(f"bitmap data is not base64 of zlib of a PNG ({error})") from None
    except Image.DecompressionBombError as error:
        raise ValueError(str(error)) from None


def _points(points, height: int, width: int) -> list[tuple[float, float]]:
    """`[[x, y], ...]` checked: pairs of numbers near the image."""
    if not isinstance(points, list):
        raise ValueError("points are not a list")
    margin = max(height, width)
    checked = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))):
            raise ValueError("a point is not an [x, y] pair of numbers")
        x, y = point
        if not (-margin <= x <= width + margin and -margin <= y <= height + margin):
            raise ValueError(f"a point lies far outside the {width}x{height} image")
        checked.append((float(x), float(y)))
    return checked


def _is_number(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53


def _draw_polygon(canvas: Image.Image, points: list, value: int) -> None:
    if len(points) >= 3:
        ImageDraw.Draw(canvas).polygon(points, fill=value)


def rasterize_object(obj: dict, height: int, width: int) -> np.ndarray:
    """Rasterizes one annotation object to a `(height, width)` bool mask.

    Raises:
        SkipSample: the geometry type is not bitmap or polygon, or its data is malformed.
    """
    geometry = obj.get("geometryType") if isinstance(obj, dict) else None
    try:
        if geometry == "bitmap":
            bitmap_info = obj.get("bitmap")
            if not isinstance(bitmap_info, dict):
                raise ValueError("no bitmap object")
            origin = bitmap_info.get("origin")
            if not (isinstance(origin, list) and len(origin) == 2):
                raise ValueError("bitmap origin is not [x, y]")
            if not all(map(_is_number, origin)):
                raise ValueError("bitmap origin is not two numbers")
            x, y = (int(v) for v in origin)
            bitmap = decode_bitmap(bitmap_info.get("data"), height, width)
            mask = np.zeros((height, width), bool)
            # Clip to the image: bitmaps near the border may stick out.
            top, left = max(y, 0), max(x, 0)
            bottom = min(y + bitmap.shape[0], height)
            right = min(x + bitmap.shape[1], width)
            if bottom > top and right > left:
                mask[top:bottom, left:right] = bitmap[top - y : bottom - y, left - x : right - x]
            return mask
        if geometry == "polygon":
            points = obj.get("points")
            if not isinstance(points, dict):
                raise ValueError("no points object")
            interior = points.get("interior", [])
            if not isinstance(interior, list):
                raise ValueError("interior is not a list of polygons")
            exterior, *holes = (
                _points(ring, height, width) for ring in [points.get("exterior"), *interior]
            )
            count = len(exterior) + sum(map(len, holes))
            if count > MAX_POINTS_PER_SIDE * (height + width):
                raise ValueError(f"{count} points, more than a {width}x{height} image can use")
            canvas = Image.new("L", (width, height), 0)
            _draw_polygon(canvas, exterior, 1)
            for hole in holes:
                _draw_polygon(canvas, hole, 0)
            return np.asarray(canvas) > 0
    except ValueError as error:
        raise SkipSample(f"malformed {geometry} object: {error}") from None
    shown = printable(repr(geometry)[:40])
    raise SkipSample(f"unsupported geometry type {shown} (expected bitmap or polygon)")


def annotation_size(annotation) -> tuple[int, int]:
    """`(height, width)` an annotation JSON claims for its image.

    Raises:
        SkipSample: no positive integer size.height/size.width, or no objects list.
    """
    size = annotation.get("size") if isinstance(annotation, dict) else None
    height, width = (size.get("height"), size.get("width")) if isinstance(size, dict) else (0, 0)
    if not (
        all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width))
        and isinstance(annotation.get("objects"), list)
    ):
        raise SkipSample("annotation has no size.height/size.width or no objects list")
    return height, width


def rasterize_annotation(
    annotation: dict,
    person_classes: Iterable[str] = DEFAULT_PERSON_CLASSES,
    ignore_classes: Iterable[str] = DEFAULT_IGNORE_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """Turns one annotation JSON into `(person, ignore)` bool masks of its `size`.

    Objects are chosen by `classTitle` (the files' `classId`s do not match meta.json). Person
    pixels win over ignore pixels; objects of other classes are background. The reader checks
    `size` against the picture first: masks are never drawn at a size only the file claims.
    """
    height, width = annotation_size(annotation)
    person_classes, ignore_classes = set(person_classes), set(ignore_classes)
    person = np.zeros((height, width), bool)
    ignore = np.zeros((height, width), bool)
    for obj in annotation["objects"]:
        if not isinstance(obj, dict):
            raise SkipSample(f"an object is a {type(obj).__name__}, not an object")
        title = obj.get("classTitle")
        if not isinstance(title, str):
            continue  # no class: not a person
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
    polygons are their exterior minus interior holes. meta.json is not read (classes are chosen
    by title), so a broken one changes nothing.

    Each annotation is checked against its picture before anything is drawn: a `size` that is
    not the picture's, a bitmap larger than it (or whose zlib data unpacks past what such a PNG
    can hold), points far outside it or data of the wrong type skip the sample, naming the
    annotation file. The files name no paths: an image is found by its annotation's file name.
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
        annotation = read_json(annotation_path, SkipSample)
        try:
            height, width = annotation_size(annotation)
        except SkipSample as reason:
            raise SkipSample(printable(f"{annotation_path}: {reason}")) from None
        image_path = self.root / dataset / "img" / image_name
        image = read_image(image_path)
        if image.shape[:2] != (height, width):
            raise SkipSample(
                printable(
                    f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but its "
                    f"annotation {annotation_path} says {width}x{height}"
                )
            )
        try:
            person, ignore = rasterize_annotation(
                annotation, self.person_classes, self.ignore_classes
            )
        except SkipSample as reason:
            raise SkipSample(printable(f"{annotation_path}: {reason}")) from None
        name = f"{dataset}-{Path(image_name).stem}"
        return Sample(name, image, person.astype(np.float32), ignore, self.source)
