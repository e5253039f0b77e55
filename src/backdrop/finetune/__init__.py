"""Fine-tuning on a team's own footage (`backdrop fine-tune`, `backdrop.fine_tune`): the Model
Maker for segmentation that MediaPipe never shipped."""

from backdrop.finetune.api import FineTuneResult, fine_tune
from backdrop.finetune.config import FineTuneConfig

__all__ = ["FineTuneConfig", "FineTuneResult", "fine_tune"]
