"""Backdrop: train tiny person-segmentation models for mobile video-call backgrounds."""

__version__ = "0.1.0"

from backdrop.finetune import FineTuneConfig, FineTuneResult, fine_tune

__all__ = ["FineTuneConfig", "FineTuneResult", "fine_tune"]
