"""`backdrop demo`: the bundled first run."""

from __future__ import annotations

import argparse


def _demo_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the bundled first run on generated data (no download)",
        description="Generate a synthetic person dataset, prepare records, train a small "
        "Attention U-Net, export it to int8, blur a generated clip and write an HTML report.",
    )
    parser.add_argument("--output", default="demo_output", help="folder for everything it writes")
    parser.add_argument("--quick", action="store_true", help="a tiny version (about a minute)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> None:
    from backdrop.demo import DemoSettings, run_demo

    run_demo(args.output, DemoSettings.quick() if args.quick else DemoSettings())
