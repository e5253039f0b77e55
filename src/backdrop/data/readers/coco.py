"""MS-COCO instances JSON (2014 or 2017 layout): person instance masks via pycocotools."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np

from backdrop.data.readers.base import DatasetError, Reader, inside, printable, read_json
from backdrop.data.sample import Sample, SkipSample, read_image

CROWD_MODES = ("ignore", "person")
# A polygon's edges, walked pixel by pixel, may be at most this many times the image's
# perimeter long (pycocotools allocates per pixel walked; a real outline is a few times it).
MAX_OUTLINE = 64


class COCOReader(Reader):
    """MS-COCO instance annotations.

    ```
    ROOT/
      annotations/instances_train2017.json   (or instances_train2014.json)
      train2017/000000000009.jpg             (or images/train2017/)
    ```
    Person: the union of every non-crowd annotation of the category named "person" (polygons or
    RLE, rasterized by pycocotools). Crowd regions (`iscrowd=1`) become the ignore mask
    (`crowd="ignore"`, the default: their outlines are rough) or person (`crowd="person"`).
    Images without any person annotation are left out unless `negatives` is set.

    The annotations file is checked before anything is drawn: one whose structure is wrong (not
    JSON, no images/annotations/categories lists, an id that is not an integer) is a
    `DatasetError` naming it; an image whose `file_name` is absolute or climbs out with `..`, or
    whose segmentation is malformed (coordinates far outside the image, an RLE whose size or
    counts disagree with the image), is skipped naming it. Masks are drawn at the size of the
    picture that is there, never at a size the file claims. Symlinks in the image folder are
    followed (see `Reader`).
    """

    source = "coco"
    MASKS = "instance masks of the person category (crowd as set)"

    def __init__(
        self,
        root: str | Path,
        split: str = "train2017",
        negatives: bool = False,
        crowd: str = "ignore",
        annotations: str | Path | None = None,
    ):
        super().__init__(root)
        if crowd not in CROWD_MODES:
            raise DatasetError(f"coco: crowd must be one of {CROWD_MODES}, got {crowd!r}")
        self.annotations = (
            Path(annotations)
            if annotations
            else self.root / "annotations" / f"instances_{split}.json"
        )
        candidates = [self.root / split, self.root / "images" / split, self.root / "images"]
        self.images = next((path for path in candidates if path.is_dir()), candidates[0])
        if not self.annotations.is_file():
            raise DatasetError(
                f"coco: {self.annotations} not found; expected ROOT/annotations/"
                f"instances_{split}.json and ROOT/{split}/*.jpg (choose the split with --coco-split)"
            )
        self.split, self.negatives, self.crowd = split, negatives, crowd
        data = read_json(self.annotations, DatasetError)
        try:
            person_ids, self._images, self._annotations = _index(data)
        except ValueError as error:
            raise DatasetError(
                printable(f"coco: {self.annotations} is not a COCO instances file: {error}")
            ) from None
        if not person_ids:
            raise DatasetError(f"coco: {self.annotations} has no category named 'person'")
        for image_id in sorted(set(self._annotations) - set(self._images)):
            self.skipped.append(
                (
                    printable(str(self.annotations)),
                    printable(
                        f"{self.annotations}: person annotations name image_id {image_id}, "
                        "which is not in its images list"
                    ),
                )
            )

    def keys(self) -> list[str]:
        ids = self._images if self.negatives else set(self._annotations) & set(self._images)
        return [str(image_id) for image_id in sorted(ids)]

    def load(self, key: str) -> Sample:
        info = self._images[int(key)]
        where = f"{self.annotations}: image {key}"
        image_path = inside(self.images, info.get("file_name"), self.annotations)
        height, width = info.get("height"), info.get("width")
        if not (_is_int(height) and _is_int(width) and height > 0 and width > 0):
            raise SkipSample(printable(f"{where} has no positive integer height and width"))
        if not _is_file(image_path):
            raise SkipSample(
                printable(
                    f"{where} names {info['file_name'][:200]!r}, which is not a file in "
                    f"{self.images}"
                )
            )
        image = read_image(image_path)
        if image.shape[:2] != (height, width):
            raise SkipSample(
                printable(
                    f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but "
                    f"{self.annotations} says {width}x{height}"
                )
            )
        person = np.zeros((height, width), bool)
        crowd = np.zeros((height, width), bool)
        for annotation in self._annotations.get(int(key), []):
            try:
                region = decode_segmentation(annotation.get("segmentation"), height, width)
            except ValueError as error:
                raise SkipSample(
                    printable(
                        f"{self.annotations}: annotation {str(annotation.get('id'))[:40]} of "
                        f"{image_path.name} has a malformed segmentation ({error})"
                    )
                ) from None
            if annotation.get("iscrowd", 0) and self.crowd == "ignore":
                crowd |= region
            else:
                person |= region
        name = Path(info["file_name"]).stem
        ignore = crowd & ~person
        return Sample(name, image, person.astype(np.float32), ignore, self.source)

    def input_paths(self) -> list[Path]:
        return [self.images, self.annotations]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system
        return False


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _index(data) -> tuple[set[int], dict[int, dict], dict[int, list[dict]]]:
    """`(person category ids, images by id, person annotations by image id)` of a parsed
    instances file. Raises ValueError naming the first entry of the wrong structure."""
    if not isinstance(data, dict):
        raise ValueError(f"its top level is a {type(data).__name__}, not an object")
    for field in ("images", "annotations", "categories"):
        if not isinstance(data.get(field), list):
            raise ValueError(f"it has no {field!r} list")
    person_ids = set()
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            raise ValueError(f"categories[{index}] is not an object with an integer id")
        if category.get("name") == "person":
            person_ids.add(category["id"])
    images = {}
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            raise ValueError(f"images[{index}] is not an object with an integer id")
        images[image["id"]] = image
    annotations: dict[int, list[dict]] = {}
    for index, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict) or not (
            _is_int(annotation.get("image_id")) and _is_int(annotation.get("category_id"))
        ):
            raise ValueError(
                f"annotations[{index}] is not an object with an integer image_id and category_id"
            )
        if annotation["category_id"] in person_ids:
            annotations.setdefault(annotation["image_id"], []).append(annotation)
    return person_ids, images, annotations


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Polygons, uncompressed RLE or compressed RLE -> `(height, width)` bool mask.

    Everything is checked before pycocotools sees it (it trusts sizes and counts): an RLE must be
    of exactly this size, and a polygon's points near the image.

    Raises:
        ValueError: the segmentation is malformed; the message says how.
    """
    if isinstance(segmentation, list):
        polygons = _polygons(segmentation, height, width)
        if not polygons:
            return np.zeros((height, width), bool)
        from pycocotools import mask as mask_utils  # here: only COCO polygons need it

        with contextlib.redirect_stdout(io.StringIO()):
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
            return mask_utils.decode(rle).astype(bool)
    if not isinstance(segmentation, dict):
        raise ValueError(f"a {type(segmentation).__name__}, neither polygons nor RLE")
    size = segmentation.get("size")
    if not (isinstance(size, list) and size == [height, width]):
        raise ValueError(f"RLE size {str(size)[:40]} is not the image's [{height}, {width}]")
    counts = segmentation.get("counts")
    if isinstance(counts, str):
        counts = compressed_counts(counts)
    elif not (isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts)):
        raise ValueError("RLE counts are neither a string nor a list of non-negative integers")
    if sum(counts) != height * width:
        raise ValueError(f"RLE counts cover {sum(counts)} pixels, not {height}x{width}")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate, background first
    return np.repeat(values, counts).reshape(width, height).T  # column-major, as COCO's


def _polygons(segmentation: list, height: int, width: int) -> list[list[float]]:
    """The polygons of at least 3 points, checked: numbers, x/y pairs, near the image."""
    polygons = []
    margin = max(height, width)
    for polygon in segmentation:
        if not isinstance(polygon, list) or not all(map(_is_coordinate, polygon)):
            raise ValueError("a polygon is not a list of numbers")
        if len(polygon) % 2:
            raise ValueError("a polygon has an odd number of coordinates")
        if len(polygon) < 6:
            continue
        points = np.asarray(polygon, np.float64).reshape(-1, 2)
        low, high = points.min(axis=0), points.max(axis=0)
        if (low < -margin).any() or high[0] > width + margin or high[1] > height + margin:
            raise ValueError(f"a polygon point lies far outside the {width}x{height} image")
        steps = np.abs(np.diff(points, axis=0, append=points[:1])).max(axis=1).sum()
        if steps > MAX_OUTLINE * 2 * (height + width):
            raise ValueError(f"a polygon's outline is {steps:.0f} pixels long")
        polygons.append(polygon)
    return polygons


def _is_coordinate(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value) and abs(value) < 2**53  # exact as a float


def compressed_counts(text: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string (pycocotools' `rleFrString`, in Python, so
    that a malformed string is refused instead of read past its end).

    Raises:
        ValueError: a character outside the alphabet, a string ending inside a number, or a
            negative run length.
    """
    counts: list[int] = []
    data = text.encode("utf-8")
    position = 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position == len(data):
                raise ValueError("the RLE string ends inside a number")
            digit = data[position] - 48
            if not 0 <= digit < 64 or shift > 60:
                raise ValueError("the RLE string is not COCO's compressed RLE")
            value |= (digit & 0x1F) << shift
            more = digit & 0x20
            position, shift = position + 1, shift + 5
            if not more and digit & 0x10:
                value -= 1 << shift  # the sign bit: extend it
        if len(counts) > 2:
            value += counts[-2]  # runs after the second are stored as differences
        if value < 0:
            raise ValueError("the RLE string holds a negative run length")
        counts.append(value)
    return counts
