"""`backdrop export`, `backdrop segment` and `backdrop evaluate`: from a checkpoint to an app."""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.cli.data import add_mask_encoding_argument
from backdrop.cli.defaults import positive_int, tail_share
from backdrop.training.config import EXPORT_MODES


def _export_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Keras checkpoint -> TFLite (float32, float16, int8) with its contract",
        description="Export a checkpoint (a .keras file, or a checkpoints folder: its best "
        "epoch) as TFLite. int8 is calibrated on the training records; each .tflite gets a "
        "JSON contract with its input/output format and the validation IoU of the float and the "
        "exported model.",
    )
    parser.add_argument("checkpoint", help=".keras file or checkpoints folder")
    parser.add_argument(
        "-r",
        "--records",
        required=True,
        help="records folder (calibration: train split; IoU: validation split)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=EXPORT_MODES,
        default=["float32", "float16", "int8"],
    )
    parser.add_argument(
        "-o", "--output", help="folder for the models (default: beside the checkpoint)"
    )
    parser.add_argument(
        "--int8-range-tail",
        type=tail_share,
        metavar="SHARE",
        help="measure each rounded tensor's int8 range on the calibration pictures, leaving "
        "this share of its values out at each end (e.g. 1e-4): for a checkpoint of rounding "
        "epochs (--quantize-aware-epochs) instead of the range learned in training, for a "
        "float one instead of the whole range calibration would take (default: no tails left "
        "out)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=2, help="threads for the latency figure"
    )
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> None:
    from backdrop.ship.on_tensorflow import on_tensorflow

    on_tensorflow(export_checkpoint, args)


def export_checkpoint(args: argparse.Namespace) -> None:
    """`backdrop export`, on the TensorFlow backend."""
    import numpy as np

    from backdrop.ship.export import export_models, format_reports
    from backdrop.ship.model_card import training_data
    from backdrop.training.checkpoints import load_checkpoint
    from backdrop.training.config import TrainConfig
    from backdrop.training.datasets import export_data
    from backdrop.training.run_folder import RunFolder

    source = Path(args.checkpoint)
    if source.is_dir():
        source = RunFolder(source).best
    model = load_checkpoint(source)
    shape = tuple(model.input_shape[1:3])
    config = TrainConfig(checkpoints=source.parent, records=args.records, input_shape=shape)
    extra = {"checkpoint": str(source), "model": model.name}
    calibration, validation = export_data(config)
    mode_extra = {}
    if args.int8_range_tail is not None:
        from backdrop.training.quantize_aware import has_fake_quant
        from backdrop.training.ranges import clip_ranges, tail_rounded

        measure = clip_ranges if has_fake_quant(model) else tail_rounded
        model = measure(model, np.stack(calibration), args.int8_range_tail)
        mode_extra["int8"] = {"int8_range_tail": args.int8_range_tail}
    reports = export_models(
        model,
        Path(args.output or source.parent),
        args.modes,
        calibration,
        validation,
        args.threads,
        extra=extra,
        training=training_data(Path(args.records)),
        mode_extra=mode_extra,
    )
    print(format_reports(reports))


def _segment_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="blur or replace the background of images, videos or a camera",
        description="Segment people with a .tflite model and apply an effect. INPUT is an image, "
        "a folder of images, a video file or a camera index (0, 1, ...). A video keeps its "
        "size, timestamps and audio; its format follows the output's extension (.mp4, .m4v, "
        ".mov, .mkv: H.264 + AAC; .webm: VP9 + Opus). A truncated or damaged video is written "
        "as far as it could be read, and the command then exits with an error saying so.",
    )
    parser.add_argument("model", help="segmentation .tflite (Backdrop's or e.g. MediaPipe's)")
    parser.add_argument("-i", "--input", required=True, help="IMAGE, FOLDER, VIDEO or CAMERA_INDEX")
    parser.add_argument(
        "-e",
        "--effect",
        default="blur",
        help="blur[:STRENGTH] | replace:IMAGE | color:HEX | mask (default: blur)",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="output image, folder or video (for a camera: record to this file; .mp4 plays "
        "everywhere)",
    )
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument(
        "--smooth",
        type=float,
        default=0.6,
        help="temporal smoothing weight for video, 1 = none (default: 0.6)",
    )
    parser.add_argument(
        "--refine", action="store_true", help="snap mask edges to the image (guided filter)"
    )
    parser.add_argument("--max-frames", type=int, help="stop a camera after this many frames")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_segment)


def _run_segment(args: argparse.Namespace) -> None:
    """Exits with an error (after writing and keeping the output) when a video input is
    truncated or damaged: a script should not take a partial result for the whole one."""
    import sys

    from backdrop.imageops import VIDEO_EXTENSIONS, printable
    from backdrop.outputs import OutputFolder
    from backdrop.runtime.media import (
        MediaError,
        check_output,
        image_outputs,
        process_camera,
        process_images,
        process_video,
    )
    from backdrop.runtime.pipeline import FramePipeline, parse_effect
    from backdrop.runtime.segmenter import Segmenter

    source = Path(args.input)
    output = Path(args.output) if args.output else None
    if args.input.isdigit() and not source.exists():
        kind = "camera"
    elif not source.exists():
        raise MediaError(f"input {printable(args.input)} not found")
    else:
        kind = "folder" if source.is_dir() else "video"
        if kind == "video" and source.suffix.lower() not in VIDEO_EXTENSIONS:
            kind = "image"
    if output is None and kind != "camera":
        raise MediaError("pass --output for the result")
    if output is not None:
        check_output(output, kind)
    effect = parse_effect(args.effect)
    segmenter = Segmenter(args.model, args.threads)
    smooth = args.smooth if kind in ("video", "camera") else 1.0
    pipeline = FramePipeline(segmenter, effect, smooth=smooth, refine=args.refine)
    if output is None:
        stats = process_camera(int(args.input), pipeline, None, args.max_frames)
        print(f"{stats['frames']} frames at {stats['frames_per_second']:.1f} frames/s")
        return
    inputs = [args.model] + ([] if kind == "camera" else [source])
    where = output if kind == "folder" else output.parent
    with OutputFolder(where, "segment", "--output", inputs) as folder:
        pairs = image_outputs(source, output) if kind in ("folder", "image") else [(source, output)]
        folder.claim(*[result.name for _, result in pairs])
        if kind == "camera":
            stats = process_camera(int(args.input), pipeline, output, args.max_frames)
        elif kind == "video":
            stats = process_video(source, output, pipeline, progress=not args.quiet)
        else:
            stats = process_images(pairs, pipeline, progress=not args.quiet)
    for note in stats.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    audio = f" ({stats['audio']})" if stats.get("audio") else ""
    shown = printable(str(output))
    print(
        f"{stats['frames']} frames at {stats['frames_per_second']:.1f} frames/s -> {shown}{audio}"
    )
    if stats.get("skipped"):
        print(f"skipped {len(stats['skipped'])} pictures (reasons above)")
    if stats.get("incomplete"):
        raise MediaError(
            f"{stats['incomplete']}; the {stats['frames']} frames read are kept in {shown}"
        )


def _evaluate_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare .tflite models side by side: IoU, boundary IoU, flicker, latency, size",
        description="Run every model on the same images. Person IoU is the mean over images at "
        "the original resolution (probability resized back bilinearly, threshold 0.5, ignore "
        "pixels left out); boundary IoU uses a band of 2%% of the diagonal; flicker is the share "
        "of mask pixels that change between consecutive frames of video data.",
    )
    parser.add_argument("models", nargs="+", help=".tflite models")
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="SPEC",
        help="portrait:DIR, davis:DIR, coco:DIR[:SPLIT], voc:DIR, supervisely:DIR",
    )
    parser.add_argument(
        "--split",
        choices=("train", "validation"),
        help="only the samples of this split (the hash split of prepare)",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="MODEL",
        help="a .tflite to compare every other model with, picture by picture: the mean IoU "
        "difference on each dataset with a 95%% bootstrap interval over pictures (video frames "
        "in blocks of 10) and the pictures won and lost; evaluated too if not among the models "
        "(repeatable)",
    )
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument(
        "-o",
        "--output",
        default="evaluation",
        help="folder for evaluation.json, evaluation.md and grid.png",
    )
    add_mask_encoding_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> None:
    from backdrop.evaluation.evaluate import evaluate, parse_data_spec
    from backdrop.evaluation.results import (
        format_report,
        format_skips,
        update_model_cards,
        write_results,
    )
    from backdrop.outputs import OutputFolder

    readers = [parse_data_spec(spec, args.mask_encoding) for spec in args.data]
    listed = {Path(path).resolve() for path in args.models}
    models = args.models + [path for path in args.reference if Path(path).resolve() not in listed]
    inputs = [path for reader in readers for path in reader.input_paths()] + models
    with OutputFolder(args.output, "evaluate", "--output folder", inputs) as output:
        json_path, table_path, grid_path = output.claim(
            "evaluation.json", "evaluation.md", "grid.png"
        )
        results = evaluate(
            models,
            readers,
            args.threads,
            args.split,
            args.validation_fraction,
            grid_path=grid_path,
            progress=not args.quiet,
            references=args.reference,
        )
        skips = format_skips(results)
        write_results(results, output.root)
    cards = update_model_cards(results)
    print(format_report(results))
    if cards:
        print(f"\nmodel cards updated: {', '.join(str(card) for card in cards)}")
    if skips:
        print(f"\n{skips}")
    written = [json_path, table_path] + ([grid_path] if grid_path.exists() else [])
    print(f"\nwritten: {', '.join(str(path) for path in written)}")
