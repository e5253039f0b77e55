"""Where an int8 export's IoU goes: the diagnostics behind docs/lab/2026-11-issue-14-int8.md.

`agreement` also measured the recipe's int8 step (benchmarks/README.md, "int8 of the `make beat`
models").

Each subcommand measures one question, on the validation split of each `--data` set (evaluate's
split, IoU at threshold 0.5, ignore pixels left out) or on the records' own validation split (the
pictures every export scores itself on, named in its `.tflite.json`):

    simulation  Is the int8 file's loss the one training simulated? IoU of a quantization-aware
                checkpoint's float weights (rounding layers stripped), of the checkpoint itself
                (rounding simulated) and of its int8 file.
    per-frame   Per-picture IoU of several .tflite models on one set (the DAVIS column is one
                sequence: which frames move it).
    public      Post-training float16 and int8 of a public .tflite's own weights (imported), calibrated
                on a run's records as `backdrop export` calibrates: what the architecture loses at
                int8 whatever trained it.
    reaverage   A rounding run's weights averaged back towards the float checkpoint it started from
                (its learned ranges kept), exported int8, for each weight.
    weights     The float checkpoint with only its convolution kernels rounded to int8 per output
                channel, symmetric, as TFLite rounds them: what the weights alone lose.
    sensitivity Per rounded tensor of a quantization-aware checkpoint: the records' validation IoU
                with that one tensor left unrounded (all the others rounded), beside its range,
                its values' spread on calibration pictures and how many levels that spread gets.
    ranges      Narrower rounding ranges than a quantization-aware checkpoint learned (least
                squared rounding error, a percentile of calibration values, or `logits`: only
                what feeds a sigmoid, within [-8, 8]), no training: simulated and int8-file IoU
                on the records' validation split. Every int8 export limits the logits since
                that rule's finding, so the int8 files now all have that limit.
    agreement   How close each .tflite's masks are to a reference's (the float file), without
                labels: the mean IoU of the two masks, on the records' validation split of a run
                and on each `--data` set's validation split.
    int16x8     TFLite's 16x8 mode (int16 activations, int8 weights, float in and out; hard-swish
                stays float, which the mode lacks) of a float checkpoint, calibrated as the int8
                export is: how much of the int8 loss is the 256 activation levels.

    .venv/bin/python benchmarks/int8_diagnostics.py simulation RUN/square/int8/epoch-0006.keras \\
        RUN/square/int8/model_int8.tflite --data portrait:../shared/datasets/human_seg_vikram
    .venv/bin/python benchmarks/int8_diagnostics.py per-frame davis:../shared/datasets/davis2016_people \\
        RUN/square/model_float16.tflite RUN/square/int8/model_int8.tflite
    .venv/bin/python benchmarks/int8_diagnostics.py public ../shared/anchors/selfie_segmentation.tflite \\
        RUN/square -o /tmp/mediapipe_general
    .venv/bin/python benchmarks/int8_diagnostics.py reaverage RUN/square/int8/epoch-0006.keras \\
        RUN/square/averaged.keras --weights 0.5
    .venv/bin/python benchmarks/int8_diagnostics.py weights RUN/square/averaged.keras
    .venv/bin/python benchmarks/int8_diagnostics.py sensitivity RUN/square/int8/epoch-0006.keras
    .venv/bin/python benchmarks/int8_diagnostics.py ranges RUN/square/int8/epoch-0006.keras -o /tmp/sq
    .venv/bin/python benchmarks/int8_diagnostics.py int16x8 RUN/square/averaged.keras -o /tmp/square
    .venv/bin/python benchmarks/int8_diagnostics.py agreement RUN/square/model_float16.tflite \\
        RUN/square/int8/model_int8.tflite --run RUN/square --data portrait:../shared/datasets/ccp_fashion
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THREADS = 2
VALIDATION_FRACTION = 0.1  # backdrop evaluate's default


def _validation_pictures(spec: str, split: str = "validation"):
    """Yields (sample, person IoU of `frame -> probability`) over the validation split (or
    `split`) of one `FORMAT:PATH` set, as `backdrop evaluate --split validation` splits and
    scores it."""
    from backdrop.data.split import split_samples
    from backdrop.evaluation.evaluate import parse_data_spec
    from backdrop.evaluation.metrics import THRESHOLD, iou, truth_and_valid

    for _, sample in split_samples(parse_data_spec(spec), split, VALIDATION_FRACTION):
        truth, valid = truth_and_valid(sample.mask, sample.ignore)

        def score(predict, sample=sample, truth=truth, valid=valid) -> float:
            return iou(predict(sample.image) >= THRESHOLD, truth, valid)

        yield sample, score


def _scores_by_set(models: dict, data: list[str]) -> None:
    """Prints, for each `--data` set, the mean validation IoU of each `frame -> probability`."""
    for spec in data:
        scores = {name: [] for name in models}
        for _, score in _validation_pictures(spec):
            for name, predict in models.items():
                scores[name].append(score(predict))
        means = ", ".join(f"{name} {np.mean(values):.4f}" for name, values in scores.items())
        print(f"{spec} ({len(scores[next(iter(scores))])} pictures): {means}", flush=True)


def _keras_predictor(model, segmenter):
    """`frame -> probability` of a Keras model, fed and resized exactly as `segmenter` is."""
    import cv2

    def predict(frame: np.ndarray) -> np.ndarray:
        image = segmenter.input_tensor(frame).astype(np.float32)
        if segmenter.input["dtype"] == np.uint8:
            image = image / 255.0
        probability = np.asarray(model(image, training=False))[0, ..., 0]
        height, width = frame.shape[:2]
        resized = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(resized, 0.0, 1.0)

    return predict


def _records_data(run: Path):
    """The calibration pictures and validation pairs `backdrop export` uses for this run."""
    from backdrop.training.datasets import export_data
    from backdrop.training.run_folder import RunFolder

    return export_data(RunFolder(run).saved_config())


def _records_iou(path: Path, validation) -> float:
    from backdrop.runtime.segmenter import Segmenter
    from backdrop.ship.validation import validation_iou

    return validation_iou(Segmenter(path, THREADS).raw_probability, validation)


def simulation(args) -> None:
    from backdrop.runtime.segmenter import Segmenter
    from backdrop.training import quantize_aware
    from backdrop.training.checkpoints import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    segmenter = Segmenter(args.tflite, THREADS)
    models = {
        "float weights": _keras_predictor(quantize_aware.strip_fake_quant(model), segmenter),
        "simulated": _keras_predictor(model, segmenter),
        "int8 file": segmenter,
    }
    _scores_by_set(models, args.data)


def per_frame(args) -> None:
    from backdrop.runtime.segmenter import Segmenter

    segmenters = [Segmenter(path, THREADS) for path in args.models]
    print("picture  person share  " + "  ".join(Path(path).name for path in args.models))
    rows = []
    for sample, score in _validation_pictures(args.data):
        rows.append([score(model) for model in segmenters])
        share = float((sample.mask >= 0.5).mean())  # evaluate's threshold
        print(sample.name, f"{share:.3f}", " ".join(f"{value:.3f}" for value in rows[-1]))
    print("mean", " ".join(f"{value:.4f}" for value in np.mean(rows, axis=0)))


def public(args) -> None:
    from backdrop.models.tflite_import import import_segmenter
    from backdrop.ship.convert import convert
    from backdrop.training.run_folder import RunFolder

    config = RunFolder(args.run).saved_config()
    model = import_segmenter(args.source, tuple(config.input_shape))
    calibration, validation = _records_data(args.run)
    for mode in ("float16", "int8"):
        path = Path(f"{args.output}_{mode}.tflite")
        path.write_bytes(convert(model, mode, calibration))
        print(f"{mode} {path}: records' validation IoU {_records_iou(path, validation):.4f}")


def reaverage(args) -> None:
    from backdrop.ship.convert import convert
    from backdrop.ship.validation import keras_validation_iou
    from backdrop.training import quantize_aware
    from backdrop.training.average import average_weights
    from backdrop.training.checkpoints import load_checkpoint

    start = load_checkpoint(args.start)
    calibration, validation = _records_data(args.start.parent)
    for weight in args.weights:
        rounded = load_checkpoint(args.checkpoint)  # afresh: averaging assigns in place
        # The stripped model shares the rounding run's weights; its ranges are left as learned.
        stripped = quantize_aware.strip_fake_quant(rounded)
        average_weights(start, stripped, weight)
        path = Path(f"{args.output}_{weight}.tflite")
        path.write_bytes(convert(rounded, "int8", calibration))
        print(
            f"weight {weight}: float {keras_validation_iou(stripped, validation):.4f}, "
            f"int8 {_records_iou(path, validation):.4f} (records' validation)",
            flush=True,
        )


def weights(args) -> None:
    import keras

    from backdrop.ship.validation import keras_validation_iou
    from backdrop.training.checkpoints import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    _, validation = _records_data(args.checkpoint.parent)
    print(
        f"float: records' validation IoU {keras_validation_iou(model, validation):.4f}", flush=True
    )
    # Kernel layouts: Conv2D (h, w, in, out); DepthwiseConv2D (h, w, in, multiplier) and
    # Conv2DTranspose (h, w, out, in), whose output channel is axis 2.
    rounded = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv2DTranspose)):
            channel_axis = 2
        elif isinstance(layer, keras.layers.Conv2D):
            channel_axis = 3
        else:
            continue
        kernel = layer.kernel.numpy()
        axes = tuple(axis for axis in range(4) if axis != channel_axis)
        scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        layer.kernel.assign(np.round(kernel / scale) * scale)
        rounded += 1
    print(
        f"{rounded} kernels rounded to int8: records' validation IoU "
        f"{keras_validation_iou(model, validation):.4f}"
    )


def _rounders(model) -> list:
    from backdrop.training import quantize_aware

    return [layer for layer in model.layers if isinstance(layer, quantize_aware.FakeQuant)]


def _rounded_inputs(model, rounders, calibration, count: int = 20_000) -> list[np.ndarray]:
    """For each rounding layer, `count` of its input values per batch of 25 calibration
    pictures, drawn at random (seeded)."""
    import keras

    inputs = keras.Model(model.inputs, [layer.input for layer in rounders])
    random = np.random.default_rng(0)
    samples = [[] for _ in rounders]
    for start in range(0, len(calibration), 25):
        values = inputs(np.stack(calibration[start : start + 25]), training=False)
        for sample, value in zip(samples, values, strict=True):
            flat = np.asarray(value).ravel()
            sample.append(random.choice(flat, min(flat.size, count), replace=False))
    return [np.concatenate(sample) for sample in samples]


def _stored_range(layer) -> tuple[float, float]:
    """The range a rounding layer rounds over, as numbers."""
    low, high = layer.rounding_range()
    return float(low), float(high)


def sensitivity(args) -> None:
    from backdrop.ship.validation import keras_validation_iou
    from backdrop.tf_setup import import_tensorflow
    from backdrop.training.checkpoints import load_checkpoint

    tf = import_tensorflow()
    model = load_checkpoint(args.checkpoint)
    calibration, validation = _records_data(args.checkpoint.parent)
    rounders = _rounders(model)
    # Each rounding layer gets a switch: 1 passes its input through unrounded.
    switches = {}
    for layer in rounders:
        switch = switches[layer.name] = tf.Variable(0.0, trainable=False)

        def call(inputs, training=False, switch=switch, rounded=layer.call):
            output = rounded(inputs, training=False)
            return output + switch * (inputs - output)

        layer.call = call
    for switch in switches.values():
        switch.assign(1.0)
    unrounded = keras_validation_iou(model, validation)
    for switch in switches.values():
        switch.assign(0.0)
    rounded = keras_validation_iou(model, validation)
    print(
        f"{len(rounders)} rounded tensors; records' validation IoU: all rounded {rounded:.4f}, "
        f"none rounded {unrounded:.4f}",
        flush=True,
    )
    samples = _rounded_inputs(model, rounders, calibration)
    rows = []
    for layer, sample in zip(rounders, samples, strict=True):
        switches[layer.name].assign(1.0)
        gain = keras_validation_iou(model, validation) - rounded
        switches[layer.name].assign(0.0)
        low, high = _stored_range(layer)
        spread = float(np.std(sample))
        rows.append((gain, layer.name, low, high, spread, spread / ((high - low) / 255)))
        print(_sensitivity_row(*rows[-1]), flush=True)
    print("largest gains:")
    for row in sorted(rows, reverse=True)[:15]:
        print("  " + _sensitivity_row(*row))


def _sensitivity_row(gain, name, low, high, spread, levels) -> str:
    return (
        f"{name}: {gain:+.4f} range [{low:.2f}, {high:.2f}] std {spread:.3f} = {levels:.1f} levels"
    )


def _clipped_range(sample: np.ndarray, low: float, high: float, rule: str) -> tuple[float, float]:
    """A narrower range for one rounded tensor: `mse` scales the stored one by the factor (0.05
    to 1) whose 8-bit rounding of `sample` has the least squared error; `pN` takes the N-th
    percentile of `sample` as the top (and the (100-N)-th as the bottom), within the stored range."""
    if rule == "mse":

        def error(factor: float) -> float:
            bottom, step = factor * low, factor * (high - low) / 255
            rounded = np.clip(np.round((sample - bottom) / step), 0, 255) * step + bottom
            return float(np.mean((rounded - sample) ** 2))

        factor = min(np.linspace(0.05, 1.0, 96), key=error)
        return factor * low, factor * high
    percentile = float(rule[1:])
    top = min(high, float(np.percentile(sample, percentile)))
    bottom = max(low, min(0.0, float(np.percentile(sample, 100 - percentile))))
    return bottom, max(top, bottom + 1e-3)


def ranges(args) -> None:
    from backdrop.ship.convert import convert
    from backdrop.ship.validation import keras_validation_iou
    from backdrop.training.checkpoints import load_checkpoint
    from backdrop.training.quantize_aware import SIGMOID_INPUT_LIMIT, feeds_sigmoid, readers

    model = load_checkpoint(args.checkpoint)
    calibration, validation = _records_data(args.checkpoint.parent)
    rounders = _rounders(model)
    consumers = readers(model)
    stored = [_stored_range(layer) for layer in rounders]
    samples = _rounded_inputs(model, rounders, calibration)
    print(f"stored ranges: simulated {keras_validation_iou(model, validation):.4f}", flush=True)
    for rule in args.rules:
        for layer, sample, (low, high) in zip(rounders, samples, stored, strict=True):
            if rule == "logits":  # only what feeds a sigmoid, to where the sigmoid saturates
                bottom, top = low, high
                if feeds_sigmoid(layer, consumers):
                    bottom, top = max(low, -SIGMOID_INPUT_LIMIT), min(high, SIGMOID_INPUT_LIMIT)
            else:
                bottom, top = _clipped_range(sample, low, high, rule)
            layer.minimum.assign(bottom)
            layer.maximum.assign(top)
        line = f"{rule}: simulated {keras_validation_iou(model, validation):.4f}"
        if args.output:
            path = Path(f"{args.output}_{rule}.tflite")
            path.write_bytes(convert(model, "int8", calibration))
            line += f", int8 file {_records_iou(path, validation):.4f} ({path})"
        print(line + " (records' validation)", flush=True)
        if args.save:
            model.save(f"{args.output}_{rule}.keras")
        for layer, (low, high) in zip(rounders, stored, strict=True):
            layer.minimum.assign(low)
            layer.maximum.assign(high)


def int16x8(args) -> None:
    import contextlib
    import io

    from backdrop.ship.convert import calibration_images
    from backdrop.ship.graph_rewrites import fixed_batch
    from backdrop.tf_setup import import_tensorflow
    from backdrop.training import quantize_aware
    from backdrop.training.checkpoints import load_checkpoint

    tf = import_tensorflow()
    model = quantize_aware.strip_fake_quant(load_checkpoint(args.checkpoint))
    calibration, validation = _records_data(args.checkpoint.parent)
    images = calibration_images(calibration)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in images)
    ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    # TF 2.21 has no 16x8 HARD_SWISH ("not yet supported"): those ops stay float, between a
    # dequantize and a quantize, so every other tensor is 16-bit.
    converter.target_spec.supported_ops = [ops, tf.lite.OpsSet.TFLITE_BUILTINS]
    with contextlib.redirect_stdout(io.StringIO()):
        data = converter.convert()
    path = Path(f"{args.output}_int16x8.tflite")
    path.write_bytes(data)
    print(
        f"{path} ({len(data) // 1024} KiB): records' validation IoU "
        f"{_records_iou(path, validation):.4f}",
        flush=True,
    )
    if args.data:
        from backdrop.runtime.segmenter import Segmenter

        _scores_by_set({"int16x8": Segmenter(path, THREADS)}, args.data)


def agreement(args) -> None:
    from backdrop.evaluation.metrics import THRESHOLD, iou
    from backdrop.runtime.segmenter import Segmenter

    reference = Segmenter(args.reference, THREADS)
    models = [Segmenter(path, THREADS) for path in args.models]

    def report(name: str, pictures, predict) -> None:
        scores = [[] for _ in models]
        for picture in pictures:
            masks = [predict(segmenter, picture) >= THRESHOLD for segmenter in (reference, *models)]
            for values, mask in zip(scores, masks[1:], strict=True):
                values.append(iou(mask, masks[0], np.ones(mask.shape, bool)))
        for path, values in zip(args.models, scores, strict=True):
            print(f"{name} ({len(values)} pictures): agreement {np.mean(values):.4f} {path}")

    if args.run:  # at the input size, as the export scores itself
        _, validation = _records_data(args.run)
        pictures = [image for image, _ in validation]
        report(
            "records' validation",
            pictures,
            lambda segmenter, image: segmenter.raw_probability(image),
        )
    for spec in args.data:  # at each picture's size, as evaluate scores
        pictures = (sample.image for sample, _ in _validation_pictures(spec, args.split))
        report(spec, pictures, lambda segmenter, image: segmenter(image))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data_help = "FORMAT:PATH sets, as evaluate's --data; their validation splits are scored"

    command = commands.add_parser("simulation", help="float weights / simulated / int8 file")
    command.add_argument("checkpoint", type=Path, help="a quantization-aware epoch-NNNN.keras")
    command.add_argument("tflite", type=Path, help="its int8 export")
    command.add_argument("--data", nargs="+", required=True, help=data_help)
    command.set_defaults(handler=simulation)

    command = commands.add_parser("per-frame", help="per-picture IoU of .tflite models on one set")
    command.add_argument("data", help="FORMAT:PATH, as evaluate's --data")
    command.add_argument("models", nargs="+", help=".tflite files")
    command.set_defaults(handler=per_frame)

    command = commands.add_parser("public", help="a public model's own weights at int8")
    command.add_argument("source", type=Path, help="the public .tflite (MediaPipe, Meet)")
    command.add_argument("run", type=Path, help="a run folder whose records calibrate and score")
    command.add_argument("-o", "--output", required=True, help="prefix of the written .tflite")
    command.set_defaults(handler=public)

    command = commands.add_parser("reaverage", help="rounding run averaged back to its start")
    command.add_argument("checkpoint", type=Path, help="the rounding run's epoch-NNNN.keras")
    command.add_argument("start", type=Path, help="the float checkpoint it started from")
    command.add_argument("--weights", type=float, nargs="+", default=[0.5], help="of the run")
    command.add_argument("-o", "--output", default="/tmp/reaverage", help="prefix of .tflite")
    command.set_defaults(handler=reaverage)

    command = commands.add_parser("weights", help="only the kernels rounded to int8")
    command.add_argument("checkpoint", type=Path, help="a float checkpoint in its run folder")
    command.set_defaults(handler=weights)

    command = commands.add_parser("sensitivity", help="IoU back when one tensor is unrounded")
    command.add_argument("checkpoint", type=Path, help="a quantization-aware epoch-NNNN.keras")
    command.set_defaults(handler=sensitivity)

    command = commands.add_parser("ranges", help="narrower rounding ranges, no training")
    command.add_argument("checkpoint", type=Path, help="a quantization-aware epoch-NNNN.keras")
    command.add_argument("--rules", nargs="+", default=["mse", "p99.99", "p99.999"])
    command.add_argument("-o", "--output", help="prefix of int8 .tflite files (else none)")
    command.add_argument("--save", action="store_true", help="also save OUTPUT_RULE.keras")
    command.set_defaults(handler=ranges)

    command = commands.add_parser("int16x8", help="16-bit activations, 8-bit weights")
    command.add_argument("checkpoint", type=Path, help="a float checkpoint in its run folder")
    command.add_argument("-o", "--output", required=True, help="prefix of the written .tflite")
    command.add_argument("--data", nargs="*", default=[], help=data_help)
    command.set_defaults(handler=int16x8)

    command = commands.add_parser("agreement", help="masks against a reference's, no labels")
    command.add_argument("reference", type=Path, help="the .tflite compared with (the float file)")
    command.add_argument("models", nargs="+", type=Path, help="the .tflite files compared")
    command.add_argument("--run", type=Path, help="a run folder: its records' validation split")
    command.add_argument("--data", nargs="*", default=[], help=data_help)
    command.add_argument(
        "--split",
        choices=("validation", "train"),
        default="validation",
        help="the --data sets' split scored (train: pictures no judged set holds)",
    )
    command.set_defaults(handler=agreement)

    args = parser.parse_args()
    if args.command == "agreement" and not (args.run or args.data):
        parser.error("agreement needs --run or --data (where to compare)")
    if getattr(args, "save", False) and not args.output:
        parser.error(
            "ranges --save needs -o OUTPUT: the checkpoints are saved as OUTPUT_RULE.keras"
        )
    args.handler(args)


if __name__ == "__main__":
    main()
