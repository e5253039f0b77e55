"""Backdrop: train tiny person-segmentation models for mobile video-call backgrounds."""

__version__ = "0.1.0"
