"""Ignore-aware loss and metric. Targets are `(B, H, W, 2)`: person mask, then ignore (1 = ignore)."""

from __future__ import annotations

import keras
from keras import ops

EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="backdrop")
def bce_dice_loss(target, prediction):
    """Binary cross-entropy plus soft Dice, both over non-ignored pixels only.

    Args:
        target: `(B, H, W, 2)`: person probability in [0, 1], ignore flag 0/1.
        prediction: `(B, H, W, 1)` person probability.

    Returns:
        `(B,)` loss per example.
    """
    mask, valid = target[..., :1], 1.0 - target[..., 1:2]
    prediction = ops.clip(prediction, EPSILON, 1.0 - EPSILON)
    cross_entropy = -(mask * ops.log(prediction) + (1.0 - mask) * ops.log(1.0 - prediction))
    axes = (1, 2, 3)
    valid_count = ops.maximum(ops.sum(valid, axis=axes), 1.0)
    cross_entropy = ops.sum(cross_entropy * valid, axis=axes) / valid_count
    intersection = ops.sum(prediction * mask * valid, axis=axes)
    total = ops.sum(prediction * valid, axis=axes) + ops.sum(mask * valid, axis=axes)
    dice = 1.0 - (2.0 * intersection + 1.0) / (total + 1.0)
    return cross_entropy + dice


@keras.saving.register_keras_serializable(package="backdrop")
class PersonIoU(keras.metrics.Metric):
    """Person IoU over all non-ignored pixels seen (prediction and mask thresholded at 0.5)."""

    def __init__(self, name: str = "iou", threshold: float = 0.5, **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.intersection = self.add_variable((), initializer="zeros", name="intersection")
        self.union = self.add_variable((), initializer="zeros", name="union")

    def update_state(self, target, prediction, sample_weight=None):
        valid = target[..., 1:2] < 0.5
        truth = (target[..., :1] >= self.threshold) & valid
        predicted = (prediction >= self.threshold) & valid
        self.intersection.assign_add(ops.sum(ops.cast(truth & predicted, "float32")))
        self.union.assign_add(ops.sum(ops.cast(truth | predicted, "float32")))

    def result(self):
        return ops.divide_no_nan(self.intersection, self.union)

    def reset_state(self):
        self.intersection.assign(0.0)
        self.union.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
