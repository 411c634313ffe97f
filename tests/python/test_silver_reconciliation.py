"""The reconciliation generic test (tests/dbt/generic/reconciles_with_silver.sql) on the Bronze
sources: it passes on a faithful Silver and fails, with the offending id, on each kind of
corruption (a lost fact, a row landed twice, an orphan), but not on rows that Bronze
retention dropped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

import silver_reference as ref
from silver_reference import DBT_SCRATCH, dbt_args, utc

START = utc(2026, 4, 1, 6, 0)


def rows_for(table: str) -> list[dict]:
    """A few rows per table, one of them rejected."""
    out = []
    for i in range(6):
        when = START + timedelta(minutes=i)
        row = {"time": when, "ingested_at": when}
        if table == "machine_state_events":
            row.update(machine_id=1, state="RUNNING" if i % 2 else "IDLE")
        elif table == "machine_cycles":
            row.update(machine_id=1, cycle_start=when - timedelta(seconds=30), part_count=i,
                       result="GOOD", std_load_unload_seconds=5.0, down_threshold_seconds=60.0)
        elif table == "machine_telemetry":
            row.update(machine_id=1, power_kw=float(i))
        elif table == "alarms":
            row.update(machine_id=1, alarm_code="A", severity="error", event="RAISED")
        elif table == "downtime_events":
            row.update(machine_id=1, down_start=when - timedelta(seconds=20),
                       reason_code="UNKNOWN-CODE" if i % 2 else "BREAK")
        else:
            row.update(device_id=5, value=float(i), unit="mm")
        out.append(row)
    out[-1] = {**out[-1], "ingested_at": out[-1]["time"] - timedelta(hours=1)}  # future_time
    return out


@pytest.fixture(scope="module")
def built(db_url: str, dbt_run) -> Iterator[str]:
    assert dbt_run(dbt_args("run-operation", "setup_warehouse")) == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        ref.reset_warehouse(conn)
        conn.execute("insert into master.sites values (1, 'S', 'UTC')")
        conn.execute("insert into master.machines values (1, 'M1', 1)")
        with conn.cursor() as cur:
            for table in ref.BRONZE_TABLES:
                ref.insert_rows(cur, table, rows_for(table))
    assert dbt_run(dbt_args("build", *ref.SILVER_SELECTION)) == 0
    yield db_url


def reconcile(dbt_run, table: str) -> int:
    return dbt_run(dbt_args("test", "--select", f"source:bronze.{table}"))


def failures(conn: psycopg.Connection, table: str) -> list[tuple]:
    """The rows the test's compiled SQL (left by the last dbt test) returns."""
    compiled = DBT_SCRATCH / "target" / "compiled" / "setu"
    # the newest: a compiled file of an older test name (other arguments) may linger
    path = max((p for p in compiled.rglob("*reconciles_with_silver*.sql")
                if f"source_table = '{table}'" in p.read_text()),
               key=lambda p: p.stat().st_mtime)
    return [tuple(r) for r in conn.execute(path.read_text()).fetchall()]


@pytest.fixture
def restore(built: str, dbt_run) -> Iterator[None]:
    """Rebuilds Silver from Bronze after a test corrupted it."""
    yield
    assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, "--full-refresh")) == 0


def test_passes_on_a_faithful_silver(built: str, dbt_run) -> None:
    assert dbt_run(dbt_args("test", "--select", "test_name:reconciles_with_silver")) == 0


def test_fails_when_a_fact_row_is_lost(built: str, dbt_run, restore) -> None:
    with psycopg.connect(built, autocommit=True) as conn:
        conn.execute("delete from silver.fct_telemetry where bronze_id = 3")
        assert reconcile(dbt_run, "machine_telemetry") == 1
        assert failures(conn, "machine_telemetry") == [
            (3, 0, "not in the fact nor in quarantine")]
    assert reconcile(dbt_run, "alarms") == 0  # the other sources are unaffected


def test_fails_when_a_row_lands_twice(built: str, dbt_run, restore) -> None:
    with psycopg.connect(built, autocommit=True) as conn:
        conn.execute("insert into silver.quarantine (source_table, bronze_id, reason, time)"
                     " select 'machine_cycles', bronze_id, 'duplicate', cycle_end"
                     " from silver.fct_machine_cycles where bronze_id = 2")
        assert reconcile(dbt_run, "machine_cycles") == 1
        assert failures(conn, "machine_cycles") == [(2, 2, "landed more than once")]


def test_fails_on_orphans_but_not_on_bronze_retention(built: str, dbt_run, restore) -> None:
    with psycopg.connect(built, autocommit=True) as conn:
        # the oldest Bronze row gone (as retention drops old chunks): not an orphan
        conn.execute("delete from bronze.machine_state_events where id = 1")
        assert reconcile(dbt_run, "machine_state_events") == 0
        # a Bronze row in the middle gone: its interval is an orphan
        conn.execute("delete from bronze.machine_state_events where id = 4")
        assert reconcile(dbt_run, "machine_state_events") == 1
        assert failures(conn, "machine_state_events") == [(4, 1, "no such Bronze row")]
        # a fact row beyond the watermark
        conn.execute("insert into silver.fct_platform_extension (bronze_id, device_id, time)"
                     " values (1000, 5, %s)", [START])
        assert reconcile(dbt_run, "platform_extension") == 1
        assert failures(conn, "platform_extension") == [(1000, 1, "no such Bronze row")]


def test_every_downtime_id_lands_once(built: str, dbt_run, restore) -> None:
    """Accepted stoppages (an uncatalogued reason among them) and the future_time one each
    land once; losing a stoppage fails the test with its id."""
    with psycopg.connect(built, autocommit=True) as conn:
        landed = sorted(conn.execute(
            "select bronze_id, 'fact' from silver.fct_downtime_events union all"
            " select bronze_id, reason from silver.quarantine"
            " where source_table = 'downtime_events'").fetchall())
        assert landed == [(1, "fact"), (2, "fact"), (3, "fact"), (4, "fact"), (5, "fact"),
                          (6, "future_time")]
        assert reconcile(dbt_run, "downtime_events") == 0
        conn.execute("delete from silver.fct_downtime_events where bronze_id = 2")
        assert reconcile(dbt_run, "downtime_events") == 1
        assert failures(conn, "downtime_events") == [(2, 0, "not in the fact nor in quarantine")]
