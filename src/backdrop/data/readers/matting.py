"""Image matting composites (Adobe Deep Image Matting protocol): foreground + alpha over backgrounds."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backdrop.data.masks import MaskEncoding, decide_encoding, read_mask
from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import (
    Sample,
    SkipSample,
    find_images,
    fit_mask,
    read_image,
)
from backdrop.imageops import cover_resize


def composite(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`alpha * foreground + (1 - alpha) * background`, all at the same size, as uint8 RGB."""
    alpha = alpha[..., None]
    blended = alpha * foreground.astype(np.float32) + (1 - alpha) * background.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


class MattingReader(Reader):
    """Foregrounds with alpha mattes, each composited over `per_foreground` backgrounds.

    ```
    ROOT/
      fg/NAME.png            foreground colours (or foreground_dir)
      alpha/NAME.png         alpha matte, 0..255 (or alpha_dir), paired by stem
    BACKGROUND_DIR/*.jpg     one or more folders, e.g. COCO train2014 or VOC JPEGImages
    ```
    Person: the alpha matte, kept soft. Background `k` of a foreground is chosen by a hash of
    (seed, foreground name, k), so the composites are the same on every run and every machine.
    """

    source = "matting"

    def __init__(
        self,
        root: str | Path,
        background_dirs: Sequence[str | Path],
        per_foreground: int = 10,
        seed: int = 0,
        foreground_dir: str = "fg",
        alpha_dir: str = "alpha",
        mask_encoding: str | MaskEncoding | None = "auto",
    ):
        super().__init__(root)
        self.foregrounds = self.root / foreground_dir
        self.alphas = self.root / alpha_dir
        if not self.foregrounds.is_dir() or not self.alphas.is_dir():
            raise DatasetError(
                f"matting: expected {self.foregrounds}/*.png and {self.alphas}/*.png "
                "(set other names with --matting-fg-dir/--matting-alpha-dir)"
            )
        if per_foreground < 1:
            raise DatasetError(f"matting: per_foreground must be >= 1, got {per_foreground}")
        self.background_dirs = [Path(folder) for folder in background_dirs]
        if not self.background_dirs:
            raise DatasetError(
                "matting: give at least one background folder (--matting-backgrounds)"
            )
        self.backgrounds: list[Path] = []
        for folder in self.background_dirs:
            if not folder.is_dir():
                raise DatasetError(f"matting: background folder {folder} not found")
            self.backgrounds += find_images(folder)
        if not self.backgrounds:
            raise DatasetError(f"matting: no images in {', '.join(map(str, self.background_dirs))}")
        self.per_foreground, self.seed = per_foreground, seed
        self.mask_encoding = decide_encoding(
            mask_encoding, find_images(self.alphas), f"matting {self.alphas}"
        )

    def keys(self) -> list[str]:
        foregrounds = find_images(self.foregrounds)
        if not foregrounds:
            self.skipped.append((str(self.foregrounds), "no foreground images"))
        return [f"{path.name}/{k}" for path in foregrounds for k in range(self.per_foreground)]

    def background_for(self, foreground_name: str, k: int) -> Path:
        """The background chosen for composite `k` of a foreground (deterministic)."""
        digest = hashlib.sha256(f"{self.seed}/{foreground_name}/{k}".encode()).digest()
        return self.backgrounds[int.from_bytes(digest[:8], "little") % len(self.backgrounds)]

    def load(self, key: str) -> Sample:
        foreground_name, k = key.rsplit("/", 1)
        foreground_path = self.foregrounds / foreground_name
        stem = Path(foreground_name).stem
        alpha_path = next(
            (p for p in sorted(self.alphas.glob(f"{stem}.*")) if p.stem == stem), None
        )
        if alpha_path is None:
            raise SkipSample(f"{foreground_path}: no alpha matte {self.alphas}/{stem}.png")
        foreground = read_image(foreground_path)
        height, width = foreground.shape[:2]
        alpha = fit_mask(read_mask(alpha_path, self.mask_encoding), height, width, alpha_path)
        background_path = self.background_for(foreground_name, int(k))
        background = cover_resize(read_image(background_path), height, width)
        image = composite(foreground, alpha, background)
        return Sample(f"{stem}-{int(k):03d}", image, alpha, None, self.source, group=stem)

    def input_paths(self) -> list[Path]:
        return [self.foregrounds, self.alphas, *self.background_dirs]
