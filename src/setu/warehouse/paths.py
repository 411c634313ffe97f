"""Where SETU keeps its files: the dbt project it drives and its git-ignored state folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def find_project_dir() -> Path:
    """The SETU dbt project: $SETU_PROJECT_DIR, else the nearest folder holding SETU's
    dbt_project.yml above the working directory, else above this package (an editable
    install), so an installed `setu` works from inside a checkout too."""
    if os.environ.get("SETU_PROJECT_DIR"):
        return Path(os.environ["SETU_PROJECT_DIR"]).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            project = folder / "dbt_project.yml"
            if project.is_file() and _is_setu_project(project):
                return folder
    raise RuntimeError(
        "no SETU dbt project found: run `setu` inside a SETU checkout or set SETU_PROJECT_DIR"
    )


def _is_setu_project(project_file: Path) -> bool:
    for line in project_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"") == "setu"
    return False


PROJECT_DIR = find_project_dir()


def state_dir() -> Path:
    """The git-ignored folder for the embedded cluster, generated profiles and logs."""
    return Path(os.environ.get("SETU_HOME") or PROJECT_DIR / ".setu")


def fallback_state_dir(path: Path) -> Path:
    """A world-traversable folder for a cluster whose own path an unprivileged user cannot reach."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"setu-{digest}"
