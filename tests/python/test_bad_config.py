"""Bad configuration and input: each is ONE clear error line naming what to fix, and nothing
half-applied (the catalog is the same before and after, a table named in an injected
`drop table` still exists).

Model configs are edited in a copy of the project; the warehouse is a database of its own
in the session cluster."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.cli import main
from setu.warehouse.cluster import Cluster
from setu.warehouse.paths import PROJECT_DIR

DATABASE = "setu_badcfg"
SETU = Path(sys.executable).parent / "setu"
SCHEMAS = ["public", "bronze", "master", "staging", "silver", "gold", "webapp", "rollups",
           "_etl", "_ingest"]
MODEL = "models/silver/fct_alarm_events.sql"


class Project:
    """The copied project, its database and its dbt scratch folder."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url
        self.original = (folder / MODEL).read_text()

    def setu(self, *args: str) -> tuple[int, str]:
        """`setu ARGS` in-process against the copy; (exit code, output)."""
        result = CliRunner().invoke(main, [*args, "--project-dir", str(self.folder)])
        return result.exit_code, result.output

    def configure(self, before: str, after: str) -> None:
        assert before in self.original
        (self.folder / MODEL).write_text(self.original.replace(before, after, 1))

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


@pytest.fixture(scope="module")
def project(cluster: Cluster, dbt_run) -> Iterator[Project]:
    scratch = Path(tempfile.mkdtemp(prefix="setu-test-badcfg-", dir="/var/tmp"))
    folder = scratch / "project"
    folder.mkdir()
    for name in ("dbt_project.yml", "models", "macros", "seeds", "analyses", "tests/dbt"):
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            shutil.copy(source, folder / name)
    try:
        with own_database(cluster, DATABASE, DBT_TARGET_PATH=str(scratch / "target"),
                          DBT_LOG_PATH=str(scratch / "logs")) as url:
            assert dbt_run(["run", "--project-dir", str(folder)]) == 0
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("create table if not exists public.x (a int)")
            yield Project(folder, url)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def unchanged(project: Project) -> Iterator[None]:
    """Asserts that the test changed nothing in the catalog, the registered models and the
    watermarks, and left public.x (the target of the injected `drop table x`) alone."""
    with project.connect() as conn:
        before = catalog(conn)
    yield
    (project.folder / MODEL).write_text(project.original)
    with project.connect() as conn:
        assert conn.execute("select to_regclass('public.x')").fetchone()[0] is not None
        assert catalog(conn) == before


def catalog(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("""
        select n.nspname, c.relname, c.relkind::text, a.attname,
            format_type(a.atttypid, a.atttypmod)
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        left join pg_attribute as a on c.oid = a.attrelid and a.attnum > 0
            and not a.attisdropped
        where n.nspname = any(%s)
        union all
        select 'model', model_name, target_relation, md5(batch_sql || apply_sql::text),
            batch_size::text
        from _etl.models
        union all
        select 'watermark', model_name, source_name, last_processed_id::text,
            coalesce(batch_end_id, 0)::text
        from _etl.watermarks
        order by 1, 2, 3, 4
    """, (SCHEMAS,)).fetchall()


def error_line(output: str, must_contain: str) -> str:
    """The one line that reports the problem; no raw database error around it."""
    lines = [line.strip() for line in output.splitlines()
             if line.strip().startswith(("error:", "setu:")) and "was missing" not in line
             and "skipped" not in line and "rows in" not in line]
    assert len(lines) == 1, f"expected one error line, got {lines}:\n{output}"
    assert must_contain in lines[0], output
    for noise in ("Database Error", "Traceback", "syntax error", "does not exist\n"):
        assert noise not in output, output
    return lines[0]


# -- target and connection -------------------------------------------------------------------

@pytest.mark.parametrize("args", [["run"], ["build", "--target", "nope"], ["bronze"],
                                  ["roles"]])
def test_unknown_target(project: Project, args: list[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    if "--target" not in args:
        monkeypatch.setenv("SETU_TARGET", "nope")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1, result.output
    line = error_line(result.output, "target 'nope' is not in profile 'setu'")
    assert "known targets: ci, lake, lake_thrift, local, prod, prod_replica" in line


def test_unreachable_database_from_the_command_line(project: Project) -> None:
    env = os.environ | {"SETU_PG_HOST": "127.0.0.2"}
    for args in (["run"], ["bronze"], ["roles"]):
        result = subprocess.run([str(SETU), *args], capture_output=True, text=True, env=env,
                                timeout=120)
        assert (result.returncode, result.stdout) == (2, ""), result.stdout + result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        port = os.environ["SETU_PG_PORT"]
        error_line(result.stderr,
                   f"cannot connect to target 'local' at 127.0.0.2:{port}/{DATABASE}")


# -- vars ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "message"), [
    ('{setu_late_arrival_window: "banana"}',
     'setu: var setu_late_arrival_window = "banana" is not a positive interval'),
    ("{setu_bronze_retention: \"1 day'; drop table x; --\"}",
     "setu: var setu_bronze_retention = \"1 day'; drop table x; --\" is not a positive"),
    ("{setu_batch_size: banana}",
     'setu: var setu_batch_size = "banana" is not a positive whole number'),
])
def test_invalid_var_stops_before_any_ddl(project: Project, unchanged: None, given: str,
                                          message: str) -> None:
    code, output = project.setu("run", "--vars", given)
    assert code == 2
    line = error_line(output, message)
    assert "dbt_project.yml vars or --vars" in line


# -- model config ----------------------------------------------------------------------------

@pytest.mark.parametrize(("before", "after", "message"), [
    ("time_column_name='time',", "time_column_name='time', chunk_time_intervall='1 day',",
     'config key "chunk_time_intervall" is unknown (did you mean "chunk_time_interval"?)'),
    ("time_column_name='time',", "time_column_name='time',"
     " chunk_time_interval=\"1 day'; drop table x; --\",",
     "config chunk_time_interval = "),
    ("['bronze.alarms']", "['bronze.alarms; drop table x']",
     'watermark_sources entry "bronze.alarms; drop table x" is not a table name'),
    ("['bronze.alarms']", "['bronze.alarm']",
     'watermark_sources entry "bronze.alarm" does not exist yet'),
    ("time_column_name='time',", "time_column_name='time; drop table x',",
     'config time_column_name = "time; drop table x" is not a column name'),
    ("time_column_name='time',", "time_column_name='time', after_batch=['drop table x'],",
     'after_batch entry "drop table x" is not a macro of this project'),
])
def test_bad_model_config_is_one_error_and_drops_nothing(
    project: Project, unchanged: None, before: str, after: str, message: str
) -> None:
    """--full-refresh, which would drop the table first: the config is checked before that."""
    project.configure(before, after)
    code, output = project.setu("run", "--full-refresh", "--select", "fct_alarm_events")
    assert code == 1
    line = error_line(output, message)
    assert line.startswith("setu: silver.fct_alarm_events")


def test_dbt_model_config_keys_match_the_installed_dbt() -> None:
    """The macro's list of dbt's own keys (validate_model_config) is complete for this dbt."""
    from dbt.artifacts.resources import ModelConfig

    fields = {f.metadata.get("alias", f.name) for f in dataclasses.fields(ModelConfig)}
    fields.discard("_extra")
    text = (PROJECT_DIR / "macros/utils/validate_model_config.sql").read_text()
    body = text.split("macro dbt_model_config_keys()")[1].split("endmacro")[0]
    assert fields <= set(re.findall(r'"([a-z_-]+)"', body))


# -- Bronze ----------------------------------------------------------------------------------

def test_dropped_bronze_column_is_named_and_added_back(project: Project) -> None:
    with project.connect() as conn:
        conn.execute("alter table bronze.alarms drop column severity cascade")
    code, output = project.setu("run", "--select", "stg_bronze__alarms+")
    assert code == 0, output
    assert "setu: bronze.alarms: column severity (text) was missing; added back, empty" in output

    with project.connect() as conn:
        conn.execute("alter table bronze.alarms drop column message cascade")
    code, output = project.setu("run-operation", "setup_warehouse")  # what `setu bronze` runs
    assert code == 0, output
    assert "setu: bronze.alarms: column message (text) was missing; added back" in output
    with project.connect() as conn:
        columns = {name for (name,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'bronze' and table_name = 'alarms'")}
    assert {"severity", "message"} <= columns
    code, output = project.setu("run", "--select", "stg_bronze__alarms+")
    assert code == 0, output


def test_renamed_core_bronze_column_is_one_error(project: Project, unchanged: None) -> None:
    with project.connect() as conn:
        conn.execute("alter table bronze.alarms rename column ingested_at to arrived_at")
    try:
        code, output = project.setu("run", "--select", "stg_bronze__alarms")
    finally:
        with project.connect() as conn:
            conn.execute("alter table bronze.alarms rename column arrived_at to ingested_at")
    assert code == 2
    error_line(output, "setu: bronze.alarms has no column ingested_at, which SETU cannot add")
