"""The one sample type every reader yields, and the image/mask decoding they share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from backdrop.imageops import IMAGE_EXTENSIONS

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


def read_image(path: Path) -> np.ndarray:
    """Decodes an image file to `(H, W, 3)` uint8 RGB; grayscale and alpha are converted.

    Raises:
        SkipSample: the file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()  # Pillow decodes lazily; force it so truncated files fail here.
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise SkipSample(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise SkipSample(f"{path}: cannot decode image ({error})") from None


def mask_from_pil(image: Image.Image) -> np.ndarray:
    """Turns a decoded mask image into a `(H, W)` float32 person mask in [0, 1].

    Alpha-carrying images (RGBA, LA, palette with transparency) use their alpha channel;
    palette images use the index (0 = background, any other index = person); grayscale images
    are 0..255 (soft values kept) unless they only hold 0 and 1.
    """
    if image.mode in ("RGBA", "LA", "PA"):
        return np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    if image.mode == "P":
        return (np.asarray(image) > 0).astype(np.float32)
    if image.mode == "1":
        return np.asarray(image, dtype=np.float32)
    if image.mode in ("I", "I;16", "F"):
        values = np.asarray(image, dtype=np.float32)
        peak = values.max()
        return values / peak if peak > 1 else values
    values = np.asarray(image.convert("L"), dtype=np.float32)
    return values if values.max() <= 1 else values / 255.0


def read_mask(path: Path) -> np.ndarray:
    """Decodes a mask file (see `mask_from_pil`).

    Raises:
        SkipSample: the file is missing or cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return mask_from_pil(image)
    except FileNotFoundError:
        raise SkipSample(f"{path}: mask file not found") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise SkipSample(f"{path}: cannot decode mask ({error})") from None


def fit_mask(mask: np.ndarray, height: int, width: int, path: Path) -> np.ndarray:
    """Brings a mask to its image's size: same size passes, a smaller or larger mask with the same
    aspect ratio is resized (nearest neighbour, so binary masks stay binary).

    Raises:
        SkipSample: the aspect ratios differ.
    """
    mask_height, mask_width = mask.shape
    if (mask_height, mask_width) == (height, width):
        return mask
    if abs((mask_width / mask_height) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise SkipSample(
            f"{path}: mask is {mask_width}x{mask_height} but its image is {width}x{height} "
            "(different aspect ratio)"
        )
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
