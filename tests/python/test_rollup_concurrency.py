"""Concurrent runs of the rollups (gold.telemetry_hourly / _daily, the continuous-aggregate
stand-in: delete + insert of the recent buckets) are serialised by the model's advisory lock,
the same key as the watermark models, so two at once never deadlock and give what one gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from test_jobs import START, insert_bronze, reset

ROOT = Path(__file__).resolve().parents[2]
SELECT = ("--select", "telemetry_hourly", "telemetry_daily")


def rollup_relation(conn: psycopg.Connection, name: str) -> str:
    """The schema the profile gives the rollups (generate_schema_name decides it)."""
    schema = conn.execute(
        "select table_schema from information_schema.tables where table_name = %s",
        (name,),
    ).fetchone()[0]
    return f"{schema}.{name}"


def start_dbt(tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    """`setu run ...` in a process of its own, with its own target folder (two dbt processes
    writing one target/ folder would clash on its files, not in the database)."""
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "setu",
            "run",
            *args,
            "--target-path",
            str(tmp_path / f"target-{name}"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )


def finish(process: subprocess.Popen, tmp_path: Path, name: str) -> str:
    process.wait(timeout=600)
    output = (tmp_path / f"{name}.log").read_text()
    assert process.returncode == 0, output[-3000:]
    return output


def rollup_rows(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    rows = {}
    for name in ("telemetry_hourly", "telemetry_daily"):
        relation = rollup_relation(conn, name)
        rows[name] = conn.execute(
            f"select * from {relation} order by machine_id, bucket"
        ).fetchall()
    return rows


def load_recent_telemetry(conn: psycopg.Connection, dbt_run) -> None:
    """Telemetry of the last day (inside the rollups' 3-day recompute window), in Silver."""
    reset(conn, dbt_run)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    insert_bronze(conn, hours=6, offset=now - timedelta(hours=8) - START)
    assert dbt_run(["run", "--select", "fct_telemetry"]) == 0


def test_rollup_waits_for_its_model_lock(conn, dbt_run, db_url, tmp_path):
    """Another runner holds telemetry_hourly's lock: the rollup's run waits for it."""
    load_recent_telemetry(conn, dbt_run)
    with psycopg.connect(db_url) as holder:
        holder.execute(
            "select pg_advisory_xact_lock(hashtextextended('setu.model:telemetry_hourly', 0))"
        )
        process = start_dbt(tmp_path, "waiter", "--select", "telemetry_hourly")
        deadline = time.monotonic() + 300
        waited = False
        while process.poll() is None and time.monotonic() < deadline:
            waited = conn.execute(
                "select exists(select from pg_locks where locktype = 'advisory' and not granted)"
            ).fetchone()[0]
            if waited:
                break
            time.sleep(0.2)
        assert waited, f"the rollup ran without waiting for its model lock (exit {process.poll()})"
        holder.rollback()
    finish(process, tmp_path, "waiter")


def test_concurrent_rollup_runs_never_deadlock_and_give_what_one_run_gives(conn, dbt_run, tmp_path):
    load_recent_telemetry(conn, dbt_run)
    pairs = 3
    for pair in range(pairs):
        # rows arrive between the pairs, so each pair has buckets to recompute
        conn.execute("update silver.fct_telemetry set power_kw = power_kw + 1")
        names = [f"pair{pair}-{side}" for side in ("a", "b")]
        processes = [start_dbt(tmp_path, name, *SELECT) for name in names]
        for process, name in zip(processes, names, strict=True):
            output = finish(process, tmp_path, name)
            assert "deadlock" not in output, output[-3000:]
    together = rollup_rows(conn)
    assert together["telemetry_hourly"] and together["telemetry_daily"]

    assert dbt_run(["run", *SELECT, "--full-refresh"]) == 0
    assert rollup_rows(conn) == together
    # the hourly rollup against the Silver rows it sums, computed here
    hourly = rollup_relation(conn, "telemetry_hourly")
    expected = conn.execute(
        "select machine_id, date_trunc('hour', time), count(*), sum(power_kw)"
        " from silver.fct_telemetry group by 1, 2 order by 1, 2"
    ).fetchall()
    found = conn.execute(
        f"select machine_id, bucket, sample_count, power_kw_avg * power_kw_samples"
        f" from {hourly} order by 1, 2"
    ).fetchall()
    assert [(m, b, n) for m, b, n, _ in found] == [(m, b, n) for m, b, n, _ in expected]
    assert all(abs(f[3] - e[3]) < 1e-6 for f, e in zip(found, expected, strict=True))
