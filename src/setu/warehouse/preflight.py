"""What every command that needs the database does first (as dbt-core's requires.py)."""

from __future__ import annotations

from rich.console import Console

from setu.warehouse.cluster import Cluster
from setu.warehouse.profile import load_target

console = Console()

def ensure_database(target: str | None = None) -> None:
    """Start the embedded cluster when the target is the embedded database."""
    settings = load_target(target)
    if settings.is_embedded:
        cluster = Cluster.default()
        if cluster.start():
            console.print(f"embedded database started: {cluster.url}", highlight=False)

