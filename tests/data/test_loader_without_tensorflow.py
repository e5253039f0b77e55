"""loader.py needs no TensorFlow: importing it and reading batches (backgrounds and copy-paste
included) leaves `tensorflow` out of `sys.modules`, with Keras stubbed out and under a Keras
backend without TensorFlow (jax, or numpy where scipy is installed; skipped where neither is)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, types
if {stub}:  # Keras without any backend: the loader's own imports alone
    keras = types.ModuleType("keras")
    keras.utils = types.SimpleNamespace(
        PyDataset=type("PyDataset", (), {{"__init__": lambda self, **kw: None}})
    )
    sys.modules["keras"] = keras
import numpy as np
from backdrop.data.loader import memory_batches
from backdrop.data.pipeline_config import PipelineConfig
from backdrop.data.records import encode_example

rng = np.random.default_rng(0)
examples = [
    encode_example(f"s{{i}}", "s", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8),
                   (rng.random((20, 24)) > 0.5).astype(np.float32), None)
    for i in range(6)
]
config = PipelineConfig((16, 16), 2, copy_paste_probability=0.5, background_folders=({folder!r},))
batches, _ = memory_batches(examples, config, True)
for batch in list(batches)[:3]:
    assert batch[0].shape == (2, 16, 16, 3)
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if "tensorflow" in m)[:5]
print("no tensorflow")
"""


def _keras_backend_without_tensorflow() -> str | None:
    """jax when installed, else numpy (Keras' numpy backend needs scipy), else None."""
    for backend, needs in (("jax", "jax"), ("numpy", "scipy")):
        found = subprocess.run([sys.executable, "-c", f"import {needs}"], capture_output=True)
        if found.returncode == 0:
            return backend
    return None


@pytest.mark.parametrize("keras_backend", ["stub", "real"])
def test_the_loader_leaves_tensorflow_out(keras_backend, tmp_path):
    backend = "numpy" if keras_backend == "stub" else _keras_backend_without_tensorflow()
    if backend is None:
        pytest.skip("neither jax nor scipy is installed: no Keras backend without TensorFlow")
    picture = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "background.png"), picture)
    script = SCRIPT.format(stub=keras_backend == "stub", folder=str(tmp_path))
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no tensorflow" in result.stdout
