"""The quality metrics export, evaluate and report share: person IoU, boundary IoU, flicker.

TensorFlow-free (numpy and OpenCV).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

THRESHOLD = 0.5  # probability at and above which a pixel is person
BOUNDARY_SHARE = 0.02  # boundary band width, as a share of the image diagonal (Cheng et al.)


def truth_and_valid(mask: np.ndarray, ignore: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A sample's `(H, W)` mask and ignore mask (or None) as what every metric here scores:
    the bool person truth (`mask >= THRESHOLD`) and the bool pixels scored (not ignored)."""
    truth = mask >= THRESHOLD
    return truth, np.ones(truth.shape, bool) if ignore is None else ~ignore


def iou(prediction: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """IoU of two bool masks over `valid` pixels; 1.0 when both are empty."""
    union = np.count_nonzero((prediction | truth) & valid)
    if union == 0:
        return 1.0
    return np.count_nonzero(prediction & truth & valid) / union


def boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """The band of `mask` within `width` pixels of its edge (mask minus its erosion)."""
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    padded = cv2.copyMakeBorder(
        mask.view(np.uint8), width, width, width, width, cv2.BORDER_CONSTANT, value=1
    )
    eroded = cv2.erode(padded, kernel)[width:-width, width:-width].astype(bool)
    return mask & ~eroded


def boundary_iou(prediction: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """Boundary IoU (Cheng et al., 2021) with a band of 2% of the image diagonal."""
    height, width = truth.shape
    band = max(1, round(BOUNDARY_SHARE * np.hypot(height, width)))
    return iou(boundary(prediction, band), boundary(truth, band), valid)


def flicker(masks: Sequence[np.ndarray]) -> float:
    """Mean share of mask pixels that change between consecutive frames:
    `|m_t xor m_(t-1)| / |m_t or m_(t-1)|` averaged over the sequence."""
    shares = []
    for previous, current in zip(masks, masks[1:], strict=False):
        union = np.count_nonzero(previous | current)
        shares.append(np.count_nonzero(previous ^ current) / union if union else 0.0)
    return float(np.mean(shares)) if shares else float("nan")
