"""What each setting of a run's config.json may hold, checked as JSON gives it."""

from __future__ import annotations

import json
import math

# The largest whole number a config.json setting may hold (counts, sizes, epochs, the seed), and
# the largest input side it may name (8K: far above any segmenter's input).
MAX_SETTING = 2**31 - 1
MAX_INPUT_SIDE = 8192


def _path(value) -> bool:
    return isinstance(value, str) and "\0" not in value


def _whole(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_SETTING


def _side(value) -> bool:
    return type(value) is int and 1 <= value <= MAX_INPUT_SIDE


def _number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and abs(value) <= MAX_SETTING


def _pairs(value, second) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and second(pair[1])
        for pair in value
    )


# What each setting's annotation takes from JSON (to_json writes paths as text, tuples as lists).
SETTING_CHECKS = {
    "Path": (_path, "must be a path (text)"),
    "Path | None": (lambda v: v is None or _path(v), "must be a path (text) or null"),
    "tuple[Path, ...]": (
        lambda v: isinstance(v, list) and all(_path(p) for p in v),
        "must be a list of paths (text)",
    ),
    "str": (lambda v: isinstance(v, str), "must be text"),
    "bool": (lambda v: isinstance(v, bool), "must be true or false"),
    "int": (_whole, f"must be a whole number from 0 to {MAX_SETTING}"),
    "float": (_number, f"must be a finite number of at most {MAX_SETTING}"),
    "tuple[int, int]": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_side(n) for n in v),
        f"must be [height, width], two whole numbers from 1 to {MAX_INPUT_SIDE}",
    ),
    "tuple[tuple[str, int], ...]": (
        lambda v: _pairs(v, _whole),
        "must be a list of [source, whole number] pairs",
    ),
    "tuple[tuple[str, float], ...]": (
        lambda v: _pairs(v, _number),
        "must be a list of [source, number] pairs",
    ),
}


def setting_problem(annotation: str, value) -> str | None:
    """What is wrong with `value` as a setting of type `annotation` (as JSON gives it), if
    anything."""
    check, problem = SETTING_CHECKS[annotation]
    return None if check(value) else f"{problem}, got {_shown(value)}"


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
