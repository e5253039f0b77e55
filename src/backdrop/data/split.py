"""The train/validation split: a hash of each sample's key, so it never moves when data is
added. prepare, training from folders and evaluate all take it from here."""

from __future__ import annotations

import hashlib

from backdrop.data.sample import Sample

SPLITS = ("train", "validation", "all")  # what a command that takes --split may pick
# The share the hash puts in validation unless a command is told otherwise: records, teacher
# labels of --data (their training split) and evaluate's --split agree on it.
VALIDATION_FRACTION = 0.1


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


def split_samples(reader, split: str | None, validation_fraction: float):
    """Yields `(sequence, sample)` for the samples of `reader` in `split` (None: all of them);
    the sequence is None outside video readers. Unusable samples go to `reader.skipped`."""

    def wanted(sample: Sample) -> bool:
        return split is None or split_of_sample(sample, validation_fraction) == split

    if hasattr(reader, "sequences"):
        for sequence, keys in reader.sequences().items():
            for key in keys:
                sample = reader.try_load(key)
                if sample is not None and wanted(sample):
                    yield sequence, sample
    else:
        for sample in reader:
            if wanted(sample):
                yield None, sample
