"""The machine a figure was measured on, in words, for every file that records a figure."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def processor() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """E.g. "AMD EPYC 7B13, x86_64, 2 cores (Linux)"."""
    return f"{processor()}, {platform.machine()}, {os.cpu_count()} cores ({platform.system()})"


def measured() -> dict:
    """When and where: `{"date": ISO UTC, "machine": machine()}`."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"date": now, "machine": machine()}
