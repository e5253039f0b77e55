"""`backdrop supervisely`: a Supervise.ly Person project in, an image+mask folder out."""

from __future__ import annotations

import argparse
import os

from backdrop.cli.defaults import positive_int


def _supervisely_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "supervisely",
        help="convert Supervise.ly Person to an image+mask (Portrait) folder",
        description="Decode Supervise.ly Person annotations (bitmap and polygon objects) and "
        "write DEST/images/NAME.png, DEST/masks/NAME.png (255 = person) and, where an image has "
        "neutral regions, DEST/ignore/NAME.png.",
    )
    parser.add_argument("source", help="Supervise.ly project folder (meta.json, ds*/img, ds*/ann)")
    parser.add_argument("destination", help="folder for the Portrait dataset")
    parser.add_argument(
        "--person-classes",
        nargs="+",
        default=["person_bmp", "person_poly"],
        help="classTitle values that are person (default: %(default)s)",
    )
    parser.add_argument(
        "--ignore-classes",
        nargs="+",
        default=["neutral"],
        help="classTitle values to ignore (default: %(default)s)",
    )
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_supervisely)


def _run_supervisely(args: argparse.Namespace) -> None:
    run_supervisely(
        args.source,
        args.destination,
        args.person_classes,
        args.ignore_classes,
        args.workers,
        progress=not args.quiet,
    )


def run_supervisely(
    source,
    destination,
    person_classes=("person_bmp", "person_poly"),
    ignore_classes=("neutral",),
    workers: int | None = None,
    progress=True,
) -> dict:
    """Converts a Supervise.ly project to a Portrait folder and prints a summary."""
    from backdrop.data.convert import convert_to_portrait
    from backdrop.data.readers import create_reader

    reader = create_reader(
        "supervisely", source, person_classes=person_classes, ignore_classes=ignore_classes
    )
    summary = convert_to_portrait(reader, destination, workers or os.cpu_count() or 1, progress)
    if summary["converted"] == 0:
        raise RuntimeError(
            f"no usable samples in {source} ({len(summary['skipped'])} skipped, see "
            f"{destination}/conversion.json); each DATASET/ann/NAME.json needs DATASET/img/NAME"
        )
    print(
        f"converted {summary['converted']} images to {destination} in {summary['seconds']:.1f} s; "
        f"skipped {len(summary['skipped'])} (reasons in {destination}/conversion.json)"
    )
    return summary
