"""Video helpers: temporal smoothing of masks and edge refinement against the frame."""

from __future__ import annotations

import cv2
import numpy as np


class MaskSmoother:
    """Exponential moving average of successive masks, which damps flicker.

    `mask_t = weight * new + (1 - weight) * mask_{t-1}`; pixels whose new value moved far from
    the running one follow faster, so a moving person does not leave a ghost behind.
    """

    def __init__(self, weight: float = 0.6):
        if not 0 < weight <= 1:
            raise ValueError(f"weight must be in (0, 1], got {weight}")
        self.weight = weight
        self.previous: np.ndarray | None = None

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        if self.previous is None or self.previous.shape != mask.shape:
            self.previous = mask.astype(np.float32)
            return self.previous
        change = np.abs(mask - self.previous)
        weight = np.clip(self.weight + change, 0, 1)  # big changes are real motion
        self.previous = (weight * mask + (1 - weight) * self.previous).astype(np.float32)
        return self.previous

    def reset(self) -> None:
        self.previous = None


def refine_edges(frame: np.ndarray, mask: np.ndarray, radius: int = 8, epsilon: float = 1e-3):
    """Guided filter (He et al.) of the mask with the frame's luminance as guide: the mask's
    edges snap to the image's edges, so hair and shoulders are not cut out with scissors.

    Works at half resolution for speed (the "fast guided filter").

    Args:
        frame: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` float32 in [0, 1].

    Returns:
        `(H, W)` float32 in [0, 1].
    """
    height, width = mask.shape
    small = (max(1, width // 2), max(1, height // 2))
    guide = (
        cv2.cvtColor(
            cv2.resize(frame, small, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
        ).astype(np.float32)
        / 255
    )
    source = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    size = (2 * max(1, radius // 2) + 1,) * 2

    def box(values):
        return cv2.boxFilter(values, -1, size)

    mean_guide, mean_source = box(guide), box(source)
    covariance = box(guide * source) - mean_guide * mean_source
    variance = box(guide * guide) - mean_guide * mean_guide
    a = covariance / (variance + epsilon)
    b = mean_source - a * mean_guide
    a = cv2.resize(box(a), (width, height), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(box(b), (width, height), interpolation=cv2.INTER_LINEAR)
    full_guide = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    return np.clip(a * full_guide + b, 0, 1)
