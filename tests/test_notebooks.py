"""The example notebooks: stored clean, and `examples/fine_tune.ipynb` runs end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATASETS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FINE_TUNE = EXAMPLES / "fine_tune.ipynb"
# The "footage" and the labelled sequence the notebook uses.
DAVIS_SEQUENCES = ("breakdance", "tennis", "dance-jump")


def _outputs_text(notebook) -> str:
    """Everything the notebook's code cells showed, as one string."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def test_notebooks_are_stored_clean():
    nbformat = pytest.importorskip("nbformat")
    notebooks = sorted(EXAMPLES.glob("*.ipynb"))
    assert FINE_TUNE in notebooks
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.nbformat == 4
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.integration
def test_fine_tune_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from backdrop.finetune.start import StartError, mediapipe_file

    data = Path(os.environ.get("BACKDROP_DATA") or SHARED_DATASETS)
    frames = data / "davis2016_people" / "JPEGImages" / "480p"
    missing = [name for name in DAVIS_SEQUENCES if not (frames / name).is_dir()]
    if missing:
        pytest.skip(
            f"DAVIS sequences {missing} are absent from {frames} (needs ../shared/datasets)"
        )
    try:
        mediapipe_file("mediapipe")
    except StartError as error:
        pytest.skip(f"MediaPipe's model is not installed: {error}")

    output = tmp_path / "fine_tune"
    monkeypatch.setenv("BACKDROP_NOTEBOOK_OUTPUT", str(output))
    notebook = nbformat.read(FINE_TUNE, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error

    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    shown = _outputs_text(notebook)
    assert "held-out footage" in shown  # the verdict
    assert "recommended:" in shown
    assert (output / "report" / "index.html").is_file()
    if (output / "report" / "gallery-1.png").is_file():
        outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (output / "model" / "model_float16.tflite").is_file()
    assert (output / "results.json").is_file()
