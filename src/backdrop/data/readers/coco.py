"""MS-COCO instances JSON (2014 or 2017 layout): person instance masks via pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import Sample, SkipSample, read_image

CROWD_MODES = ("ignore", "person")


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
        try:
            data = json.loads(self.annotations.read_text(encoding="utf-8"))
            person_ids = {c["id"] for c in data["categories"] if c["name"] == "person"}
            self._images = {image["id"]: image for image in data["images"]}
            self._annotations: dict[int, list[dict]] = {}
            for annotation in data["annotations"]:
                if annotation["category_id"] in person_ids:
                    self._annotations.setdefault(annotation["image_id"], []).append(annotation)
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(
                f"coco: {self.annotations} is not a COCO instances file: {error}"
            ) from None
        if not person_ids:
            raise DatasetError(f"coco: {self.annotations} has no category named 'person'")

    def keys(self) -> list[str]:
        ids = sorted(self._images if self.negatives else self._annotations)
        return [str(image_id) for image_id in ids]

    def load(self, key: str) -> Sample:
        info = self._images[int(key)]
        height, width = info["height"], info["width"]
        image_path = self.images / info["file_name"]
        image = read_image(image_path)
        if image.shape[:2] != (height, width):
            raise SkipSample(
                f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but the annotations "
                f"say {width}x{height}"
            )
        person = np.zeros((height, width), bool)
        crowd = np.zeros((height, width), bool)
        for annotation in self._annotations.get(int(key), []):
            try:
                region = _decode_segmentation(annotation["segmentation"], height, width)
            except (KeyError, TypeError, ValueError, IndexError) as error:
                raise SkipSample(
                    f"{self.annotations}: annotation {annotation.get('id')} of {image_path.name} "
                    f"has a malformed segmentation ({error})"
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


def _decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Polygons, uncompressed RLE or compressed RLE -> `(height, width)` bool mask."""
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(segmentation, list):
            polygons = [p for p in segmentation if len(p) >= 6]
            if not polygons:
                return np.zeros((height, width), bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        return mask_utils.decode(rle).astype(bool)
