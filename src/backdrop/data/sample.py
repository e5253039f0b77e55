"""The one sample type every reader yields, and the image/mask decoding they share."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from backdrop.imageops import IMAGE_EXTENSIONS, PictureError, read_picture

# A mask may be smaller than its image (downscaled annotations); it is accepted when the aspect
# ratios agree within this relative tolerance.
ASPECT_TOLERANCE = 0.01


class SkipSample(Exception):
    """Raised by a reader when one sample cannot be used; the message is the one-line reason."""


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
    """One training example, whatever format it came from.

    Attributes:
        name: Unique within its source, used for the train/validation split and file names.
        image: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` float32 person probability in [0, 1]; soft where the source is soft.
        ignore: `(H, W)` bool, True where a pixel counts as neither person nor background, or None.
        source: The reader's name, e.g. "voc".
        group: Samples sharing a group land in the same train/validation split (the frames of one
            video, the composites of one foreground); empty means the sample is its own group.
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    ignore: np.ndarray | None = None
    source: str = ""
    group: str = ""

    def __post_init__(self):
        assert self.image.ndim == 3 and self.image.shape[2] == 3, self.image.shape
        assert self.image.dtype == np.uint8, self.image.dtype
        assert self.mask.shape == self.image.shape[:2], (self.mask.shape, self.image.shape)
        assert self.mask.dtype == np.float32, self.mask.dtype
        if self.ignore is not None:
            assert self.ignore.shape == self.mask.shape and self.ignore.dtype == bool


def find_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def check_picture_file(path: Path, what: str = "image") -> None:
    """Refuses, before decoding, a picture file that is not a regular file (a FIFO would block
    the run forever) or whose header claims more pixels than Pillow's `Image.MAX_IMAGE_PIXELS`
    (past it Pillow only warns, up to twice it; a few kilobytes of PNG can claim gigabytes of
    pixels). A missing file or unreadable header is left to the decoder to report.

    Raises:
        SkipSample: the reason names the file.
    """
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(mode):
        raise SkipSample(f"{path}: {what} is not a regular file")
    limit = Image.MAX_IMAGE_PIXELS
    if not limit:
        return
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as error:
        raise SkipSample(f"{path}: cannot decode {what} ({error})") from None
    except Exception:  # noqa: BLE001 - the full decode names whatever is wrong
        return
    if width * height > limit:
        raise SkipSample(
            f"{path}: {what} is {width}x{height}, more than the {limit} pixels Backdrop "
            "decodes (a decompression bomb, or a picture to downscale first)"
        )


def read_image(path: Path) -> np.ndarray:
    """`imageops.read_picture`, with an unreadable or oversized picture skipping its sample."""
    check_picture_file(path)
    try:
        return read_picture(path)
    except PictureError as error:
        raise SkipSample(str(error)) from None


def fit_mask(
    mask: np.ndarray, height: int, width: int, path: Path, image: Path | None = None
) -> np.ndarray:
    """Brings a mask to its image's size: same size passes, a smaller or larger mask with the same
    aspect ratio is resized (nearest neighbour, so binary masks stay binary).

    Raises:
        SkipSample: the aspect ratios differ; the reason names the mask (`path`) and its image.
    """
    mask_height, mask_width = mask.shape
    if (mask_height, mask_width) == (height, width):
        return mask
    if not mask.size or abs((mask_width / mask_height) / (width / height) - 1) > ASPECT_TOLERANCE:
        image = f" {image}" if image else ""
        raise SkipSample(
            f"{path}: mask is {mask_width}x{mask_height} but its image{image} is "
            f"{width}x{height} (different aspect ratio)"
        )
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
