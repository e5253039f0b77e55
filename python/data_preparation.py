"""Seed-compatible shim: datasets -> TFRecords, with the original flags.

Same as `backdrop prepare --voc P --portrait C --portrait S --destination D --side SD`; the
`backdrop` command adds COCO, matting and video-folder options.
"""

import argparse
import sys

import _shim  # noqa: F401  (makes `backdrop` importable from a source checkout)

from backdrop.cli import run_cli, run_prepare


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data_preparation",
        description="Preprocess data and transform in the TFrecord format for "
        "AUnetBackgroundRemoval.",
    )
    parser.add_argument(
        "-p",
        "--pascal-voc-path",
        dest="pascal_voc_path",
        help="specify the path to the PascalVOC2012 dataset.",
    )
    parser.add_argument(
        "-c",
        "--coco-portraints-path",
        dest="coco_portraits_path",
        help="specify the path to the Portraits dataset.",
    )
    parser.add_argument(
        "-s",
        "--supervisely-person-path",
        dest="supervisely_person_path",
        help="specify the path to the Supervise.ly Person dataset (processed "
        "with supervisely_preprocessing.py).",
    )
    parser.add_argument(
        "-d",
        "--tfrecord-destination",
        dest="tfrecord_destination",
        help="specify the destination of creating TFRecords.",
    )
    parser.add_argument(
        "-up",
        "--use_pascal-voc",
        action="store_true",
        dest="use_pascal_voc",
        help="to process the PascalVOC2012 dataset.",
    )
    parser.add_argument(
        "-uc",
        "--use-coco-portraints",
        action="store_true",
        dest="use_coco_portraits",
        help="to process the Portrait dataset.",
    )
    parser.add_argument(
        "-us",
        "--use-supervisely-person",
        action="store_true",
        dest="use_supervisely_person",
        help="to process the Supervise.ly Person dataset.",
    )
    parser.add_argument(
        "-sd",
        "--side",
        type=int,
        dest="side",
        default=32,
        help="specify the side of downscaled image.",
    )
    parser.add_argument("-v", "--verbose", type=int, dest="verbose", default=0)
    parser.add_argument(
        "--remove-all-previous-results",
        action="store_true",
        dest="remove_all",
        help="delete all files under the directory specified on `-d` that "
        "Backdrop wrote there (records and metadata.json).",
    )
    return parser


def _readers(args):
    from backdrop.data.readers.portrait import PortraitReader
    from backdrop.data.readers.voc import VOCReader

    wanted = [
        (args.use_pascal_voc, args.pascal_voc_path, "-up", "-p"),
        (args.use_coco_portraits, args.coco_portraits_path, "-uc", "-c"),
        (args.use_supervisely_person, args.supervisely_person_path, "-us", "-s"),
    ]
    for use, path, use_flag, path_flag in wanted:
        if use and not path:
            raise ValueError(f"{use_flag} needs the dataset path: pass {path_flag} PATH")
    if not any(use for use, *_ in wanted):
        raise ValueError("nothing to do: choose datasets with -up/-uc/-us and their paths -p/-c/-s")
    if not args.tfrecord_destination:
        raise ValueError("pass the records folder with -d/--tfrecord-destination")
    readers = []
    if args.use_pascal_voc:
        readers.append(VOCReader(args.pascal_voc_path))
    if args.use_coco_portraits:
        readers.append(PortraitReader(args.coco_portraits_path))
    if args.use_supervisely_person:
        readers.append(PortraitReader(args.supervisely_person_path, source="supervisely"))
    return readers


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    settings = argparse.Namespace(
        destination=args.tfrecord_destination,
        side=args.side,
        validation_fraction=0.1,
        shard_size=1000,
        image_format="jpeg",
        workers=None,
        remove_all_previous_results=args.remove_all,
    )

    def run():
        metadata = run_prepare(_readers(args), settings, progress=True)
        if args.verbose:
            for source in metadata["sources"]:
                print(
                    f"{source['source']:>12}: {source['train']} train, "
                    f"{source['validation']} validation ({source['root']})"
                )
            for skipped in metadata["skipped"]:
                print(f"skipped {skipped['file']}: {skipped['reason']}")

    return run_cli(run, prog="data_preparation.py")


if __name__ == "__main__":
    sys.exit(main())
