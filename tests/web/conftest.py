"""Fixtures of the `backdrop serve` tests: a faked npm cache and a servable tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from backdrop.web import VENDOR_FILES, cache_folder
from tests.web.helpers import servable


@pytest.fixture
def vendor_cache(tmp_path, monkeypatch) -> Path:
    """MediaPipe's files as if `npm pack` had fetched them (XDG_CACHE_HOME points here)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    folder = cache_folder()
    for name in VENDOR_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"// vendored {name}\n".encode())
    return folder


@pytest.fixture
def model(tmp_path, tiny_models) -> Path:
    return servable(tiny_models["float32"], tmp_path / "models-in" / "person.tflite")
