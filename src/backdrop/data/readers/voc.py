"""PASCAL VOC 2012 semantic segmentation (JPEGImages + SegmentationClass palette PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import Sample, SkipSample, read_image

PERSON_INDEX = 15
VOID_INDEX = 255


class VOCReader(Reader):
    """PASCAL VOC 2012 (or any VOC-layout export such as labelme's).

    ```
    ROOT/                         (VOC2012/, or VOCdevkit/ holding VOC2012/)
      JPEGImages/2011_000003.jpg
      SegmentationClass/2011_000003.png    palette PNG, read as class indices
      ImageSets/Segmentation/train.txt     optional list, chosen with image_set
    ```
    Person: class index 15. Index 255 (the void border) becomes the ignore mask. Images without a
    person pixel are skipped unless `negatives` is set.
    """

    source = "voc"
    MASKS = "class ids of SegmentationClass (15 = person, 255 = ignore)"

    def __init__(self, root: str | Path, image_set: str | None = None, negatives: bool = False):
        super().__init__(root)
        if not (self.root / "JPEGImages").is_dir() and (self.root / "VOC2012").is_dir():
            self.root = self.root / "VOC2012"
        self.images = self.root / "JPEGImages"
        self.labels = self.root / "SegmentationClass"
        if not self.images.is_dir() or not self.labels.is_dir():
            raise DatasetError(
                f"voc: expected {self.root}/JPEGImages/*.jpg and "
                f"{self.root}/SegmentationClass/*.png (the VOC2012 folder of VOCdevkit)"
            )
        self.image_set = image_set
        self.negatives = negatives

    def keys(self) -> list[str]:
        if self.image_set is None:
            names = sorted(path.stem for path in self.labels.glob("*.png"))
        else:
            listing = self.root / "ImageSets" / "Segmentation" / f"{self.image_set}.txt"
            if not listing.is_file():
                raise DatasetError(f"voc: image set list {listing} not found")
            names = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not names:
            self.skipped.append((str(self.labels), "no segmentation labels (*.png)"))
        return names

    def load(self, key: str) -> Sample:
        label_path = self.labels / f"{key}.png"
        try:
            with Image.open(label_path) as label_image:
                if label_image.mode not in ("P", "L"):
                    raise SkipSample(
                        f"{label_path}: expected a palette or grayscale index PNG, "
                        f"got mode {label_image.mode}"
                    )
                labels = np.asarray(label_image)
        except FileNotFoundError:
            raise SkipSample(f"{label_path}: label file not found") from None
        except OSError as error:
            raise SkipSample(f"{label_path}: cannot decode label ({error})") from None
        person = labels == PERSON_INDEX
        if not self.negatives and not person.any():
            raise SkipSample(f"{label_path}: no person pixels (negatives not requested)")
        image = read_image(self.images / f"{key}.jpg")
        if image.shape[:2] != labels.shape:
            raise SkipSample(f"{label_path}: label size {labels.shape} != image {image.shape[:2]}")
        ignore = labels == VOID_INDEX
        return Sample(key, image, person.astype(np.float32), ignore, self.source)

    def input_paths(self) -> list[Path]:
        return [self.root]
