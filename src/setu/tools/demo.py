"""`setu demo`: the main job. Builds the whole warehouse on the embedded database from a
simulated fleet and prints what it built."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
import psycopg
from rich.console import Console
from rich.table import Table

from setu.ops.reconcile import reconcile
from setu.warehouse import contract, dbt

console = Console(width=None if sys.stdout.isatty() else 120)

GOLD_RELATIONS = (
    "gold.machine_utilization_daily", "gold.program_history_daily", "gold.alerts_daily",
    "gold.energy_hourly", "gold.energy_daily", "gold.sensor_stats_15m",
    "gold.downtime_daily", "gold.oee_daily", "webapp.machine_status_current",
)


def reconciliation(conn: psycopg.Connection) -> Table:
    """Every Bronze id in exactly one place: its Silver fact or the quarantine."""
    table = Table("Bronze table", "rows", "Silver fact", "in one place", "unprocessed",
                  "lost or repeated", title="Bronze → Silver reconciliation")
    facts = contract.bronze_to_fact()
    for bronze, counted in reconcile(conn).items():
        wrong = counted.missing + counted.several
        table.add_row(bronze, f"{counted.rows:,}", facts[bronze], f"{counted.once:,}",
                      f"{counted.unprocessed:,}",
                      "[green]0[/]" if wrong == 0 else f"[red]{wrong:,}[/]")
    return table


def quarantine_reasons(conn: psycopg.Connection) -> Table:
    table = Table("source table", "reason", "rows", title="Quarantine by reason")
    for source, reason, rows in conn.execute(
        "select source_table, reason, count(*) from silver.quarantine"
        " group by 1, 2 order by 1, 2"
    ):
        table.add_row(source, reason, f"{rows:,}")
    return table


def gold_summary(conn: psycopg.Connection) -> Table:
    table = Table("relation", "rows", title="Gold and serving")
    for relation in GOLD_RELATIONS:
        if conn.execute("select to_regclass(%s)", (relation,)).fetchone()[0] is None:
            table.add_row(relation, "[red]not built[/]")
            continue
        rows = conn.execute(f"select count(*) from {relation}").fetchone()[0]
        table.add_row(relation, f"{rows:,}")
    return table


def utilization_sample(conn: psycopg.Connection) -> Table | str:
    if conn.execute("select to_regclass('gold.machine_utilization_daily')").fetchone()[0] is None:
        return "gold.machine_utilization_daily was not built"
    table = Table("machine", "local date", "running h", "idle h", "off h", "utilization %",
                  title="Utilization (first machines)")
    for machine, day, running, idle, off, pct in conn.execute(
        "select machine_id, local_date, running_seconds / 3600, idle_seconds / 3600,"
        " off_seconds / 3600, utilization_pct from gold.machine_utilization_daily"
        " order by machine_id, local_date limit 6"
    ):
        table.add_row(str(machine), str(day), f"{running:.1f}", f"{idle:.1f}", f"{off:.1f}",
                      "" if pct is None else f"{pct:.1f}")
    return table


def oee_sample(conn: psycopg.Connection) -> Table | str:
    """The fleet's OEE per local day, and its three factors (means over machine-days)."""
    if conn.execute("select to_regclass('gold.oee_daily')").fetchone()[0] is None:
        return "gold.oee_daily was not built"
    table = Table("local date", "machines", "availability", "performance", "quality", "OEE",
                  "planned stop h", title="OEE by day (mean over machines)")

    def percent(value: float | None) -> str:
        return "" if value is None else f"{100 * value:.1f} %"

    for day, machines, availability, performance, quality, oee, planned_stop in conn.execute(
        "select local_date, count(*), avg(availability), avg(performance), avg(quality),"
        " avg(oee), sum(planned_down_seconds) / 3600 from gold.oee_daily"
        " group by local_date order by local_date limit 7"
    ):
        table.add_row(str(day), str(machines), percent(availability), percent(performance),
                      percent(quality), percent(oee), f"{planned_stop:.1f}")
    return table


@click.command("demo")
@click.option("--machines", default=20, show_default=True, type=click.IntRange(min=1),
              help="machines in the simulated fleet")
@click.option("--duration", "duration_hours", default=24, show_default=True,
              type=click.IntRange(min=1), help="hours of simulated operation")
@click.option("--seed", default=1, show_default=True, help="simulator seed")
def demo(machines: int, duration_hours: int, seed: int) -> None:
    """Build the warehouse on the embedded database from a simulated fleet; print a summary."""
    from setu.tools.simulate import SimulationConfig, default_start, simulate_into_database
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    ensure_database()
    console.rule("1/3 Bronze and master tables")
    if dbt.run_operation("setup_warehouse", quiet=False) != dbt.EXIT_SUCCESS:
        sys.exit(dbt.EXIT_ERROR)

    console.rule(f"2/3 Simulating {machines} machines for {duration_hours} h (seed {seed})")
    duration = timedelta(hours=duration_hours)
    config = SimulationConfig(machines=machines, start=default_start(duration, False),
                              duration=duration, seed=seed, stoppages=True)
    with connect() as conn:
        result = simulate_into_database(conn, config)
    if result.skipped:
        console.print(f"this simulation was already loaded at {result.loaded_at}: kept as is")
    else:
        console.print(f"{sum(result.rows.values()):,} Bronze rows written in "
                      f"{result.seconds:.1f} s", highlight=False)

    console.rule("3/3 dbt build (Silver, Gold, serving, tests)")
    # dbt unit tests on incremental models need the model's relation to exist, which a
    # first build on an empty database has not made yet: they run once it has.
    code = dbt.run(["build", "--exclude", "test_type:unit"])
    if code == dbt.EXIT_SUCCESS:
        code = dbt.run(["test", "--select", "test_type:unit"])

    with connect(autocommit=True) as conn:
        for table in (reconciliation(conn), quarantine_reasons(conn), gold_summary(conn),
                      utilization_sample(conn), oee_sample(conn)):
            console.print(table)
    if code != dbt.EXIT_SUCCESS:
        console.print("[red]dbt build reported failures: see its log above[/]")
    sys.exit(code)
