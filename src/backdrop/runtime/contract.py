"""A model's contract (`MODEL.tflite.json`, written by `backdrop export`) and the check that the
`.tflite` beside it is the file that was exported. TensorFlow-free.

Export records the model's sha256 in its contract after the metadata is written and before the
model gets its final name, so a model replaced, truncated or left half-written next to a contract
that names another file is refused by every command that reads it (segment, evaluate, serve)
instead of running. A model with no contract beside it (MediaPipe's, Meet's) is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


class ModelFileError(ValueError):
    """A model file does not match its contract, or the contract is unreadable."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def contract_path(model: Path) -> Path:
    return model.with_name(model.name + ".json")


def read_contract(model: str | Path) -> dict | None:
    """The contract beside `model`, or None when there is none.

    Raises:
        ModelFileError: the contract is not a JSON object.
    """
    path = contract_path(Path(model))
    if not path.is_file():
        return None
    try:
        contract = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ModelFileError(f"{path} is not a readable contract ({error})") from None
    if not isinstance(contract, dict):
        raise ModelFileError(f"{path} is not a readable contract (not a JSON object)")
    return contract


def check_model_bytes(model: str | Path, data: bytes) -> dict | None:
    """Raises `ModelFileError` unless `data`, the bytes of `model`, are what its contract's
    sha256 names (a contract without one, or no contract, passes). Returns the contract."""
    contract = read_contract(model)
    expected = contract.get("sha256") if contract else None
    if expected is not None and sha256_of(data) != expected:
        raise ModelFileError(
            f"{model} is not the model its contract {contract_path(Path(model)).name} describes "
            "(its sha256 differs: replaced, truncated or left half-written by an interrupted "
            "export); export it again"
        )
    return contract


def check_model_file(model: str | Path) -> dict | None:
    """`check_model_bytes` on the file's own bytes."""
    return check_model_bytes(model, Path(model).read_bytes())
