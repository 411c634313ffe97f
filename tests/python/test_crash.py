"""Crash safety: an incremental run interrupted at any moment (the server killed with kill -9,
the dbt process killed, the in-database job terminated) loses and doubles nothing. Right
after the crash every watermark matches the rows it covers (both were committed together or
not at all); a plain rerun then gives, row for row, the Silver and Gold a --full-refresh
builds, and every Bronze id sits in exactly one fact or quarantine row.

The database runs with synchronous_commit = off, as setu_ingest and setu_etl do
(docs/security.md): a crash may drop the last acknowledged commits, never split one.
Each test loads its own day of Bronze rows (ids keep growing, times in order) into a
database of its own in the session cluster, with a small batch size so there are many
batches to interrupt; the cluster is always started again, so later modules are unaffected.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import own_database
from setu.warehouse.cluster import Cluster
from silver_reference import FACT_OF  # Silver fact of each Bronze table, read from contract.md

DATABASE = "setu_crash"
BATCH_VARS = ["--vars", "{setu_batch_size: 2000}"]
SETU = Path(sys.executable).parent / "setu"
# Columns that record when or in which batch a row was written, not what it says.
BOOKKEEPING = {"etl_batch_id", "quarantined_at", "refreshed_at", "updated_at"}
# Four hours of a 12-machine site per test: 18,000 telemetry samples (9 batches of 2,000) with
# unknown machines, out-of-range temperatures, exact duplicates; cycles with SCRAP and invalid
# results; state events in mixed case; alarms; calibrated and mm extension readings.
DAY_OF_BRONZE = """
insert into bronze.machine_telemetry (time, ingested_at, machine_id, spindle_speed_rpm,
    spindle_load_pct, spindle_temp_c, motor_temp_c, power_kw, energy_kwh)
select t, t, case when mod(s, 501) = 7 and m = 8112 then 8199 else m end, 1000 + mod(s, 500),
    40 + mod(s, 11), case when mod(s, 997) = 5 then 999 else 40 + mod(s, 7) end, 50, 3.5, s * 0.01
from generate_series(0, 1499) as s
cross join generate_series(8101, 8112) as m
cross join generate_series(1, 2) as copy
cross join lateral (select %(start)s::timestamptz + s * interval '10 seconds' as t) as x
where copy = 1 or mod(s, 333) = 0
order by t, m, copy;
insert into bronze.machine_cycles (time, ingested_at, machine_id, cycle_start, program_name,
    part_count, result, std_cycle_seconds, std_load_unload_seconds, down_threshold_seconds)
select t, t, m, t - interval '100 seconds', 'P' || (s / 50), s,
    case when mod(s, 17) = 0 then 'SCRAP' when mod(s, 211) = 3 then 'BROKEN' else 'GOOD' end,
    90, 10, 60
from generate_series(0, 199) as s
cross join generate_series(8101, 8112) as m
cross join lateral (select %(start)s::timestamptz + s * interval '2 minutes'
    + (m - 8100) * interval '1 second' as t) as x
order by t, m;
insert into bronze.machine_state_events (time, ingested_at, machine_id, state, program_name)
select t, t, m, (array['RUNNING', 'IDLE', 'SETUP', 'alarm', 'RUNNING', 'OFF'])[1 + mod(s, 6)],
    'P' || (s / 5)
from generate_series(0, 27) as s
cross join generate_series(8101, 8112) as m
cross join lateral (select %(start)s::timestamptz + s * interval '15 minutes' as t) as x
order by t, m;
insert into bronze.alarms (time, ingested_at, machine_id, alarm_code, severity, message, event)
select t, t, m, 'A' || mod(s, 4), (array['Warning', 'ERROR', 'emergency', 'info'])[1 + mod(s, 4)],
    'alarm ' || s, case when mod(s, 2) = 0 then 'RAISED' else 'CLEARED' end
from generate_series(0, 27) as s
cross join generate_series(8101, 8112) as m
cross join lateral (select %(start)s::timestamptz + interval '7 minutes'
    + s * interval '15 minutes' as t) as x
order by t, m;
insert into bronze.platform_extension (time, ingested_at, device_id, value, unit, firmware)
select t, t, d, mod(s, 21) - 10, case when mod(d, 2) = 0 then 'ticks' else 'mm' end, 'fw1'
from generate_series(0, 399) as s
cross join generate_series(8101, 8105) as d
cross join lateral (select %(start)s::timestamptz + s * interval '1 minute' as t) as x
order by t, d;
"""


class CrashDatabase:
    """The module's database, its dbt scratch folder and the days loaded so far."""

    def __init__(self, cluster: Cluster, url: str) -> None:
        self.cluster = cluster
        self.url = url
        self.days = 0

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def load_day(self) -> None:
        self.days += 1
        start = f"2026-11-{self.days:02d} 06:00+00"
        with self.connect() as conn:
            for statement in DAY_OF_BRONZE.split(";")[:-1]:
                conn.execute(statement, {"start": start})


@pytest.fixture(scope="module")
def crash_db(cluster: Cluster, dbt_run) -> Iterator[CrashDatabase]:
    scratch = Path(tempfile.mkdtemp(prefix="setu-test-crash-", dir="/var/tmp"))
    try:
        with own_database(cluster, DATABASE, DBT_TARGET_PATH=str(scratch / "target"),
                          DBT_LOG_PATH=str(scratch / "logs")) as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"alter database {DATABASE} set synchronous_commit = off")
            # Master rows before the first build: the job refreshes no dimension tables.
            assert dbt_run(["run-operation", "setup_warehouse", *BATCH_VARS]) == 0
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("insert into master.sites values (81, 'CRASH', 'Europe/Berlin')")
                conn.execute("insert into master.machines"
                             " select m, 'C' || m, 81 from generate_series(8101, 8112) as m")
            assert dbt_run(["run", *BATCH_VARS]) == 0
            yield CrashDatabase(cluster, url)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- what must hold --------------------------------------------------------------------------

def assert_watermarks_cover_their_rows(conn: psycopg.Connection) -> None:
    """Every Bronze id at or below a Silver model's watermark is in its fact or the quarantine,
    and none above it: the rows and the watermark were committed together."""
    for table, fact in FACT_OF.items():
        watermark = conn.execute(
            "select last_processed_id from _etl.watermarks where model_name = %s",
            (fact,)).fetchone()[0]
        placed, beyond = conn.execute(
            f"""
            with placed as (
                select bronze_id from silver.{fact}
                union all
                select bronze_id from silver.quarantine where source_table = %s
            )
            select count(*) filter (where bronze_id <= %s), count(*) filter (where bronze_id > %s)
            from placed
            """, (table, watermark, watermark)).fetchone()
        below = conn.execute(f"select count(*) from bronze.{table} where id <= %s",
                             (watermark,)).fetchone()[0]
        assert (placed, beyond) == (below, 0), (
            f"{fact}: watermark {watermark} covers {below} Bronze rows, but {placed} are placed"
            f" and {beyond} lie beyond it")


def models_behind(conn: psycopg.Connection) -> list[str]:
    """Models whose watermark is behind the newest id of a source: the run was cut short."""
    behind = []
    sources = conn.execute(
        "select w.model_name, w.source_name, s.id_column, w.last_processed_id"
        " from _etl.models as m"
        " cross join lateral unnest(m.sources, m.id_columns) as s (source_name, id_column)"
        " inner join _etl.watermarks as w"
        " on w.model_name = m.model_name and w.source_name = s.source_name").fetchall()
    for model, source, id_column, watermark in sources:
        newest = conn.execute(f"select max({id_column}) from {source}").fetchone()[0]
        if newest is not None and newest > watermark:
            behind.append(model)
    return behind


def assert_every_bronze_row_placed_once(conn: psycopg.Connection) -> None:
    for table, fact in FACT_OF.items():
        lost, doubled, phantom = conn.execute(
            f"""
            with placed as (
                select bronze_id from silver.{fact}
                union all
                select bronze_id from silver.quarantine where source_table = %s
            )
            select
                (select count(*) from bronze.{table} as b
                 where not exists (select from placed as p where p.bronze_id = b.id)),
                (select count(*) from (
                    select bronze_id from placed group by bronze_id having count(*) > 1) as d),
                (select count(*) from placed as p
                 where not exists (select from bronze.{table} as b where b.id = p.bronze_id))
            """, (table,)).fetchone()
        assert (lost, doubled, phantom) == (0, 0, 0), (
            f"bronze.{table}: {lost} rows lost, {doubled} doubled, {phantom} without a source")


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every Silver, Gold and serving table, without bookkeeping columns, rows sorted."""
    tables = conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('silver', 'gold', 'webapp') and table_type = 'BASE TABLE'"
        " order by 1, 2").fetchall()
    result = {}
    for schema, table in tables:
        columns = [name for (name,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table)) if name not in BOOKKEEPING]
        rows = conn.execute(f"select {', '.join(columns)} from {schema}.{table}").fetchall()
        result[f"{schema}.{table}"] = sorted(rows, key=repr)
    return result


def assert_recovers_like_a_rebuild(crash_db: CrashDatabase, resume: Callable[[], None],
                                   dbt_run) -> None:
    with crash_db.connect() as conn:
        assert_watermarks_cover_their_rows(conn)
        assert models_behind(conn), "the crash came too late: nothing was left to resume"
    resume()
    with crash_db.connect() as conn:
        assert_every_bronze_row_placed_once(conn)
        assert not models_behind(conn), "the rerun left work behind"
        resumed = snapshot(conn)
    assert resumed["gold.sensor_stats_15m"], "the rerun built no Gold rows"
    assert dbt_run(["run", "--full-refresh", *BATCH_VARS]) == 0
    with crash_db.connect() as conn:
        rebuilt = snapshot(conn)
    for relation, rows in rebuilt.items():
        assert resumed[relation] == rows, f"{relation} differs from a --full-refresh"


# -- interrupting a run ----------------------------------------------------------------------

def wait_for_batch_in_flight(crash_db: CrashDatabase, query_like: str,
                             alive: Callable[[], bool], timeout: float = 120) -> int:
    """Waits until fct_telemetry has committed at least one batch but not all and a statement
    matching query_like runs; returns that backend's pid."""
    deadline = time.monotonic() + timeout
    with crash_db.connect() as conn:
        start = conn.execute(
            "select coalesce(max(last_processed_id), 0) from _etl.watermarks"
            " where model_name = 'fct_telemetry'").fetchone()[0]
        end = conn.execute("select max(id) from bronze.machine_telemetry").fetchone()[0]
        while time.monotonic() < deadline:
            row = conn.execute(
                """
                select w.last_processed_id, a.pid
                from _etl.watermarks as w
                left join pg_stat_activity as a
                    on a.state = 'active' and a.query like %s and a.pid <> pg_backend_pid()
                where w.model_name = 'fct_telemetry'
                """, (query_like,)).fetchone()
            if row and start < row[0] < end and row[1] is not None:
                return row[1]
            if not alive():
                pytest.fail("the run ended before it could be interrupted; load more rows")
            time.sleep(0.02)
    pytest.fail("no batch of fct_telemetry came in flight within two minutes")


def start_setu_run() -> subprocess.Popen:
    return subprocess.Popen([str(SETU), "run", *BATCH_VARS], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_server_killed_mid_run_recovers(crash_db: CrashDatabase, dbt_run) -> None:
    """kill -9 of the postmaster while `setu run` applies batches, restart, rerun."""
    crash_db.load_day()
    run = start_setu_run()
    try:
        wait_for_batch_in_flight(crash_db, "%apply_batch%", lambda: run.poll() is None)
        crash_db.cluster.kill()
        output, _ = run.communicate(timeout=120)
        assert run.returncode != 0, "dbt did not notice the server died:\n" + output
    finally:
        run.kill()
        crash_db.cluster.start()
    assert_recovers_like_a_rebuild(
        crash_db, lambda: _assert_zero(dbt_run(["run", *BATCH_VARS])), dbt_run)


def test_dbt_killed_mid_run_recovers(crash_db: CrashDatabase, dbt_run) -> None:
    """SIGKILL of the `setu run` process (its open transaction dies with its connection)."""
    crash_db.load_day()
    run = start_setu_run()
    try:
        wait_for_batch_in_flight(crash_db, "%apply_batch%", lambda: run.poll() is None)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
    finally:
        run.kill()
    # The killed client's backend ends its statement, finds the socket closed and rolls back.
    _wait_for_no_session(crash_db, "%_etl.%")
    assert_recovers_like_a_rebuild(
        crash_db, lambda: _assert_zero(dbt_run(["run", *BATCH_VARS])), dbt_run)


def test_job_terminated_mid_run_recovers(crash_db: CrashDatabase, dbt_run) -> None:
    """_etl.run_pipeline() in its own session, ended with pg_terminate_backend mid-batch."""
    crash_db.load_day()
    errors: list[BaseException] = []

    def job() -> None:
        try:
            with crash_db.connect() as conn:
                conn.execute("call _etl.run_pipeline('crash test')")
        except psycopg.OperationalError as exc:  # the termination itself
            errors.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    try:
        pid = wait_for_batch_in_flight(crash_db, "call _etl.run_pipeline('crash test')%",
                                       worker.is_alive)
        with crash_db.connect() as conn:
            assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    finally:
        worker.join(timeout=60)
    assert errors, "the job was not interrupted"

    def rerun_job() -> None:
        with crash_db.connect() as conn:
            conn.execute("call _etl.run_pipeline('after crash test')")
            status, error = conn.execute(
                "select status, error from _etl.job_runs order by run_id desc limit 1"
            ).fetchone()
            assert status == "succeeded", error

    assert_recovers_like_a_rebuild(crash_db, rerun_job, dbt_run)


def _assert_zero(exit_code: int) -> None:
    assert exit_code == 0


def _wait_for_no_session(crash_db: CrashDatabase, query_like: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with crash_db.connect() as conn:
        while time.monotonic() < deadline:
            if not conn.execute(
                "select count(*) from pg_stat_activity where query like %s"
                " and pid <> pg_backend_pid() and datname = current_database()",
                (query_like,)).fetchone()[0]:
                return
            time.sleep(0.1)
