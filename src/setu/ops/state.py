"""`setu seed-state`: the cycle state cache for every machine, recomputed from the facts."""

from __future__ import annotations

import sys

import click

from setu.warehouse import dbt
from setu.warehouse.profile import connect


@click.command("seed-state")
def seed_state() -> None:
    """Give every machine in master.machines its latest_cycle_state row, from the cycle facts."""
    # A wrong target or an unreachable database is one clear line, before dbt parses.
    connect().close()
    sys.exit(dbt.run_operation("seed_cycle_state", quiet=False))
