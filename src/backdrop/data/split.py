"""The train/validation split: a hash of each sample's key, so it never moves when data is
added. prepare, training from folders and evaluate all take it from here."""

from __future__ import annotations

import hashlib

from backdrop.data.sample import Sample


def split_of(sample_key: str, validation_fraction: float) -> str:
    """ "train" or "validation", from a hash of the key: stable when other data is added."""
    digest = hashlib.sha256(sample_key.encode()).digest()
    return (
        "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction else "train"
    )


def split_of_sample(sample: Sample, validation_fraction: float) -> str:
    """The split of `sample`: by its source and video sequence (or matting foreground), else
    its name, so frames of one sequence never straddle the splits."""
    return split_of(f"{sample.source}/{sample.group or sample.name}", validation_fraction)
