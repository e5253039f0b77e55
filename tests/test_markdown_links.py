"""Links between the project's Markdown files land: the file exists, and a `#section` names one
of its headings, as GitHub makes them (lower case, punctuation gone, each space a hyphen, a
repeated heading numbered) or as MkDocs does for the site (runs of spaces and hyphens one
hyphen)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folders a run or a build makes: their Markdown is not the project's.
SKIPPED = {"site", "runs", "demo_output", "node_modules"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not any(part.startswith(".") or part in SKIPPED for part in path.relative_to(ROOT).parts)
    )


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def site_slug(heading: str) -> str:
    """MkDocs' anchor of a heading (Python-Markdown's `toc` extension)."""
    text = re.sub(r"[^\w\s-]", "", heading.lower()).strip()
    return re.sub(r"[-\s]+", "-", text)


def outside_code(path: Path) -> list[str]:
    """The file's lines that are not in a fenced code block."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


@functools.cache
def anchors(path: Path) -> set[str]:
    """Every anchor of the file's headings, GitHub's and MkDocs' (a repeat numbered `-1` on
    GitHub, `_1` on the site)."""
    found: set[str] = set()
    for make, joint in ((slug, "-"), (site_slug, "_")):
        seen: dict[str, int] = {}
        for line in outside_code(path):
            heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if heading:
                base = make(heading.group(1))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(f"{base}{joint}{count}" if count else base)
    return found


def test_anchors_follow_github_and_mkdocs(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Leave one sequence out: `make beat`'s recipe (every fold, 2026-12-07)\n"
        "```\n# not a heading\n```\n## How sure: `--reference`\n## Twice\n## Twice\n"
    )
    assert anchors(page) == {
        "leave-one-sequence-out-make-beats-recipe-every-fold-2026-12-07",
        "how-sure---reference",  # GitHub
        "how-sure-reference",  # MkDocs
        "twice",
        "twice-1",  # GitHub
        "twice_1",  # MkDocs
    }


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_local_link_lands(path):
    broken = []
    for line in outside_code(path):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto: and the like
                continue
            file, _, section = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{target}: no such file")
            elif section and linked.suffix == ".md" and section not in anchors(linked):
                broken.append(f"{target}: no heading #{section} in {linked.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)
