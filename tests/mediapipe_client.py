"""Runs MediaPipe Tasks' ImageSegmenter (the client the mobile SDKs share) on pictures, in the
interpreter that has mediapipe (see backdrop.ship.metadata): `python tests/mediapipe_client.py MODEL
IMAGE|VIDEO PICTURES.npy MASKS.npy`. Writes each picture's confidence mask at its size."""

import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision


def main(model: str, mode: str, pictures_path: str, masks_path: str) -> None:
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=model),
        running_mode=getattr(vision.RunningMode, mode),
        output_confidence_masks=True,
        output_category_mask=False,
    )
    pictures = np.load(pictures_path)
    masks = []
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        for index, picture in enumerate(pictures):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(picture))
            if mode == "VIDEO":
                result = segmenter.segment_for_video(image, index * 33)
            else:
                result = segmenter.segment(image)
            masks.append(result.confidence_masks[0].numpy_view().copy())
    np.save(masks_path, np.stack(masks))


if __name__ == "__main__":
    main(*sys.argv[1:5])
