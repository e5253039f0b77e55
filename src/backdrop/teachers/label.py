"""`backdrop pseudo-label`: a teacher labels pictures and video frames into a Portrait folder.

```
OUTPUT/
  images/NAME.jpg          the picture (decoded, re-encoded; video frames NAME = VIDEO_000123)
  masks/NAME.png           the teacher's soft person probability x 255 (8-bit, not thresholded)
  pseudo_labels.json       the teacher (file, sha256, kind, settings) and every run: when, what
```
`backdrop prepare --portrait OUTPUT` reads it as source "pseudo" (PortraitReader sees the JSON),
so training can weight it (`--source-weight pseudo=0.5`) and reports can tell it apart.
Labelled datasets can be labelled too (`--data FORMAT:PATH`, one split only, by default the
training split, so nothing of the validation split reaches training): each mask is then the
blend `truth_weight * truth + (1 - truth_weight) * teacher`, distillation with the ground truth
kept. Resumable: a picture whose mask exists is skipped; each image and mask is written under a
temporary name and renamed, the mask last, so a mask only exists beside a complete image.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from backdrop.data.readers.base import printable
from backdrop.data.readers.portrait import PSEUDO_LABELS
from backdrop.data.sample import Sample, SkipSample, read_image
from backdrop.data.split import SPLITS, VALIDATION_FRACTION, split_samples
from backdrop.imageops import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from backdrop.outputs import OutputFolder, write_atomic
from backdrop.runtime.media import open_video, video_frames
from backdrop.teachers import Teacher, teacher_record

RECORD = PSEUDO_LABELS


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """Settings of one pseudo-label run.

    Attributes:
        inputs: Picture files, folders of pictures and/or video files.
        output: The Portrait folder to write.
        every: Label every Nth frame of a video (pictures: every one).
        jpeg_quality: Quality of the written pictures.
        datasets: Labelled datasets as `FORMAT:PATH` (evaluate's `--data`); their pictures are
            labelled and each mask blends the dataset's own.
        split: The datasets' split to label: "train", "validation" or "all".
        truth_weight: Share of the dataset's mask in the written one (1: the truth only, 0: the
            teacher only; ignored pixels take the teacher's).
        mask_encoding: How the datasets' mask files are read (`backdrop.data.masks`).
        validation_fraction: The split's validation share (as prepare's).
    """

    inputs: tuple[Path, ...]
    output: Path
    every: int = 10
    jpeg_quality: int = 95
    datasets: tuple[str, ...] = ()
    split: str = "train"
    truth_weight: float = 0.5
    mask_encoding: str = "auto"
    validation_fraction: float = VALIDATION_FRACTION

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.inputs and not self.datasets:
            raise ValueError(
                "give at least one picture, folder, video or dataset (--data) to label"
            )
        if self.split not in SPLITS:
            raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not 0 <= self.truth_weight <= 1:
            raise ValueError(f"--truth-weight must be in [0, 1], got {self.truth_weight}")
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        for path in self.inputs:
            if not path.exists():
                raise ValueError(f"input {path} not found")
            if path.is_file() and path.suffix.lower() not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
                raise ValueError(
                    f"{path} is neither a picture ({', '.join(IMAGE_EXTENSIONS)}) nor a video "
                    f"({', '.join(VIDEO_EXTENSIONS)})"
                )
            resolved = path.resolve()
            output = self.output.resolve()
            if output == resolved or output in resolved.parents:
                raise ValueError(f"the output {self.output} must not hold the input {path}")


def _media(inputs: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(pictures, videos) named by the inputs; folders are read one level deep."""
    pictures, videos = [], []
    for path in inputs:
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            suffix = file.suffix.lower()
            if suffix in IMAGE_EXTENSIONS:
                pictures.append(file)
            elif suffix in VIDEO_EXTENSIONS:
                videos.append(file)
    return pictures, videos


def _names(paths: Sequence[Path]) -> dict[Path, str]:
    """A stable output name per input: its stem, or parent_stem where stems collide."""
    counts = collections.Counter(p.stem for p in paths)
    return {p: p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}" for p in paths}


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _encode_mask(probability: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    values = np.rint(np.clip(probability, 0.0, 1.0) * 255).astype(np.uint8)
    Image.fromarray(values, "L").save(buffer, "PNG")
    return buffer.getvalue()


def _read_record(output: Path, teacher: dict) -> dict:
    """The folder's record; refuses a folder labelled by another teacher or settings."""
    path = output / RECORD
    if not path.is_file():
        if (output / "masks").is_dir() and any((output / "masks").iterdir()):
            raise ValueError(
                f"{output}/masks holds files but no {RECORD}: not a pseudo-label folder; "
                "choose another -o"
            )
        return {"format": "backdrop-pseudo-labels-v1", "teacher": teacher, "runs": []}
    try:
        record = json.loads(path.read_bytes())
        if not isinstance(record, dict) or not isinstance(record.get("runs"), list):
            raise ValueError("not a pseudo-label record")
        if not all(isinstance(run, dict) for run in record["runs"]):
            raise ValueError("a run that is not a JSON object")
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        raise ValueError(f"{path} is unreadable ({error}); choose another -o") from None
    previous = record.get("teacher")
    previous = previous if isinstance(previous, dict) else {}
    same = previous.get("sha256") == teacher["sha256"] and previous.get("settings") == json.loads(
        json.dumps(teacher["settings"])
    )
    if not same:
        raise ValueError(
            f"{output} was labelled by another teacher or with other settings "
            f"({previous.get('file')}, {previous.get('settings')}); resume with the same ones "
            "or choose another -o"
        )
    return record


def _work(config: LabelConfig) -> Iterator[tuple[str, Path, int | None]]:
    """(name, file, frame index or None) for every picture and every Nth video frame."""
    pictures, videos = _media(config.inputs)
    names = _names(pictures + videos)
    for picture in pictures:
        yield names[picture], picture, None
    for video in videos:
        capture, count, _, _ = open_video(video)
        capture.release()
        for index in range(0, max(count, 0), config.every):
            yield f"{names[video]}_{index:06d}", video, index


def pseudo_label(teacher: Teacher, config: LabelConfig, progress: bool = True) -> dict:
    """Labels every input not labelled yet; returns this run's entry of the record, with
    `data_names` added: the stems of every `--data` sample this run covered (labelled now or
    before), so a folder shared by runs with other data can be read for this run's data alone.

    Raises:
        ValueError: bad inputs, or an output folder labelled by another teacher or truth weight.
        DatasetError: a `--data` dataset cannot be read.
        OutputError: a file Backdrop did not write is in the way, or another run holds the folder.
    """
    from backdrop.evaluation.evaluate import parse_data_spec

    readers = [parse_data_spec(spec, config.mask_encoding) for spec in config.datasets]
    dataset_paths = [path for reader in readers for path in reader.input_paths()]
    record = _read_record(config.output, teacher_record(teacher))
    if readers:
        weights = {run["truth_weight"] for run in record["runs"] if run.get("datasets")}
        if weights - {config.truth_weight}:
            raise ValueError(
                f"{config.output} holds masks blended with truth weight {weights.pop()}; resume "
                "with that --truth-weight or choose another -o"
            )
    inputs = [*config.inputs, *dataset_paths]
    with OutputFolder(config.output, "pseudo-label", "--output", inputs) as folder:
        folder.claim("images/", "masks/", RECORD)
        return _label(teacher, config, readers, record, progress)


def _label(teacher: Teacher, config: LabelConfig, readers, record: dict, progress: bool) -> dict:
    from tqdm import tqdm

    output = config.output
    run: dict = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "inputs": [str(p) for p in config.inputs],
        "every": config.every,
        "labelled": 0,
        "already_labelled": 0,
        "skipped": [],
    }
    if readers:
        run.update(
            datasets=list(config.datasets), split=config.split, truth_weight=config.truth_weight
        )

    def label(name: str, image: np.ndarray, truth: Sample | None = None) -> None:
        probability = teacher(image)
        if truth is not None:
            blend = config.truth_weight * truth.mask + (1 - config.truth_weight) * probability
            probability = (
                blend if truth.ignore is None else np.where(truth.ignore, probability, blend)
            )
        write_atomic(output / "images" / f"{name}.jpg", _encode_jpeg(image, config.jpeg_quality))
        write_atomic(output / "masks" / f"{name}.png", _encode_mask(probability))
        run["labelled"] += 1

    data_names: list[str] = []
    items = list(_work(config))
    videos: dict[Path, Iterator[np.ndarray]] = {}
    positions: dict[Path, int] = {}
    # The record (teacher, settings, this run unfinished) is written before the first label, so a
    # run killed in its first minutes leaves a folder its rerun recognises and resumes.
    record["runs"].append(run)
    write_atomic(output / RECORD, json.dumps(record, indent=2))
    try:
        for name, path, frame_index in tqdm(items, desc="pseudo-label", disable=not progress):
            if (output / "masks" / f"{name}.png").is_file():
                run["already_labelled"] += 1
                continue
            try:
                if frame_index is None:
                    image = read_image(path)
                else:
                    image = _frame(videos, positions, path, frame_index)
            except SkipSample as reason:
                run["skipped"].append(str(reason))
                continue
            label(name, image)
        split = None if config.split == "all" else config.split
        for reader in readers:
            samples = split_samples(reader, split, config.validation_fraction)
            for _, sample in tqdm(samples, desc=reader.source, disable=not progress):
                name = dataset_label_name(reader.root, sample.name)
                data_names.append(name)
                if (output / "masks" / f"{name}.png").is_file():
                    run["already_labelled"] += 1
                else:
                    label(name, sample.image, sample)
            run["skipped"] += [f"{file}: {reason}" for file, reason in reader.skipped]
    finally:
        run["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        write_atomic(output / RECORD, json.dumps(record, indent=2))
    return {**run, "data_names": data_names}


def dataset_label_name(root: Path, sample_name: str) -> str:
    """The file stem a `--data` sample is labelled under: its dataset folder's name and its own,
    as one file name (path separators and spaces become underscores). prepare then splits the
    label by "pseudo/STEM"."""
    return "".join("_" if c in "/\\: " else c for c in printable(f"{root.name}_{sample_name}"))


def _frame(videos: dict, positions: dict, path: Path, index: int) -> np.ndarray:
    """Frame `index` of the video at `path`, read sequentially (frames come in order)."""
    if path not in videos:
        capture, _, _, _ = open_video(path)
        videos[path] = video_frames(capture)
        positions[path] = -1
    for frame in videos[path]:
        positions[path] += 1
        if positions[path] == index:
            return frame
    raise SkipSample(f"{path}: frame {index} could not be read")
