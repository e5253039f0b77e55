"""The `backdrop` command: each subcommand parses, builds a config and calls one library function.

Heavy modules (TensorFlow above all) are imported inside the handlers, so `backdrop --help` and
the data-only commands start fast.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence

from backdrop.cli.data import _prepare_parser, run_prepare
from backdrop.cli.demo import _demo_parser
from backdrop.cli.finetune import _fine_tune_parser
from backdrop.cli.report import _report_parser
from backdrop.cli.serve import _serve_parser
from backdrop.cli.ship import _evaluate_parser, _export_parser, _segment_parser
from backdrop.cli.supervisely import _supervisely_parser, run_supervisely
from backdrop.cli.teach import _pseudo_label_parser
from backdrop.cli.train import _train_parser, run_train
from backdrop.cli.train_flags import parse_shape
from backdrop.cli.weights import _average_parser, _fit_int8_parser

__all__ = ["main", "parse_shape", "run_cli", "run_prepare", "run_supervisely", "run_train"]

# Errors a user can fix (OSError: a full disk, a permission, a path); anything else is a bug and
# keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)

PARSERS: tuple[Callable, ...] = (
    _supervisely_parser,
    _prepare_parser,
    _pseudo_label_parser,
    _fine_tune_parser,
    _train_parser,
    _average_parser,
    _fit_int8_parser,
    _export_parser,
    _segment_parser,
    _evaluate_parser,
    _report_parser,
    _serve_parser,
    _demo_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backdrop",
        description="Train tiny person-segmentation models for background blur and replacement.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in PARSERS:
        add(subparsers)
    return parser


def run_cli(handler: Callable[[], object], prog: str = "backdrop") -> int:
    """Runs `handler`, turning user errors into one line on stderr and exit code 1."""
    try:
        handler()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    return 0


def _one_line(error: BaseException) -> str:
    """The message of a user error, on one line; a full disk says so in words."""
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
        where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
        return f"no space left on device{where}; free some space or choose another output folder"
    return " ".join(str(error).split("\n")).strip() or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse takes a command's positional list only before its first option; pictures named
    # after an option (`pseudo-label T --with R pictures/`) still belong to it.
    if extra and hasattr(args, "inputs") and not any(a.startswith("-") for a in extra):
        args.inputs = [*args.inputs, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run_cli(lambda: args.handler(args))
