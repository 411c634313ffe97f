"""`setu bronze`: create or evolve the master and Bronze tables (and the _etl control plane)."""

from __future__ import annotations

import sys

import click

from setu.warehouse import dbt
from setu.warehouse.profile import connect


@click.command("bronze")
def create_bronze() -> None:
    """Create or evolve the Bronze and master tables, idempotently (dbt's on-run-start does too)."""
    # A wrong target or an unreachable database is one clear line, before dbt parses.
    connect().close()
    sys.exit(dbt.run_operation("setup_warehouse", quiet=False))
