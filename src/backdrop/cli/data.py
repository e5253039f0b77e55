"""`backdrop prepare`: datasets in, records out; the mask-encoding flag other commands share."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from backdrop.cli.defaults import defaults_of
from backdrop.data.prepare import PrepareConfig

_default = defaults_of(PrepareConfig)  # every flag's default is the config's


def _mask_encoding(text: str) -> str:
    from backdrop.data.masks import MaskEncoding, MaskEncodingError

    try:
        MaskEncoding.parse(text)
    except MaskEncodingError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_mask_encoding_argument(parser: argparse.ArgumentParser) -> None:
    """--mask-encoding, for every command that reads image+mask folders."""
    from backdrop.data.masks import HELP

    parser.add_argument(
        "--mask-encoding",
        type=_mask_encoding,
        default="auto",
        metavar="ENCODING",
        help=HELP + "; applies to the portrait, matting and davis datasets (default: %(default)s)",
    )


def add_prepare_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `backdrop prepare` about how records are written."""
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=_default("validation_fraction"),
        help="share of samples in the validation split, chosen by a hash of each sample's "
        "name so it is stable when datasets are added (default: %(default)s)",
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        default=_default("shard_size"),
        help="samples per shard (default: %(default)s)",
    )
    parser.add_argument(
        "--image-format",
        choices=("jpeg", "png"),
        default=_default("image_format"),
        help="encoding of the images in the records; masks are always PNG (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_default("workers"),
        help="worker processes (default: all %(default)s cores)",
    )


def _prepare_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="any mix of datasets -> sharded TFRecords",
        description="Read person datasets in their native formats, downscale them so the "
        "shorter side is --side, and write sharded TFRecords with a train/validation split and "
        "a metadata.json (counts per source and split, every skipped file with its reason).",
    )
    data = parser.add_argument_group("datasets (any mix; each option may be repeated)")
    data.add_argument(
        "--portrait",
        action="append",
        default=[],
        metavar="DIR",
        help="image+mask folder: DIR/images + DIR/masks, or Training_Images + Ground_Truth",
    )
    data.add_argument("--images-dir", help="image folder name inside each --portrait DIR")
    data.add_argument("--masks-dir", help="mask folder name inside each --portrait DIR")
    add_mask_encoding_argument(data)
    data.add_argument(
        "--supervisely",
        action="append",
        default=[],
        metavar="DIR",
        help="Supervise.ly Person project in its native layout (meta.json, ds*/img, ds*/ann)",
    )
    data.add_argument(
        "--voc",
        action="append",
        default=[],
        metavar="DIR",
        help="PASCAL VOC 2012 folder (JPEGImages + SegmentationClass)",
    )
    data.add_argument("--voc-image-set", help="ImageSets/Segmentation list to use, e.g. train")
    data.add_argument(
        "--coco",
        action="append",
        default=[],
        metavar="DIR",
        help="COCO root holding annotations/instances_SPLIT.json and SPLIT/",
    )
    data.add_argument(
        "--coco-split",
        action="append",
        default=None,
        metavar="SPLIT",
        help="COCO split(s) to read (default: train2017)",
    )
    data.add_argument(
        "--coco-crowd",
        choices=("ignore", "person"),
        default="ignore",
        help="what COCO crowd regions become (default: %(default)s)",
    )
    data.add_argument(
        "--matting",
        action="append",
        default=[],
        metavar="DIR",
        help="matting set: DIR/fg + DIR/alpha, composited over --matting-backgrounds",
    )
    data.add_argument(
        "--matting-backgrounds",
        nargs="+",
        default=[],
        metavar="DIR",
        help="background image folders for --matting (e.g. COCO or VOC images)",
    )
    data.add_argument(
        "--matting-per-foreground",
        type=int,
        default=10,
        help="composites per foreground (default: %(default)s)",
    )
    data.add_argument("--matting-seed", type=int, default=0, help="background choice seed")
    data.add_argument(
        "--davis",
        action="append",
        default=[],
        metavar="DIR",
        help="DAVIS-style video folder (JPEGImages/480p/SEQ + Annotations/480p/SEQ)",
    )
    data.add_argument(
        "--davis-frame-step",
        type=int,
        default=1,
        help="keep every n-th video frame (default: all)",
    )
    data.add_argument(
        "--negatives",
        action="store_true",
        help="keep VOC/COCO images without a person (as all-background samples)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("-d", "--destination", required=True, help="folder for the records")
    out.add_argument(
        "--side",
        type=int,
        default=_default("side"),
        help="shorter image side in the records; never upscaled (default: %(default)s)",
    )
    out.add_argument(
        "--remove-all-previous-results",
        action="store_true",
        help="delete the records and metadata Backdrop wrote in --destination before "
        "writing (never anything else; refuses /, home, the current folder and "
        "dataset folders)",
    )
    add_prepare_output_arguments(out)
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> None:
    from backdrop.data.readers import create_reader

    readers = [
        create_reader(
            "portrait",
            p,
            images_dir=args.images_dir,
            masks_dir=args.masks_dir,
            mask_encoding=args.mask_encoding,
        )
        for p in args.portrait
    ]
    readers += [create_reader("supervisely", p) for p in args.supervisely]
    readers += [
        create_reader("voc", p, image_set=args.voc_image_set, negatives=args.negatives)
        for p in args.voc
    ]
    readers += [
        create_reader("coco", p, split=split, negatives=args.negatives, crowd=args.coco_crowd)
        for p in args.coco
        for split in (args.coco_split or ["train2017"])
    ]
    readers += [
        create_reader(
            "matting",
            p,
            background_dirs=args.matting_backgrounds,
            per_foreground=args.matting_per_foreground,
            seed=args.matting_seed,
            mask_encoding=args.mask_encoding,
        )
        for p in args.matting
    ]
    readers += [
        create_reader(
            "davis", p, frame_step=args.davis_frame_step, mask_encoding=args.mask_encoding
        )
        for p in args.davis
    ]
    run_prepare(readers, args, progress=not args.quiet)


def run_prepare(readers: Sequence, args: argparse.Namespace, progress: bool = True) -> dict:
    """Builds the PrepareConfig from parsed arguments, runs prepare and prints a summary."""
    from backdrop.data.prepare import PrepareConfig, prepare

    if not readers:
        raise ValueError("no dataset given; pass at least one of the dataset options (see --help)")
    config = PrepareConfig(
        destination=args.destination,
        side=args.side,
        validation_fraction=args.validation_fraction,
        shard_size=args.shard_size,
        image_format=args.image_format,
        workers=args.workers or os.cpu_count() or 1,
        remove_previous=args.remove_all_previous_results,
    )
    metadata = prepare(readers, config, progress=progress)
    for source in metadata["sources"]:
        print(
            f"{source['source']} {source['root']}: {source['train']} train, "
            f"{source['validation']} validation; masks read as {source['masks']}"
        )
    splits = metadata["splits"]
    print(
        f"wrote {splits['train']['count']} train and {splits['validation']['count']} validation "
        f"samples to {config.destination} in {metadata['seconds']:.1f} s "
        f"({metadata['images_per_second']:.1f} images/s); skipped {len(metadata['skipped'])} "
        f"(reasons in {config.destination / 'metadata.json'})"
    )
    for warning in metadata["warnings"]:
        print(f"warning: {warning}")
    return metadata
