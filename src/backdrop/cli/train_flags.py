"""The flags of `backdrop train`, in three groups: data, model and training."""

from __future__ import annotations

import argparse

from backdrop.cli.data import add_mask_encoding_argument
from backdrop.cli.defaults import defaults_of
from backdrop.data import CROP_ASPECTS
from backdrop.models.registry import MOBILE_ACTIVATIONS, MODEL_NAMES
from backdrop.training.config import DISTRIBUTE, EXPORT_MODES, TrainConfig

DEFAULT = defaults_of(TrainConfig)  # every flag's default is the config's


def parse_repeat(text: str) -> tuple[str, int]:
    """ "portrait=3" -> ("portrait", 3)."""
    source, _, times = text.partition("=")
    if not source or not times.isdigit() or int(times) < 1:
        raise argparse.ArgumentTypeError(f"expected SOURCE=TIMES (TIMES >= 1), got {text!r}")
    return source, int(times)


def parse_weight(text: str) -> tuple[str, float]:
    """ "pseudo=0.5" -> ("pseudo", 0.5)."""
    source, _, weight = text.partition("=")
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if not source or not value >= 0:
        raise argparse.ArgumentTypeError(f"expected SOURCE=WEIGHT (WEIGHT >= 0), got {text!r}")
    return source, value


def parse_shape(text: str) -> tuple[int, int]:
    """ "128" -> (128, 128); "144x256" -> (144, 256) (height x width)."""
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIDE or HEIGHTxWIDTH, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SIDE or HEIGHTxWIDTH in pixels (each >= 1), got {text!r}"
        )
    return values


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag of `backdrop train`, in its help groups: data, model, training."""
    _add_data_flags(parser.add_argument_group("data"))
    _add_model_flags(parser.add_argument_group("model"))
    _add_training_flags(parser.add_argument_group("training"))


def _add_data_flags(data) -> None:
    data.add_argument("-r", "--records", help="folder written by `backdrop prepare`")
    data.add_argument(
        "--portrait",
        action="append",
        default=[],
        metavar="DIR",
        help="image+mask folder read into memory (instead of records)",
    )
    data.add_argument(
        "--voc",
        action="append",
        default=[],
        metavar="DIR",
        help="PASCAL VOC folder read into memory (instead of records)",
    )
    add_mask_encoding_argument(data)
    data.add_argument(
        "--background",
        action="append",
        default=[],
        metavar="DIR",
        help="image folder for background replacement (interior, exterior, ...)",
    )
    data.add_argument(
        "--background-probability",
        type=float,
        default=DEFAULT("background_probability"),
        help="chance an example gets a new background (default: %(default)s)",
    )
    data.add_argument(
        "--copy-paste-probability",
        type=float,
        default=DEFAULT("copy_paste_probability"),
        help="chance an example's people are pasted over another training image, whose own "
        "people stay labelled (default: %(default)s)",
    )
    data.add_argument(
        "--zoom-out-probability",
        type=float,
        default=DEFAULT("zoom_out_probability"),
        help="chance an example is shrunk to 30-90%% of its side onto a --background picture "
        "(without one, onto another training image): people small in the frame, as a camera "
        "across a room shows them (default: %(default)s)",
    )
    data.add_argument(
        "--whole-frame-probability",
        type=float,
        default=DEFAULT("whole_frame_probability"),
        help="chance an example is the whole frame stretched to the input, as the runtime "
        "shows every frame, instead of a random crop (default: %(default)s)",
    )
    data.add_argument(
        "--crop-aspect",
        choices=CROP_ASPECTS,
        default=DEFAULT("crop_aspect"),
        help="random crops shaped like the model input (people keep their proportions) or "
        "like the source frame (stretched to the input as the runtime stretches whole frames) "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--repeat-source",
        action="append",
        default=[],
        type=parse_repeat,
        metavar="SOURCE=TIMES",
        help="show each record of SOURCE (portrait, davis, coco, ...) TIMES times per epoch",
    )
    data.add_argument(
        "--source-weight",
        action="append",
        default=[],
        type=parse_weight,
        metavar="SOURCE=WEIGHT",
        help="multiply the loss of SOURCE's examples by WEIGHT, e.g. pseudo=0.5 so teacher "
        "labels (`backdrop pseudo-label`) count half as much as ground truth (default: 1)",
    )
    data.add_argument("--no-augment", action="store_true", help="no random crops, flips, colour")
    data.add_argument("--cache", action="store_true", help="keep decoded records in memory")


def _add_model_flags(model) -> None:
    model.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help="registered model (default: the one --init-from starts, else attention_unet)",
    )
    model.add_argument(
        "--init-from",
        metavar="FILE",
        help="start from public weights: a segmenter .tflite rebuilt in Keras (MediaPipe selfie "
        "general/landscape, Meet full/lite), the MobileNetV2 ImageNet .tflite or "
        "EfficientNet-Lite0's .pth (README: where each comes from); or fine-tune a Backdrop "
        ".keras checkpoint in its run folder (e.g. `backdrop average`'s output, with "
        "--quantize-aware-epochs equal to -e for int8 rounding only), whose architecture it "
        "keeps and whose optimizer it does not",
    )
    model.add_argument(
        "--input",
        type=parse_shape,
        metavar="SIDE|HxW",
        help="model input, e.g. 128 or 144x256 (default: the --init-from segmenter's own, "
        "else 128)",
    )
    restored = "; with --restore, the run's own"
    model.add_argument(
        "-f",
        "--filters",
        type=int,
        help=f"first-layer filters (default: {DEFAULT('filters')}{restored})",
    )
    model.add_argument(
        "--depth",
        type=int,
        help=f"U-Net down-sampling steps (default: {DEFAULT('depth')}{restored})",
    )
    model.add_argument(
        "--width",
        type=float,
        help="channel multiplier of mobile_segmenter's encoder "
        f"(default: {DEFAULT('width')}{restored})",
    )
    model.add_argument(
        "--activation",
        choices=MOBILE_ACTIVATIONS,
        help="mobile_segmenter's activation; relu6 bounds every range, which int8 likes "
        f"(default: {DEFAULT('activation')}{restored})",
    )
    model.add_argument(
        "--extra-blocks",
        type=int,
        metavar="N",
        help="a larger model from a public segmenter's file: N inverted-residual blocks added "
        "at its deepest resolution, each starting as the identity (its projection zero), so "
        "training starts from the file's exact function; `backdrop average` takes their start "
        f"as that (default: {DEFAULT('extra_blocks')}{restored})",
    )


def _add_training_flags(fit) -> None:
    fit.add_argument(
        "-o",
        "--checkpoints",
        default=DEFAULT("checkpoints"),
        help="folder for checkpoints, logs and the exported model",
    )
    fit.add_argument(
        "-e",
        "--epochs",
        type=int,
        default=DEFAULT("epochs"),
        help="total epochs (default: %(default)s)",
    )
    fit.add_argument(
        "--quantize-aware-epochs",
        type=int,
        default=DEFAULT("quantize_aware_epochs"),
        metavar="N",
        help="the last N of the epochs simulate int8 rounding (batch norm frozen), so the int8 "
        "export loses less; with --restore, raise -e by N to fine-tune a finished run",
    )
    fit.add_argument(
        "-b", "--batch-size", type=int, default=DEFAULT("batch_size"), help="per replica"
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULT("learning_rate"),
        help="peak of the cosine schedule (default: %(default)s)",
    )
    fit.add_argument(
        "--weight-decay",
        type=float,
        default=DEFAULT("weight_decay"),
        help="decoupled weight decay of every trainable weight (AdamW); 0: plain Adam "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--distribute",
        choices=DISTRIBUTE,
        default=DEFAULT("distribute"),
        help="auto: several machines if TF_CONFIG is set, else all "
        "GPUs of this machine, else one device",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=DEFAULT("seed"),
        help="seed of the initial weights, the shuffling and the augmentation; the same seed "
        "gives the same run on the same machine, not across CPUs (default: %(default)s)",
    )
    fit.add_argument(
        "--export",
        choices=(*EXPORT_MODES, "none"),
        default=DEFAULT("export"),
        help="TFLite export after training (default: %(default)s)",
    )
    fit.add_argument("--restore", action="store_true", help="continue from the last checkpoint")
    fit.add_argument(
        "--remove-all-previous-results",
        action="store_true",
        help="delete Backdrop's files in the checkpoints folder first",
    )
    fit.add_argument(
        "-l",
        "--generate-tflite-only",
        action="store_true",
        help="export the last checkpoint without training",
    )
