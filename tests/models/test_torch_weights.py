"""PyTorch state_dict files read without PyTorch: both formats, and refusal of anything else."""

from __future__ import annotations

import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from backdrop.models.torch_weights import LEGACY_MAGIC, TorchFormatError, read_state_dict


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-ins for the two torch globals a state_dict pickle names, so the test can write one."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__ = "FloatStorage"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


class _Tensor:
    def __init__(self, key, array, rebuild):
        self.key, self.array, self.rebuild = key, array, rebuild

    def __reduce__(self):
        strides = tuple(s // self.array.itemsize for s in self.array.strides)
        storage = ("storage", self.key, self.array)
        return self.rebuild, (
            storage,
            0,
            self.array.shape,
            strides,
            False,
            collections.OrderedDict(),
        )


class _Pickler(pickle.Pickler):
    def __init__(self, file, storage_type):
        super().__init__(file, protocol=2)
        self.storage_type = storage_type
        self.storages = {}

    def persistent_id(self, obj):
        if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == "storage":
            _, key, array = obj
            self.storages[key] = array
            return ("storage", self.storage_type, key, "cpu", array.size)
        return None


def _state(rebuild):
    rng = np.random.default_rng(0)
    arrays = {
        "conv.weight": rng.random((4, 3, 3, 3), np.float32),
        "bn.bias": rng.random(4, np.float32),
    }
    tensors = collections.OrderedDict(
        (name, _Tensor(str(i), array, rebuild)) for i, (name, array) in enumerate(arrays.items())
    )
    return arrays, tensors


def test_legacy_format(tmp_path, fake_torch):
    storage_type, rebuild = fake_torch
    arrays, tensors = _state(rebuild)
    buffer = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    pickler = _Pickler(buffer, storage_type)
    pickler.dump(tensors)
    pickle.dump(list(pickler.storages), buffer, protocol=2)
    for key in pickler.storages:
        array = pickler.storages[key]
        buffer.write(np.int64(array.size).tobytes())
        buffer.write(np.ascontiguousarray(array).tobytes())
    path = tmp_path / "legacy.pth"
    path.write_bytes(buffer.getvalue())
    loaded = read_state_dict(path)
    assert loaded.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
    path.write_bytes(buffer.getvalue()[:-8])
    with pytest.raises(TorchFormatError, match="truncated"):
        read_state_dict(path)


def test_zip_format(tmp_path, fake_torch):
    storage_type, rebuild = fake_torch
    arrays, tensors = _state(rebuild)
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, storage_type)
    pickler.dump(tensors)
    path = tmp_path / "zip.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        for key, array in pickler.storages.items():
            archive.writestr(f"archive/data/{key}", np.ascontiguousarray(array).tobytes())
    loaded = read_state_dict(path)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_refuses_pickles_that_would_run_code_and_files_that_are_not_pytorch(tmp_path):
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        for header in (LEGACY_MAGIC, 1001, {}):
            pickle.dump(header, handle, protocol=2)
        pickle.dump(types.SimpleNamespace(a=1), handle, protocol=2)
    with pytest.raises(TorchFormatError, match="types.SimpleNamespace"):
        read_state_dict(path)
    (tmp_path / "notes.pth").write_text("not a model")
    with pytest.raises(TorchFormatError, match="not a PyTorch"):
        read_state_dict(tmp_path / "notes.pth")
    with pytest.raises(TorchFormatError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")
