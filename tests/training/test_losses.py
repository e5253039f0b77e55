"""Ignore-aware loss and IoU metric."""

from __future__ import annotations

import numpy as np

from backdrop.training.losses import PersonIoU, bce_dice_loss


def make_target(mask, ignore):
    return np.stack([mask, ignore], axis=-1).astype(np.float32)


def test_ignore_pixels_do_not_change_the_loss():
    rng = np.random.default_rng(0)
    mask = (rng.random((2, 16, 16)) > 0.5).astype(np.float32)
    ignore = np.zeros((2, 16, 16), np.float32)
    ignore[:, :4] = 1
    prediction = rng.random((2, 16, 16, 1)).astype(np.float32)
    base = np.asarray(bce_dice_loss(make_target(mask, ignore), prediction))
    # Change the truth and the prediction only where ignored: the loss must not move.
    other_mask, other_prediction = mask.copy(), prediction.copy()
    other_mask[:, :4] = 1 - other_mask[:, :4]
    other_prediction[:, :4] = 0.999
    changed = np.asarray(bce_dice_loss(make_target(other_mask, ignore), other_prediction))
    np.testing.assert_allclose(base, changed, rtol=1e-6)
    # ...while the same change without the ignore mask does move it.
    unignored = np.asarray(bce_dice_loss(make_target(other_mask, 0 * ignore), other_prediction))
    assert np.all(np.abs(unignored - base) > 1e-3)


def test_loss_is_lower_for_better_predictions():
    mask = np.zeros((1, 8, 8), np.float32)
    mask[:, 2:6, 2:6] = 1
    target = make_target(mask, np.zeros_like(mask))
    good = np.asarray(bce_dice_loss(target, mask[..., None] * 0.9 + 0.05))
    bad = np.asarray(bce_dice_loss(target, 1 - (mask[..., None] * 0.9 + 0.05)))
    assert good[0] < 0.3 < bad[0]


def test_iou_counts_only_valid_pixels():
    mask = np.zeros((1, 4, 4), np.float32)
    mask[:, :, :2] = 1  # 8 person pixels
    prediction = np.zeros((1, 4, 4, 1), np.float32)
    prediction[:, :, 1:3] = 1  # 4 right, 4 wrong
    ignore = np.zeros((1, 4, 4), np.float32)
    metric = PersonIoU()
    metric.update_state(make_target(mask, ignore), prediction)
    assert np.isclose(float(metric.result()), 4 / 12)
    ignore[:, :, 2] = 1  # the wrongly predicted column is ignored
    metric.reset_state()
    metric.update_state(make_target(mask, ignore), prediction)
    assert np.isclose(float(metric.result()), 4 / 8)
