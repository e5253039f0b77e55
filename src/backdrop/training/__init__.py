"""The training wing: config, loop, checkpoints, losses, quantization-aware training."""
