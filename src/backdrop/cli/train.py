"""`backdrop train`."""

from __future__ import annotations

import argparse
import sys

from backdrop.cli.data import add_mask_encoding_argument
from backdrop.cli.defaults import defaults_of
from backdrop.data import CROP_ASPECTS
from backdrop.models.registry import MOBILE_ACTIVATIONS, MODEL_NAMES
from backdrop.training.config import DISTRIBUTE, EXPORT_MODES, TrainConfig

DEFAULT = defaults_of(TrainConfig)  # every flag's default is the config's


def parse_repeat(text: str) -> tuple[str, int]:
    """ "portrait=3" -> ("portrait", 3)."""
    source, _, times = text.partition("=")
    if not source or not times.isdigit() or int(times) < 1:
        raise argparse.ArgumentTypeError(f"expected SOURCE=TIMES (TIMES >= 1), got {text!r}")
    return source, int(times)


def parse_weight(text: str) -> tuple[str, float]:
    """ "pseudo=0.5" -> ("pseudo", 0.5)."""
    source, _, weight = text.partition("=")
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if not source or not value >= 0:
        raise argparse.ArgumentTypeError(f"expected SOURCE=WEIGHT (WEIGHT >= 0), got {text!r}")
    return source, value


def parse_shape(text: str) -> tuple[int, int]:
    """ "128" -> (128, 128); "144x256" -> (144, 256) (height x width)."""
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIDE or HEIGHTxWIDTH, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SIDE or HEIGHTxWIDTH in pixels (each >= 1), got {text!r}"
        )
    return values


def _train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a segmentation model (resumable)",
        description="Train a person-segmentation model on records from `backdrop prepare` or on "
        "image+mask / VOC folders, with augmentation and background replacement. A checkpoint is "
        "written after every epoch; --restore continues after a crash or Ctrl-C.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("-r", "--records", help="folder written by `backdrop prepare`")
    data.add_argument(
        "--portrait",
        action="append",
        default=[],
        metavar="DIR",
        help="image+mask folder read into memory (instead of records)",
    )
    data.add_argument(
        "--voc",
        action="append",
        default=[],
        metavar="DIR",
        help="PASCAL VOC folder read into memory (instead of records)",
    )
    add_mask_encoding_argument(data)
    data.add_argument(
        "--background",
        action="append",
        default=[],
        metavar="DIR",
        help="image folder for background replacement (interior, exterior, ...)",
    )
    data.add_argument(
        "--background-probability",
        type=float,
        default=DEFAULT("background_probability"),
        help="chance an example gets a new background (default: %(default)s)",
    )
    data.add_argument(
        "--copy-paste-probability",
        type=float,
        default=DEFAULT("copy_paste_probability"),
        help="chance an example's people are pasted over another training image, whose own "
        "people stay labelled (default: %(default)s)",
    )
    data.add_argument(
        "--whole-frame-probability",
        type=float,
        default=DEFAULT("whole_frame_probability"),
        help="chance an example is the whole frame stretched to the input, as the runtime "
        "shows every frame, instead of a random crop (default: %(default)s)",
    )
    data.add_argument(
        "--crop-aspect",
        choices=CROP_ASPECTS,
        default=DEFAULT("crop_aspect"),
        help="random crops shaped like the model input (people keep their proportions) or "
        "like the source frame (stretched to the input as the runtime stretches whole frames) "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--repeat-source",
        action="append",
        default=[],
        type=parse_repeat,
        metavar="SOURCE=TIMES",
        help="show each record of SOURCE (portrait, davis, coco, ...) TIMES times per epoch",
    )
    data.add_argument(
        "--source-weight",
        action="append",
        default=[],
        type=parse_weight,
        metavar="SOURCE=WEIGHT",
        help="multiply the loss of SOURCE's examples by WEIGHT, e.g. pseudo=0.5 so teacher "
        "labels (`backdrop pseudo-label`) count half as much as ground truth (default: 1)",
    )
    data.add_argument("--no-augment", action="store_true", help="no random crops, flips, colour")
    data.add_argument("--cache", action="store_true", help="keep decoded records in memory")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help="registered model (default: the one --init-from starts, else attention_unet)",
    )
    model.add_argument(
        "--init-from",
        metavar="FILE",
        help="start from public weights: a segmenter .tflite rebuilt in Keras (MediaPipe selfie "
        "general/landscape, Meet full/lite), the MobileNetV2 ImageNet .tflite or "
        "EfficientNet-Lite0's .pth (README: where each comes from); or fine-tune a Backdrop "
        ".keras checkpoint in its run folder (e.g. `backdrop average`'s output, with "
        "--quantize-aware-epochs equal to -e for int8 rounding only), whose architecture it "
        "keeps and whose optimizer it does not",
    )
    model.add_argument(
        "--input",
        type=parse_shape,
        metavar="SIDE|HxW",
        help="model input, e.g. 128 or 144x256 (default: the --init-from segmenter's own, "
        "else 128)",
    )
    restored = "; with --restore, the run's own"
    model.add_argument(
        "-f",
        "--filters",
        type=int,
        help=f"first-layer filters (default: {DEFAULT('filters')}{restored})",
    )
    model.add_argument(
        "--depth",
        type=int,
        help=f"U-Net down-sampling steps (default: {DEFAULT('depth')}{restored})",
    )
    model.add_argument(
        "--width",
        type=float,
        help="channel multiplier of mobile_segmenter's encoder "
        f"(default: {DEFAULT('width')}{restored})",
    )
    model.add_argument(
        "--activation",
        choices=MOBILE_ACTIVATIONS,
        help="mobile_segmenter's activation; relu6 bounds every range, which int8 likes "
        f"(default: {DEFAULT('activation')}{restored})",
    )
    model.add_argument(
        "--extra-blocks",
        type=int,
        metavar="N",
        help="a larger model from a public segmenter's file: N inverted-residual blocks added "
        "at its deepest resolution, each starting as the identity (its projection zero), so "
        "training starts from the file's exact function; `backdrop average` takes their start "
        f"as that (default: {DEFAULT('extra_blocks')}{restored})",
    )
    fit = parser.add_argument_group("training")
    fit.add_argument(
        "-o",
        "--checkpoints",
        default=DEFAULT("checkpoints"),
        help="folder for checkpoints, logs and the exported model",
    )
    fit.add_argument(
        "-e",
        "--epochs",
        type=int,
        default=DEFAULT("epochs"),
        help="total epochs (default: %(default)s)",
    )
    fit.add_argument(
        "--quantize-aware-epochs",
        type=int,
        default=DEFAULT("quantize_aware_epochs"),
        metavar="N",
        help="the last N of the epochs simulate int8 rounding (batch norm frozen), so the int8 "
        "export loses less; with --restore, raise -e by N to fine-tune a finished run",
    )
    fit.add_argument(
        "-b", "--batch-size", type=int, default=DEFAULT("batch_size"), help="per replica"
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULT("learning_rate"),
        help="peak of the cosine schedule (default: %(default)s)",
    )
    fit.add_argument(
        "--weight-decay",
        type=float,
        default=DEFAULT("weight_decay"),
        help="decoupled weight decay of every trainable weight (AdamW); 0: plain Adam "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--distribute",
        choices=DISTRIBUTE,
        default=DEFAULT("distribute"),
        help="auto: several machines if TF_CONFIG is set, else all "
        "GPUs of this machine, else one device",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=DEFAULT("seed"),
        help="seed of the initial weights, the shuffling and the augmentation; the same seed "
        "gives the same run on the same machine, not across CPUs (default: %(default)s)",
    )
    fit.add_argument(
        "--export",
        choices=(*EXPORT_MODES, "none"),
        default=DEFAULT("export"),
        help="TFLite export after training (default: %(default)s)",
    )
    fit.add_argument("--restore", action="store_true", help="continue from the last checkpoint")
    fit.add_argument(
        "--remove-all-previous-results",
        action="store_true",
        help="delete Backdrop's files in the checkpoints folder first",
    )
    fit.add_argument(
        "-l",
        "--generate-tflite-only",
        action="store_true",
        help="export the last checkpoint without training",
    )
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
    from backdrop.training.loop import export_after_training, train

    if not export_only:
        state = train(config, restore=restore, remove_previous=remove_previous, verbose=verbose)
        print(
            f"trained {state['epoch']} epochs; best validation IoU {state['best_val_iou']:.4f} "
            f"(epoch {state['best_epoch']}); checkpoints in {config.checkpoints}"
        )
    from backdrop.export import format_reports

    reports = export_after_training(config)
    if reports:
        print(format_reports(reports))
