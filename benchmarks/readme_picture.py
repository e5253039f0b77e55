"""The README's picture: one photo with its background blurred by two models, side by side.

The photo is scikit-image's `astronaut.png` (Eileen Collins, NASA: public domain), read from an
installed scikit-image or from a path given. Nothing of any dataset is in the picture; the models
only blur it.

    .venv/bin/pip install scikit-image   # once, for the photo
    .venv/bin/python benchmarks/readme_picture.py RUN/square/model/model_float16.tflite \\
        ../shared/anchors/selfie_segmentation.tflite --names Backdrop "MediaPipe general" \\
        -o docs/blur.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def astronaut() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("readme_picture: install scikit-image, or give --photo PATH")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".tflite segmenters, one panel each")
    parser.add_argument("--names", nargs="+", help="a caption for each model")
    parser.add_argument("--photo", type=Path, help="default: scikit-image's astronaut.png")
    parser.add_argument("--width", type=int, default=360, help="of each panel")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/blur.jpg"))
    args = parser.parse_args()
    from backdrop.imageops import read_picture
    from backdrop.runtime.effects import blur_background
    from backdrop.runtime.segmenter import Segmenter

    names = args.names or [Path(m).stem for m in args.models]
    if len(names) != len(args.models):
        parser.error("give one --names caption per model")
    photo = read_picture(args.photo or astronaut())
    panels = []
    for model, name in zip(args.models, names, strict=True):
        blurred = blur_background(photo, Segmenter(model)(photo), strength=0.05)
        height = round(blurred.shape[0] * args.width / blurred.shape[1])
        panel = cv2.resize(blurred, (args.width, height), interpolation=cv2.INTER_AREA)
        cv2.rectangle(panel, (0, 0), (args.width, 28), (0, 0, 0), -1)
        cv2.putText(panel, name, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        panels.append(panel)
    picture = np.concatenate(panels, axis=1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(args.output), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]
    )
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
