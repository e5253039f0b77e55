"""A team's own footage: its clips, and which of them are held out.

A clip is one video file, or one folder of pictures (the frames of a recording, or a room's
photos). Frames of one clip are near-duplicates, so a clip is never split: the held-out clips
are labelled by the teacher for scoring only and never reach training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

from backdrop.imageops import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


class FootageError(ValueError):
    """The footage cannot be used as given; the message names it and says what to change."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One unit of footage: a video, a folder of pictures, or (`--split-pictures`) a picture.

    Attributes:
        name: Unique within the run; names its held-out folder.
        path: The video, folder or picture.
        kind: "video", "pictures" or "picture".
        count: Pictures in the folder (1 for a picture; 0 for a video: its frames are counted
            when it is labelled).
    """

    name: str
    path: Path
    kind: str
    count: int

    @property
    def is_sequence(self) -> bool:
        """Whether its pictures are frames in order (flicker means something)."""
        return self.kind != "picture"

    def as_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "count": self.count}


def _pictures(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _walk(path: Path, split_pictures: bool, found: list[tuple[Path, str, int]]) -> None:
    """Appends the clips under `path`: its videos, its own pictures as one clip (or each one
    with `split_pictures`), then its subfolders'."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_EXTENSIONS:
            found.append((path, "video", 0))
        elif suffix in IMAGE_EXTENSIONS:
            found.append((path, "picture", 1))
        else:
            raise FootageError(
                f"footage {path} is neither a video ({', '.join(VIDEO_EXTENSIONS)}) nor a "
                f"picture ({', '.join(IMAGE_EXTENSIONS)})"
            )
        return
    entries = sorted(path.iterdir())
    for entry in entries:
        if entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
            found.append((entry, "video", 0))
    pictures = _pictures(path)
    if pictures and split_pictures:
        found.extend((picture, "picture", 1) for picture in pictures)
    elif pictures:
        found.append((path, "pictures", len(pictures)))
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            _walk(entry, split_pictures, found)


def _parts(path: Path) -> tuple[str, ...]:
    """The folders and name of `path` (resolved: "." has a name too), a file's without suffix."""
    resolved = path.resolve()
    name = resolved.stem if resolved.is_file() else resolved.name
    return (*resolved.parent.parts[1:], name)


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """Each clip's name: its stem, with parent folders prefixed until the names are unique."""
    parts = [_parts(p) for p in paths]
    depth = 1
    while True:
        names = ["_".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names) or depth > max(len(p) for p in parts):
            break
        depth += 1
    safe = ["".join(c if c.isalnum() or c in "-_." else "_" for c in n) for n in names]
    unique = len(safe) == len(set(safe))
    return [name if unique else f"{i:03d}_{name}" for i, name in enumerate(safe)]


def find_clips(
    inputs: Sequence[str | Path], split_pictures: bool = False, photos: Sequence[str | Path] = ()
) -> list[Clip]:
    """The clips of the footage, in a stable order.

    Args:
        inputs: Videos, pictures and folders (read recursively: each folder's own pictures are
            one clip, each video is one).
        split_pictures: Each picture of `inputs` is a clip of its own: for collections of
            unrelated photos, not frames.
        photos: More folders (or pictures) of unrelated photos: each picture a clip of its own,
            beside `inputs` whose folders stay clips.

    Raises:
        FootageError: an input is missing or not footage, or nothing usable was found.
    """
    found: list[tuple[Path, str, int]] = []
    given_all = [(Path(p), split_pictures) for p in inputs] + [(Path(p), True) for p in photos]
    for path, split in given_all:
        if not path.exists():
            raise FootageError(f"footage {path} not found")
        before = len(found)
        _walk(path, split, found)
        if len(found) == before:
            raise FootageError(
                f"footage {path} holds no pictures ({', '.join(IMAGE_EXTENSIONS)}) or videos "
                f"({', '.join(VIDEO_EXTENSIONS)})"
            )
    paths = list(dict.fromkeys(p for p, _, _ in found))
    if len(paths) < len(found):
        twice = sorted({str(p) for p, _, _ in found if [q for q, _, _ in found].count(p) > 1})
        raise FootageError(f"footage given twice: {', '.join(twice[:3])}")
    folders = {p for p, kind, _ in found if kind == "pictures"}
    inside = [p for p, kind, _ in found if kind == "picture" and p.parent in folders]
    if inside:
        raise FootageError(f"footage given twice: {inside[0]} (as a photo and in its folder)")
    names = _unique_names(paths)
    return [
        Clip(name, path, kind, count)
        for name, (path, kind, count) in zip(names, found, strict=True)
    ]


def _rank(clip: Clip) -> bytes:
    """A clip's place in the held-out order: a hash of where it is, not of its name in the run
    (names grow longer when another clip shares one)."""
    return hashlib.sha256(str(clip.path.resolve()).encode()).digest()


def choose_held_out(
    clips: Sequence[Clip], fraction: float, named: Sequence[str | Path] = ()
) -> tuple[list[Clip], list[Clip]]:
    """(training clips, held-out clips).

    The held-out ones are those `named` (paths of clips, or folders holding them) if any, else
    `ceil(fraction x clips)` chosen by a hash of each clip's path: stable when clips are added,
    and the same on every run. At least one clip is held out and at least one trains.

    Raises:
        FootageError: fewer than two clips, or the choice leaves none to train on.
    """
    if not 0 < fraction < 1:
        raise FootageError(f"the held-out share must be in (0, 1), got {fraction}")
    if len(clips) < 2:
        what = f"{clips[0].path} is one clip" if clips else "no clip was found"
        raise FootageError(
            f"too little footage to hold any out: {what}; give at least two videos or folders "
            "of pictures (frames of one clip are never split between training and scoring), "
            "or --split-pictures for a folder of unrelated photos"
        )
    if named:
        wanted = [Path(p).resolve() for p in named]
        held = [
            c
            for c in clips
            if any(c.path.resolve() == w or w in c.path.resolve().parents for w in wanted)
        ]
        missing = [
            str(p)
            for p, w in zip(named, wanted, strict=True)
            if not any(c.path.resolve() == w or w in c.path.resolve().parents for c in clips)
        ]
        if missing:
            raise FootageError(f"--hold-out {missing[0]} is not one of the footage's clips")
    else:
        count = min(len(clips) - 1, max(1, math.ceil(fraction * len(clips))))
        chosen = {c.name for c in sorted(clips, key=_rank)[:count]}
        held = [c for c in clips if c.name in chosen]
    training = [c for c in clips if c not in held]
    if not training:
        raise FootageError("--hold-out names every clip: none is left to train on")
    return training, held
