"""Training throughput of the Attention U-Net, the input pipeline beside it, and PyTorch as a baseline.

For each input side (128 and 256 px, 8 first-layer filters, batch 8):
- Keras training images/s: optimizer steps on batches already in memory (the model alone);
- pipeline images/s: training's input pipeline (`data/loader.py`: decode, augment, background
  replacement, batch, 2 prefetch threads) on records prepared at 9/8 of the input side, consumed
  as fast as possible;
  goal: >= 5 x the model;
- PyTorch images/s: the same architecture and loss written in PyTorch, same CPU threads
  (the baseline a user would weigh; skipped when torch is not installed).

    .venv/bin/python benchmarks/train_throughput.py [--steps 15]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.synthetic import write_synthetic_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BATCH = 8
FILTERS = 8


def make_records(scratch: Path, side: int) -> tuple[Path, Path, str]:
    """Records whose shorter side is 1.125 x the model input, as the README recommends."""
    if (SHARED / "human_seg_vikram").is_dir():
        readers = [PortraitReader(SHARED / "human_seg_vikram")]
        backgrounds = SHARED / "coco_tiny" / "tiny_coco" / "val2017"
        data = "human_seg_vikram (232 portraits), COCO val2017 backgrounds"
    else:
        readers = [PortraitReader(write_synthetic_dataset(scratch / "synthetic", 200, 320, 320))]
        backgrounds = write_synthetic_dataset(scratch / "backgrounds", 20, 320, 320) / "images"
        data = "200 generated figures"
    records = scratch / f"records-{side}"
    config = PrepareConfig(records, side=side * 9 // 8, workers=os.cpu_count() or 1)
    prepare(readers, config, progress=False)
    return records, backgrounds, data


def pipeline_rate(records: Path, backgrounds: Path, side: int, batches: int = 40) -> float:
    from backdrop.data.loader import record_batches
    from backdrop.data.pipeline_config import PipelineConfig

    config = PipelineConfig((side, side), BATCH, background_folders=(backgrounds,), seed=0)
    data, _ = record_batches(records, "train", config, training=True, prefetch=2)
    data.epoch = 1
    data[0]  # first fill
    started = time.perf_counter()
    for index in range(1, batches + 1):
        if index % len(data) == 0:
            data.on_epoch_end()
        data[index % len(data)]
    return batches * BATCH / (time.perf_counter() - started)


def keras_rate(side: int, steps: int) -> float:
    import keras

    from backdrop.models.attention_unet import build_attention_unet
    from backdrop.training.losses import PersonIoU, bce_dice_loss

    model = build_attention_unet(side, FILTERS)
    model.compile(keras.optimizers.Adam(1e-3), bce_dice_loss, metrics=[PersonIoU()])
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, side, side, 3), dtype=np.float32)
    targets = np.concatenate(
        [rng.random((BATCH, side, side, 1)) > 0.5, np.zeros((BATCH, side, side, 1))], -1
    ).astype(np.float32)
    for _ in range(3):
        model.train_on_batch(images, targets)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return steps * BATCH / (time.perf_counter() - started)


def torch_rate(side: int, steps: int) -> float | None:
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    class Gate(nn.Module):
        def __init__(self, channels, inter):
            super().__init__()
            self.theta, self.phi = nn.Conv2d(channels, inter, 1), nn.Conv2d(channels, inter, 1)
            self.psi = nn.Conv2d(inter, 1, 1)

        def forward(self, skip, gating):
            weights = torch.sigmoid(self.psi(torch.relu(self.theta(skip) + self.phi(gating))))
            return skip * weights

    class AttentionUNet(nn.Module):
        def __init__(self, filters=FILTERS, depth=4):
            super().__init__()
            widths = [filters * 2**level for level in range(depth)]
            self.down = nn.ModuleList(
                block(c_in, c) for c_in, c in zip([3, *widths[:-1]], widths, strict=True)
            )
            self.bottom = block(widths[-1], filters * 2**depth)
            self.project, self.gates, self.decode = (
                nn.ModuleList(),
                nn.ModuleList(),
                nn.ModuleList(),
            )
            previous = filters * 2**depth
            for width in reversed(widths):
                self.project.append(nn.Conv2d(previous, width, 1))
                self.gates.append(Gate(width, max(1, width // 2)))
                self.decode.append(block(2 * width, width))
                previous = width
            self.head = nn.Conv2d(filters, 1, 1)

        def forward(self, x):
            skips = []
            for layer in self.down:
                x = layer(x)
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.bottom(x)
            for project, gate, decode, skip in zip(
                self.project, self.gates, self.decode, reversed(skips), strict=True
            ):
                x = project(nn.functional.interpolate(x, scale_factor=2, mode="bilinear"))
                x = decode(torch.cat([gate(skip, x), x], 1))
            return torch.sigmoid(self.head(x))

    model = AttentionUNet()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    images = torch.rand(BATCH, 3, side, side)
    masks = (torch.rand(BATCH, 1, side, side) > 0.5).float()

    def step():
        optimizer.zero_grad()
        prediction = model(images).clamp(1e-6, 1 - 1e-6)
        bce = nn.functional.binary_cross_entropy(prediction, masks)
        dice = 1 - (2 * (prediction * masks).sum() + 1) / (prediction.sum() + masks.sum() + 1)
        (bce + dice).backward()
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for side in (128, 256):
            records, backgrounds, data = make_records(Path(scratch), side)
            if side == 128:
                print(f"data: {data}; batch {BATCH}, {FILTERS} filters, {os.cpu_count()} cores")
            model = keras_rate(side, args.steps)
            feed = pipeline_rate(records, backgrounds, side)
            baseline = torch_rate(side, args.steps)
            line = (
                f"{side} px: Keras training {model:.1f} img/s; pipeline {feed:.1f} img/s "
                f"= {feed / model:.1f} x the model (goal >= 5)"
            )
            if baseline:
                line += (
                    f"; PyTorch training {baseline:.1f} img/s (Keras = {model / baseline:.2f} x)"
                )
            print(line)


if __name__ == "__main__":
    main()
