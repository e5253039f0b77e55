"""The documentation's results page, generated from the `evaluation.json` a run wrote: its
tables and its plots, so that every figure on the page is one a run measured.

    .venv/bin/python benchmarks/results_page.py RUN/evaluation/evaluation.json \\
        --name RUN/square/model/model_float16.tflite="Backdrop square, float16" ... \\
        -o docs/results.md

Writes the page and its plots beside it (`docs/results/*.png`): IoU on each still set and video
sequence against the references, latency against IoU, and flicker. The page names the file it
was made from, when and on what machine that evaluation ran, and the command that made it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path

import numpy as np

PLOTS = ("iou.png", "latency.png", "flicker.png")


def _labels(results: dict, names: dict[str, str]) -> dict[str, str]:
    from backdrop.evaluation.results import model_labels

    paths = [entry["model"] for entry in results["models"]]
    automatic = dict(zip(paths, model_labels(paths), strict=True))
    return {path: names.get(path, automatic[path]) for path in paths}


def _references(results: dict) -> list[str]:
    return list(dict.fromkeys(d["reference"] for d in results.get("differences") or []))


def summary(results: dict, labels: dict[str, str]) -> str:
    """One markdown table: each model's IoU on each set and sequence, its flicker on the first
    video set and its latency (the README's table is this one)."""
    from backdrop.evaluation.columns import by_column

    columns = results.get("columns") or by_column(results)
    videos = [name for name, seqs in results["sequences"].items() if any(seqs)]
    heads = [f"{c['label']} ({c['images']})" for c in columns]
    heads += ["flicker"] if videos else []
    lines = [
        "| model | input | " + " | ".join(heads) + f" | ms ({results['threads']} threads) |",
        "|---|---|" + "---|" * (len(heads) + 1),
    ]
    for entry in results["models"]:
        cells = [f"{c['mean_iou'][entry['model']]:.4f}" for c in columns]
        if videos:
            cells.append(_flicker(entry["datasets"][videos[0]]["flicker"]))
        lines.append(
            f"| {labels[entry['model']]} | {entry['input']} | "
            + " | ".join(cells)
            + f" | {entry['latency_ms']:.2f} |"
        )
    return "\n".join(lines)


def tables(results: dict, labels: dict[str, str]) -> str:
    """Markdown: IoU per set and sequence, each model against each reference, latency and
    size, flicker per video set."""
    from backdrop.evaluation.columns import by_column, tally

    columns = results.get("columns") or by_column(results)
    references = _references(results)
    heads = [f"{c['label']} ({c['images']})" for c in columns]
    lines = [
        "## IoU on each still set and each video sequence",
        "",
        "Person IoU at threshold 0.5, mean over the pictures (their count in brackets); "
        "references in italics.",
        "",
        "| model | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for model, label in labels.items():
        name = f"*{label}*" if model in references else label
        cells = [f"{c['mean_iou'][model]:.4f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for reference in references:
        lines += [
            "",
            f"### Against {labels[reference]}",
            "",
            "IoU minus the reference's, picture by picture: the mean and its 95% bootstrap "
            "interval over the column's pictures (video frames in blocks of 10). **Bold**: the "
            "interval is clear of 0.",
            "",
            "| model | " + " | ".join(heads) + " | ahead / behind (clear of 0) |",
            "|---|" + "---|" * (len(heads) + 1),
        ]
        for model in labels:
            if model == reference or not any(
                d["model"] == model and d["reference"] == reference
                for d in columns[0]["differences"]
            ):
                continue
            cells = []
            for column in columns:
                (d,) = [
                    d
                    for d in column["differences"]
                    if d["model"] == model and d["reference"] == reference
                ]
                cell = f"{d['mean']:+.4f} ({d['low']:+.4f}, {d['high']:+.4f})"
                cells.append(f"**{cell}**" if d["low"] > 0 or d["high"] < 0 else cell)
            count = tally(columns, model, reference)
            cells.append(
                f"{count['ahead']} ({count['surely_ahead']}) / "
                f"{count['behind']} ({count['surely_behind']}) of {count['columns']}"
            )
            lines.append(f"| {labels[model]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Latency and size ({results['threads']} threads)",
        "",
        "Median wall time of one frame, each model timed in a process of its own in alternating "
        "rounds (`backdrop evaluate`).",
        "",
        "| model | input | latency ms | size KiB |",
        "|---|---|---|---|",
    ]
    for entry in results["models"]:
        lines.append(
            f"| {labels[entry['model']]} | {entry['input']} | {entry['latency_ms']:.2f} | "
            f"{entry['size_bytes'] / 1024:.0f} |"
        )
    videos = [name for name, seqs in results["sequences"].items() if any(seqs)]
    if videos:
        lines += [
            "",
            "## Flicker",
            "",
            "Share of the mask that changes from one frame to the next, mean over sequences; the "
            "ground truth's own is true motion. Lower is steadier.",
            "",
            "| model | " + " | ".join(_short(name) for name in videos) + " |",
            "|---|" + "---|" * len(videos),
        ]
        truth = results.get("ground_truth_flicker", {})
        lines.append(
            "| ground truth | "
            + " | ".join(f"{truth[name]:.3f}" if name in truth else "-" for name in videos)
            + " |"
        )
        for entry in results["models"]:
            cells = [_flicker(entry["datasets"][name]["flicker"]) for name in videos]
            lines.append(f"| {labels[entry['model']]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _flicker(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _short(name: str) -> str:
    return Path(name.partition(":")[2] or name).name


def plots(results: dict, labels: dict[str, str], folder: Path) -> list[Path]:
    """The page's plots, written into `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backdrop.evaluation.columns import by_column

    folder.mkdir(parents=True, exist_ok=True)
    columns = results.get("columns") or by_column(results)
    references = set(_references(results))
    models = list(labels)
    written = []

    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(columns)), 4))
    pairs = [(d["model"], d["reference"]) for d in columns[0]["differences"]]
    x = np.arange(len(columns))
    if pairs:  # the differences with their intervals: what the bars of IoU would hide
        step = 0.7 / len(pairs)
        for p, (model, reference) in enumerate(pairs):
            found = [
                next(
                    d
                    for d in c["differences"]
                    if (d["model"], d["reference"]) == (model, reference)
                )
                for c in columns
            ]
            means = np.array([d["mean"] for d in found])
            spread = [means - [d["low"] for d in found], [d["high"] for d in found] - means]
            axes.errorbar(
                x - 0.35 + (p + 0.5) * step,
                means,
                yerr=spread,
                fmt="o",
                capsize=3,
                label=f"{labels[model]} - {labels[reference]}",
            )
        axes.axhline(0, color="black", linewidth=0.8)
        axes.set_ylabel("IoU minus the reference's (95% interval)")
        axes.set_title("Against the references, on each set and sequence")
    else:
        width = 0.8 / len(models)
        for m, model in enumerate(models):
            values = [c["mean_iou"][model] for c in columns]
            axes.bar(x - 0.4 + (m + 0.5) * width, values, width, label=labels[model])
        axes.set_ylabel("IoU")
        axes.set_title("IoU on each set and sequence")
    axes.set_xticks(x)
    axes.set_xticklabels([c["label"] for c in columns], rotation=20, ha="right")
    axes.legend(fontsize="small")
    written.append(_save(figure, folder / PLOTS[0]))

    figure, axes = plt.subplots(figsize=(6, 4))
    for entry in results["models"]:
        mean = np.mean([c["mean_iou"][entry["model"]] for c in columns])
        marker = "s" if entry["model"] in references else "o"
        axes.scatter(entry["latency_ms"], mean, marker=marker)
        axes.annotate(labels[entry["model"]], (entry["latency_ms"], mean), fontsize="small")
    axes.set_xlabel(f"latency ms a frame ({results['threads']} threads)")
    axes.set_ylabel("mean IoU over the sets and sequences")
    axes.set_title("Latency against IoU (squares: references)")
    written.append(_save(figure, folder / PLOTS[1]))

    videos = [name for name, seqs in results["sequences"].items() if any(seqs)]
    if videos:
        figure, axes = plt.subplots(figsize=(6, 4))
        entries = results["models"]
        flickers = [entry["datasets"][videos[0]]["flicker"] or 0 for entry in entries]
        axes.barh([labels[entry["model"]] for entry in entries], flickers)
        truth = results.get("ground_truth_flicker", {}).get(videos[0])
        if truth is not None:
            axes.axvline(truth, color="black", linestyle="--", label="ground truth")
            axes.legend(fontsize="small")
        axes.set_xlabel(f"flicker on {_short(videos[0])} (lower is steadier)")
        axes.set_title("Flicker")
        written.append(_save(figure, folder / PLOTS[2]))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def page(results: dict, source: Path, tables_text: str, plot_files, command: str) -> str:
    measured = results.get("measured") or {}
    if "date" in measured:
        when = measured["date"]
    else:  # written before evaluations recorded it: the file's own time
        stamp = datetime.datetime.fromtimestamp(source.stat().st_mtime, datetime.UTC)
        when = f"{stamp.isoformat(timespec='seconds')} (the file's time)"
    machine = measured.get("machine", "a machine the file does not record")
    images = "\n\n".join(f"![{p.stem}](results/{p.name})" for p in plot_files)
    return f"""# Results

Generated from `{source}`, an evaluation run on {when}, on {machine}, split
`{results["split"]}`. Do not edit by hand: the page is remade by

```bash
{command}
```

{tables_text}

## Plots

{images}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "evaluation", type=Path, help="an evaluation.json `backdrop evaluate` wrote"
    )
    parser.add_argument(
        "--name", action="append", default=[], metavar="MODEL=LABEL", help="a model's label"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args(argv)
    names = dict(item.split("=", 1) for item in args.name if "=" in item)
    try:
        results = json.loads(args.evaluation.read_text())
        unknown = set(names) - {entry["model"] for entry in results["models"]}
        labels = _labels(results, names)
        text = "## Summary\n\n" + summary(results, labels) + "\n\n" + tables(results, labels)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        sys.exit(f"results_page: {args.evaluation} is not an evaluation.json ({error!r})")
    if unknown:
        sys.exit(f"results_page: --name {sorted(unknown)[0]} is not a model of {args.evaluation}")
    written = plots(results, labels, args.output.parent / args.output.stem)
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "benchmarks/results_page.py", *given])
    args.output.write_text(page(results, args.evaluation, text, written, command))
    print(summary(results, labels))
    print(f"wrote {args.output} and {len(written)} plots")


if __name__ == "__main__":
    main()
