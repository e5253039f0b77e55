"""Small picture operations both the data side and the runtime use (TensorFlow-free)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def printable(text: str) -> str:
    """`text` safe to print and store: a file name that is not valid UTF-8 keeps its bytes as
    `\\xNN` escapes instead of ending the program when printed."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


class PictureError(ValueError):
    """A picture file cannot be read; the message names it."""


def open_picture(path: str | Path, what: str = "image") -> Image.Image:
    """A picture or mask file, decoded in full and turned upright as its EXIF orientation says
    (as phones and browsers show it), so pictures and their masks stay aligned.

    Raises:
        PictureError: the file is missing, truncated or not a picture (`what` names it).
    """
    try:
        with Image.open(path) as image:
            image.load()  # Pillow decodes lazily; force it so truncated files fail here.
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise PictureError(printable(f"{path}: {what} file not found")) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise PictureError(printable(f"{path}: cannot decode {what} ({error})")) from None


def read_picture(path: str | Path) -> np.ndarray:
    """The one way Backdrop decodes a picture (prepare, training from folders, evaluate,
    pseudo-label and segment): `(H, W, 3)` uint8 RGB, upright (`open_picture`), 16-bit scaled by
    its bit depth, grey and alpha dropped to RGB.

    Raises:
        PictureError: the file is missing, truncated or not a picture.
    """
    image = open_picture(path)
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit or float grey
        scale = 1 / 257 if image.mode.startswith("I") else 255
        grey = np.clip(np.rint(np.asarray(image, np.float64) * scale), 0, 255)
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def cover_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scales `image` to cover `height x width` (aspect kept), then centre-crops to exactly it:
    how a replacement background fits a frame, and how matting composites fit their backgrounds.
    Shrinking averages pixel areas; enlarging is bilinear."""
    scale = max(height / image.shape[0], width / image.shape[1])
    resized_height = max(height, round(image.shape[0] * scale))
    resized_width = max(width, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, (resized_width, resized_height), interpolation=interpolation)
    top, left = (resized_height - height) // 2, (resized_width - width) // 2
    return image[top : top + height, left : left + width]
