"""PyTorch state_dict files read without PyTorch: both formats, and refusal of anything else."""

from __future__ import annotations

import collections
import contextlib
import copyreg
import functools
import io
import os
import pickle
import shlex
import struct
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.models import torch_weights
from backdrop.models.torch_weights import LEGACY_MAGIC, TorchFormatError, read_state_dict

FLOAT = object()  # stands for torch.FloatStorage in a hand-made storage reference


@contextlib.contextmanager
def _torch_stand_ins():
    """Stand-ins for the torch globals a state_dict pickle names, so a test can write one."""
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
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield FloatStorage, _rebuild_tensor_v2
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Tensor:
    """Pickles as torch does a tensor: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`,
    with any of those (or the storage reference itself, `pid`) replaced to lie."""

    def __init__(self, key, array, offset=0, size=None, stride=None, pid=None):
        self.key, self.pid, self.offset = key, pid, offset
        # The memory the tensor views: a transposed array's is its base's.
        memory = array if array.flags.c_contiguous or array.base is None else array.base
        self.storage = np.ascontiguousarray(memory).ravel()
        self.size = array.shape if size is None else size
        self.stride = (
            tuple(s // array.itemsize for s in array.strides) if stride is None else stride
        )

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        storage = ("storage", self.key, self.storage, self.pid)
        hooks = collections.OrderedDict()
        return rebuild, (storage, self.offset, self.size, self.stride, False, hooks)


class _Pickler(pickle.Pickler):
    def __init__(self, file, storage_type, legacy: bool):
        super().__init__(file, protocol=2)
        self.storage_type, self.legacy = storage_type, legacy
        self.storages = {}

    def persistent_id(self, obj):
        if not (isinstance(obj, tuple) and len(obj) == 4 and obj[0] == "storage"):
            return None
        _, key, array, pid = obj
        self.storages[key] = array
        if isinstance(pid, tuple):
            return tuple(self.storage_type if part is FLOAT else part for part in pid)
        if pid is not None:
            return pid
        pid = ("storage", self.storage_type, key, "cpu", array.size)
        return (*pid, None) if self.legacy else pid  # legacy adds the (unused) view metadata


def _state_pickle(value, legacy: bool) -> tuple[bytes, dict[str, np.ndarray]]:
    """The pickle of `value` as torch.save writes it, and the storages it names."""
    with _torch_stand_ins() as (storage_type, _):
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, storage_type, legacy)
        pickler.dump(value)
    return buffer.getvalue(), pickler.storages


def _legacy_pickles(main: bytes, storages: dict, keys=None) -> list[bytes]:
    """The legacy format's five pickles: magic, protocol, system info, state_dict, storage keys."""
    headers = (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True})
    keys = list(storages) if keys is None else keys
    return [*(pickle.dumps(h, protocol=2) for h in headers), main, pickle.dumps(keys, protocol=2)]


def _legacy_data(storages: dict, numels=None) -> bytes:
    numels = numels or {}
    return b"".join(
        struct.pack("<q", numels.get(key, array.size)) + array.tobytes()
        for key, array in storages.items()
    )


def _legacy_file(value) -> bytes:
    main, storages = _state_pickle(value, legacy=True)
    return b"".join(_legacy_pickles(main, storages)) + _legacy_data(storages)


def _zip_file(main: bytes, entries: dict, compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr("archive/data.pkl", main)
        for key, array in entries.items():
            archive.writestr(f"archive/data/{key}", np.asarray(array).tobytes())
    return buffer.getvalue()


def _zip_of(value) -> bytes:
    return _zip_file(*_state_pickle(value, legacy=False))


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.random((4, 3, 3, 3), np.float32),
        "bn.bias": rng.random(4, np.float32),
        "fc.weight": rng.random((5, 3), np.float32).T,  # strided: (1, 3)
        "bn.count": np.float32(7.0).reshape(()),
        "empty": np.zeros((0, 3), np.float32),
    }


def _state() -> collections.OrderedDict:
    return collections.OrderedDict(
        (name, _Tensor(str(i), array)) for i, (name, array) in enumerate(_arrays().items())
    )


@functools.cache
def _valid_files() -> dict[str, bytes]:
    return {"legacy": _legacy_file(_state()), "zip": _zip_of(_state())}


def _write(folder: Path, content: bytes, name: str = "weights.pth") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _refused(path: Path, match: str | None = None) -> str:
    with pytest.raises(TorchFormatError, match=match) as caught:
        read_state_dict(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message, message
    return message


@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_both_formats_read(tmp_path, kind):
    loaded = read_state_dict(_write(tmp_path, _valid_files()[kind]))
    assert list(loaded) == list(_arrays())
    for name, array in _arrays().items():
        assert loaded[name].dtype == np.float32
        np.testing.assert_array_equal(loaded[name], array)


def test_a_truncated_legacy_file_says_so(tmp_path):
    _refused(_write(tmp_path, _valid_files()["legacy"][:-8]), "truncated")


def test_refuses_pickles_that_would_run_code_and_files_that_are_not_pytorch(tmp_path):
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        for header in (LEGACY_MAGIC, 1001, {}):
            pickle.dump(header, handle, protocol=2)
        pickle.dump(types.SimpleNamespace(a=1), handle, protocol=2)
    _refused(path, "types.SimpleNamespace")
    _refused(_write(tmp_path, b"not a model", "notes.pth"), "not a PyTorch")
    with pytest.raises(TorchFormatError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")


class _Run:
    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that create `marker` when plain `pickle.load` reads them, by several routes."""
    touch = f"touch {shlex.quote(str(marker))}"
    copyreg.add_extension(os.system.__module__, "system", 0xBAD)
    try:
        extension = pickle.dumps(_Run(os.system, touch), protocol=2)  # EXT2, no GLOBAL
    finally:
        copyreg.remove_extension(os.system.__module__, "system", 0xBAD)
    return {
        "os.system": pickle.dumps(_Run(os.system, touch), protocol=2),
        "exec": pickle.dumps(_Run(exec, f"open({str(marker)!r}, 'w').close()"), protocol=4),
        "subprocess": pickle.dumps(_Run(subprocess.call, ["touch", str(marker)]), protocol=0),
        "INST": b"(S" + repr(touch).encode() + b"\nios\nsystem\n.",
        "EXT2": extension,
        "inside a dict": pickle.dumps({"w": _Run(os.system, touch)}, protocol=2),
    }


def test_the_payloads_do_run_code_through_plain_pickle(tmp_path):
    """So the test below proves something: each payload is live."""
    marker = tmp_path / "ran"
    for name, payload in _payloads(marker).items():
        copyreg.add_extension(os.system.__module__, "system", 0xBAD)
        try:
            pickle.loads(payload)
        finally:
            copyreg.remove_extension(os.system.__module__, "system", 0xBAD)
        assert marker.exists(), name
        marker.unlink()


POSITIONS = ["magic", "protocol", "system info", "state_dict", "storage keys", "zip data.pkl"]


@pytest.mark.parametrize("position", POSITIONS)
def test_no_pickle_in_either_format_can_run_code(tmp_path, position):
    marker = tmp_path / "ran"
    main, storages = _state_pickle(_state(), legacy=position != "zip data.pkl")
    for name, payload in _payloads(marker).items():
        if position == "zip data.pkl":
            content = _zip_file(payload, storages)
        else:
            pickles = _legacy_pickles(main, storages)
            pickles[POSITIONS.index(position)] = payload
            content = b"".join(pickles) + _legacy_data(storages)
        _refused(_write(tmp_path, content))
        assert not marker.exists(), f"{name} ran from the {position} pickle"


def _with_tensor(kind: str, tensor: _Tensor, tmp_path: Path) -> Path:
    value = collections.OrderedDict(w=tensor)
    return _write(tmp_path, _legacy_file(value) if kind == "legacy" else _zip_of(value))


STORAGE_OF_4 = np.arange(4, dtype=np.float32)


@pytest.mark.parametrize("kind", ["legacy", "zip"])
@pytest.mark.parametrize(
    ("offset", "size", "stride", "reason"),
    [
        (4, (1,), (1,), "past its storage"),  # offset past the end
        (0, (2, 3), (3, 1), "past its storage"),  # size x stride past the end
        (3, (2, 2), (-1, 1), "non-negative"),
        (0, (-1,), (1,), "non-negative"),
        (-1, (1,), (1,), "non-negative"),
        (0, (2, 2), (1,), "differ in length"),
        (0, ("2",), (1,), "non-negative integer"),
        (0, (2.0,), (1,), "non-negative integer"),
        (0, (True,), (1,), "non-negative integer"),
        (0, "22", (1,), "not a tuple"),
        (0, (10**9,), (0,), "past its storage|repeat"),  # 4 GB from 4 elements
        (0, (1,), (2**70,), "non-negative integer"),
        (2**63, (1,), (1,), "non-negative integer"),
        (0, (2,) * 70, (0,) * 70, "differ in length"),
    ],
)
def test_tensor_views_stay_inside_their_storage(tmp_path, kind, offset, size, stride, reason):
    tensor = _Tensor("0", STORAGE_OF_4, offset, size, stride)
    _refused(_with_tensor(kind, tensor, tmp_path), reason)


@pytest.mark.parametrize("kind", ["legacy", "zip"])
@pytest.mark.parametrize(
    ("pid", "reason"),
    [
        ("storage", "storage reference is malformed"),
        (("storage", FLOAT, "0"), "storage reference is malformed"),
        (("tensor", FLOAT, "0", "cpu", 4), "storage reference is malformed"),
        (("storage", "ComplexFloatStorage", "0", "cpu", 4), "storage reference is malformed"),
        (("storage", FLOAT, 0, "cpu", 4), "storage reference is malformed"),
        (("storage", FLOAT, "0", "cpu", -4), "storage reference is malformed"),
        (("storage", FLOAT, "0", "cpu", 4.0), "storage reference is malformed"),
        (("storage", FLOAT, "0", "cpu", 2**62), "more bytes than the file has"),
        (("storage", FLOAT, "0", "cpu", 4, ("view", 0, 2)), "views"),
    ],
)
def test_storage_references_are_checked(tmp_path, kind, pid, reason):
    _refused(_with_tensor(kind, _Tensor("0", STORAGE_OF_4, pid=pid), tmp_path), reason)


def test_storages_named_twice_must_agree(tmp_path):
    twice = collections.OrderedDict(
        a=_Tensor("0", STORAGE_OF_4),
        b=_Tensor("0", STORAGE_OF_4, size=(1,), pid=("storage", FLOAT, "0", "cpu", 1, None)),
    )
    _refused(_write(tmp_path, _legacy_file(twice)), "declared twice")


@pytest.mark.parametrize(
    ("keys", "numels", "cut", "reason"),
    [
        (["0", "9"], None, 0, "storage list does not match"),
        ([], None, 0, "storage list does not match"),
        ("0", None, 0, "storage list is not a list"),
        ([0], None, 0, "storage list is not a list"),
        (None, {"0": 2**62}, 0, "holds 4611686018427387904 elements"),
        (None, {"0": -1}, 0, "holds -1 elements"),
        (None, None, 1, "truncated"),
        (None, None, 20, "truncated"),
    ],
)
def test_legacy_storages_must_all_be_there(tmp_path, keys, numels, cut, reason):
    main, storages = _state_pickle(collections.OrderedDict(w=_Tensor("0", STORAGE_OF_4)), True)
    content = b"".join(_legacy_pickles(main, storages, keys)) + _legacy_data(storages, numels)
    _refused(_write(tmp_path, content[: len(content) - cut]), reason)


def test_zip_storages_must_all_be_there(tmp_path):
    main, storages = _state_pickle(collections.OrderedDict(w=_Tensor("0", STORAGE_OF_4)), False)
    _refused(_write(tmp_path, _zip_file(main, {})), "data/0 is missing")
    _refused(_write(tmp_path, _zip_file(main, {"0": STORAGE_OF_4[:3]})), "has 12 bytes")
    _refused(_write(tmp_path, _zip_file(main, {"0": np.zeros(5, np.float32)})), "has 20 bytes")
    compressed = _zip_file(main, storages, zipfile.ZIP_DEFLATED)
    _refused(_write(tmp_path, compressed), "compressed")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/other.pkl", main)
    _refused(_write(tmp_path, buffer.getvalue()), "without data.pkl")


def test_a_zip_lying_about_its_sizes_is_refused(tmp_path):
    content = bytearray(_valid_files()["zip"])
    start = content.find(b"PK\x01\x02")  # each central directory entry: sizes at 20..28
    while start >= 0:
        content[start + 20 : start + 28] = struct.pack("<II", 2**32 - 16, 2**32 - 16)
        start = content.find(b"PK\x01\x02", start + 4)
    _refused(_write(tmp_path, bytes(content)), "EOFError")


PROTO = b"\x80\x02"
REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"
ORDERED_DICT = b"ccollections\nOrderedDict\n"


def _unicode(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _hash_bomb(levels: int) -> bytes:
    """{t: None} where t = (t', t'), t' = (t'', t''), ...: hashing t takes 2**levels steps."""
    body = b")q\x000"  # () memoized as 0, then popped
    for level in range(levels):
        get = b"h" + bytes([level])
        body += get + get + b"\x86q" + bytes([level + 1]) + b"0"
    return PROTO + b"}" + body + b"h" + bytes([levels]) + b"Ns."


@pytest.mark.parametrize(
    ("main", "reason"),
    [
        (PROTO + REBUILD + b"K\x01K\x02\x86R.", "_rebuild_tensor with 2 arguments"),
        (PROTO + ORDERED_DICT + b"]" + _unicode("k") + b"Kx\x86a\x85R.", "with arguments"),
        (PROTO + b"ctorch\nFloatStorage\n)R.", "calls a _StorageType"),
        (PROTO + b"(K\x01K\x02l)R.", "calls a list"),
        (PROTO + ORDERED_DICT + b")R}b]Nb.", "BUILD to a list"),
        (PROTO + _unicode("x") + _unicode("k") + b"K\x01s.", "SETITEM to a str"),
        (_hash_bomb(200), "key that is not a str"),
        (PROTO + b"\x8e" + struct.pack("<Q", 2**62) + b"abc.", "bytes8"),  # 4 EB BINBYTES8
        (PROTO + b"(((((.", "malformed"),
        (PROTO + b"h\x07.", "malformed"),
        (PROTO + b"K\x01", "malformed"),
        (PROTO + b"\x8f(.", "EMPTY_SET"),
        (PROTO + b"K\x01\x85.", "no state_dict"),
    ],
)
def test_allowed_callables_with_wrong_arguments_and_bombs_are_refused(tmp_path, main, reason):
    for content in (
        b"".join(_legacy_pickles(main, {})),
        _zip_file(main, {}),
    ):
        _refused(_write(tmp_path, content), reason)


def test_memory_errors_are_not_disguised(tmp_path, monkeypatch):
    def exhausted(_):
        raise MemoryError

    monkeypatch.setattr(torch_weights, "_read_legacy", exhausted)
    with pytest.raises(MemoryError):
        read_state_dict(_write(tmp_path, _valid_files()["legacy"]))


def _read_or_refuse(path: Path) -> None:
    """read_state_dict either reads `path` or raises one line naming it."""
    try:
        state = read_state_dict(path)
    except TorchFormatError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message, message
    else:
        assert all(isinstance(a, np.ndarray) for a in state.values())


def _rezip(content: bytes) -> bytes:
    """The valid zip file with `content` as its data.pkl."""
    return _zip_file(content, _state_pickle(_state(), legacy=False)[1])


@st.composite
def broken(draw) -> bytes:
    """A valid file (legacy, zip, or the zip's data.pkl), truncated, bit-flipped or overwritten."""
    target = draw(st.sampled_from(["legacy", "zip", "data.pkl"]))
    if target == "data.pkl":
        content = bytearray(_state_pickle(_state(), legacy=False)[0])
    else:
        content = bytearray(_valid_files()[target])
    how = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        content = content[: draw(st.integers(0, len(content) - 1))]
    for _ in range(draw(st.integers(1, 4)) if how != "truncate" else 0):
        at = draw(st.integers(0, len(content) - 1))
        if how == "flip":
            content[at] ^= 1 << draw(st.integers(0, 7))
        else:
            content[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
    return _rezip(bytes(content)) if target == "data.pkl" else bytes(content)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_a_broken_file_is_read_or_refused_in_one_line(content):
    with tempfile.TemporaryDirectory() as folder:
        _read_or_refuse(_write(Path(folder), content, "broken weights.pth"))


def test_broken_files_never_kill_the_interpreter(tmp_path):
    """A batch of damaged and out-of-bounds files, read in a fresh interpreter: a segfault
    or abort would show as a negative return code."""
    rng = np.random.default_rng(1)
    for index in range(150):
        content = bytearray(_valid_files()["legacy" if index % 2 else "zip"])
        for at in rng.integers(0, len(content), 3):
            content[at] = rng.integers(0, 256)
        _write(tmp_path, bytes(content), f"{index}.pth")
    for index, (offset, size, stride) in enumerate([(2**40, (1,), (1,)), (0, (4, 4), (2**40, 1))]):
        _with_tensor("legacy", _Tensor("0", STORAGE_OF_4, offset, size, stride), tmp_path)
        (tmp_path / "weights.pth").rename(tmp_path / f"out of bounds {index}.pth")
    code = (
        "import sys, pathlib\n"
        "from backdrop.models.torch_weights import TorchFormatError, read_state_dict\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('*.pth')):\n"
        "    try:\n"
        "        read_state_dict(path)\n"
        "    except TorchFormatError:\n"
        "        pass\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr[-2000:]


def test_the_cli_reports_a_bad_file_in_one_line(tmp_path):
    """What `backdrop train --init-from bad.pth` prints when the .pth is read (run_cli is the
    CLI's own error handler; training itself needs data and TensorFlow, so is left out)."""
    tensor = _Tensor("0", STORAGE_OF_4, 2**40, (1,), (1,))
    path = _with_tensor("legacy", tensor, tmp_path)
    code = (
        "import sys\n"
        "from backdrop.cli import run_cli\n"
        "from backdrop.models.torch_weights import read_state_dict\n"
        "sys.exit(run_cli(lambda: read_state_dict(sys.argv[1])))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"backdrop: error: {path} is not a PyTorch .pth file")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
