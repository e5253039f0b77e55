"""The bundled first run: generate a synthetic dataset and prepare records from it.

Later steps (training, export, segmenting a clip, the report) join here as they land.
"""

from __future__ import annotations

import os
from pathlib import Path

from backdrop.data.portrait import PortraitReader
from backdrop.data.prepare import PrepareConfig, prepare
from backdrop.data.synthetic import write_synthetic_dataset


def run_demo(output: str | Path, count: int = 300, side: int = 128) -> dict[str, Path]:
    """Runs the demo into `output`; returns the artefacts it wrote, by name."""
    output = Path(output)
    dataset = write_synthetic_dataset(output / "synthetic", count=count)
    records = output / "records"
    config = PrepareConfig(records, side=side, workers=os.cpu_count() or 1, remove_previous=True)
    prepare([PortraitReader(dataset, source="synthetic")], config)
    return {"dataset": dataset, "records": records, "metadata": records / "metadata.json"}
