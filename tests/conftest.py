"""Shared pytest fixtures: paths to the real third-party data, skipped cleanly when absent."""

from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def shared_dataset():
    """Returns a function mapping a folder name to its path in ../shared/datasets, or skips."""

    def find(name: str) -> Path:
        path = SHARED_DATASETS / name
        if not path.is_dir():
            pytest.skip(f"real data {path} is absent (integration tests need ../shared/datasets)")
        return path

    return find
