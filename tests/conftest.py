"""Shared pytest fixtures: real third-party data (skipped when absent) and tiny models."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATASETS = SHARED / "datasets"


def find_shared_model(relative: str) -> Path:
    """Path of a public model under ../shared (e.g. "anchors/selfie_segmentation.tflite"), or
    skips the test."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"public model {path} is absent (needs ../shared/{relative})")
    return path


@pytest.fixture
def shared_dataset():
    """Returns a function mapping a folder name to its path in ../shared/datasets, or skips."""

    def find(name: str) -> Path:
        path = SHARED_DATASETS / name
        if not path.is_dir():
            pytest.skip(f"real data {path} is absent (integration tests need ../shared/datasets)")
        return path

    return find


@pytest.fixture
def anchor_model():
    """Path of a MediaPipe reference model in ../shared/anchors, or skips."""

    def find(name: str = "selfie_segmentation.tflite") -> Path:
        return find_shared_model(f"anchors/{name}")

    return find


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """The tiny .tflite models the repository carries (tests/runtime/tiny), copied to a scratch
    folder: the runtime tests need no TensorFlow. `python -m tests.tiny_models` rebuilds them."""
    import shutil

    from tests.tiny_models import TINY, TINY_MODELS

    folder = tmp_path_factory.mktemp("tiny_models")
    for path in TINY.iterdir():
        shutil.copy(path, folder / path.name)
    return {kind: folder / name for kind, name in TINY_MODELS.items()}


@pytest.fixture
def shared_model():
    """`find_shared_model` as a fixture."""
    return find_shared_model
