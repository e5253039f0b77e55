"""Small picture operations both the data side and the runtime use (TensorFlow-free)."""

from __future__ import annotations

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


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
