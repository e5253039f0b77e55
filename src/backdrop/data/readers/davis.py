"""DAVIS-style video folders: one frame folder and one annotation folder per sequence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from backdrop.data.masks import ANY_OBJECT, MaskEncoding, read_mask
from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import Sample, SkipSample, find_images, fit_mask, read_image


class DAVISReader(Reader):
    """DAVIS 2016/2017 layout, frames kept in order within each sequence.

    ```
    ROOT/
      JPEGImages/480p/SEQ/00000.jpg
      Annotations/480p/SEQ/00000.png     0/255, or palette object ids (DAVIS 2017)
    ```
    Person: every annotated object (mask value or palette index > 0), unless `mask_encoding`
    says otherwise (e.g. "ids:1" for the first object only). DAVIS annotates the main
    objects only, so bystanders count as background. `frame_step` keeps every n-th frame
    (consecutive frames are nearly identical training examples).
    """

    source = "davis"

    def __init__(
        self,
        root: str | Path,
        resolution: str = "480p",
        sequences: Sequence[str] | None = None,
        frame_step: int = 1,
        mask_encoding: str | MaskEncoding | None = "auto",
    ):
        super().__init__(root)
        if frame_step < 1:
            raise DatasetError(f"davis: frame_step must be >= 1, got {frame_step}")
        self.frame_step = frame_step
        parsed = (
            MaskEncoding.parse(mask_encoding) if isinstance(mask_encoding, str) else mask_encoding
        )
        self.mask_encoding = parsed or ANY_OBJECT
        self.frames = self.root / "JPEGImages" / resolution
        self.annotations = self.root / "Annotations" / resolution
        if not self.frames.is_dir() or not self.annotations.is_dir():
            raise DatasetError(
                f"davis: expected {self.frames}/SEQUENCE/*.jpg and "
                f"{self.annotations}/SEQUENCE/*.png"
            )
        available = sorted(path.name for path in self.frames.iterdir() if path.is_dir())
        if sequences:
            unknown = sorted(set(sequences) - set(available))
            if unknown:
                raise DatasetError(
                    f"davis: unknown sequences {unknown}; {self.frames} holds {available}"
                )
            available = [name for name in available if name in set(sequences)]
        self.sequence_names = available

    def sequences(self) -> dict[str, list[str]]:
        """Sequence name -> its keys, in frame order."""
        result = {}
        for sequence in self.sequence_names:
            frames = find_images(self.frames / sequence)
            if not frames:
                self.skipped.append((str(self.frames / sequence), "no frames"))
            result[sequence] = [f"{sequence}/{frame.name}" for frame in frames[:: self.frame_step]]
        return result

    def keys(self) -> list[str]:
        return [key for keys in self.sequences().values() for key in keys]

    def load(self, key: str) -> Sample:
        sequence, frame_name = key.split("/", 1)
        stem = Path(frame_name).stem
        mask_path = self.annotations / sequence / f"{stem}.png"
        if not mask_path.is_file():
            raise SkipSample(f"{self.frames / key}: no annotation {mask_path}")
        image_path = self.frames / key
        image = read_image(image_path)
        mask = read_mask(mask_path, self.mask_encoding)
        mask = fit_mask(mask, *image.shape[:2], mask_path, image_path)
        return Sample(f"{sequence}-{stem}", image, mask, None, self.source, group=sequence)

    def input_paths(self) -> list[Path]:
        return [self.frames, self.annotations]
