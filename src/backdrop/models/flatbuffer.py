"""Flatbuffer tables read by checked accessors: every offset, vector length and string bounded by
the bytes that are there, so a truncated or corrupt file is one error naming it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

READ_LIMIT = 8  # the vector elements a file may yield, as a multiple of its size


class Flatbuffer:
    """The bytes of one file, read only where they are there; anything malformed is one
    `error_type` naming the file as not a readable `what`."""

    def __init__(self, content: bytes, path: Path, error_type: type[ValueError], what: str):
        self.content, self.path = content, path
        self.error_type, self.what = error_type, what
        # Tables may share vectors (the converter shares equal buffers), but a file pointing at
        # the same bytes over and over must not cost time or memory quadratic in its size.
        self.left = READ_LIMIT * len(content) + 64

    def error(self, reason: str) -> ValueError:
        return self.error_type(f"{self.path} is not a readable {self.what} ({reason})")

    def read(self, fmt: str, position: int):
        if position < 0 or position + struct.calcsize(fmt) > len(self.content):
            raise self.error(f"truncated or corrupt at byte {position} of {len(self.content)}")
        return struct.unpack_from(fmt, self.content, position)[0]

    def vector(self, position: int, itemsize: int) -> tuple[int, int]:
        """(start, length) of the vector at `position`, all of it inside the file."""
        length = self.read("<I", position)
        if length * itemsize > len(self.content) - position - 4:
            raise self.error(f"a vector of {length} at byte {position} runs past the end")
        self.charge(length)
        return position + 4, length

    def charge(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise self.error(f"its vectors overlap: it reads over {READ_LIMIT} times its size")

    def table(self, position: int) -> Table:
        return Table(self, position)


class Table:
    """One flatbuffer table: each field by its schema slot, checked, or its default."""

    def __init__(self, buffer: Flatbuffer, position: int):
        self.buffer, self.position = buffer, position
        self.vtable = position - buffer.read("<i", position)
        self.vtable_size = buffer.read("<H", self.vtable)
        if self.vtable_size < 4 or self.vtable_size % 2:
            raise buffer.error(f"the table at byte {position} has a malformed vtable")
        buffer.read("<H", self.vtable + self.vtable_size - 2)  # the whole vtable is there

    def _field(self, slot: int) -> int | None:
        if 4 + 2 * slot >= self.vtable_size:
            return None
        offset = self.buffer.read("<H", self.vtable + 4 + 2 * slot)
        return self.position + offset if offset else None

    def _target(self, slot: int) -> int | None:
        field = self._field(slot)
        return None if field is None else field + self.buffer.read("<I", field)

    def scalar(self, slot: int, fmt: str, default=0):
        field = self._field(slot)
        return default if field is None else self.buffer.read(fmt, field)

    def table(self, slot: int) -> Table | None:
        target = self._target(slot)
        return None if target is None else self.buffer.table(target)

    def tables(self, slot: int) -> list[Table]:
        target = self._target(slot)
        if target is None:
            return []
        start, length = self.buffer.vector(target, 4)
        elements = [start + 4 * i for i in range(length)]
        return [self.buffer.table(e + self.buffer.read("<I", e)) for e in elements]

    def numbers(self, slot: int, dtype: str) -> np.ndarray:
        target, dtype = self._target(slot), np.dtype(dtype)
        if target is None:
            return np.zeros(0, dtype)
        start, length = self.buffer.vector(target, dtype.itemsize)
        return np.frombuffer(self.buffer.content, dtype, length, start)

    def bytes(self, slot: int) -> bytes:
        return self.numbers(slot, "u1").tobytes()

    def string(self, slot: int) -> str | None:
        """A string field (a vector of UTF-8 bytes), undecodable bytes replaced."""
        has = self._field(slot) is not None
        return self.bytes(slot).decode("utf-8", "replace") if has else None


def indices(buffer: Flatbuffer, values: np.ndarray, count: int, what: str, least=-1) -> tuple:
    """Tensor indices, each in [least, count) (-1: an optional input left out)."""
    found = tuple(int(v) for v in values)
    for index in found:
        if not least <= index < count:
            raise buffer.error(f"{what} names tensor {index} of {count}")
    return found


def fits(shape: tuple, itemsize: int, size: int) -> bool:
    """Whether `shape` holds exactly `size` bytes (> 0), never multiplying past them."""
    count = itemsize
    for dimension in shape:
        if dimension <= 0 or count * dimension > size:
            return False
        count *= dimension
    return count == size
