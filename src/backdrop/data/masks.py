"""How a mask file becomes a person mask: one encoding per dataset, decided explicitly.

| encoding | person probability of a pixel |
|---|---|
| binary | 1 where the value (grey level or palette index) is not 0; a mask with more than two values does not fit |
| soft | the grey level over its bit depth's maximum (255, or 65535 for 16-bit) |
| alpha | the alpha channel over 255; a mask whose alpha is opaque everywhere does not fit |
| ids:A,B-C | 1 where the value (a class id) is A or in B..C; 0 elsewhere |

`auto` (the default) reads a few of a dataset's masks and picks binary, soft or alpha, saying why;
masks that look like class ids (a few small values), or colour masks, are an error asking for
`--mask-encoding`, never a guess. A mask that does not fit its dataset's encoding is skipped with
the reason. Colour masks (R, G and B differ) fit none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from backdrop.data.sample import SkipSample, check_picture_file
from backdrop.imageops import PictureError, open_picture

KINDS = ("binary", "soft", "alpha", "ids")
HELP = (
    "how mask files are read: auto (decided per dataset from a few masks, and reported), "
    "binary (nonzero = person), soft (grey level / 255, or / 65535 for 16-bit), alpha (the "
    "alpha channel), or ids:A,B-C (the class ids that are person, e.g. ids:15 or ids:1-19)"
)
# Masks `auto` reads per dataset; class-id maps are told apart by their few, small values.
AUTO_SAMPLE = 8
MAX_LABEL_ID = 64


class MaskEncodingError(ValueError):
    """A dataset's masks cannot be read without being told how; the message says how."""


@dataclasses.dataclass(frozen=True)
class MaskEncoding:
    """One of `KINDS`; `ids` lists the person class ids of "ids"; `reason` says how it was
    chosen (recorded in metadata.json)."""

    kind: str
    ids: tuple[int, ...] = ()
    reason: str = "given"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise MaskEncodingError(f"mask encoding must be one of auto, {', '.join(KINDS)}")
        if (self.kind == "ids") != bool(self.ids):
            raise MaskEncodingError("ids:A,B needs at least one class id (and only ids takes them)")

    @classmethod
    def parse(cls, text: str) -> MaskEncoding | None:
        """`binary`, `soft`, `alpha` or `ids:A,B` -> an encoding; `auto` -> None."""
        kind, _, ids = text.strip().partition(":")
        if kind == "auto" and not ids:
            return None
        values: list[int] = []
        try:
            for part in filter(None, ids.split(",")):
                first, _, last = part.partition("-")
                values += range(int(first), int(last or first) + 1)
        except ValueError:
            raise MaskEncodingError(
                f"mask encoding {text!r}: ids are integers or ranges, e.g. ids:15 or ids:1-19"
            ) from None
        return cls(kind, tuple(sorted(set(values))))

    def runs(self) -> list[tuple[int, int]]:
        """The person ids as `(first, last)` runs of consecutive ids."""
        runs: list[list[int]] = []
        for value in self.ids:
            if runs and value == runs[-1][1] + 1:
                runs[-1][1] = value
            else:
                runs.append([value, value])
        return [(first, last) for first, last in runs]

    def __str__(self) -> str:
        if self.kind != "ids":
            return self.kind
        return "ids:" + ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.runs())

    def decode(self, image: Image.Image, path: Path) -> np.ndarray:
        """`(H, W)` float32 person probability of a decoded mask file.

        Raises:
            SkipSample: the mask does not fit this encoding (the reason names the file).
        """
        if self.kind == "alpha":
            alpha = _alpha(image)
            if alpha is None or alpha.min() == 255:
                raise SkipSample(
                    f"{path}: no transparency in its alpha channel, so it cannot be an alpha "
                    "mask; the mask is probably drawn in its colour (use --mask-encoding binary "
                    "or soft)"
                )
            return alpha.astype(np.float32) / 255.0
        levels, peak = _levels(image, path)
        if self.kind == "soft":
            return levels.astype(np.float32) / peak
        if self.kind == "ids":
            person = np.zeros(levels.shape, bool)
            for first, last in self.runs():
                person |= (levels >= first) & (levels <= last)
            return person.astype(np.float32)
        count = _distinct(levels)
        if count > 2:
            raise SkipSample(
                f"{path}: {count} distinct values, but a binary mask has two (use "
                "--mask-encoding soft or ids:...)"
            )
        return (levels > 0).astype(np.float32)


# Ignore masks: nonzero = ignore.
BINARY = MaskEncoding("binary")
# Video object masks: every annotated object (palette ids of DAVIS 2017) is person.
ANY_OBJECT = MaskEncoding("ids", tuple(range(1, 65536)), reason="every annotated object")


def open_mask(path: Path) -> Image.Image:
    """A mask file, decoded and turned upright like its picture (`imageops.open_picture`).

    Raises:
        SkipSample: the file is missing, not a regular file, not a picture, or claims more
            pixels than Pillow's `MAX_IMAGE_PIXELS` (`sample.check_picture_file`); the reason
            names it.
    """
    check_picture_file(path, "mask")
    try:
        return open_picture(path, "mask")
    except PictureError as error:
        raise SkipSample(str(error)) from None


def read_mask(path: Path, encoding: MaskEncoding) -> np.ndarray:
    """Decodes a mask file with its dataset's encoding (see `MaskEncoding.decode`).

    Raises:
        SkipSample: the file cannot be decoded or does not fit the encoding; the reason names it.
    """
    image = open_mask(path)
    try:
        return encoding.decode(image, path)
    except (ValueError, OSError) as error:  # a picture mode Pillow cannot convert
        raise SkipSample(f"{path}: cannot read mask ({error})") from None


def _alpha(image: Image.Image) -> np.ndarray | None:
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        return np.asarray(image.getchannel("A"))
    return None


def _levels(image: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """The mask's integer values (grey level or palette index) and its bit depth's maximum."""
    if image.mode == "P":
        return np.asarray(image), 255
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8), 1
    if image.mode.startswith("I"):  # 16-bit grey (I;16, I;16B) or 32-bit ints holding it
        return np.asarray(image).astype(np.int64), 65535
    if image.mode == "F":
        return np.rint(np.clip(np.asarray(image), 0, 1) * 65535).astype(np.int64), 65535
    if image.mode in ("L", "LA"):
        return np.asarray(image.getchannel("L")), 255
    colour = np.asarray(image.convert("RGB"))
    if not (
        np.array_equal(colour[..., 0], colour[..., 1])
        and np.array_equal(colour[..., 0], colour[..., 2])
    ):
        raise SkipSample(
            f"{path}: a colour mask (its red, green and blue differ); Backdrop reads grey, "
            "palette or alpha masks: convert it to grey levels or class ids"
        )
    return colour[..., 0], 255


def _distinct(levels: np.ndarray) -> int:
    if levels.dtype == np.uint8:  # a histogram is much faster than sorting
        return int(np.count_nonzero(np.bincount(levels.ravel(), minlength=256)))
    return len(np.unique(levels))


def decide_encoding(
    requested: str | MaskEncoding | None, masks: Sequence[Path], what: str
) -> MaskEncoding:
    """The encoding of a dataset whose mask files are `masks`: `requested` when given, else
    decided from a few of them (see the module docstring).

    Raises:
        MaskEncodingError: `auto` cannot decide; the message names a mask and the option.
    """
    if isinstance(requested, str):
        requested = MaskEncoding.parse(requested)
    if requested is not None:
        return requested
    step = max(1, len(masks) // AUTO_SAMPLE)
    sample = list(masks)[::step][:AUTO_SAMPLE]
    values: set[int] = set()
    most_values, peak, palette = 0, 255, False
    for path in sample:
        try:
            image = open_mask(path)
        except SkipSample:
            continue  # an unreadable mask is skipped with its sample, later
        try:
            alpha = _alpha(image)
            if alpha is not None and alpha.min() < 255:
                return MaskEncoding("alpha", reason=f"auto: {path.name} has transparency")
            levels, peak = _levels(image, path)
        except (ValueError, OSError):
            continue  # a picture mode Pillow cannot convert: skipped with its sample, later
        except SkipSample as reason:
            raise MaskEncodingError(
                f"{what}: cannot decide how its masks are read ({reason}); pass --mask-encoding"
            ) from None
        distinct = np.unique(levels)
        palette |= image.mode == "P"
        most_values = max(most_values, len(distinct))
        values.update(int(v) for v in distinct[:1000])
    read = f"{len(sample)} of {len(masks)} masks read"
    if most_values <= 2:
        return MaskEncoding("binary", reason=f"auto: {read}, each with at most two values")
    if palette or max(values) <= MAX_LABEL_ID:
        shown = ", ".join(map(str, sorted(values)[:12]))
        raise MaskEncodingError(
            f"{what}: its masks look like class ids (values {shown}), not person masks; pass "
            "--mask-encoding ids:A,B with the ids that are person, or binary if every nonzero "
            "id is part of a person"
        )
    bits = 16 if peak == 65535 else 8
    return MaskEncoding("soft", reason=f"auto: {read}, {bits}-bit grey with {len(values)} values")
