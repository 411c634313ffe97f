"""Read replicas: `setu replica init` replicates gold, master and webapp (and nothing else) to a
second cluster, Gold's delete+insert corrections arrive there, and the command's errors are
one clear line. The primary is the session's test cluster; the replica is a cluster of this
module's own, in a database without TimescaleDB."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from conftest import free_port
from setu.cli import main
from setu.ops.replica import strip_timescaledb
from setu.warehouse.cluster import Cluster
from setu.warehouse.paths import PROJECT_DIR

SITE = 9001
MACHINES = (9001, 9002)  # machine ids no other test module uses
# A day no other test module writes (fleet-wide reports sum every machine of a day).
T0 = datetime(2025, 9, 15, 10, 0, tzinfo=UTC)
PUBLISHED = ("gold", "master", "webapp")
# Gold and webapp tables with a machine_id, compared row for row on both sides.
MACHINE_TABLES = (
    "gold.energy_hourly", "gold.energy_daily", "gold.machine_utilization_daily",
    "gold.sensor_stats_15m", "gold.program_history_daily", "gold.alerts_daily",
    "webapp.machine_status_current",
)
WAIT_SECONDS = 30


def setu(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"after {WAIT_SECONDS} s: {what}")
        time.sleep(0.3)


def rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def machine_rows(url: str) -> dict[str, list[tuple]]:
    """Every machine table's rows of this module's machines, in a stable order."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            table: conn.execute(
                f"select * from {table} where machine_id = any(%s) order by 1, 2, 3",
                (list(MACHINES),)).fetchall()
            for table in MACHINE_TABLES
        }


@pytest.fixture(scope="module")
def subscriber(cluster: Cluster) -> Iterator[tuple[Cluster, str]]:
    """A second cluster (wal_level replica: a subscriber needs no logical WAL) and the URL of
    its database `replica`, created without extensions. On teardown the subscription is
    dropped first, which drops its slot on the primary, then the cluster and the
    publication."""
    home = Path(tempfile.mkdtemp(prefix="setu-test-replica-", dir="/var/tmp"))
    home.chmod(0o755)
    replica = Cluster(home=home, port=free_port(), tuning="test")
    url = replica.url.rsplit("/", 1)[0] + "/replica"
    try:
        replica.start()
        replica.psql("alter system set wal_level = 'replica'", db="postgres")
        replica.stop()
        replica.start()
        url = replica.create_database("replica", extensions=False)
        yield replica, url
    finally:
        with contextlib.suppress(psycopg.Error):
            rows(url, "drop subscription if exists setu_replica")
        replica.destroy()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("drop publication if exists setu_replica")
            conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots"
                         " where slot_name = 'setu_replica' and not active")


def insert_master(conn: psycopg.Connection) -> None:
    conn.execute("insert into master.sites values (%s, 'REP', 'Europe/Berlin')"
                 " on conflict do nothing", (SITE,))
    for shift_id, name, start, end in ((1, "early", "06:00", "14:00"),
                                       (2, "late", "14:00", "22:00"),
                                       (3, "night", "22:00", "06:00")):
        conn.execute("insert into master.shifts values (%s, %s, %s, %s, %s)"
                     " on conflict do nothing", (SITE, shift_id, name, start, end))
    for machine in MACHINES:
        conn.execute("insert into master.machines values (%s, %s, %s) on conflict do nothing",
                     (machine, f"REP-{machine}", SITE))


def insert_telemetry(conn: psycopg.Connection, machine: int, minutes: float, kwh: float) -> None:
    at = T0 + timedelta(minutes=minutes)
    conn.execute(
        "insert into bronze.machine_telemetry (time, ingested_at, machine_id, power_kw,"
        " spindle_temp_c, energy_kwh) values (%s, %s, %s, 3.5, 41, %s)",
        (at, at + timedelta(seconds=2), machine, kwh))


def insert_state(conn: psycopg.Connection, machine: int, minutes: float, state: str) -> None:
    at = T0 + timedelta(minutes=minutes)
    conn.execute(
        "insert into bronze.machine_state_events (time, ingested_at, machine_id, state,"
        " program_name) values (%s, %s, %s, %s, 'P-REP')",
        (at, at + timedelta(seconds=2), machine, state))


def kwh(url: str, machine: int, bucket: datetime) -> list[float]:
    """energy_hourly's kwh of one key: a list, so a duplicated key would show."""
    return [row[0] for row in rows(
        url, "select kwh from gold.energy_hourly where machine_id = %s and bucket = %s",
        (machine, bucket))]


def test_unreachable_subscriber_is_one_line(cluster: Cluster) -> None:
    result = CliRunner().invoke(main, ["replica", "init", "--subscriber-url",
                                       f"postgresql://setu@127.0.0.1:{free_port()}/replica"])
    assert result.exit_code == 2
    assert "error: cannot connect to the subscriber at 127.0.0.1:" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_primary_without_logical_wal_is_one_line(
        subscriber: tuple[Cluster, str], monkeypatch: pytest.MonkeyPatch) -> None:
    replica, url = subscriber
    # The replica cluster (wal_level replica) in the role of the primary.
    monkeypatch.setenv("SETU_PG_PORT", str(replica.port))
    result = CliRunner().invoke(main, ["replica", "init", "--subscriber-url", url])
    assert result.exit_code == 2
    assert "wal_level on the primary (target 'local') is 'replica'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_replica_receives_gold_and_its_corrections(
        cluster: Cluster, subscriber: tuple[Cluster, str], conn: psycopg.Connection,
        dbt_run) -> None:
    _, url = subscriber
    assert dbt_run(["run-operation", "setup_warehouse"]) == 0
    insert_master(conn)
    insert_telemetry(conn, 9001, 0, 100.0)
    insert_telemetry(conn, 9001, 10, 110.0)
    insert_state(conn, 9001, 0, "RUNNING")
    insert_state(conn, 9001, 30, "IDLE")
    assert dbt_run(["build"]) == 0
    assert kwh(cluster.url, 9001, T0) == [10.0]

    result = setu("replica", "init", "--subscriber-url", url)
    assert result.exit_code == 0, result.output
    assert "subscription setu_replica created" in result.output

    wait_for("Gold rows on the replica", lambda: kwh(url, 9001, T0) == [10.0])
    wait_for("all of this module's rows on the replica",
             lambda: machine_rows(url) == machine_rows(cluster.url))
    assert {row[0] for row in rows(url, "select machine_id from master.machines")} >= {
        *MACHINES}
    # Gold keys replicate by their unique index, not by whole rows.
    identity = rows(cluster.url, "select relreplident from pg_class"
                                 " where oid = 'gold.energy_hourly'::regclass")
    assert identity == [("i",)]

    # Only the published schemas reach the replica: no Silver, Bronze or pipeline state.
    schemas = {row[0] for row in rows(
        url, "select distinct table_schema from information_schema.tables"
             " where table_schema not in ('pg_catalog', 'information_schema')")}
    assert schemas == set(PUBLISHED)
    assert rows(url, "select nspname from pg_namespace where nspname in"
                     " ('silver', 'bronze', '_etl', 'staging', 'rollups')") == []
    assert not rows(url, "select from pg_extension where extname = 'timescaledb'")

    # A later reading changes 9001's first hour (delete+insert of its key); 9002 is new.
    insert_telemetry(conn, 9001, 20, 125.0)
    insert_telemetry(conn, 9002, 60, 50.0)
    insert_telemetry(conn, 9002, 70, 58.0)
    assert dbt_run(["run"]) == 0
    assert kwh(cluster.url, 9001, T0) == [25.0]

    wait_for("the corrected Gold row on the replica", lambda: kwh(url, 9001, T0) == [25.0])
    wait_for("the new machine's Gold row", lambda: kwh(url, 9002, T0 + timedelta(hours=1))
             == [8.0])
    wait_for("all of this module's rows on the replica after the second run",
             lambda: machine_rows(url) == machine_rows(cluster.url))

    status = setu("replica", "status", "--subscriber-url", url)
    assert status.exit_code == 0, status.output
    assert "streaming" in status.output
    assert "gold.energy_hourly" in status.output and "ready" in status.output
    assert "silver." not in status.output and "bronze." not in status.output

    # Running init again changes nothing but refreshes the subscription.
    again = setu("replica", "init", "--subscriber-url", url)
    assert again.exit_code == 0, again.output
    assert "table definitions copied: 0" in again.output
    assert "subscription setu_replica refreshed" in again.output


MATERIALIZATION = PROJECT_DIR / "macros" / "etl" / "materializations" / "watermark_incremental.sql"
FULL_REFRESH_WIRED = all(call in MATERIALIZATION.read_text() for call in (
    "set_replica_identity(", "truncate_published_table("))


@pytest.mark.skipif(not FULL_REFRESH_WIRED, reason="watermark_incremental does not call "
                    "set_replica_identity and truncate_published_table yet")
def test_full_refresh_reaches_the_replica(
        cluster: Cluster, subscriber: tuple[Cluster, str], dbt_run) -> None:
    """A rebuilt Gold table gets its replica identity before its first delete, and its old
    rows leave the replica by a replicated truncate (a drop alone would leave them there and
    stop the replica at the first duplicate key)."""
    _, url = subscriber
    errors = "select apply_error_count from pg_stat_subscription_stats where subname = %s"
    errors_before = rows(url, errors, ("setu_replica",))
    assert dbt_run(["run", "--full-refresh", "--select", "energy_hourly"]) == 0
    rebuilt = rows(cluster.url, "select etl_batch_id from gold.energy_hourly"
                                " where machine_id = 9001 and bucket = %s", (T0,))
    wait_for("the rebuilt rows on the replica", lambda: rows(
        url, "select etl_batch_id from gold.energy_hourly where machine_id = 9001"
             " and bucket = %s", (T0,)) == rebuilt)
    wait_for("all of this module's rows on the replica after the full refresh",
             lambda: machine_rows(url) == machine_rows(cluster.url))
    assert rows(url, errors, ("setu_replica",)) == errors_before


def test_new_table_needs_init_again(
        cluster: Cluster, subscriber: tuple[Cluster, str], conn: psycopg.Connection) -> None:
    """DDL does not replicate: a new table reaches the replica with the next `init`."""
    _, url = subscriber
    machine_code = "select machine_code from master.machines where machine_id = 9001"
    conn.execute("create table gold.replica_probe (probe_id int primary key, note text)")
    try:
        conn.execute("insert into gold.replica_probe values (1, 'before init')")
        # The replica cannot apply that insert (no such table there): replication waits...
        conn.execute("update master.machines set machine_code = 'REP-9001b'"
                     " where machine_id = 9001")
        status = setu("replica", "status", "--subscriber-url", url)
        assert "the replica lacks gold.replica_probe" in status.output
        time.sleep(1)
        assert rows(url, machine_code) == [("REP-9001",)]
        # ...until init creates the table: then the new table and the waiting change arrive.
        result = setu("replica", "init", "--subscriber-url", url)
        assert result.exit_code == 0, result.output
        assert "table definitions copied: 1 (gold.replica_probe)" in result.output
        wait_for("the new table's rows", lambda: rows(
            url, "select * from gold.replica_probe") == [(1, "before init")])
        wait_for("the change made while replication waited",
                 lambda: rows(url, machine_code) == [("REP-9001b",)])
        conn.execute("update gold.replica_probe set note = 'after init'")
        wait_for("the new table's update", lambda: rows(
            url, "select * from gold.replica_probe") == [(1, "after init")])
    finally:
        conn.execute("drop table gold.replica_probe")


def test_on_run_end_reconciles_drift(
        cluster: Cluster, subscriber: tuple[Cluster, str], conn: psycopg.Connection,
        dbt_run) -> None:
    """reconcile_replica_publication (the on-run-end hook) restores the schema list and a
    Gold table's replica identity once the publication exists."""
    conn.execute("alter publication setu_replica set tables in schema gold")
    conn.execute("alter table gold.energy_hourly replica identity full")
    assert dbt_run(["run-operation", "reconcile_replica_publication"]) == 0
    schemas = rows(cluster.url, "select n.nspname::text from pg_publication_namespace as pn"
                                " join pg_namespace as n on n.oid = pn.pnnspid order by 1")
    assert schemas == [(schema,) for schema in PUBLISHED]
    assert rows(cluster.url, "select relreplident from pg_class"
                             " where oid = 'gold.energy_hourly'::regclass") == [("i",)]


def test_strip_timescaledb_keeps_all_but_timescaledb_entries() -> None:
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict k\n\nSET x = 1;\n\n"
        "--\n-- Name: t; Type: TABLE; Schema: gold; Owner: -\n--\n\n"
        "CREATE TABLE gold.t (a int);\n\n\n"
        "--\n-- Name: t ts_insert_blocker; Type: TRIGGER; Schema: gold; Owner: -\n--\n\n"
        "CREATE TRIGGER ts_insert_blocker BEFORE INSERT ON gold.t FOR EACH ROW EXECUTE"
        " FUNCTION _timescaledb_functions.insert_blocker();\n\n\n"
        "--\n-- Name: t_key; Type: INDEX; Schema: gold; Owner: -\n--\n\n"
        "CREATE UNIQUE INDEX t_key ON gold.t USING btree (a);\n\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k\n\n"
    )
    stripped = strip_timescaledb(dump)
    assert "ts_insert_blocker" not in stripped
    assert stripped == dump.replace(dump[dump.index("--\n-- Name: t ts_insert"):
                                         dump.index("--\n-- Name: t_key")], "")
    assert stripped.endswith("\\unrestrict k\n\n")
