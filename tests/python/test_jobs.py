"""The in-database pipeline: the job runs the SQL dbt compiled, gives what dbt gives, and never
applies a batch twice when it runs at the same time as dbt."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from setu.cli import main

MACHINES = (7101, 7102)
START = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
SILVER_AND_GOLD = {
    "silver.fct_machine_cycles": "bronze_id",
    "silver.fct_state_intervals": "bronze_id",
    "silver.fct_telemetry": "bronze_id",
    "silver.quarantine": "source_table, bronze_id",
    "gold.machine_utilization_daily": "machine_id, local_date",
    "gold.program_history_daily": "machine_id, local_date, program_name",
    "gold.energy_hourly": "machine_id, bucket",
    "gold.energy_daily": "machine_id, local_date",
    "gold.sensor_stats_15m": "machine_id, sensor, bucket",
    "webapp.machine_status_current": "machine_id",
}
# Columns that record when or in which batch a row was written, not what it says.
BOOKKEEPING = {"etl_batch_id", "quarantined_at", "refreshed_at"}


def reset(conn: psycopg.Connection, dbt_run) -> None:
    assert dbt_run(["run-operation", "setup_warehouse"]) == 0
    conn.execute("truncate bronze.machine_state_events, bronze.machine_cycles,"
                 " bronze.machine_telemetry, bronze.alarms, bronze.platform_extension,"
                 " bronze.downtime_events,"
                 " master.machines, master.sites, master.shifts")
    conn.execute("insert into master.sites values (71, 'JOB', 'Europe/Berlin')")
    for machine in MACHINES:
        conn.execute("insert into master.machines values (%s, %s, 71)", (machine, f"M{machine}"))
    assert dbt_run(["run", "--full-refresh"]) == 0


def insert_bronze(conn: psycopg.Connection, hours: int, offset: timedelta = timedelta(0)) -> int:
    """A few hours of cycles, state changes and telemetry for each machine; returns rows."""
    rows = 0
    with conn.cursor() as cur:
        for machine in MACHINES:
            for minute in range(0, hours * 60, 5):
                at = START + offset + timedelta(minutes=minute)
                cur.execute(
                    "insert into bronze.machine_telemetry (time, ingested_at, machine_id,"
                    " spindle_temp_c, power_kw, energy_kwh) values (%s, %s, %s, %s, %s, %s)",
                    (at, at, machine, 40 + minute % 7, 3.5, minute / 10),
                )
                cur.execute(
                    "insert into bronze.machine_cycles (time, ingested_at, machine_id,"
                    " cycle_start, program_name, part_count, result, std_cycle_seconds,"
                    " std_load_unload_seconds, down_threshold_seconds)"
                    " values (%s, %s, %s, %s, 'P7', %s, 'GOOD', 200, 30, 300)",
                    (at + timedelta(minutes=4), at + timedelta(minutes=4), machine,
                     at + timedelta(seconds=30), minute),
                )
                rows += 2
            for hour in range(hours):
                at = START + offset + timedelta(hours=hour)
                cur.execute(
                    "insert into bronze.machine_state_events (time, ingested_at, machine_id,"
                    " state, program_name) values (%s, %s, %s, %s, 'P7')",
                    (at, at, machine, "RUNNING" if hour % 2 else "IDLE"),
                )
                rows += 1
    return rows


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    result = {}
    for relation, order in SILVER_AND_GOLD.items():
        schema, table = relation.split(".")
        columns = [name for (name,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table)) if name not in BOOKKEEPING]
        query = f"select {', '.join(columns)} from {relation} order by {order}"
        result[relation] = conn.execute(query).fetchall()
    return result


def test_pipeline_job_gives_what_dbt_gives(conn, dbt_run):
    reset(conn, dbt_run)
    written = insert_bronze(conn, hours=3)

    conn.execute("call _etl.run_pipeline('test')")

    status, rows = conn.execute(
        "select status, rows_processed from _etl.job_runs order by run_id desc limit 1"
    ).fetchone()
    assert status == "succeeded"
    silver_rows = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] for table in (
        "silver.fct_machine_cycles", "silver.fct_state_intervals", "silver.fct_telemetry"))
    assert silver_rows == written
    assert rows >= written  # Silver batches plus the Gold and serving batches
    by_job = snapshot(conn)
    assert by_job["gold.energy_hourly"], "the job built no Gold rows"

    assert dbt_run(["run", "--full-refresh"]) == 0
    assert snapshot(conn) == by_job


def test_job_and_dbt_at_once_apply_every_batch_once(conn, dbt_run, db_url):
    reset(conn, dbt_run)
    written = insert_bronze(conn, hours=4)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as job_conn:
                for _ in range(3):
                    job_conn.execute("call _etl.run_pipeline('concurrent test')")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    assert dbt_run(["run"]) == 0
    worker.join(timeout=120)
    assert not errors

    duplicates = conn.execute(
        "select count(*) - count(distinct bronze_id) from silver.fct_telemetry"
    ).fetchone()[0]
    assert duplicates == 0
    accepted = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] for table in (
        "silver.fct_machine_cycles", "silver.fct_state_intervals", "silver.fct_telemetry"))
    assert accepted == written
    together = snapshot(conn)
    assert dbt_run(["run", "--full-refresh"]) == 0
    assert snapshot(conn) == together


@pytest.mark.slow
def test_pg_cron_runs_the_pipeline_every_minute(conn, dbt_run):
    """pg_cron is packaged: the scheduled path runs for real (up to a minute's wait)."""
    reset(conn, dbt_run)
    runner = CliRunner()
    first = runner.invoke(main, ["register-jobs"])
    again = runner.invoke(main, ["register-jobs"])
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert "pg_cron job" in first.output
    jobs = conn.execute(
        "select count(*) from cron.job where jobname = 'setu-pipeline'").fetchone()[0]
    assert jobs == 1

    written = insert_bronze(conn, hours=1)
    deadline = time.monotonic() + 130
    done = 0
    while time.monotonic() < deadline:
        done = conn.execute(
            "select count(*) from _etl.job_runs where runner = 'pg_cron' and status = 'succeeded'"
            " and rows_processed > 0").fetchone()[0]
        if done:
            break
        time.sleep(2)
    conn.execute("select cron.unschedule('setu-pipeline')")
    assert done, "pg_cron did not run the pipeline within two minutes"
    accepted = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] for table in (
        "silver.fct_machine_cycles", "silver.fct_state_intervals", "silver.fct_telemetry"))
    assert accepted == written

    listing = runner.invoke(main, ["jobs"])
    assert listing.exit_code == 0, listing.output
    assert "pg_cron" in listing.output
