"""`backdrop train`."""

from __future__ import annotations

import argparse
import sys

from backdrop.cli.train_flags import DEFAULT, add_train_flags
from backdrop.training.config import TrainConfig


def _train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a segmentation model (resumable)",
        description="Train a person-segmentation model on records from `backdrop prepare` or on "
        "image+mask / VOC folders, with augmentation and background replacement. A checkpoint is "
        "written after every epoch; --restore continues after a crash or Ctrl-C.",
    )
    add_train_flags(parser)
    parser.set_defaults(handler=_run_train)


def _architecture(args: argparse.Namespace) -> dict:
    """--model, --input, --filters, --depth, --width, --activation and --extra-blocks: as given,
    else (with --restore or -l) the run's own from its config.json, else what the --init-from
    file implies, else the defaults."""
    from backdrop.training.config import is_checkpoint
    from backdrop.training.run_folder import RunFolder, checkpoint_run

    given = {
        "model": args.model,
        "input_shape": args.input,
        "filters": args.filters,
        "depth": args.depth,
        "width": args.width,
        "activation": args.activation,
        "extra_blocks": args.extra_blocks,
    }
    continued = args.restore or args.generate_tflite_only
    run = RunFolder(args.checkpoints).saved_config() if continued else None
    if run is None and args.init_from and is_checkpoint(args.init_from):
        run = checkpoint_run(args.init_from)  # a TrainingError is one line on stderr
    if run is not None:
        return {key: getattr(run, key) if value is None else value for key, value in given.items()}
    if args.init_from:
        from backdrop.models.pretrained import identify_weights

        start = identify_weights(args.init_from)  # a ValueError is one line on stderr
        given["model"] = given["model"] or start.architecture
        given["input_shape"] = given["input_shape"] or start.input_shape
    return {key: DEFAULT(key) if value is None else value for key, value in given.items()}


def _run_train(args: argparse.Namespace) -> None:
    config = TrainConfig(
        **_architecture(args),
        checkpoints=args.checkpoints,
        records=args.records,
        portrait_folders=tuple(args.portrait),
        mask_encoding=args.mask_encoding,
        voc_folders=tuple(args.voc),
        init_from=args.init_from,
        source_weights=tuple(args.source_weight),
        quantize_aware_epochs=args.quantize_aware_epochs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        background_folders=tuple(args.background),
        background_probability=args.background_probability,
        copy_paste_probability=args.copy_paste_probability,
        zoom_out_probability=args.zoom_out_probability,
        whole_frame_probability=args.whole_frame_probability,
        crop_aspect=args.crop_aspect,
        source_repeats=tuple(args.repeat_source),
        augment=not args.no_augment,
        cache=args.cache,
        distribute=args.distribute,
        seed=args.seed,
        export=args.export,
    )
    # A progress bar in a terminal; one line per epoch in logs and pipes.
    verbose = "auto" if sys.stdout.isatty() else 2
    run_train(
        config, args.restore, args.remove_all_previous_results, args.generate_tflite_only, verbose
    )


def run_train(
    config, restore: bool, remove_previous: bool, export_only: bool, verbose="auto"
) -> None:
    """Trains (unless `export_only`), then exports; prints where everything is."""
    from backdrop.training.export_step import export_after_training
    from backdrop.training.loop import train

    if not export_only:
        state = train(config, restore=restore, remove_previous=remove_previous, verbose=verbose)
        print(
            f"trained {state['epoch']} epochs; best validation IoU {state['best_val_iou']:.4f} "
            f"(epoch {state['best_epoch']}); checkpoints in {config.checkpoints}"
        )
    reports = export_after_training(config)
    if reports:
        from backdrop.ship.export import format_reports

        print(format_reports(reports))
