"""The computer a benchmark or soak ran on, for its report: one home for reading it."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo; "unknown CPU" where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu() -> str:
    """Model and core count, e.g. "AMD EPYC 7B13, 2 cores"."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def memory_gib() -> float:
    """Physical memory in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
