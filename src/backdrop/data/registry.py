"""Name -> reader class, for every dataset format Backdrop reads."""

from __future__ import annotations

from backdrop.data.coco import COCOReader
from backdrop.data.davis import DAVISReader
from backdrop.data.matting import MattingReader
from backdrop.data.portrait import PortraitReader
from backdrop.data.reader import DatasetError, Reader
from backdrop.data.supervisely import SuperviselyReader
from backdrop.data.voc import VOCReader

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
