"""`setu export`: the lake holds exactly the warehouse's Silver and Gold rows, once each.

A small simulated plant is built in a database of its own; every check compares the Parquet
files, read one by one (partition values from the folder names), with the database's rows,
whose partition date is computed here in Python from the machine's site zone. Late events and
a SIGKILLed export must leave no row missing and none twice; the S3 path runs against moto's
server on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest.mock import patch
from zoneinfo import ZoneInfo

import psycopg
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
import pytest

from conftest import free_port
from setu.ops import export as lake_export
from setu.tools.simulate import SimulationConfig, simulate_into_database
from setu.warehouse.cluster import Cluster

SETU = Path(sys.executable).parent / "setu"
DATABASE = "setu_export"
# 21:00-01:00 UTC: Berlin's machines cross local midnight, Kolkata's do not.
START = datetime(2026, 11, 1, 21, 0, tzinfo=UTC)


class Plant:
    """A warehouse database (in any cluster) that dbt builds and `setu export` reads."""

    def __init__(self, cluster: Cluster, database: str, scratch: Path) -> None:
        self.cluster = cluster
        self.database = database
        self.url = cluster.create_database(database)
        self.scratch = scratch
        self.env = {"SETU_PG_PORT": str(cluster.port), "SETU_PG_DATABASE": database,
                    "DBT_TARGET_PATH": str(scratch / "target"),
                    "DBT_LOG_PATH": str(scratch / "logs")}

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def dbt(self, *args: str) -> None:
        from setu.warehouse import dbt

        with patch.dict(os.environ, self.env):
            assert dbt.run(list(args)) == 0, f"dbt {' '.join(args)} failed on {self.database}"

    def simulate(self, machines: int, start: datetime, duration: timedelta, seed: int) -> None:
        with self.connect() as conn:
            simulate_into_database(conn, SimulationConfig(
                machines=machines, start=start, duration=duration, seed=seed))

    def export(self, lake: str, plant: str) -> list[lake_export.TableResult]:
        with self.connect() as conn:
            return list(lake_export.export(conn, lake_export.Lake.open(lake), plant))


def exported_specs(conn: psycopg.Connection) -> list[lake_export.TableSpec]:
    return [spec for spec in lake_export.TABLES if lake_export.table_columns(conn, spec)]


def database_rows(conn: psycopg.Connection, spec: lake_export.TableSpec, plant: str
                  ) -> list[tuple]:
    """The table's rows as the lake must hold them: (plant, date, bucket, data columns...).

    The partition date is computed here, in Python, from the site zone of the row's machine.
    """
    columns = [name for name, _ in lake_export.table_columns(conn, spec)]
    zones = dict(conn.execute(
        "select m.machine_id, s.timezone from master.machines as m"
        " inner join master.sites as s using (site_id)").fetchall())
    rows = []
    with conn.cursor() as cursor:
        cursor.execute(f"select * from {spec.relation}")
        for values in cursor:
            record = dict(zip(columns, values, strict=True))
            if spec.time_column is None:
                day = record.pop(spec.date_column)
            else:
                zone = ZoneInfo(zones.get(record[spec.key_column], "UTC")
                                if spec.local_time else "UTC")
                day = record[spec.time_column].astimezone(zone).date()
            bucket = record[spec.key_column] % spec.buckets
            rows.append((plant, day.isoformat(), bucket, *record.values()))
    return rows


def lake_rows(fs: pa_fs.FileSystem, root: str, spec: lake_export.TableSpec,
              plant: str | None = None) -> list[tuple]:
    """Every row of every Parquet file of the table (duplicates kept), from the files alone."""
    base = f"{root}/{spec.schema}/{spec.table}"
    infos = fs.get_file_info(pa_fs.FileSelector(base, recursive=True, allow_not_found=True))
    rows = []
    for info in infos:
        if info.type != pa_fs.FileType.File or not info.path.endswith(".parquet"):
            continue
        parts = dict(piece.split("=", 1) for piece in info.path[len(base) + 1:].split("/")[:-1])
        if plant is not None and parts["plant"] != plant:
            continue
        bucket = int(info.path.rsplit("part-", 1)[1].split(".")[0])
        with fs.open_input_file(info.path) as handle:
            table = pq.read_table(handle)
        for record in table.to_pylist():
            rows.append((parts["plant"], parts[spec.date_column], bucket, *record.values()))
    return rows


def assert_lake_matches(conn: psycopg.Connection, fs: pa_fs.FileSystem, root: str,
                        plant: str) -> int:
    """Every table: the lake's rows are the database's, and none is there twice."""
    total = 0
    for spec in exported_specs(conn):
        expected = Counter(database_rows(conn, spec, plant))
        found = Counter(lake_rows(fs, root, spec, plant))
        doubled = [row for row, count in found.items() if count > 1]
        assert not doubled, f"{spec.relation}: {len(doubled)} rows twice, e.g. {doubled[0]}"
        missing = expected - found
        extra = found - expected
        assert not missing and not extra, (
            f"{spec.relation}: {sum(missing.values())} rows missing (e.g. "
            f"{next(iter(missing), None)}), {sum(extra.values())} extra "
            f"(e.g. {next(iter(extra), None)})")
        total += sum(expected.values())
    return total


def insert_late_events(conn: psycopg.Connection) -> None:
    """Late events for machine 1 an hour back: a telemetry reading and a state change.

    Both fall between events the warehouse has already taken, so Gold groups already exported
    (the hour's energy, the day's utilization) change, and Silver rows around them too.
    """
    (latest,) = conn.execute(
        "select max(time) from bronze.machine_telemetry where machine_id = 1").fetchone()
    # Each call a different instant: a repeat of an earlier late row would be a duplicate.
    (earlier,) = conn.execute(
        "select count(*) from bronze.machine_state_events where program_name = 'LATE-PROGRAM'"
    ).fetchone()
    late = latest - timedelta(minutes=40 - 2 * earlier, seconds=7)
    conn.execute(
        "insert into bronze.machine_telemetry (time, machine_id, spindle_speed_rpm,"
        " spindle_load_pct, spindle_temp_c, motor_temp_c, power_kw, energy_kwh)"
        " select %s, 1, 900, 20, 30, 35, 2.5, energy_kwh + 0.25"
        " from bronze.machine_telemetry where machine_id = 1 and time < %s"
        " order by time desc limit 1", (late, late))
    conn.execute(
        "insert into bronze.machine_state_events (time, machine_id, state, program_name)"
        " values (%s, 1, 'SETUP', 'LATE-PROGRAM')", (late,))


@pytest.fixture(scope="module")
def plant(cluster: Cluster) -> Iterator[Plant]:
    scratch = Path(tempfile.mkdtemp(prefix="setu-test-export-", dir="/var/tmp"))
    warehouse = Plant(cluster, DATABASE, scratch)
    warehouse.dbt("run-operation", "setup_warehouse")
    warehouse.simulate(4, START, timedelta(hours=4), seed=7)
    warehouse.dbt("run")
    yield warehouse
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def lake(tmp_path: Path) -> str:
    return str(tmp_path / "lake")


def watermarks(conn: psycopg.Connection, lake: str, plant: str) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        "select relation, last_batch_id, version from _lake.export_watermarks"
        " where destination = %s", (f"{lake}/plant={plant}",)).fetchall()
    return {relation: (batch, version) for relation, batch, version in rows}


def test_first_export_holds_every_row_once(plant: Plant, lake: str) -> None:
    results = plant.export(lake, "alpha")
    with plant.connect() as conn:
        total = assert_lake_matches(conn, pa_fs.LocalFileSystem(), lake, "alpha")
        fact_rows = conn.execute("select count(*) from silver.fct_telemetry").fetchone()[0]
    assert total > fact_rows > 1000
    assert {result.relation for result in results if result.skipped is None} >= {
        "gold.machine_utilization_daily", "gold.energy_hourly", "silver.fct_telemetry"}
    # Berlin's machines crossed local midnight: two local dates in the utilization folder.
    days = sorted(path.name for path in
                  (Path(lake) / "gold/machine_utilization_daily/plant=alpha").iterdir())
    assert days == ["local_date=2026-11-01", "local_date=2026-11-02"]
    manifest = json.loads((Path(lake) / "silver/fct_telemetry/_setu_manifests/plant=alpha"
                           / "v00000001.json").read_text())
    on_disk = sorted(str(path.relative_to(lake)) for path in
                     (Path(lake) / "silver/fct_telemetry").rglob("*.parquet"))
    assert [entry["path"] for entry in manifest["files"]] == on_disk
    assert manifest["rows"] == fact_rows
    assert not list(Path(lake).rglob("*.tmp"))


def test_late_events_replace_their_groups_and_nothing_else(plant: Plant, lake: str) -> None:
    plant.export(lake, "alpha")
    files = {path: path.stat().st_mtime_ns for path in Path(lake).rglob("*.parquet")}
    with plant.connect() as conn:
        before = watermarks(conn, lake, "alpha")
        insert_late_events(conn)
    plant.dbt("run")
    results = {result.relation: result for result in plant.export(lake, "alpha")}
    with plant.connect() as conn:
        assert_lake_matches(conn, pa_fs.LocalFileSystem(), lake, "alpha")
        after = watermarks(conn, lake, "alpha")
    rewritten = {path for path, mtime in files.items()
                 if path.exists() and path.stat().st_mtime_ns != mtime}
    # A file per group, in place: the old ones all stay (a late event may open a new group).
    assert set(files) <= set(Path(lake).rglob("*.parquet"))
    # Machine 1 (bucket 1 of 4 or 16, bucket 0 of 1) on its site's day: only its files moved.
    assert rewritten
    assert all("part-00001" in path.name or "part-00000" in path.name for path in rewritten)
    assert len(rewritten) < len(files) / 2
    for relation in ("silver.fct_telemetry", "gold.energy_hourly",
                     "gold.machine_utilization_daily", "silver.fct_state_intervals"):
        assert results[relation].groups >= 1
        assert after[relation][1] == before[relation][1] + 1
        assert after[relation][0] > before[relation][0]
    manifest = json.loads((Path(lake) / "silver/fct_telemetry/_setu_manifests/plant=alpha"
                           / f"v{after['silver.fct_telemetry'][1]:08d}.json").read_text())
    assert manifest["changed_files"] and len(manifest["changed_files"]) < len(manifest["files"])


def test_a_run_with_nothing_new_writes_nothing(plant: Plant, lake: str) -> None:
    plant.export(lake, "alpha")
    files = {path: path.stat().st_mtime_ns for path in Path(lake).rglob("*")}
    results = plant.export(lake, "alpha")
    assert all(result.groups == 0 for result in results)
    assert {path: path.stat().st_mtime_ns for path in Path(lake).rglob("*")} == files


def run_export_until_killed(plant: Plant, lake: str, after_files: int) -> int:
    """`setu export -v` in a subprocess, SIGKILLed once it has published `after_files`."""
    env = {**os.environ, **plant.env, "NO_COLOR": "1"}
    process = subprocess.Popen([str(SETU), "export", lake, "--plant", "alpha", "-v"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env)
    published = 0
    for line in process.stdout:
        if line.startswith("published "):
            published += 1
            if published == after_files:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(timeout=60)
    process.stdout.close()
    return process.returncode


def test_kill_9_mid_export_loses_and_doubles_nothing(plant: Plant, lake: str) -> None:
    interrupted = 0
    with plant.connect() as conn:
        for after_files in (1, 7, 19):
            code = run_export_until_killed(plant, lake, after_files)
            marks = watermarks(conn, lake, "alpha")
            if code == -signal.SIGKILL and any(version == 0 for _, version in marks.values()):
                interrupted += 1
            # Whatever the kill left: published files are whole, and none is there twice.
            for spec in exported_specs(conn):
                found = Counter(lake_rows(pa_fs.LocalFileSystem(), lake, spec, "alpha"))
                assert all(count == 1 for count in found.values()), spec.relation
        assert interrupted >= 1, "no kill landed before the export finished"
        insert_late_events(conn)
    plant.dbt("run")
    assert run_export_until_killed(plant, lake, 2) in (-signal.SIGKILL, 0)
    completed = subprocess.run([str(SETU), "export", lake, "--plant", "alpha"],
                               env={**os.environ, **plant.env}, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    with plant.connect() as conn:
        assert_lake_matches(conn, pa_fs.LocalFileSystem(), lake, "alpha")
    assert not list(Path(lake).rglob("*.tmp")), "the staging folder kept a killed run's file"


def test_bad_plant_name_is_one_clear_line(plant: Plant, lake: str) -> None:
    completed = subprocess.run([str(SETU), "export", lake, "--plant", "../up"],
                               env={**os.environ, **plant.env}, capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "error: plant name '../up' must be 1-63 letters, digits, '.', '_' or '-' (it becomes "
        "a folder name plant=<name>)"]


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on loopback, and the AWS_* environment every S3 client reads."""
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if server is None:
        pytest.skip("moto's server is not installed: the [lake] extra brings it "
                    "(bash scripts/setup.sh)")
    port = free_port()
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    import boto3  # moto's own dependency: the bucket is made by a plain AWS client

    boto3.client("s3").create_bucket(Bucket="setu-lake")
    yield "s3://setu-lake/plants"
    process.terminate()
    process.wait(timeout=30)


def test_s3_export_through_the_same_code_path(plant: Plant, moto_s3: str) -> None:
    plant.export(moto_s3, "alpha")
    fs, root = lake_export.s3_filesystem(moto_s3)
    with plant.connect() as conn:
        assert_lake_matches(conn, fs, root, "alpha")
        insert_late_events(conn)
    plant.dbt("run")
    results = plant.export(moto_s3, "alpha")
    assert any(result.groups for result in results)
    with plant.connect() as conn:
        assert_lake_matches(conn, fs, root, "alpha")
    staged = fs.get_file_info(pa_fs.FileSelector(f"{root}/{lake_export.STAGING_FOLDER}",
                                                 recursive=True, allow_not_found=True))
    assert not [info for info in staged if info.type == pa_fs.FileType.File]
    manifest = fs.open_input_stream(
        f"{root}/gold/energy_hourly/_setu_manifests/plant=alpha/v00000002.json").read()
    assert json.loads(manifest)["version"] == 2


def test_day_bounds_hold_every_zone() -> None:
    low, high = lake_export.day_bounds(date(2026, 3, 29))
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin", "Asia/Kolkata"):
        start = datetime(2026, 3, 29, tzinfo=ZoneInfo(zone))
        assert low <= start and start + timedelta(days=1) <= high, zone
