"""Flags take their defaults from the typed configs: one lookup for every command."""

from __future__ import annotations

import dataclasses
import functools


def config_default(config_class: type, name: str):
    """The default of field `name` of the dataclass `config_class` (its factory's value, if any)."""
    field = next(f for f in dataclasses.fields(config_class) if f.name == name)
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def defaults_of(config_class: type):
    """`name -> default` for `config_class`, e.g. `DEFAULT = defaults_of(TrainConfig)`."""
    return functools.partial(config_default, config_class)


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (threads, workers, sizes)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def tail_share(text: str) -> float:
    """An argparse type: a share of values left out at each end, in [0, 0.5)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 0.5), got {text!r}")
    return value
