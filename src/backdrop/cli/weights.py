"""`backdrop average` and `backdrop fit-int8`: new weights made from a trained checkpoint."""

from __future__ import annotations

import argparse

from backdrop.cli.defaults import positive_int
from backdrop.training.config import FIT_INT8_PASSES, TrainConfig


def _average_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "average",
        help="average a fine-tuned checkpoint's weights with those it started from (WiSE-FT)",
        description="Write a checkpoint whose every weight is (1 - WEIGHT) x start + WEIGHT x "
        "tuned: weight-space ensembling of a fine-tuned public model with the model it started "
        "from, which keeps much of what each knows at no cost at inference. The start is the "
        "run's --init-from file (from its config.json) unless --start names another.",
    )
    parser.add_argument("checkpoint", help="the fine-tuned .keras checkpoint")
    parser.add_argument("-o", "--output", required=True, help=".keras file to write")
    parser.add_argument(
        "--weight",
        type=float,
        default=0.5,
        help="share of the fine-tuned weights (0: the start, 1: the checkpoint; default: "
        "%(default)s, WiSE-FT's own)",
    )
    parser.add_argument(
        "--start",
        help="what the run started from: public weights as --init-from takes them, or a .keras "
        "checkpoint of the same architecture (default: the run's --init-from)",
    )
    parser.set_defaults(handler=_run_average)


def _run_average(args: argparse.Namespace) -> None:
    from backdrop.training.average import average_checkpoint

    output = average_checkpoint(args.checkpoint, args.output, args.weight, args.start)
    print(f"wrote {output}: {args.weight:g} x {args.checkpoint} + {1 - args.weight:g} x its start")


def _fit_int8_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit-int8",
        help="fit a float checkpoint's int8 rounding to the float model itself (kernels held)",
        description="Write a rounding checkpoint for `backdrop export --modes int8`: the float "
        "checkpoint with int8 rounding simulated, where only the biases and each rounded "
        "tensor's range are fitted so that the rounded model's person probability matches the "
        "float model's own on the records' training pictures (no labels; the kernels do not "
        "move). The int8 file then stays closer to the float model than after rounding epochs "
        "(--quantize-aware-epochs), whose weights move. A few minutes on 2 CPU cores; the file "
        "is written at the end (an interrupted run writes nothing).",
    )
    parser.add_argument("checkpoint", help="a float .keras checkpoint (no rounding epochs)")
    parser.add_argument("-r", "--records", required=True, help="records folder (its train split)")
    parser.add_argument("-o", "--output", required=True, help=".keras file to write")
    parser.add_argument(
        "--passes",
        type=positive_int,
        default=FIT_INT8_PASSES,
        help="passes over the training pictures (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed (default: 0)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_fit_int8)


def _run_fit_int8(args: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np

    from backdrop.training.checkpoints import load_checkpoint, save_model_atomic
    from backdrop.training.datasets import export_data, make_datasets
    from backdrop.training.fit_rounding import fit_rounding, mask_agreement
    from backdrop.training.quantize_aware import strip_fake_quant

    output = Path(args.output)
    if output.suffix != ".keras":
        raise ValueError(f"--output must name a .keras file, got {output}")
    model = load_checkpoint(Path(args.checkpoint))
    config = TrainConfig(
        records=args.records,
        input_shape=tuple(model.input_shape[1:3]),
        augment=False,
        seed=args.seed,
    )
    calibration, validation = export_data(config)
    batches, _, count = make_datasets(config)
    steps = max(1, count // config.batch_size)
    fitted = fit_rounding(
        model, batches, steps, np.stack(calibration), args.passes, progress=not args.quiet
    )
    images = np.stack([image for image, _ in validation]).astype(np.float32) / 255.0
    agreement = mask_agreement(model, fitted, images)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_model_atomic(fitted, output)
    kept = mask_agreement(model, strip_fake_quant(fitted), images)
    print(
        f"wrote {output}: rounded masks agree with the float model's at {agreement:.4f} mean IoU "
        f"({len(images)} records' validation pictures; its float weights {kept:.4f}); export it "
        f"with: backdrop export {output} -r {args.records} --modes int8"
    )
