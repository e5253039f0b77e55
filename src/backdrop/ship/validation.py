"""Validation IoU of a model before and after export, on the same validation pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras


def validation_iou(predict, pairs) -> float:
    """Mean per-image IoU (threshold 0.5, ignore pixels left out) of `predict(image) -> prob`."""
    from backdrop.evaluation.metrics import THRESHOLD, iou

    scores = [
        iou(predict(image) >= THRESHOLD, target[..., 0] >= THRESHOLD, target[..., 1] < 0.5)
        for image, target in pairs
    ]
    return float(np.mean(scores))


def keras_validation_iou(model: keras.Model, pairs, batch_size: int = 25) -> float:
    """`validation_iou` of a Keras model run as it is (rounding layers included), in batches."""
    images = np.stack([image for image, _ in pairs]).astype(np.float32) / 255.0
    batches = [
        model(images[start : start + batch_size], training=False).numpy()
        for start in range(0, len(images), batch_size)
    ]
    probabilities = iter(np.concatenate(batches)[..., 0])
    return validation_iou(lambda _: next(probabilities), pairs)
