"""The held-out truth: the pictures a pseudo-label folder's records hold out, with their truth.

`backdrop pseudo-label --data ... --split train` labels each labelled set's training split with
a blend of truth and teacher, and `backdrop prepare` holds a tenth of those labels out as its
validation split (a hash of "pseudo/NAME"). No student trains on them, and none of them is in a
judged set (the sets' own validation splits). This writes each such picture of each picture set
with its dataset's own ground-truth mask, one image+mask folder per set, to be scored with
`backdrop evaluate --data portrait:OUT/SET ...` (no --split): a yardstick of the judged kinds
that scores against the truth, where the records' validation split scores against the blended
labels (and so favours a model that copies the teacher). Video sets are left out: their held-out
frames have neighbours in training.

    .venv/bin/python benchmarks/heldout_truth.py runs/beat_mediapipe/labels runs/heldout
    .venv/bin/backdrop evaluate MODELS... --data portrait:runs/heldout/picsart_selfies \
        portrait:runs/heldout/human_seg_vikram portrait:runs/heldout/ccp_fashion
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path, help="a `backdrop pseudo-label` output folder")
    parser.add_argument("output", type=Path, help="new folder: OUTPUT/SET/{images,masks}")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="prepare's")
    args = parser.parse_args()
    from backdrop.data.split import split_of, split_samples
    from backdrop.evaluation.evaluate import parse_data_spec
    from backdrop.teachers.label import dataset_label_name

    record = json.loads((args.labels / "pseudo_labels.json").read_text())
    # Each dataset with the split pseudo-label took of it (train, or all: None).
    datasets = {
        spec: None if run["split"] == "all" else run["split"]
        for run in record["runs"]
        for spec in run.get("datasets", [])
    }
    if not datasets:
        parser.error(f"{args.labels} labelled no dataset (pseudo-label --data): nothing held out")
    # prepare splits each label by "SOURCE/NAME", SOURCE the one its reader gives the folder.
    source = parse_data_spec(f"portrait:{args.labels}").source
    for spec, labelled_split in datasets.items():
        reader = parse_data_spec(spec)
        if hasattr(reader, "sequences"):
            print(f"{spec}: video, left out")
            continue
        folder = args.output / reader.root.name
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        count = 0
        for _, sample in split_samples(reader, labelled_split, args.validation_fraction):
            name = dataset_label_name(reader.root, sample.name)
            if split_of(f"{source}/{name}", args.validation_fraction) != "validation":
                continue
            Image.fromarray(sample.image).save(folder / "images" / f"{name}.png")
            mask = (sample.mask > 0.5).astype(np.uint8) * 255
            Image.fromarray(mask, "L").save(folder / "masks" / f"{name}.png")
            count += 1
        print(f"{spec}: {count} held-out pictures in {folder}")


if __name__ == "__main__":
    main()
