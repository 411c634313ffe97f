"""The TimescaleDB lifecycle macros (macros/timescale/) and `setu maintain`, for real.

A small dbt project (tests/fixtures/timescale_project, macros/ linked to this checkout's) runs
in-process against two databases of the session's test cluster: one with TimescaleDB (the
Apache edition this machine has) and one without it. Community-only behaviour (policies,
compression, continuous aggregates) cannot run here: its tests skip with the reason, and the
SQL it would issue is rendered with forced capabilities and checked (exact call and argument
names per version) and then executed against the real 2.19 catalog, where a right name
and argument list gets the license error and a wrong one "function does not exist".
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "timescale_project"
APACHE_REASON = "needs TimescaleDB Community edition (license apache)"
NO_TS_REASON = "TimescaleDB is not installed in this database"

RAW_SQL = """
create schema if not exists raw;
drop table if exists raw.readings;
create table raw.readings (
    machine_id bigint not null,
    time timestamptz not null,
    power_kw double precision,
    energy_kwh double precision
);
insert into raw.readings
select m, t,
    (extract(epoch from t)::bigint % 97) / 10.0 + m,
    ((extract(epoch from t)::bigint / 60) % 13) / 100.0
from generate_series(1, 3) as m,
    generate_series(
        date_trunc('hour', now()) - interval '60 days', now(), interval '17 minutes'
    ) as t;
"""


@dataclass
class DbtResult:
    success: bool
    logs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def setu_lines(self) -> list[str]:
        return [line for line in self.logs if line.startswith("setu: ")]

    def lines_for(self, relation: str) -> list[str]:
        return [line for line in self.setu_lines if line.startswith(f"setu: {relation}: ")]


@dataclass
class Project:
    path: Path
    urls: dict[str, str]

    def dbt(self, *args: str, target: str = "ts", vars: dict | None = None,
            expect_success: bool = True) -> DbtResult:
        from dbt.cli.main import dbtRunner

        out = DbtResult(success=False)

        def capture(event) -> None:
            if event.info.name == "JinjaLogInfo":
                out.logs.append(event.info.msg)

        argv = [*args, "--project-dir", str(self.path), "--profiles-dir", str(self.path),
                "--target", target]
        if vars:
            argv += ["--vars", json.dumps(vars)]
        result = dbtRunner(callbacks=[capture]).invoke(argv)
        out.success = result.success
        if result.exception is not None:
            out.errors.append(str(result.exception))
        for item in getattr(result.result, "results", None) or []:
            if getattr(item, "message", None) and str(item.status) in ("error", "fail"):
                out.errors.append(item.message)
        if expect_success:
            assert out.success, "\n".join(out.errors + out.logs)
        return out

    def query(self, sql: str, target: str = "ts", params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.urls[target], autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql: str, target: str = "ts", params: tuple = ()):
        rows = self.query(sql, target, params)
        return rows[0][0] if rows else None

    def plan(self, kind: str, settings: dict, caps: dict, state: dict | None = None,
             identifier: str = "fct_telemetry", **extra) -> dict:
        args = {"kind": kind, "schema": "silver", "identifier": identifier,
                "settings": settings, "caps": caps, "state": state or {}, **extra}
        result = self.dbt("run-operation", "setu_render_lifecycle_plan",
                          "--args", json.dumps(args))
        line = next(line for line in result.logs if line.startswith("setu-plan: "))
        return json.loads(line[len("setu-plan: "):])


@pytest.fixture(scope="module")
def project(cluster, tmp_path_factory) -> Project:
    path = tmp_path_factory.mktemp("ts_project") / "project"
    shutil.copytree(FIXTURE, path)
    (path / "macros").symlink_to(ROOT / "macros")
    # The macros read the contract from var setu_contract: the project's own, not a copy.
    project_yml = yaml.safe_load((path / "dbt_project.yml").read_text())
    project_yml["vars"]["setu_contract"] = yaml.safe_load(
        (ROOT / "dbt_project.yml").read_text())["vars"]["setu_contract"]
    (path / "dbt_project.yml").write_text(yaml.safe_dump(project_yml, sort_keys=False))
    urls = {
        "ts": cluster.create_database("ts_macros"),
        "plain": cluster.create_database("ts_macros_plain", extensions=False),
    }
    outputs = {
        name: {"type": "postgres", "host": "127.0.0.1", "port": cluster.port, "user": "setu",
               "password": "", "dbname": url.rsplit("/", 1)[1], "schema": "public",
               "threads": 1}
        for name, url in urls.items()
    }
    (path / "profiles.yml").write_text(json.dumps({"setu": {"target": "ts", "outputs": outputs}}))
    for url in urls.values():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(RAW_SQL)
    return Project(path=path, urls=urls)


@pytest.fixture(scope="module")
def license_(project) -> str:
    return project.scalar("select current_setting('timescaledb.license', true)")


def dimensions(project: Project, table: str) -> dict[str, tuple]:
    rows = project.query(
        "select column_name, time_interval::text, num_partitions"
        " from timescaledb_information.dimensions where hypertable_name = %s",
        params=(table,))
    return {name: (interval, partitions) for name, interval, partitions in rows}


COMMUNITY_219 = {"timescaledb": True, "community": True, "version": "2.19.3",
                 "license": "timescale", "pg_cron": False}
COMMUNITY_217 = COMMUNITY_219 | {"version": "2.17.2"}
APACHE_219 = COMMUNITY_219 | {"community": False, "license": "apache"}
PLAIN = {"timescaledb": False, "community": False, "version": None, "license": "none",
         "pg_cron": False}
HYPERTABLE_STATE = {"target": "hypertable", "enabled": False, "segmentby": None,
                    "orderby": None, "compressed_chunks": 0, "job": None}


# -- hypertables, for real on the Apache edition ----------------------------------------------

def test_hypertable_created_with_configured_chunk_interval(project):
    result = project.dbt("run", "-s", "fct_readings", "--full-refresh",
                         vars={"chunk_time_interval": "1 day"})
    assert dimensions(project, "fct_readings") == {"time": ("1 day", None)}
    lines = result.lines_for("silver.fct_readings")
    assert lines == ["setu: silver.fct_readings: hypertable created on time (chunk interval"
                     " 1 day), existing rows migrated to chunks"]


def test_chunk_interval_change_is_applied_and_data_survives(project):
    project.dbt("run", "-s", "fct_readings", "--full-refresh")
    oid = project.scalar("select 'silver.fct_readings'::regclass::oid")
    rows = project.scalar("select count(*) from silver.fct_readings")
    project.query("insert into raw.readings values (1, now() + interval '1 minute', 1, 1)")

    result = project.dbt("run", "-s", "fct_readings", vars={"chunk_time_interval": "2 days"})
    assert dimensions(project, "fct_readings")["time"][0] == "2 days"
    assert "chunk interval changed to 2 days (new chunks only)" in result.setu_lines[0]
    # An ordinary run never drops the incremental table: same relation, rows kept + new row.
    assert project.scalar("select 'silver.fct_readings'::regclass::oid") == oid
    assert project.scalar("select count(*) from silver.fct_readings") == rows + 1

    again = project.dbt("run", "-s", "fct_readings", vars={"chunk_time_interval": "48 hours"})
    assert again.lines_for("silver.fct_readings") == [
        "setu: silver.fct_readings: hypertable unchanged on time (chunk interval 2 days)"]


def test_space_dimension_added_then_partitions_reconciled(project):
    project.dbt("run", "-s", "fct_readings", "--full-refresh")
    hashed = {"dimensions": [{"column_name": "machine_id", "number_partitions": 2}]}
    result = project.dbt("run", "-s", "fct_readings", vars=hashed)
    assert dimensions(project, "fct_readings")["machine_id"] == (None, 2)
    assert "hash dimension machine_id added (2 partitions" in result.setu_lines[0]

    more = {"dimensions": [{"column_name": "machine_id", "number_partitions": 3}]}
    result = project.dbt("run", "-s", "fct_readings", vars=more)
    assert dimensions(project, "fct_readings")["machine_id"] == (None, 3)
    assert "hash dimension machine_id set to 3 partitions" in result.setu_lines[0]

    dropped = project.dbt("run", "-s", "fct_readings")
    assert "dimension machine_id kept (TimescaleDB cannot remove a dimension)" in \
        dropped.setu_lines[0]


def test_bad_interval_is_one_clear_compiler_error(project):
    result = project.dbt("run", "-s", "fct_readings", vars={"chunk_time_interval": "soon"},
                         expect_success=False)
    assert not result.success
    message = "\n".join(result.errors)
    assert 'setu: silver.fct_readings: config chunk_time_interval = "soon" is not a valid' \
        " interval" in message

    result = project.dbt("run", "-s", "fct_readings", expect_success=False,
                         vars={"retention_policy": {"drop_after": "thirty days"}})
    assert "config retention_policy.drop_after" in "\n".join(result.errors)


def test_community_features_skip_with_the_reason_on_apache(project, license_):
    if license_ != "apache":
        pytest.skip(f"license is {license_}: the Apache fallbacks are not taken")
    config = {"compression": {"segmentby": ["machine_id"], "orderby": "time desc",
                              "after": "7 days"},
              "retention_policy": {"drop_after": "30 days"},
              "reorder_policy": {"index": {"columns": ["machine_id", "time"]}}}
    result = project.dbt("run", "-s", "fct_readings", vars=config)
    lifecycle = result.setu_lines[1:]
    assert lifecycle == [
        "setu: silver.fct_readings: compression, retention policy and reorder policy skipped: "
        f"{APACHE_REASON}; retention by `setu maintain` (drop_chunks older than 30 days)"]
    assert project.scalar("select count(*) from timescaledb_information.jobs"
                          " where hypertable_name = 'fct_readings'") == 0


def test_community_policies_reconcile_for_real(project, license_):
    if license_ != "timescale":
        pytest.skip(f"license is {license_}: compression, policies and jobs need the"
                    " TimescaleDB Community edition")
    project.dbt("run", "-s", "fct_readings", "--full-refresh")
    jobs = ("select proc_name, schedule_interval::text, config from timescaledb_information.jobs"
            " where hypertable_name = 'fct_readings' order by proc_name")
    config = {"compression": {"segmentby": ["machine_id"], "after": "7 days"},
              "retention_policy": {"drop_after": "30 days", "schedule_interval": "1 day"}}
    project.dbt("run", "-s", "fct_readings", vars=config)
    first = {name: (schedule, cfg) for name, schedule, cfg in project.query(jobs)}
    assert first["policy_retention"][1]["setu_managed"] is True
    ids = project.query("select proc_name, job_id from timescaledb_information.jobs"
                        " where hypertable_name = 'fct_readings'")
    config["retention_policy"]["drop_after"] = "40 days"
    result = project.dbt("run", "-s", "fct_readings", vars=config)
    assert "retention policy updated" in result.setu_lines[-1]
    assert project.query("select proc_name, job_id from timescaledb_information.jobs"
                         " where hypertable_name = 'fct_readings'") == ids
    project.dbt("run", "-s", "fct_readings", vars={"compression": False})
    assert project.query(jobs) == []


# -- the SQL of the Community-only paths, rendered per version ---------------------------------

def test_rendered_compression_uses_columnstore_api_on_2_18_and_later(project):
    settings = {"compression": {"segmentby": ["machine_id"], "orderby": "time desc",
                                "after": "7 days", "schedule_interval": "1 hour"}}
    plan = project.plan("compression", settings, COMMUNITY_219, HYPERTABLE_STATE)
    alter, add, tag = plan["statements"]
    assert alter == ('alter table "silver"."fct_telemetry" set (timescaledb.enable_columnstore'
                     " = true, timescaledb.segmentby = 'machine_id', timescaledb.orderby ="
                     " 'time desc')")
    assert add == ("call add_columnstore_policy(hypertable => '\"silver\".\"fct_telemetry\"'"
                   "::regclass, after => interval '7 days', if_not_exists => true,"
                   " schedule_interval => interval '1 hour')")
    assert tag.startswith("select alter_job(job_id => j.job_id, config => j.config ||"
                          " jsonb_build_object('setu_managed', true))")
    assert "j.proc_name = 'policy_compression'" in tag
    assert plan["message"] == ("compression enabled (columnstore, segmentby machine_id, orderby"
                               " time desc); compression policy added (after 7 days)")


def test_rendered_compression_uses_compression_api_before_2_18(project):
    settings = {"compression": {"segmentby": "machine_id", "after": "7 days"}}
    plan = project.plan("compression", settings, COMMUNITY_217, HYPERTABLE_STATE)
    assert plan["statements"][0] == ('alter table "silver"."fct_telemetry" set'
                                     " (timescaledb.compress = true,"
                                     " timescaledb.compress_segmentby = 'machine_id')")
    assert plan["statements"][1] == ("select add_compression_policy(hypertable =>"
                                     " '\"silver\".\"fct_telemetry\"'::regclass, compress_after"
                                     " => interval '7 days', if_not_exists => true)")
    boundary = project.plan("compression", settings, COMMUNITY_219 | {"version": "2.18.0"},
                            HYPERTABLE_STATE)
    assert boundary["statements"][1].startswith("call add_columnstore_policy(")


def test_rendered_policy_reconcile_alters_removes_and_leaves_manual_jobs(project):
    settings = {"compression": {"after": "14 days", "schedule_interval": "2 hours"}}
    enabled = HYPERTABLE_STATE | {"enabled": True}
    changed = project.plan("compression", settings, COMMUNITY_219,
                           enabled | {"job": {"job_id": 1004, "managed": True, "differs": True}})
    assert changed["statements"] == [
        "select alter_job(job_id => j.job_id, schedule_interval => interval '2 hours', config =>"
        " j.config || jsonb_build_object('setu_managed', true, 'compress_after',"
        " interval '14 days')) from timescaledb_information.jobs as j where j.job_id = 1004"]
    assert changed["message"] == "compression policy updated (after 14 days), job 1004 kept"

    same = project.plan("compression", settings, COMMUNITY_219,
                        enabled | {"job": {"job_id": 1004, "managed": True, "differs": False}})
    assert same["statements"] == []

    manual = project.plan("compression", settings, COMMUNITY_219,
                          enabled | {"job": {"job_id": 1010, "managed": False, "differs": True}})
    assert manual == {"statements": [], "message": "compression policy left alone: job 1010"
                                                   " was not created by SETU"}

    gone = project.plan("compression", {}, COMMUNITY_219,
                        enabled | {"job": {"job_id": 1004, "managed": True, "differs": False}})
    assert gone["statements"] == ["call remove_columnstore_policy(hypertable =>"
                                  " '\"silver\".\"fct_telemetry\"'::regclass, if_exists => true)"]
    assert gone["message"] == "compression policy removed (job 1004): no longer configured"


def test_rendered_compression_off_decompresses_first(project):
    state = HYPERTABLE_STATE | {"enabled": True, "compressed_chunks": 3,
                                "job": {"job_id": 1004, "managed": True, "differs": False}}
    new = project.plan("compression", {"compression": False}, COMMUNITY_219, state)["statements"]
    assert new[0].startswith("call remove_columnstore_policy(")
    assert "call convert_to_rowstore(chunk => chunk_rel, if_columnstore => true)" in new[1]
    assert new[2] == ('alter table "silver"."fct_telemetry" set'
                      " (timescaledb.enable_columnstore = false)")
    old = project.plan("compression", {"compression": False}, COMMUNITY_217, state)["statements"]
    assert old[0] == ("select remove_compression_policy(hypertable =>"
                      " '\"silver\".\"fct_telemetry\"'::regclass, if_exists => true)")
    assert old[1] == ("select decompress_chunk(uncompressed_chunk => c, if_compressed => true)"
                      " from show_chunks(relation => '\"silver\".\"fct_telemetry\"'::regclass)"
                      " as c")
    assert old[2].endswith("set (timescaledb.compress = false)")


def test_rendered_retention_reorder_refresh_and_cagg(project):
    retention = project.plan("retention", {"retention_policy": {"drop_after": "30 days"}},
                             COMMUNITY_219, {"target": "hypertable", "job": None})
    assert retention["statements"][0] == (
        "select add_retention_policy(relation => '\"silver\".\"fct_telemetry\"'::regclass,"
        " drop_after => interval '30 days', if_not_exists => true)")
    assert project.plan("retention", {"retention_policy": False}, COMMUNITY_219,
                        {"target": "hypertable",
                         "job": {"job_id": 1001, "managed": True, "differs": False}}
                        )["statements"] == [
        "select remove_retention_policy(relation => '\"silver\".\"fct_telemetry\"'::regclass,"
        " if_exists => true)"]

    reorder = project.plan(
        "reorder", {"reorder_policy": {"index": {"columns": ["machine_id", "time"]},
                                       "schedule_interval": "1 day"}},
        COMMUNITY_219, {"target": "hypertable", "job": None,
                        "index": {"name": "fct_telemetry_setu_reorder_idx", "missing": True,
                                  "columns": ["machine_id", "time"],
                                  "create_sql": "create index ..."}})
    assert reorder["statements"][1] == (
        "select add_reorder_policy(hypertable => '\"silver\".\"fct_telemetry\"'::regclass,"
        " index_name => 'fct_telemetry_setu_reorder_idx', if_not_exists => true)")
    assert "schedule_interval => interval '1 day'" in reorder["statements"][2]

    refresh = project.plan(
        "refresh_policy", {"refresh_policy": {"start_offset": "3 days", "end_offset": "1 hour",
                                              "schedule_interval": "30 minutes"}},
        COMMUNITY_219, {"job": None}, identifier="telemetry_hourly")
    assert refresh["statements"][0] == (
        "select add_continuous_aggregate_policy(continuous_aggregate =>"
        " '\"silver\".\"telemetry_hourly\"'::regclass, start_offset => interval '3 days',"
        " end_offset => interval '1 hour', schedule_interval => interval '30 minutes',"
        " if_not_exists => true)")
    assert "j.proc_name = 'policy_refresh_continuous_aggregate'" in refresh["statements"][1]
    # 2.19 names a continuous aggregate's jobs after its materialization hypertable.
    assert "materialization_hypertable_name" in refresh["statements"][1]

    cagg = project.plan("continuous_aggregate", {"materialized_only": False,
                                                 "create_group_indexes": False},
                        COMMUNITY_219, identifier="telemetry_hourly",
                        sql="select 1 as x group by 1")
    # materialized_only = false is written out, not silently dropped.
    assert cagg["statements"] == [
        'create materialized view "silver"."telemetry_hourly" with (timescaledb.continuous,'
        " timescaledb.materialized_only = false, timescaledb.create_group_indexes = false)"
        " as\nselect 1 as x group by 1\nwith no data"]


def test_rendered_messages_on_apache_and_plain_postgres(project):
    settings = {"compression": {"after": "7 days"}}
    assert project.plan("compression", settings, APACHE_219)["message"] == \
        f"compression skipped: {APACHE_REASON}"
    assert project.plan("compression", settings, PLAIN)["message"] == \
        f"compression skipped: {NO_TS_REASON}"
    assert project.plan("retention", {"retention_policy": {"drop_after": "30 days"}},
                        PLAIN)["message"] == (f"retention policy skipped: {NO_TS_REASON};"
                                              " `setu maintain` deletes in batches older than"
                                              " 30 days")


def test_rendered_community_calls_resolve_in_the_real_catalog(project, license_):
    """Every Community call, executed on the real 2.19 catalog: a right name and argument
    list reaches the license check; a wrong one would fail with "function does not exist"."""
    if license_ != "apache":
        pytest.skip(f"license is {license_}: the calls would run instead of being refused")
    project.query("create schema if not exists silver; drop table if exists silver.probe;"
                  " create table silver.probe (time timestamptz not null, machine_id bigint);"
                  " select create_hypertable(relation => 'silver.probe',"
                  " dimension => by_range('time'));"
                  " insert into silver.probe values (now(), 1)")
    job_id = project.scalar("select min(job_id) from timescaledb_information.jobs")
    managed = {"job_id": job_id, "managed": True, "differs": True}
    plans = []
    for caps in (COMMUNITY_219, COMMUNITY_217):
        compression = {"compression": {"segmentby": ["machine_id"], "orderby": "time desc",
                                       "after": "7 days", "schedule_interval": "1 hour"}}
        plans += [
            project.plan("compression", compression, caps, HYPERTABLE_STATE, identifier="probe"),
            project.plan("compression", compression, caps, HYPERTABLE_STATE | {
                "enabled": True, "job": managed}, identifier="probe"),
            project.plan("compression", {"compression": False}, caps, HYPERTABLE_STATE | {
                "enabled": True, "compressed_chunks": 1, "job": managed}, identifier="probe"),
        ]
    plans += [
        project.plan("retention", {"retention_policy": {"drop_after": "30 days",
                                                        "schedule_interval": "1 day"}},
                     COMMUNITY_219, {"target": "hypertable", "job": None}, identifier="probe"),
        project.plan("retention", {}, COMMUNITY_219, {"target": "hypertable", "job": managed},
                     identifier="probe"),
        project.plan("reorder", {"reorder_policy": {"index": "probe_time_idx"}}, COMMUNITY_219,
                     {"target": "hypertable", "job": None, "index": {"name": "probe_time_idx"}},
                     identifier="probe"),
        project.plan("reorder", {}, COMMUNITY_219, {"target": "hypertable", "job": managed},
                     identifier="probe"),
        project.plan("refresh_policy", {"refresh_policy": {"start_offset": "3 days",
                                                           "end_offset": "1 hour"}},
                     COMMUNITY_219, {"job": None}, identifier="probe"),
        project.plan("refresh_policy", {}, COMMUNITY_219, {"job": managed}, identifier="probe"),
        project.plan("continuous_aggregate", {"materialized_only": False}, COMMUNITY_219,
                     identifier="probe_hourly",
                     sql="select time_bucket(interval '1 hour', time) as bucket, count(*)"
                         " from silver.probe group by 1"),
    ]
    checked = 0
    with psycopg.connect(project.urls["ts"], autocommit=True) as conn:
        for statement in (s for plan in plans for s in plan["statements"]):
            if "from timescaledb_information.jobs as j where j.proc_name" in statement:
                continue  # tagging selects no row here: no SETU job exists to tag
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="apache") as refused:
                conn.execute(statement)
            assert "not supported under the current" in str(refused.value), statement
            checked += 1
    assert checked >= 20


def test_community_state_readers_run_on_the_real_catalog(project):
    project.dbt("run", "-s", "fct_readings", "--full-refresh")
    result = project.dbt("run-operation", "probe_state_readers",
                         "--args", json.dumps({"schema": "silver", "identifier": "fct_readings"}))
    line = next(line for line in result.logs if line.startswith("probe-state: "))
    state = json.loads(line[len("probe-state: "):])
    assert state["compression"] == {"target": "hypertable", "enabled": False, "segmentby": None,
                                    "orderby": None, "compressed_chunks": 0, "job": None}
    assert state["target"] == "hypertable"
    assert state["retention_job"] is None and state["has_setu_jobs"] is False
    assert state["reorder_index"]["name"] == "fct_readings_setu_reorder_idx"
    assert state["reorder_index"]["create_sql"] == (
        'create index if not exists "fct_readings_setu_reorder_idx" on'
        ' "silver"."fct_readings" (machine_id, time)')


# -- continuous aggregates: the incremental-table fallback -------------------------------------

EXPECTED_HOURLY = """
with expected as (
    select time_bucket(interval '1 hour', time) as bucket, machine_id, count(*) as n,
        max(power_kw) as power_max, sum(energy_kwh) as energy
    from silver.fct_readings group by 1, 2
)
select count(*), count(*) filter (where h.bucket is null or e.bucket is null
    or h.sample_count <> e.n or h.power_kw_max <> e.power_max
    or abs(h.energy_kwh - e.energy) > 1e-9)
from expected as e full join gold.readings_hourly as h using (bucket, machine_id)
"""
EXPECTED_DAILY = EXPECTED_HOURLY.replace("'1 hour'", "'1 day'").replace(
    "readings_hourly", "readings_daily")


def test_continuous_aggregate_fallback_gives_the_right_numbers(project, license_):
    if license_ != "apache":
        pytest.skip(f"license is {license_}: real continuous aggregates are built instead")
    result = project.dbt("run", "-s", "fct_readings", "readings_hourly", "readings_daily",
                         "--full-refresh")
    hourly = result.lines_for("gold.readings_hourly")[0]
    assert hourly.startswith("setu: gold.readings_hourly: continuous aggregate built as an"
                             f" incremental table: {APACHE_REASON}; created from all data")
    total, wrong = project.query(EXPECTED_HOURLY)[0]
    assert total > 1000 and wrong == 0
    assert project.query(EXPECTED_DAILY)[0][1] == 0
    assert dimensions(project, "readings_hourly") == {"bucket": ("7 days", None)}

    # A late row inside start_offset (3 days) is counted on the next ordinary run.
    project.query("insert into silver.fct_readings select 2, now() - interval '1 day', 50, 7")
    result = project.dbt("run", "-s", "readings_hourly", "readings_daily")
    assert "(start_offset 3 days) recomputed" in result.lines_for("gold.readings_hourly")[0]
    assert project.query(EXPECTED_HOURLY)[0][1] == 0
    assert project.query(EXPECTED_DAILY)[0][1] == 0
    index = project.scalar("select count(*) from pg_indexes where tablename = 'readings_hourly'"
                           " and indexname like 'readings_hourly_setu_ix_%%'")
    assert index == 1

    # A changed definition is detected by its hash and rebuilt.
    changed = project.dbt("run", "-s", "readings_hourly",
                          vars={"hourly_extra_sql": "having count(*) > 0"})
    assert "rebuilt: its definition changed" in changed.lines_for("gold.readings_hourly")[0]
    assert project.query(EXPECTED_HOURLY)[0][1] == 0


def test_continuous_aggregates_for_real(project, license_):
    if license_ != "timescale":
        pytest.skip(f"license is {license_}: continuous aggregates need the TimescaleDB"
                    " Community edition")
    project.dbt("run", "-s", "fct_readings", "readings_hourly", "readings_daily",
                "--full-refresh", vars={"materialized_only": False})
    assert project.scalar("select materialized_only from"
                          " timescaledb_information.continuous_aggregates"
                          " where view_name = 'readings_hourly'") is False
    project.dbt("run", "-s", "readings_hourly", vars={"materialized_only": True})
    assert project.scalar("select materialized_only from"
                          " timescaledb_information.continuous_aggregates"
                          " where view_name = 'readings_hourly'") is True


# -- retention: `setu maintain` ----------------------------------------------------------------

def run_maintain(project: Project, monkeypatch, *args: str):
    from setu.ops.maintain import maintain

    monkeypatch.setenv("DBT_PROFILES_DIR", str(project.path))
    return CliRunner().invoke(maintain, ["--project-dir", str(project.path), *args])


def test_maintain_drops_old_chunks_on_timescaledb(project, monkeypatch):
    project.dbt("run", "-s", "fct_events", "--full-refresh")
    recent = project.scalar("select count(*) from silver.fct_events"
                            " where time >= now() - interval '29 days'")
    old_chunks = project.scalar("select count(*) from timescaledb_information.chunks"
                                " where hypertable_name = 'fct_events'"
                                " and range_end < now() - interval '30 days'")
    assert old_chunks >= 25

    dry = run_maintain(project, monkeypatch, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"silver.fct_events: drop_chunks older than 30 days: {old_chunks} chunks would" \
        in dry.output

    result = run_maintain(project, monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"setu: silver.fct_events: drop_chunks older than 30 days: {old_chunks} chunks" \
           " dropped" in result.output
    assert "bronze.machine_telemetry: skipped: not built yet" in result.output
    assert project.scalar("select count(*) from timescaledb_information.chunks"
                          " where hypertable_name = 'fct_events'"
                          " and range_end < now() - interval '30 days'") == 0
    assert project.scalar("select count(*) from silver.fct_events"
                          " where time >= now() - interval '29 days'") == recent
    assert project.scalar("select min(time) >= now() - interval '31 days'"
                          " from silver.fct_events")


def test_bronze_lifecycle_reports_per_table(project, license_):
    project.dbt("run-operation", "setup_warehouse")
    result = project.dbt("run-operation", "reconcile_bronze_lifecycle")
    lines = result.setu_lines
    assert [line.split(":")[1].strip() for line in lines] == [
        "bronze.machine_state_events", "bronze.machine_cycles", "bronze.machine_telemetry",
        "bronze.alarms", "bronze.platform_extension", "bronze.downtime_events"]
    if license_ == "apache":
        assert lines[2] == ("setu: bronze.machine_telemetry: compression and retention policy"
                            f" skipped: {APACHE_REASON}; retention by `setu maintain`"
                            " (drop_chunks older than 30 days)")


# -- Silver facts compress after setu_silver_compress_after -----------------------------------

SILVER_VARS = {"setu_silver_compress_after": "14 days"}


@pytest.mark.parametrize(("caps", "expected"), [
    (COMMUNITY_219, [
        "alter table \"silver\".\"fct_telemetry\" set (timescaledb.enable_columnstore = true,"
        " timescaledb.segmentby = 'machine_id', timescaledb.orderby = 'time desc')",
        "call add_columnstore_policy(hypertable => '\"silver\".\"fct_telemetry\"'::regclass,"
        " after => interval '14 days', if_not_exists => true)"]),
    (COMMUNITY_217, [
        "alter table \"silver\".\"fct_telemetry\" set (timescaledb.compress = true,"
        " timescaledb.compress_segmentby = 'machine_id',"
        " timescaledb.compress_orderby = 'time desc')",
        "select add_compression_policy(hypertable => '\"silver\".\"fct_telemetry\"'::regclass,"
        " compress_after => interval '14 days', if_not_exists => true)"]),
])
def test_rendered_silver_fact_compression_per_api_generation(project, caps, expected):
    settings = {"time_column_name": "time", "columns": ["bronze_id", "machine_id", "time"]}
    plan = project.dbt("run-operation", "setu_render_lifecycle_plan", "--args", json.dumps(
        {"kind": "silver_compression", "schema": "silver", "identifier": "fct_telemetry",
         "settings": settings, "caps": caps, "state": HYPERTABLE_STATE}), vars=SILVER_VARS)
    line = next(line for line in plan.logs if line.startswith("setu-plan: "))
    statements = json.loads(line[len("setu-plan: "):])["statements"]
    assert statements[:2] == expected
    assert "policy_compression" in statements[2]             # the job is tagged as SETU's


def test_rendered_silver_compression_segments_devices_by_device(project):
    settings = {"time_column_name": "time", "columns": ["bronze_id", "device_id", "time"]}
    plan = project.dbt("run-operation", "setu_render_lifecycle_plan", "--args", json.dumps(
        {"kind": "silver_compression", "schema": "silver", "identifier": "fct_platform_extension",
         "settings": settings, "caps": COMMUNITY_219, "state": HYPERTABLE_STATE}),
        vars=SILVER_VARS)
    line = next(line for line in plan.logs if line.startswith("setu-plan: "))
    statements = json.loads(line[len("setu-plan: "):])["statements"]
    assert "timescaledb.segmentby = 'device_id'" in statements[0]


def test_silver_facts_get_compression_from_the_silver_var(project, license_):
    """fct_readings (a Silver fact, no `compression` key) asks for compression once the
    project sets setu_silver_compress_after, and not before."""
    quiet = project.dbt("run", "-s", "fct_readings", "--full-refresh")
    assert not [line for line in quiet.lines_for("silver.fct_readings") if "compression" in line]
    result = project.dbt("run", "-s", "fct_readings", vars=SILVER_VARS)
    lines = result.lines_for("silver.fct_readings")
    if license_ == "apache":
        assert ("setu: silver.fct_readings: compression skipped: " + APACHE_REASON) in lines
        return
    assert project.query(  # pragma: no cover - Community edition only
        "select config ->> 'compress_after' from timescaledb_information.jobs"
        " where proc_name = 'policy_compression' and hypertable_name = 'fct_readings'"
    ) == [("14 days",)]


def test_late_event_lands_in_a_compressed_silver_chunk(project, license_):
    if license_ != "timescale":
        pytest.skip(f"{APACHE_REASON}: compressing a chunk needs it; the plan is rendered and"
                    " checked above instead")
    project.dbt("run", "-s", "fct_readings", "--full-refresh", vars=SILVER_VARS)
    project.query("select compress_chunk(c, if_not_compressed => true)"
                  " from show_chunks('silver.fct_readings', older_than => interval '14 days') c")
    late = "timestamptz '{}'".format(project.scalar(
        "select date_trunc('hour', now() - interval '40 days') + interval '7 seconds'"))
    before = project.scalar(f"select count(*) from silver.fct_readings where time = {late}")
    # as a watermark batch applies a late event: delete by key, then insert
    project.query(f"delete from silver.fct_readings where machine_id = 1 and time = {late}")
    project.query(f"insert into silver.fct_readings values (1, {late}, 5.0, 0.5)")
    assert project.scalar(f"select count(*) from silver.fct_readings where time = {late}"
                          " and machine_id = 1 and power_kw = 5.0") == 1
    assert before == 0


# -- plain PostgreSQL --------------------------------------------------------------------------

def test_plain_postgres_fallbacks(project):
    result = project.dbt("run", "--full-refresh", target="plain")
    readings = result.lines_for("silver.fct_readings")
    assert readings == [f"setu: silver.fct_readings: hypertable skipped: {NO_TS_REASON}; kept a"
                        " plain table"]
    assert result.lines_for("gold.readings_hourly")[0] == (
        "setu: gold.readings_hourly: continuous aggregate built as an incremental table:"
        f" {NO_TS_REASON}; created from all data")
    assert project.query(EXPECTED_HOURLY.replace("time_bucket(", "date_bin(").replace(
        ", time)", ", time, timestamptz '2000-01-03 00:00:00+00')"), target="plain")[0][1] == 0

    project.query("insert into silver.fct_readings select 3, now() - interval '2 hours', 9, 3",
                  target="plain")
    again = project.dbt("run", "-s", "readings_hourly", target="plain")
    assert "(start_offset 3 days) recomputed" in again.lines_for("gold.readings_hourly")[0]
    daily = project.dbt("run", "-s", "readings_daily", target="plain")
    assert daily.success
    expected_daily = EXPECTED_DAILY.replace("time_bucket(", "date_bin(").replace(
        ", time)", ", time, timestamptz '2000-01-03 00:00:00+00')")
    assert project.query(expected_daily, target="plain")[0][1] == 0


def test_plain_postgres_maintain_deletes_in_batches(project, monkeypatch):
    project.dbt("run", "-s", "fct_events", "--full-refresh", target="plain")
    old = project.scalar("select count(*) from silver.fct_events"
                         " where time < now() - interval '30 days'", target="plain")
    assert old > 1000
    result = run_maintain(project, monkeypatch, "--target", "plain", "--batch-size", "500")
    assert result.exit_code == 0, result.output
    assert "on plain PostgreSQL" in result.output
    assert f"setu: silver.fct_events: rows older than 30 days: {old} deleted in batches of 500" \
        in result.output
    assert project.scalar("select count(*) from silver.fct_events"
                          " where time < now() - interval '30 days'", target="plain") == 0
