"""Dataset readers, one per format, and `create_reader`, the one factory every caller uses
(timm's `create_reader` is the model): `create_reader("voc", root, negatives=True)`."""

from __future__ import annotations

from backdrop.data.readers.base import DatasetError, Reader
from backdrop.data.readers.coco import COCOReader
from backdrop.data.readers.davis import DAVISReader
from backdrop.data.readers.matting import MattingReader
from backdrop.data.readers.portrait import PortraitReader
from backdrop.data.readers.supervisely import SuperviselyReader
from backdrop.data.readers.voc import VOCReader

READERS: dict[str, type[Reader]] = {
    reader.source: reader
    for reader in (
        SuperviselyReader,
        PortraitReader,
        VOCReader,
        COCOReader,
        MattingReader,
        DAVISReader,
    )
}


def get_reader(name: str) -> type[Reader]:
    """The reader class registered under `name`; an unknown name lists the valid ones."""
    try:
        return READERS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset format {name!r}; valid formats: {', '.join(sorted(READERS))}"
        ) from None


def create_reader(name: str, root, **options) -> Reader:
    """A reader of format `name` over `root`; `options` are that reader's keyword arguments
    (e.g. `split="val2017"` for COCO, `frame_step=3` for DAVIS).

    Raises:
        DatasetError: an unknown format (naming the valid ones) or a folder that does not fit.
    """
    return get_reader(name)(root, **options)
