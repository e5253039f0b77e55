"""The model card written beside every exported model (Markdown, like MediaPipe's model cards):
what it is for, its input and output, what it was trained on, how good and how fast it measured,
its limits, and how to load it in an app. TensorFlow-free."""

from __future__ import annotations

from pathlib import Path

from backdrop.data.records_metadata import METADATA, load_metadata

# Licences of the datasets Backdrop reads, as their publishers state them (see each SOURCE.txt).
DATA_LICENCES = {
    "supervisely": "Supervise.ly Person: see the dataset's licence (research use)",
    "voc": "PASCAL VOC 2012: Flickr images under their owners' terms",
    "coco": "COCO: annotations CC BY 4.0; images under their Flickr licences",
    "davis": "DAVIS: research use (BSD for code; images under their owners' terms)",
    "matting": "Adobe Deep Image Matting: by request, non-commercial research",
    "pseudo": "teacher labels: the teacher's licence applies (RVM is GPL-3.0)",
}


# `backdrop evaluate` writes its tables between these, one section per data and split.
EVALUATION_START = "<!-- backdrop evaluate: start -->"
EVALUATION_END = "<!-- backdrop evaluate: end -->"
EVALUATION_HEADING = "### Beside reference models, on other data"
MEASURED_ON = "Measured by `backdrop evaluate` on "


def with_evaluation(card: str, table: str, data: str) -> str:
    """`card` with `table` (markdown) as its evaluation on `data`: replacing the section an
    earlier evaluation on the same `data` wrote, else after the sections on other data (an
    evaluation on held-out folders does not erase the one on the judged sets)."""
    head, start, rest = card.partition(EVALUATION_START)
    region, end, tail = rest.partition(EVALUATION_END)
    if not start or not end:
        return card
    line = f"{MEASURED_ON}{data}:"
    sections: dict[str, str] = {}  # measured-on line: the section's text, in the card's order
    for block in region.split(f"\n{MEASURED_ON}")[1:]:
        first, _, body = block.partition("\n")
        sections[MEASURED_ON + first] = body.strip("\n")
    sections[line] = table.strip("\n")
    body = "\n\n".join(f"{key}\n\n{text}" for key, text in sections.items())
    return f"{head}{start}\n{EVALUATION_HEADING}\n{body}\n{end}{tail}"


def training_data(records: Path | None, folders: tuple[Path, ...] = ()) -> dict:
    """The training data of a run for its card: sources with counts from the records'
    metadata.json, or the folder datasets it read."""
    if records is not None and (Path(records) / METADATA).is_file():
        metadata = load_metadata(records)
        return {
            "records": str(records),
            "sources": [
                {
                    "source": source["source"],
                    "root": source["root"],
                    "train": source["train"],
                    "validation": source["validation"],
                    "masks": source.get("masks", ""),
                }
                for source in metadata["sources"]
            ],
        }
    return {"folders": [str(folder) for folder in folders]}


def _iou(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def model_card(contract: dict, training: dict | None) -> str:
    """The card of one exported model, from its contract (`export.export_models`)."""
    name = Path(contract["path"]).name
    inputs, output = contract["input"], contract["output"]
    quantized = inputs["dtype"] == "uint8"
    training = training or {}
    if training.get("sources"):
        rows = "\n".join(
            f"| {s['source']} | `{s['root']}` | {s['train']} | {s['validation']} | {s['masks']} |"
            for s in training["sources"]
        )
        data = (
            "| source | folder | train | validation | masks read as |\n|---|---|---|---|---|\n"
            + rows
        )
        licences = sorted({s["source"] for s in training["sources"]} & set(DATA_LICENCES))
    else:
        folders = training.get("folders") or ["(not recorded)"]
        data = "Folder datasets: " + ", ".join(f"`{folder}`" for folder in folders)
        licences = []
    licence_lines = "\n".join(f"- {DATA_LICENCES[source]}" for source in licences) or (
        "- check the licence of every dataset and starting model you used"
    )
    metadata = contract.get("metadata")
    metadata_line = (
        f"Written by {metadata['writer']}: image input, RGB, normalisation mean "
        f"{metadata['input_normalization']['mean']} std {metadata['input_normalization']['std']}, "
        f"one output labelled `{metadata['labels'][0]}`, no activation (already a probability)."
        if metadata
        else "**Not written** (MediaPipe's writer was not installed; run `make mediapipe` and "
        "export again): MediaPipe Tasks cannot load this file."
    )
    from backdrop.machine import machine as machine_words

    machine = machine_words()
    return f"""# Model card: {name}

## Model details
- Person segmentation for background blur and replacement in video calls, trained with Backdrop.
- Architecture: {contract.get("model", "see the checkpoint")}; export mode {contract["mode"]};
  {contract["size_bytes"] / 1024:.0f} KiB; from checkpoint `{contract.get("checkpoint", "?")}`.
- TFLite metadata: {metadata_line}

## Intended use
Separating one or a few people in the foreground of a selfie or video-call frame from the
background, so the background can be blurred or replaced, in real time on a phone. Not for
surveillance, identifying people, or safety-critical decisions.

## Input and output
- Input: `[1, {inputs["height"]}, {inputs["width"]}, 3]` {inputs["dtype"]} RGB, the whole frame
  stretched to that size{" (camera bytes as they are)" if quantized else " with values in 0..1 (bytes / 255)"}.
- Output: `[1, {output["height"]}, {output["width"]}, 1]` {output["dtype"]}: {output["meaning"]}.
  Resize it back to the frame bilinearly, then threshold at 0.5 or use it as alpha.
- The full contract is `{Path(contract["path"]).name}.json` beside this card.

## Training data
{data}

## Evaluation
| measure | value |
|---|---|
| validation IoU, this file | {_iou(contract.get("validation_iou_exported"))} |
| validation IoU, float model | {_iou(contract.get("validation_iou_float"))} |
| validation pictures | {contract.get("validation_images", 0)} |
| latency | {contract["latency_ms"]:.2f} ms per frame at {contract["threads"]} threads on {machine} |
| recommended | {"yes" if contract.get("recommended") else "no"}: {contract.get("recommendation", "-")} |

The validation split comes from the same datasets as training.

{EVALUATION_START}
{EVALUATION_HEADING}
Not measured yet: `backdrop evaluate {name} selfie_segmentation.tflite --data portrait:DIR`
writes its table here (MediaPipe's and Meet's segmenters are the usual references).
{EVALUATION_END}

## Limitations
- Framing: trained and measured on the framings of its training data; people far from the camera,
  seen from behind or partly out of frame are segmented less well.
- Several people: every person counts as foreground; there is no instance separation.
- Thin structures (hair, fingers) and motion blur are the least accurate; temporal smoothing in
  the runtime reduces flicker.
- Licences of the training data (the weights may inherit their terms):
{licence_lines}

## How to use it
Android, with MediaPipe Tasks (`com.google.mediapipe:tasks-vision`), the model in `assets/`:

```kotlin
val options = ImageSegmenter.ImageSegmenterOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{name}").build())
    .setRunningMode(RunningMode.VIDEO)
    .setOutputConfidenceMasks(true)
    .setOutputCategoryMask(false)
    .build()
val segmenter = ImageSegmenter.createFromOptions(context, options)
val result = segmenter.segmentForVideo(BitmapImageBuilder(frame).build(), timestampMs)
val personProbability = result.confidenceMasks().get()[0]  // frame-sized, 0..1
```

Python, with MediaPipe Tasks (`pip install mediapipe==0.10.21`):

```python
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision

options = vision.ImageSegmenterOptions(
    base_options=BaseOptions(model_asset_path="{name}"), output_confidence_masks=True
)
with vision.ImageSegmenter.create_from_options(options) as segmenter:
    result = segmenter.segment(mp.Image.create_from_file("frame.jpg"))
    person = result.confidence_masks[0].numpy_view()  # frame-sized, 0..1
```

Or Backdrop's own runtime (no TensorFlow): `backdrop segment {name} -i call.mp4 -e blur -o out.mp4`.
"""
