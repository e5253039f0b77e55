"""`backdrop report`: the HTML page of a training run."""

from __future__ import annotations

import argparse


def _report_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="HTML report of a training run",
        description="Write RUN_DIR/report/index.html: loss and IoU curves, validation images "
        "with true and predicted masks, the exported models and the settings.",
    )
    parser.add_argument("run", help="checkpoints folder of `backdrop train`")
    parser.add_argument("-o", "--output", help="folder for the page (default: RUN_DIR/report)")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from backdrop.evaluation.report import write_report

    print(f"report: {write_report(args.run, args.output)}")
