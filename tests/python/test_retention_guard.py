"""Retention never drops a Bronze row that Silver has not processed: alarms that arrive timed
45 days ago (past the 30-day window) are held back by `setu maintain` until the pipeline has
taken them in, and then land in Silver; chunks whose rows are all processed still go.

The Community edition replaces the Bronze retention policy by a guarded job: its SQL is
rendered and checked here; running it needs that edition (the test says so and skips).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from setu.ops.maintain import maintain
from test_jobs import MACHINES, reset

COMMUNITY_219 = {
    "timescaledb": True,
    "community": True,
    "version": "2.19.3",
    "license": "timescale",
    "pg_cron": False,
}


def insert_alarms(conn: psycopg.Connection, days_ago: int, count: int) -> list[int]:
    """count alarms timed days_ago days back (arriving now); returns their Bronze ids."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    ids = []
    for n in range(count):
        machine = MACHINES[n % len(MACHINES)]
        ids.append(
            conn.execute(
                "insert into bronze.alarms (time, machine_id, alarm_code, severity, message,"
                " event) values (%s, %s, %s, 'HIGH', 'spindle overload', %s) returning id",
                (at + timedelta(minutes=n), machine, f"E{100 + n}", ("RAISED", "CLEARED")[n % 2]),
            ).fetchone()[0]
        )
    return ids


def placed(conn: psycopg.Connection, ids: list[int]) -> dict[int, int]:
    """Per Bronze id: in how many places it is (Silver fact rows plus quarantine rows)."""
    rows = conn.execute(
        "select bronze_id, count(*) from ("
        " select bronze_id from silver.fct_alarm_events where bronze_id = any(%(ids)s)"
        " union all select bronze_id from silver.quarantine"
        " where source_table = 'alarms' and bronze_id = any(%(ids)s)) as p group by bronze_id",
        {"ids": ids},
    ).fetchall()
    return {bronze_id: places for bronze_id, places in rows}


def old_alarm_chunks(conn: psycopg.Connection, older_than_days: int) -> int:
    return conn.execute(
        "select count(*) from timescaledb_information.chunks where hypertable_schema = 'bronze'"
        " and hypertable_name = 'alarms' and range_end < now() - make_interval(days => %s)",
        (older_than_days,),
    ).fetchone()[0]


def test_maintain_keeps_the_chunks_silver_has_not_processed(conn, dbt_run):
    if conn.execute("select to_regclass('timescaledb_information.chunks')").fetchone()[0] is None:
        pytest.skip("TimescaleDB is not installed: Bronze tables are plain tables here")
    reset(conn, dbt_run)
    processed = insert_alarms(conn, days_ago=60, count=6)
    assert dbt_run(["run", "--select", "fct_alarm_events"]) == 0
    assert placed(conn, processed) == dict.fromkeys(processed, 1)
    late = insert_alarms(conn, days_ago=45, count=8)
    processed_chunks = old_alarm_chunks(conn, 50)
    assert processed_chunks >= 1

    result = CliRunner().invoke(maintain, [])

    assert result.exit_code == 0, result.output
    assert (
        "setu: bronze.alarms: drop_chunks older than 30 days:"
        f" {processed_chunks} chunks dropped; 1 chunks held back: 8 rows from" in result.output
    ), result.output
    assert "not processed by every model that reads it yet" in result.output
    # the processed rows' chunk went, the late rows' chunk stayed
    assert old_alarm_chunks(conn, 50) == 0
    kept = conn.execute(
        "select count(*) from bronze.alarms where id = any(%s)", (late,)
    ).fetchone()[0]
    assert kept == len(late)

    assert dbt_run(["run", "--select", "fct_alarm_events"]) == 0
    assert placed(conn, late) == dict.fromkeys(late, 1), "late alarms lost by retention"

    # processed now: the next maintain drops them
    again = CliRunner().invoke(maintain, [])
    assert again.exit_code == 0, again.output
    assert "setu: bronze.alarms: drop_chunks older than 30 days: 1 chunks dropped" in again.output
    assert "bronze.alarms: drop_chunks older than 30 days: 1 chunks dropped;" not in again.output
    assert old_alarm_chunks(conn, 40) == 0


def test_unbuilt_bronze_is_held_back_whole(conn, dbt_run):
    """No model has registered as a reader of bronze.alarms: nothing of it is safe to drop."""
    if conn.execute("select to_regclass('timescaledb_information.chunks')").fetchone()[0] is None:
        pytest.skip("TimescaleDB is not installed: Bronze tables are plain tables here")
    reset(conn, dbt_run)
    insert_alarms(conn, days_ago=45, count=3)
    conn.execute("delete from _etl.watermarks where source_name = 'bronze.alarms'")
    result = CliRunner().invoke(maintain, ["--dry-run"])
    assert result.exit_code == 0, result.output
    assert "setu: bronze.alarms: held back whole: no model has registered as its reader" in (
        result.output
    )
    assert dbt_run(["run", "--select", "fct_alarm_events", "--full-refresh"]) == 0


def render(settings: dict, caps: dict, state: dict) -> dict:
    """The plan setu_retention_plan makes for bronze.alarms on a server with caps."""
    from dbt.cli.main import dbtRunner

    from setu.warehouse.dbt import with_project_args

    args = {
        "kind": "retention",
        "schema": "bronze",
        "identifier": "alarms",
        "settings": settings,
        "caps": caps,
        "state": state,
    }
    lines: list[str] = []

    def capture(event) -> None:
        if event.info.name == "JinjaLogInfo" and event.info.msg.startswith("setu-plan: "):
            lines.append(event.info.msg[len("setu-plan: ") :])

    argv = ["run-operation", "setu_render_lifecycle_plan", "--args", json.dumps(args)]
    result = dbtRunner(callbacks=[capture]).invoke(with_project_args(argv))
    assert result.success, result.exception
    return json.loads(lines[-1])


GUARDED = {"retention_policy": {"drop_after": "30 days"}, "guarded": True}
RELATION = '\'"bronze"."alarms"\'::regclass'


def test_rendered_community_bronze_retention_is_the_guarded_job(cluster):
    """On Community the Bronze tables get add_job(_etl.guarded_retention_job), named
    arguments as /work/shared/timescaledb_api.md gives them; a SETU policy is removed."""
    managed_policy = {"job_id": 1001, "managed": True, "differs": False}
    plan = render(
        GUARDED,
        COMMUNITY_219,
        {"target": "hypertable", "job": managed_policy, "guarded_job": None},
    )
    assert plan["statements"] == [
        f"select remove_retention_policy(relation => {RELATION}, if_exists => true)",
        "select add_job(proc => '_etl.guarded_retention_job'::regproc,"
        " schedule_interval => interval '1 day',"
        f" config => jsonb_build_object('relation', {RELATION}::text,"
        " 'drop_after', '30 days', 'setu_managed', true))",
    ]
    assert plan["message"] == (
        "retention policy replaced by the guarded job (drop after 30 days;"
        " chunks with rows not processed yet are kept)"
    )

    changed = {"job_id": 1002, "managed": True, "differs": True}
    plan = render(
        GUARDED,
        COMMUNITY_219,
        {"target": "hypertable", "job": None, "guarded_job": changed},
    )
    assert plan["statements"] == [
        "select alter_job(job_id => 1002, schedule_interval => interval '1 day',"
        f" config => jsonb_build_object('relation', {RELATION}::text,"
        " 'drop_after', '30 days', 'setu_managed', true))"
    ]
    same = {"job_id": 1002, "managed": True, "differs": False}
    plan = render(
        GUARDED,
        COMMUNITY_219,
        {"target": "hypertable", "job": None, "guarded_job": same},
    )
    assert plan["statements"] == []
    plan = render(
        {"retention_policy": False, "guarded": True},
        COMMUNITY_219,
        {"target": "hypertable", "job": None, "guarded_job": same},
    )
    assert plan["statements"] == ["select delete_job(job_id => 1002)"]
    manual = {"job_id": 1003, "managed": False, "differs": False}
    plan = render(
        GUARDED,
        COMMUNITY_219,
        {"target": "hypertable", "job": manual, "guarded_job": same},
    )
    assert plan["statements"] == []
    assert "job 1003 was not created by SETU" in plan["message"]


def test_rendered_guarded_job_calls_resolve_in_the_real_catalog(conn, dbt_run):
    """The rendered calls name real functions with real argument names: on this Apache build
    they reach the license check (a wrong name or argument would be 'does not exist')."""
    license_ = conn.execute("select current_setting('timescaledb.license', true)").fetchone()[0]
    if license_ != "apache":
        pytest.skip(f"license is {license_!r}: the Community test below runs the job itself")
    assert dbt_run(["run-operation", "setup_warehouse"]) == 0
    plans = [
        render(
            GUARDED,
            COMMUNITY_219,
            {
                "target": "hypertable",
                "job": {"job_id": 1001, "managed": True, "differs": False},
                "guarded_job": None,
            },
        ),
        render(
            GUARDED,
            COMMUNITY_219,
            {
                "target": "hypertable",
                "job": None,
                "guarded_job": {"job_id": 1002, "managed": True, "differs": True},
            },
        ),
        render(
            {"retention_policy": False, "guarded": True},
            COMMUNITY_219,
            {
                "target": "hypertable",
                "job": None,
                "guarded_job": {"job_id": 1002, "managed": True, "differs": False},
            },
        ),
    ]
    statements = [statement for plan in plans for statement in plan["statements"]]
    assert len(statements) == 4
    for statement in statements:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="apache"):
            conn.execute(statement)
    # and the job's procedure has the (integer, jsonb) signature add_job resolves at run time
    assert conn.execute(
        "select to_regprocedure('_etl.guarded_retention_job(integer, jsonb)') is not null"
    ).fetchone()[0]


def test_guarded_job_on_community_keeps_unprocessed_chunks(conn, dbt_run):
    license_ = conn.execute("select current_setting('timescaledb.license', true)").fetchone()[0]
    if license_ != "timescale":
        pytest.skip(
            f"license is {license_!r}: add_job and run_job need the TimescaleDB Community"
            " edition; the job's SQL is rendered and checked against this catalog above, and"
            " the function it calls is the one `setu maintain` runs here"
        )
    reset(conn, dbt_run)  # pragma: no cover - Community edition only
    late = insert_alarms(conn, days_ago=45, count=4)
    job_id = conn.execute(
        "select job_id from timescaledb_information.jobs where proc_schema = '_etl'"
        " and proc_name = 'guarded_retention_job'"
        " and config ->> 'relation' = 'bronze.alarms'"
    ).fetchone()[0]
    assert (
        conn.execute(
            "select count(*) from timescaledb_information.jobs where proc_name = 'policy_retention'"
            " and hypertable_schema = 'bronze'"
        ).fetchone()[0]
        == 0
    )
    conn.execute("call run_job(job_id => %s)", (job_id,))
    assert conn.execute(
        "select count(*) from bronze.alarms where id = any(%s)", (late,)
    ).fetchone()[0] == len(late)


def test_plain_postgres_deletes_skip_unprocessed_rows(cluster, dbt_run, monkeypatch):
    """Without TimescaleDB `setu maintain` deletes in batches: never a row Silver has not
    processed, and it says how many it held back."""
    url = cluster.create_database("retention_plain", extensions=False)
    monkeypatch.setenv("SETU_PG_DATABASE", "retention_plain")
    with psycopg.connect(url, autocommit=True) as plain:
        assert dbt_run(["run-operation", "setup_warehouse"]) == 0
        plain.execute(
            "insert into master.sites values (71, 'JOB', 'Europe/Berlin') on conflict do nothing"
        )
        for machine in MACHINES:
            plain.execute(
                "insert into master.machines values (%s, %s, 71) on conflict do nothing",
                (machine, f"M{machine}"),
            )
        processed = insert_alarms(plain, days_ago=60, count=6)
        assert dbt_run(["--quiet", "run"]) == 0
        late = insert_alarms(plain, days_ago=45, count=8)

        result = CliRunner().invoke(maintain, [])

        assert result.exit_code == 0, result.output
        assert "on plain PostgreSQL" in result.output
        assert (
            "setu: bronze.alarms: rows older than 30 days: 6 deleted in batches of 50000;"
            " 8 rows held back: not processed by every model that reads it yet" in result.output
        ), result.output
        left = plain.execute("select array_agg(id order by id) from bronze.alarms").fetchone()[0]
        assert left == sorted(late)
        assert placed(plain, processed) == dict.fromkeys(processed, 1)
        assert dbt_run(["run", "--select", "fct_alarm_events"]) == 0
        assert placed(plain, late) == dict.fromkeys(late, 1)
