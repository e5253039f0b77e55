"""PASCAL VOC 2012 semantic segmentation (JPEGImages + SegmentationClass palette PNGs)."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from backdrop.data.masks import open_mask
from backdrop.data.readers.base import DatasetError, Reader, inside, printable
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

    A name in the image set list that is absolute or climbs out with `..` is skipped naming the
    list; nothing outside ROOT is read. Symlinks inside ROOT are followed (see `Reader`).
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
        self.listing = (
            self.root / "ImageSets" / "Segmentation" / f"{image_set}.txt" if image_set else None
        )

    def keys(self) -> list[str]:
        if self.listing is None:
            names = sorted(path.stem for path in self.labels.glob("*.png"))
        else:
            try:
                if not stat.S_ISREG(self.listing.stat().st_mode):  # a FIFO would block
                    raise OSError("not a regular file")
                text = self.listing.read_bytes().decode("utf-8")
            except FileNotFoundError:
                raise DatasetError(f"voc: image set list {self.listing} not found") from None
            except (OSError, UnicodeDecodeError) as error:
                raise DatasetError(
                    printable(f"voc: image set list {self.listing} cannot be read ({error})")
                ) from None
            names = [line.split()[0] for line in text.splitlines() if line.strip()]
        if not names:
            self.skipped.append((str(self.labels), "no segmentation labels (*.png)"))
        return names

    def load(self, key: str) -> Sample:
        label_path = inside(self.labels, f"{key}.png", self.listing or self.labels)
        if self.listing is not None and not _is_file(label_path):
            raise SkipSample(
                f"{self.listing}: names {printable(repr(key)[:100])}, which has no label "
                f"{self.labels}/NAME.png"
            )
        label_image = open_mask(label_path)
        if label_image.mode not in ("P", "L"):
            raise SkipSample(
                f"{label_path}: expected a palette or grayscale index PNG, "
                f"got mode {label_image.mode}"
            )
        labels = np.asarray(label_image)
        person = labels == PERSON_INDEX
        if not self.negatives and not person.any():
            raise SkipSample(f"{label_path}: no person pixels (negatives not requested)")
        image_path = self.images / f"{key}.jpg"
        image = read_image(image_path)
        if image.shape[:2] != labels.shape:
            raise SkipSample(
                f"{label_path}: label is {labels.shape[1]}x{labels.shape[0]} but its image "
                f"{image_path} is {image.shape[1]}x{image.shape[0]}"
            )
        ignore = labels == VOID_INDEX
        return Sample(key, image, person.astype(np.float32), ignore, self.source)

    def input_paths(self) -> list[Path]:
        return [self.root]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system
        return False
