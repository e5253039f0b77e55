"""Portrait folders: images and masks paired by file stem."""

from __future__ import annotations

from pathlib import Path

from backdrop.data.masks import BINARY, MaskEncoding, decide_encoding, read_mask
from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.sample import Sample, SkipSample, find_images, fit_mask, read_image
from backdrop.imageops import IMAGE_EXTENSIONS

# Written by `backdrop pseudo-label` (backdrop.teachers.label.RECORD).
PSEUDO_LABELS = "pseudo_labels.json"
# Folder-name pairs tried in order when none are given.
KNOWN_LAYOUTS = (("images", "masks"), ("Training_Images", "Ground_Truth"))


class PortraitReader(Reader):
    """Images and person masks paired by file stem.

    ```
    ROOT/
      images/NAME.jpg        (or Training_Images/, or --images-dir)
      masks/NAME.png         (or Ground_Truth/,    or --masks-dir)
      ignore/NAME.png        optional: nonzero = neither person nor background
    ```
    A folder holding `pseudo_labels.json` (written by `backdrop pseudo-label`) is source
    "pseudo" rather than "portrait". What counts as person: `mask_encoding` (see
    `backdrop.data.masks`), decided from a few masks when "auto" (a pseudo-label folder's masks
    are soft). A mask smaller or larger than its image with the same aspect ratio is resized to it
    (nearest); another aspect ratio skips the sample.
    """

    source = "portrait"

    def __init__(
        self,
        root: str | Path,
        images_dir: str | None = None,
        masks_dir: str | None = None,
        ignore_dir: str = "ignore",
        source: str | None = None,
        mask_encoding: str | MaskEncoding | None = "auto",
    ):
        super().__init__(root)
        # "supervisely" for a folder converted from Supervise.ly; "pseudo" for teacher labels,
        # kept apart so training can weight them and reports can separate them.
        if source is None:
            source = "pseudo" if (self.root / PSEUDO_LABELS).is_file() else "portrait"
        self.source = source
        if images_dir is None and masks_dir is None:
            layouts = [
                pair for pair in KNOWN_LAYOUTS if (self.root / pair[0]).is_dir()
            ] or KNOWN_LAYOUTS[:1]
            images_dir, masks_dir = layouts[0]
        self.images = self.root / (images_dir or "images")
        self.masks = self.root / (masks_dir or "masks")
        self.ignore = self.root / ignore_dir
        for folder in (self.images, self.masks):
            if not folder.is_dir():
                raise DatasetError(
                    f"portrait: {folder} not found; expected {self.root}/images/*.jpg and "
                    f"{self.root}/masks/*.png (set other folder names with --images-dir/--masks-dir)"
                )
        self._masks = _by_stem(self.masks)
        self._ignores = _by_stem(self.ignore) if self.ignore.is_dir() else {}
        if self.source == "pseudo" and mask_encoding in (None, "auto"):
            mask_encoding = MaskEncoding("soft", reason=f"teacher probabilities ({PSEUDO_LABELS})")
        self.mask_encoding = decide_encoding(
            mask_encoding, list(self._masks.values()), f"portrait {self.masks}"
        )

    def keys(self) -> list[str]:
        images = find_images(self.images)
        if not images:
            self.skipped.append(
                (str(self.images), f"no images found; expected {self.images}/*.jpg or *.png")
            )
        return [image.name for image in images]

    def load(self, key: str) -> Sample:
        image_path = self.images / key
        stem = Path(key).stem
        mask_path = self._masks.get(stem)
        if mask_path is None:
            raise SkipSample(f"{image_path}: no mask {self.masks}/{stem}.png")
        image = read_image(image_path)
        height, width = image.shape[:2]
        mask = read_mask(mask_path, self.mask_encoding)
        mask = fit_mask(mask, height, width, mask_path, image_path)
        ignore = None
        if stem in self._ignores:
            ignore_path = self._ignores[stem]
            ignore = read_mask(ignore_path, BINARY)
            ignore = fit_mask(ignore, height, width, ignore_path, image_path) > 0
        return Sample(stem, image, mask, ignore, self.source)

    def input_paths(self) -> list[Path]:
        return [self.images, self.masks]


def _by_stem(folder: Path) -> dict[str, Path]:
    return {
        path.stem: path
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_EXTENSIONS
    }
