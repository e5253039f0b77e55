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


def crop_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre of `image` with the aspect ratio of `height x width`: resized after this, a
    background costs the size of its foreground, however long and thin the file's picture is."""
    image_height, image_width = image.shape[:2]
    if image_width * height > image_height * width:  # wider than the foreground
        kept = max(1, round(image_height * width / height))
        left = (image_width - kept) // 2
        return image[:, left : left + kept]
    kept = max(1, round(image_width * height / width))
    top = (image_height - kept) // 2
    return image[top : top + kept]


class MattingReader(Reader):
    """Foregrounds with alpha mattes, each composited over `per_foreground` backgrounds.

    ```
    ROOT/
      fg/NAME.png            foreground colours (or foreground_dir)
      alpha/NAME.png         alpha matte, 0..255 (or alpha_dir), paired by stem
    BACKGROUND_DIR/*.jpg     one or more folders, e.g. COCO train2014 or VOC JPEGImages
    ```
    Person: the alpha matte, kept soft. Background `k` of a foreground is chosen by a hash of
    (seed, foreground name, k), so the composites are the same on every run and every machine;
    it is cropped to the foreground's aspect ratio, then scaled to cover it.
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
        # By stem, not by glob: a name holding [ or * is a file name, not a pattern.
        self._alphas = {path.stem: path for path in reversed(find_images(self.alphas))}
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
        alpha_path = self._alphas.get(stem)
        if alpha_path is None:
            raise SkipSample(f"{foreground_path}: no alpha matte {self.alphas}/{stem}.png")
        foreground = read_image(foreground_path)
        height, width = foreground.shape[:2]
        alpha = read_mask(alpha_path, self.mask_encoding)
        alpha = fit_mask(alpha, height, width, alpha_path, foreground_path)
        background_path = self.background_for(foreground_name, int(k))
        background = read_image(background_path)
        background = cover_resize(crop_to_aspect(background, height, width), height, width)
        image = composite(foreground, alpha, background)
        return Sample(f"{stem}-{int(k):03d}", image, alpha, None, self.source, group=stem)

    def input_paths(self) -> list[Path]:
        return [self.foregrounds, self.alphas, *self.background_dirs]
