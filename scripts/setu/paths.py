"""Where SETU keeps its files: the project checkout and its git-ignored state folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PROJECT_DIR = Path(os.environ.get("SETU_PROJECT_DIR") or Path(__file__).resolve().parents[2])


def state_dir() -> Path:
    """The git-ignored folder for the embedded cluster, generated profiles and logs."""
    return Path(os.environ.get("SETU_HOME") or PROJECT_DIR / ".setu")


def fallback_state_dir(path: Path) -> Path:
    """A world-traversable folder for a cluster whose own path an unprivileged user cannot reach."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"setu-{digest}"
