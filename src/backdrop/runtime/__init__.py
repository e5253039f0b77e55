"""What ships to an app: run a segmentation .tflite and composite effects. No TensorFlow here."""

from backdrop.runtime.effects import blur_background, replace_background, solid_background
from backdrop.runtime.segmenter import Segmenter, SegmenterError
from backdrop.runtime.temporal import MaskSmoother, refine_edges

__all__ = [
    "MaskSmoother",
    "Segmenter",
    "SegmenterError",
    "blur_background",
    "refine_edges",
    "replace_background",
    "solid_background",
]
