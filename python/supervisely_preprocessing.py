"""Seed-compatible shim: Supervise.ly Person -> Portrait folder, with the original flags.

Same as `backdrop supervisely SOURCE DESTINATION`.
"""

import argparse
import sys

import _shim  # noqa: F401  (makes `backdrop` importable from a source checkout)

from backdrop.cli import run_cli, run_supervisely

DEFAULT_SOURCE = "Supervisely Person Dataset"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="supervise.ly_preprocessor",
        description="Extract examples from Supervise.ly Person Dataset (preprocessing).",
    )
    parser.add_argument(
        "-s",
        "--source-path",
        dest="source_path",
        default=DEFAULT_SOURCE,
        help="specify the path to the Supervise.ly Person Dataset. Required if different from "
        "the default (%(default)r).",
    )
    parser.add_argument(
        "-d",
        "--destination-path",
        dest="destination",
        required=True,
        help="specify the destination to store the processed dataset.",
    )
    args = parser.parse_args(argv)
    return run_cli(
        lambda: run_supervisely(args.source_path, args.destination),
        prog="supervisely_preprocessing.py",
    )


if __name__ == "__main__":
    sys.exit(main())
