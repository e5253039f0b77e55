"""Reads a PyTorch `state_dict` (`.pth`, legacy or zip format) into numpy, running none of it."""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from backdrop.models.torch_pickle import TorchFormatError, load_pickle

__all__ = ["LEGACY_MAGIC", "STORAGE_DTYPES", "TorchFormatError", "read_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
MAX_OVERLAP = 4  # tensors may share storage (tied weights), up to this many times its bytes


@dataclasses.dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: np.dtype


@dataclasses.dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int64(value) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _rebuild_tensor(storage, offset, size, stride, *_) -> _Tensor:
    """torch._utils._rebuild_tensor(_v2), checking its arguments' types (bounds: `_array`)."""
    if not isinstance(storage, _Storage):
        raise TorchFormatError("a tensor is rebuilt from something other than a storage")
    if type(size) not in (tuple, list) or type(stride) not in (tuple, list):
        raise TorchFormatError("a tensor's size or stride is not a tuple")
    if len(size) != len(stride) or len(size) > 64:
        raise TorchFormatError("a tensor's size and stride differ in length or pass 64 dimensions")
    if not all(map(_int64, (offset, *size, *stride))):
        raise TorchFormatError("a tensor's offset, size or stride is not a non-negative integer")
    return _Tensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(tensor, *_) -> _Tensor:
    if not isinstance(tensor, _Tensor):
        raise TorchFormatError("a parameter is rebuilt from something other than a tensor")
    return tensor


def _ordered_dict(*args) -> collections.OrderedDict:
    if args:  # OrderedDict(items) would hash whatever the pickle passes; SETITEMS fills it
        raise TorchFormatError("an OrderedDict is built with arguments")
    return collections.OrderedDict()


_TENSOR_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(np.dtype(t)) for name, t in STORAGE_DTYPES.items()},
}


def _storage_loader(storages: dict, file_size: int):
    """`persistent_load` for the main pickle: records each storage a tensor names, checked."""

    def load(saved_id) -> _Storage:
        if type(saved_id) is not tuple or len(saved_id) not in (5, 6) or saved_id[0] != "storage":
            raise TorchFormatError("a tensor's storage reference is malformed")
        _, kind, key, _location, numel = saved_id[:5]
        if type(kind) is str and kind in STORAGE_DTYPES:  # some writers name the type as text
            kind = _TENSOR_GLOBALS["torch", kind]
        if not isinstance(kind, _StorageType) or type(key) is not str or not _int64(numel):
            raise TorchFormatError("a tensor's storage reference is malformed")
        if len(saved_id) == 6 and saved_id[5] is not None:
            raise TorchFormatError("it holds storage views (PyTorch < 0.4), not supported")
        if numel * kind.dtype.itemsize > file_size:
            raise TorchFormatError(f"storage {key[:40]!r} claims more bytes than the file has")
        storage = storages.setdefault(key, _Storage(key, kind.dtype, numel))
        if storage != _Storage(key, kind.dtype, numel):
            raise TorchFormatError(f"storage {key[:40]!r} is declared twice, differently")
        return storage

    return load


def _read_legacy(data: bytes) -> tuple[object, dict[str, np.ndarray]]:
    """Legacy format: magic, protocol, system info, the state_dict, storage keys (each a pickle),
    then for each key its element count (int64) and bytes."""
    stream = io.BytesIO(data)
    try:
        magic = load_pickle(stream)
    except TorchFormatError:
        magic = None
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise TorchFormatError("no PyTorch header")
    if load_pickle(stream) != LEGACY_PROTOCOL:
        raise TorchFormatError(f"its protocol is not {LEGACY_PROTOCOL}")
    info = load_pickle(stream)
    if type(info) is not dict or info.get("little_endian", True) is not True:
        raise TorchFormatError("it was saved big-endian or its system info is malformed")
    storages: dict[str, _Storage] = {}
    value = load_pickle(stream, _TENSOR_GLOBALS, _storage_loader(storages, len(data)))
    keys = load_pickle(stream)
    if type(keys) is not list or not all(type(k) is str for k in keys):
        raise TorchFormatError("its storage list is not a list of names")
    if sorted(keys) != sorted(storages):
        raise TorchFormatError("its storage list does not match the storages its tensors use")
    arrays, position = {}, stream.tell()
    for key in keys:
        storage = storages[key]
        numel = int.from_bytes(data[position : position + 8], "little", signed=True)
        if numel != storage.numel:
            raise TorchFormatError(
                f"truncated or corrupt: storage {key[:40]!r} holds {numel} elements, "
                f"its tensors expect {storage.numel}"
            )
        end = position + 8 + numel * storage.dtype.itemsize
        if end > len(data):
            raise TorchFormatError(f"truncated: storage {key[:40]!r} ends past the end of file")
        arrays[key] = np.frombuffer(data, storage.dtype, numel, position + 8)  # no copy
        position = end
    return value, arrays


def _read_entry(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise TorchFormatError(f"{name} is missing from the zip") from None
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise TorchFormatError(f"{name} is compressed; PyTorch stores every entry as is")
    return archive.read(info)


def _read_zip(data: bytes) -> tuple[object, dict[str, np.ndarray]]:
    """Zip format: `<folder>/data.pkl` (the state_dict) and `<folder>/data/<key>` (bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickled = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
        if pickled is None:
            raise TorchFormatError("a zip without data.pkl")
        root = pickled[: -len("data.pkl")]
        if f"{root}byteorder" in archive.namelist():
            if _read_entry(archive, f"{root}byteorder") != b"little":
                raise TorchFormatError("it was saved big-endian")
        storages: dict[str, _Storage] = {}
        stream = io.BytesIO(_read_entry(archive, pickled))
        value = load_pickle(stream, _TENSOR_GLOBALS, _storage_loader(storages, len(data)))
        arrays = {}
        for key, storage in storages.items():
            raw = _read_entry(archive, f"{root}data/{key}")
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise TorchFormatError(
                    f"data/{key[:40]} has {len(raw)} bytes, its tensors expect "
                    f"{storage.numel} x {storage.dtype.itemsize}"
                )
            arrays[key] = np.frombuffer(raw, storage.dtype)
    return value, arrays


def _array(tensor: _Tensor, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """A copy of `tensor`'s elements, after checking that each one lies in its own storage."""
    flat = arrays[tensor.storage.key]
    count = math.prod(tensor.size)
    if count == 0:
        return np.zeros(tensor.size, flat.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if last >= flat.size or count > flat.size:
        raise TorchFormatError(
            f"a tensor of size {tensor.size[:8]} reads past its storage {tensor.storage.key[:40]!r}"
            f" ({flat.size} elements)"
        )
    strides = tuple(s * flat.itemsize for s in tensor.stride)
    return np.lib.stride_tricks.as_strided(flat[tensor.offset :], tensor.size, strides).copy()


def _tensors(value, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    dicts = (dict, collections.OrderedDict)
    if type(value) in dicts and type(value.get("state_dict")) in dicts:
        value = value["state_dict"]
    if type(value) not in dicts:
        raise TorchFormatError("it holds no state_dict (a dict of tensors)")
    tensors = {str(k): v for k, v in value.items() if isinstance(v, _Tensor)}
    stored = sum(a.nbytes for a in arrays.values())
    wanted = sum(math.prod(t.size) * t.storage.dtype.itemsize for t in tensors.values())
    if wanted > MAX_OVERLAP * stored:
        raise TorchFormatError(f"its tensors repeat their storages more than {MAX_OVERLAP} times")
    return {name: _array(tensor, arrays) for name, tensor in tensors.items()}


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """`name -> array` for every tensor of the `.pth` at `path` (each array a copy, in the
    dtype of its storage, shaped like the tensor).

    The file is data: nothing in it is called but the few PyTorch functions that rebuild a
    tensor (stand-ins here), and every size, stride and offset is checked against the bytes
    the file holds.

    Raises:
        TorchFormatError: the file is missing, malformed, or holds more than tensors in dicts
            (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise TorchFormatError(f"{path} not found")
    data = path.read_bytes()
    try:
        value, arrays = (_read_zip if data[:4] == b"PK\x03\x04" else _read_legacy)(data)
        return _tensors(value, arrays)
    except MemoryError:
        raise
    except Exception as error:  # any failure to parse these bytes is the file's
        raise TorchFormatError(
            f"{path} is not a PyTorch .pth file Backdrop can read ({_reason(error)})"
        ) from error


def _reason(error: Exception) -> str:
    """Why parsing failed, on one short line (an unforeseen error's type names it)."""
    text = str(error)
    if not isinstance(error, TorchFormatError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return " ".join(text.split())[:200]
