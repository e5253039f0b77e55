"""Lets the seed-compatible scripts run from this folder without installing the package."""

import sys
from pathlib import Path

try:
    import backdrop  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
