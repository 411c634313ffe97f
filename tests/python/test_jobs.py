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
    jobs = [name for (name,) in conn.execute(
        "select jobname from cron.job where jobname like 'setu-pipeline%' order by 1")]
    assert jobs == [f"setu-pipeline:{branch}" for branch in sorted(BRANCHES)]

    written = insert_bronze(conn, hours=1)
    deadline = time.monotonic() + 130
    done: set[str] = set()
    while time.monotonic() < deadline:
        done = {branch for (branch,) in conn.execute(
            "select branch from _etl.job_runs where runner like 'pg_cron %'"
            " and status = 'succeeded' and rows_processed > 0")}
        if done >= {"fct_telemetry", "fct_machine_cycles", "fct_state_intervals"}:
            break
        time.sleep(2)
    listing = runner.invoke(main, ["jobs"], env={"COLUMNS": "200"})
    for name in jobs:
        conn.execute("select cron.unschedule(%s)", (name,))
    assert done >= {"fct_telemetry", "fct_machine_cycles", "fct_state_intervals"}, (
        f"pg_cron ran only the branches {done} within two minutes")
    # the branch jobs ran in the same minute, each in a backend of its own
    pids = conn.execute("select count(distinct pid) from _etl.job_runs"
                        " where runner like 'pg_cron %'").fetchone()[0]
    assert pids >= 3
    accepted = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] for table in (
        "silver.fct_machine_cycles", "silver.fct_state_intervals", "silver.fct_telemetry"))
    assert accepted == written

    assert listing.exit_code == 0, listing.output
    assert "setu-pipeline:fct_telemetry" in listing.output


# The DAG's independent branches, read by hand off the models' watermark_sources: each
# Silver fact (a root: it reads Bronze only) and every model downstream of it.
BRANCHES = {
    "fct_telemetry": {"fct_telemetry", "energy_hourly", "energy_daily", "sensor_stats_15m",
                      "machine_status_current"},
    "fct_state_intervals": {"fct_state_intervals", "machine_utilization_daily",
                            "machine_status_current", "dim_program", "oee_daily"},
    "fct_machine_cycles": {"fct_machine_cycles", "program_history_daily", "dim_program",
                           "oee_daily"},
    "fct_alarm_events": {"fct_alarm_events", "alerts_daily", "machine_status_current",
                         "dim_alarm_code"},
    "fct_platform_extension": {"fct_platform_extension", "dim_device"},
    "fct_downtime_events": {"fct_downtime_events", "downtime_daily", "oee_daily"},
}


def test_branches_in_parallel_give_what_dbt_gives(conn, dbt_run, db_url):
    reset(conn, dbt_run)
    found: dict[str, set[str]] = {}
    for branch, model in conn.execute("select branch, model_name from _etl.pipeline_branches()"):
        found.setdefault(branch, set()).add(model)
    assert found == BRANCHES
    written = insert_bronze(conn, hours=3)
    errors: list[BaseException] = []

    def run_branch(branch: str) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as job_conn:
                job_conn.execute("call _etl.run_pipeline('branch test', 100, %s)", (branch,))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=run_branch, args=(b,)) for b in BRANCHES]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors, errors
    runs = conn.execute("select branch, status from _etl.job_runs where runner = 'branch test'"
                        " order by branch").fetchall()
    assert runs == [(b, "succeeded") for b in sorted(BRANCHES)]
    # a model in two branches may be skipped by one of them: the other ran it, or the next
    # round does; one more round of every branch leaves nothing behind
    for branch in BRANCHES:
        conn.execute("call _etl.run_pipeline('branch test', 100, %s)", (branch,))
    accepted = sum(conn.execute(f"select count(*) from {table}").fetchone()[0] for table in (
        "silver.fct_machine_cycles", "silver.fct_state_intervals", "silver.fct_telemetry"))
    assert accepted == written
    by_branches = snapshot(conn)
    assert dbt_run(["run", "--full-refresh"]) == 0
    assert snapshot(conn) == by_branches


def test_job_skips_a_model_another_runner_holds(conn, dbt_run, db_url):
    """dbt build holds a model's advisory lock for each of its batches: the job leaves that
    model for its next round instead of waiting (statement_timeout turns a wait into an
    error) and runs the others."""
    reset(conn, dbt_run)
    insert_bronze(conn, hours=1)
    with psycopg.connect(db_url) as holder, psycopg.connect(
            db_url, autocommit=True, options="-c statement_timeout=60000") as job_conn:
        holder.execute("select pg_advisory_xact_lock(hashtextextended("
                       "'setu.model:fct_telemetry', 0))")
        job_conn.execute("call _etl.run_pipeline('skip test')")
        status, skipped = conn.execute(
            "select status, skipped from _etl.job_runs order by run_id desc limit 1").fetchone()
        assert (status, skipped) == ("succeeded", ["fct_telemetry"])
        telemetry = conn.execute("select count(*) from silver.fct_telemetry").fetchone()[0]
        cycles = conn.execute("select count(*) from silver.fct_machine_cycles").fetchone()[0]
        assert (telemetry, cycles) == (0, 2 * 12)
        holder.rollback()
    conn.execute("call _etl.run_pipeline('skip test')")
    assert conn.execute("select count(*) from silver.fct_telemetry").fetchone()[0] == 2 * 12


def test_a_killed_run_is_marked_interrupted_by_the_next(conn, dbt_run, db_url):
    reset(conn, dbt_run)
    insert_bronze(conn, hours=1)
    with psycopg.connect(db_url) as blocker:
        # the job's first horizon waits on this row lock: the job is mid-run, in a known place
        blocker.execute("select from _etl.watermarks where model_name = (select model_name"
                        " from _etl.models order by run_order, model_name limit 1) for update")
        job = psycopg.connect(db_url, autocommit=True)
        job_pid = job.info.backend_pid
        thread = threading.Thread(
            target=lambda: pytest.raises(psycopg.OperationalError, job.execute,
                                         "call _etl.run_pipeline('doomed')"), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not conn.execute("select exists(select from pg_locks where pid = %s"
                               " and not granted)", (job_pid,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the job never reached the row lock"
            time.sleep(0.05)
        assert conn.execute("select pg_terminate_backend(%s)", (job_pid,)).fetchone()[0]
        thread.join(timeout=30)
        job.close()
    row = conn.execute("select status, pid from _etl.job_runs where runner = 'doomed'").fetchone()
    assert row == ("running", job_pid)                       # what the kill left behind
    conn.execute("call _etl.run_pipeline('after the kill')")
    assert conn.execute("select status from _etl.job_runs where runner = 'doomed'"
                        ).fetchone()[0] == "interrupted"
    assert conn.execute("select status from _etl.job_runs where runner = 'after the kill'"
                        ).fetchone()[0] == "succeeded"


def test_setu_jobs_shows_gold_waiting_on_silver(conn, dbt_run):
    """A Gold model's lag is the wait, since arrival in Bronze, of the rows of the first Silver
    batch it has not read; it clears once Gold catches up."""
    from setu.ops.jobs import model_lag

    reset(conn, dbt_run)
    arrived = datetime.now(UTC) - timedelta(minutes=30)
    conn.execute("insert into bronze.machine_telemetry (time, ingested_at, machine_id, power_kw,"
                 " energy_kwh) values (%s, %s, %s, 2.0, 10.0)",
                 (arrived - timedelta(minutes=1), arrived, MACHINES[0]))
    assert dbt_run(["run", "--select", "fct_telemetry"]) == 0  # Silver only
    lags = {(model, source): waiting for model, source, *_, waiting in model_lag(conn)}
    assert lags[("fct_telemetry", "bronze.machine_telemetry")] is None
    waiting = lags[("energy_hourly", "silver.fct_telemetry")]
    assert waiting is not None
    assert timedelta(minutes=30) <= waiting < timedelta(minutes=35)
    assert dbt_run(["run", "--select", "energy_hourly"]) == 0
    lags = {(model, source): waiting for model, source, *_, waiting in model_lag(conn)}
    assert lags[("energy_hourly", "silver.fct_telemetry")] is None


def test_run_jobs_prints_the_row_of_its_own_run(conn, dbt_run):
    """Another runner's row, newer than ours, is in _etl.job_runs by the time `setu run-jobs`
    reads it back: it prints its own run (found by its backend pid), not the newest row."""
    reset(conn, dbt_run)
    insert_bronze(conn, hours=1)
    # when our run finishes, another runner's run lands after it (a newer run_id)
    conn.execute("""
        create or replace function public.other_runner_finishes() returns trigger
        language plpgsql as $fn$
        begin
            insert into _etl.job_runs (runner, pid, status, batches, rows_processed, error)
            values ('another runner', 0, 'failed', 99, 99, 'not this run');
            return null;
        end;
        $fn$
    """)
    conn.execute("create trigger other_runner after update of status on _etl.job_runs"
                 " for each row when (new.runner = 'setu run-jobs'"
                 " and new.status <> 'running') execute function public.other_runner_finishes()")
    try:
        result = CliRunner().invoke(main, ["run-jobs", "--count", "1"])
    finally:
        conn.execute("drop trigger other_runner on _etl.job_runs")
        conn.execute("drop function public.other_runner_finishes()")
    assert result.exit_code == 0, result.output
    status, batches, rows = conn.execute(
        "select status, batches, rows_processed from _etl.job_runs"
        " where runner = 'setu run-jobs' order by run_id desc limit 1").fetchone()
    assert status == "succeeded" and rows > 0 and batches > 0
    assert f"run 1: succeeded, {batches} batch(es), {rows} rows" in result.output
    assert "not this run" not in result.output
