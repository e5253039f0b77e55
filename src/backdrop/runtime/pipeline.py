"""Frame -> mask -> effect, with optional temporal smoothing and edge refinement."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from backdrop.runtime import effects
from backdrop.runtime.media import read_rgb
from backdrop.runtime.segmenter import Segmenter
from backdrop.runtime.temporal import MaskSmoother, refine_edges

EFFECTS = ("blur", "replace:IMAGE", "color:HEX", "mask")


def parse_effect(spec: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """ "blur", "replace:PATH", "color:#RRGGBB" or "mask" -> `effect(frame, mask) -> frame`."""
    kind, _, argument = spec.partition(":")
    if kind == "blur":
        strength = float(argument) if argument else 0.05
        return lambda frame, mask: effects.blur_background(frame, mask, strength)
    if kind == "replace" and argument:
        from pathlib import Path

        background = read_rgb(Path(argument))
        return lambda frame, mask: effects.replace_background(frame, mask, background)
    if kind in ("color", "colour") and argument:
        colour = effects.parse_colour(argument)
        return lambda frame, mask: effects.solid_background(frame, mask, colour)
    if kind == "mask":
        return lambda frame, mask: effects.mask_image(mask)
    raise ValueError(f"unknown effect {spec!r}; valid effects: {', '.join(EFFECTS)}")


class FramePipeline:
    """Segments each frame and applies an effect; for video, smooths and refines the mask."""

    def __init__(
        self,
        segmenter: Segmenter,
        effect: Callable,
        smooth: float | None = None,
        refine: bool = False,
    ):
        self.segmenter, self.effect, self.refine = segmenter, effect, refine
        self.smoother = MaskSmoother(smooth) if smooth else None

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """`(H, W)` float32 person probability; smoothed at the model's resolution (cheap)."""
        probability = self.segmenter.raw_probability(frame)
        if self.smoother is not None:
            probability = self.smoother(probability)
        height, width = frame.shape[:2]
        mask = np.clip(
            cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0
        )
        if self.refine:
            mask = refine_edges(frame, mask)
        return mask

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.effect(frame, self.mask(frame))
