"""`backdrop serve`'s model checks on broken files: truncated, bit-flipped or overwritten, a model
is served or refused with one ServeError naming it, never anything else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backdrop.web import ServeError, read_model
from tests.tiny_models import TINY, TINY_MODELS

MODEL = (TINY / TINY_MODELS["float32"]).read_bytes() + b"TFLITE_METADATA"


def served_or_refused(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "broken model.tflite"
        path.write_bytes(content)
        try:
            assert read_model(path) == content
        except ServeError as error:
            message = str(error)
            assert str(path) in message and "\n" not in message, message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_broken_model_is_served_or_refused_in_one_line(data):
    content = bytearray(MODEL)
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if kind == "truncate":
        content = content[: data.draw(st.integers(0, len(content) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            content[data.draw(st.integers(0, len(content) - 1))] ^= 1 << data.draw(
                st.integers(0, 7)
            )
    else:
        start = data.draw(st.integers(0, len(content) - 4))
        content[start : start + 4] = data.draw(st.binary(min_size=4, max_size=4))
    served_or_refused(bytes(content))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_any_short_bytes_are_refused_in_one_line(content):
    served_or_refused(content)
