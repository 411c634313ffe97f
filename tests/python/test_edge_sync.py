"""`setu sync-edge`: a gateway's SQLite file into Bronze, every row exactly once, crash or not.

The gateway files are built here in the SETU edge template (a few machines, a few hours of
every table), synced, killed between the PostgreSQL commit and the SQLite update, synced
again, and reconciled: every edge row maps to exactly one Bronze row or to records in
_ingest.edge_unmapped, and nothing else is in Bronze for the gateway.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.ingest.connectors.edge_sync import (
    PAUSE_AFTER_COMMIT_ENV,
    PAUSE_MARKER,
    BadValue,
    parse_time,
    sync_edge,
)

DATABASE = "setu_test_edge_sync"
SITE_ID = 8000
MACHINES = (8001, 8002, 8003)
CODED_MACHINE = ("VMC-8004", 8004)  # a gateway that labels the machine by its code
GATEWAY_ZONE = "Asia/Kolkata"  # the gateway's clock: local time without offset
START_LOCAL = datetime(2026, 1, 5, 6, 0)
HOURS = 3
SETU = Path(sys.executable).with_name("setu")

TEMPLATE_DDL = """
create table MachineRunningStatus_MVP (IOTID text, RunningProgramNo text, Status text,
    OperatorID text, Target integer, UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseCycleDetails_MVP (IOTID text, CycleStart text, CycleEnd text,
    ProgramNo text, StdLoadUnload real, DownThreshold real, StdCycleTime real,
    UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseAlarmDetails_MVP (IOTID text, AlarmNo text, AlarmDesc text,
    AlarmTS text, UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseEnergyDetails_MVP (IOTID text, Category text, ServoEnergy real,
    SpindleEnergy real, TotalEnergy real, UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseParameterDetails_MVP (ID integer primary key autoincrement,
    IOTID text, ParameterID text, ParameterValue text, UpdatedTS text,
    SyncedStatus integer default 0);
"""
TABLES = ("MachineRunningStatus_MVP", "MachineWiseCycleDetails_MVP",
          "MachineWiseAlarmDetails_MVP", "MachineWiseEnergyDetails_MVP",
          "MachineWiseParameterDetails_MVP")
STATUS_CYCLE = ("Running", "IDLE", "running", "Alarm", "Setup", "Running", "Power Off")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def build_gateway_file(path: Path, start: datetime = START_LOCAL, hours: int = HOURS) -> Path:
    """A gateway file with `hours` of every table for MACHINES and the coded machine, plus
    rows that cannot load (unknown machine, unreadable timestamp, unmapped parameter)."""
    db = sqlite3.connect(path)
    db.executescript(TEMPLATE_DDL)
    iotids = [str(machine) for machine in MACHINES] + [CODED_MACHINE[0]]
    minutes = hours * 60
    for number, iotid in enumerate(iotids):
        for minute in range(0, minutes, 10):
            moment = stamp(start + timedelta(minutes=minute, seconds=number))
            status = STATUS_CYCLE[(minute // 10 + number) % len(STATUS_CYCLE)]
            db.execute("insert into MachineRunningStatus_MVP values (?, ?, ?, ?, ?, ?, 0)",
                       (iotid, f"O{1000 + number}", status, f"OP{number}", 40, moment))
        for minute in range(4, minutes, 4):
            cycle_end = start + timedelta(minutes=minute, seconds=number)
            db.execute(
                "insert into MachineWiseCycleDetails_MVP values (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (iotid, stamp(cycle_end - timedelta(seconds=200)), stamp(cycle_end),
                 f"O{1000 + number}", 30.0, 120.0, 200.0, stamp(cycle_end)))
        for minute in range(0, minutes, 15):
            moment = stamp(start + timedelta(minutes=minute))
            db.execute("insert into MachineWiseEnergyDetails_MVP values (?, ?, ?, ?, ?, ?, 0)",
                       (iotid, "CONSP", 0.5 * minute, 0.7 * minute, 1.5 * minute, moment))
        for minute in range(0, minutes, 5):
            moment = stamp(start + timedelta(minutes=minute))
            for parameter, value in (("SpindleSpeed", "8000"), ("Spindle Load", "42.5"),
                                     ("CoolantTemp", "24.1"), ("HydraulicPressure", "61")):
                db.execute("insert into MachineWiseParameterDetails_MVP "
                           "(IOTID, ParameterID, ParameterValue, UpdatedTS) values (?, ?, ?, ?)",
                           (iotid, parameter, value, moment))
        for minute in range(30, minutes, 60):
            moment = stamp(start + timedelta(minutes=minute))
            db.execute("insert into MachineWiseAlarmDetails_MVP values (?, ?, ?, ?, ?, 0)",
                       (iotid, "SV0401", "SERVO V-READY OFF", moment, moment))
    # Rows with no Bronze home at all: reported, never loaded, never lost.
    db.execute("insert into MachineRunningStatus_MVP values "
               "('NO-SUCH-MACHINE', 'O1', 'Running', 'OP9', 1, ?, 0)", (stamp(start),))
    db.execute("insert into MachineWiseAlarmDetails_MVP values "
               "('8001', 'EX1001', 'DOOR OPEN', 'yesterday-ish', 'not a time', 0)")
    db.commit()
    db.close()
    return path


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str


@pytest.fixture(scope="module")
def db(cluster, dbt_run, tmp_path_factory) -> Iterator[str]:
    """A database of this module's own with the Bronze DDL and the module's machines."""
    scratch = tmp_path_factory.mktemp("dbt")
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse", "--target-path",
                        str(scratch / "target"), "--log-path", str(scratch / "logs")]) == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into master.sites values (%s, 'EDGE', %s) "
                         "on conflict (site_id) do nothing", (SITE_ID, GATEWAY_ZONE))
            for machine in MACHINES:
                conn.execute("insert into master.machines values (%s, %s, %s) on conflict "
                             "(machine_id) do nothing", (machine, f"M-{machine}", SITE_ID))
            conn.execute("insert into master.machines values (%s, %s, %s) on conflict "
                         "(machine_id) do nothing", (CODED_MACHINE[1], CODED_MACHINE[0], SITE_ID))
        yield url


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("set time zone 'UTC'")
        yield connection


def sync(path: Path, gateway: str, *extra: str, numeric_iotids: bool = True) -> Outcome:
    flag = ["--iotid-is-machine-id"] if numeric_iotids else []
    result = CliRunner().invoke(
        sync_edge, [str(path), "--gateway", gateway, "--timezone", GATEWAY_ZONE, *flag,
                    *extra],
        env={"SETU_PG_DATABASE": DATABASE}, catch_exceptions=False)
    return Outcome(result.exit_code, result.output)


def edge_keys(path: Path) -> dict[str, set[tuple[int, str]]]:
    with sqlite3.connect(path) as db:
        return {table: set(db.execute(f"select rowid, coalesce(UpdatedTS, '') from {table}"))
                for table in TABLES}


def unsynced(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return sum(db.execute(f"select count(*) from {table} where SyncedStatus <> 1"
                              ).fetchone()[0] for table in TABLES)


def ledger_keys(conn: psycopg.Connection, gateway: str) -> dict[str, list[tuple[int, str]]]:
    keys: dict[str, list[tuple[int, str]]] = {table: [] for table in TABLES}
    for table, rowid, version in conn.execute(
            "select source_table, source_rowid, source_updated_ts from _ingest.edge_sync_ledger "
            "where gateway_id = %s", (gateway,)):
        # The version is UpdatedTS, then a digest of the row's content.
        keys[table].append((rowid, version.rsplit("|", 1)[0]))
    return keys


def local_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(GATEWAY_ZONE)).astimezone(UTC)


def expected_bronze(path: Path) -> dict[str, Counter]:
    """What Bronze must hold for the file, worked out from the SQLite rows with the
    documented mapping (docs/connectors/sqlite-sync.md), as multisets per table."""
    machine_of = {str(m): m for m in MACHINES} | {CODED_MACHINE[0]: CODED_MACHINE[1]}
    states = {"RUNNING": "RUNNING", "IDLE": "IDLE", "ALARM": "ALARM", "SETUP": "SETUP",
              "POWEROFF": "OFF"}
    columns = {"SpindleSpeed": "spindle_speed_rpm", "Spindle Load": "spindle_load_pct",
               "CoolantTemp": "coolant_temp_c"}
    expected: dict[str, Counter] = {name: Counter() for name in
                                    ("machine_state_events", "machine_cycles", "alarms",
                                     "machine_telemetry")}
    with sqlite3.connect(path) as db:
        for iotid, program, status, ts in db.execute(
                "select IOTID, RunningProgramNo, Status, UpdatedTS "
                "from MachineRunningStatus_MVP"):
            if iotid in machine_of:
                expected["machine_state_events"][(
                    machine_of[iotid], local_utc(ts),
                    states[status.upper().replace(" ", "")], program)] += 1
        for iotid, start, end, program, load_unload, threshold, std in db.execute(
                "select IOTID, CycleStart, CycleEnd, ProgramNo, StdLoadUnload, DownThreshold, "
                "StdCycleTime from MachineWiseCycleDetails_MVP order by rowid"):
            expected["machine_cycles"][(machine_of[iotid], local_utc(end), local_utc(start),
                                        program, "GOOD", std, load_unload, threshold)] += 1
        for iotid, code, text, ts in db.execute(
                "select IOTID, AlarmNo, AlarmDesc, AlarmTS from MachineWiseAlarmDetails_MVP "
                "where AlarmTS like '2%'"):
            expected["alarms"][(machine_of[iotid], local_utc(ts), code, "error", text,
                                "RAISED")] += 1
        for iotid, total, ts in db.execute("select IOTID, TotalEnergy, UpdatedTS "
                                           "from MachineWiseEnergyDetails_MVP"):
            expected["machine_telemetry"][(machine_of[iotid], local_utc(ts), "energy_kwh",
                                           total)] += 1
        for iotid, parameter, value, ts in db.execute(
                "select IOTID, ParameterID, ParameterValue, UpdatedTS "
                "from MachineWiseParameterDetails_MVP"):
            if parameter in columns:
                expected["machine_telemetry"][(machine_of[iotid], local_utc(ts),
                                               columns[parameter], float(value))] += 1
    return expected


TELEMETRY_MEASURES = ("spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct",
                      "spindle_temp_c", "motor_temp_c", "coolant_temp_c", "power_kw",
                      "energy_kwh")


def actual_bronze(conn: psycopg.Connection, gateway: str) -> dict[str, Counter]:
    def rows(query: str) -> Counter:
        return Counter(conn.execute(query, (gateway,)).fetchall())

    telemetry = Counter()
    for row in conn.execute(f"select machine_id, time, {', '.join(TELEMETRY_MEASURES)} "
                            "from bronze.machine_telemetry where gateway_id = %s", (gateway,)):
        filled = [(name, value) for name, value in zip(TELEMETRY_MEASURES, row[2:], strict=True)
                  if value is not None]
        assert len(filled) == 1, f"one measure per edge row: {row}"
        telemetry[(row[0], row[1], *filled[0])] += 1
    return {
        "machine_state_events": rows("select machine_id, time, state, program_name "
                                     "from bronze.machine_state_events where gateway_id = %s"),
        "machine_cycles": rows(
            "select machine_id, time, cycle_start, program_name, result, std_cycle_seconds, "
            "std_load_unload_seconds, down_threshold_seconds from bronze.machine_cycles "
            "where gateway_id = %s"),
        "alarms": rows("select machine_id, time, alarm_code, severity, message, event "
                       "from bronze.alarms where gateway_id = %s"),
        "machine_telemetry": telemetry,
    }


def reconcile(conn: psycopg.Connection, path: Path, gateway: str) -> None:
    """Every edge row: one ledger row; ledger rows to Bronze: one Bronze row each; the rest:
    records in _ingest.edge_unmapped; Bronze holds exactly the mapped rows."""
    edge, ledger = edge_keys(path), ledger_keys(conn, gateway)
    for table in TABLES:
        assert Counter(ledger[table]) == Counter(edge[table]), table
    destinations = dict(conn.execute(
        "select destination, count(*) from _ingest.edge_sync_ledger where gateway_id = %s "
        "group by destination", (gateway,)).fetchall())
    actual = actual_bronze(conn, gateway)
    for table, rows in actual.items():
        assert rows.total() == destinations.get(f"bronze.{table}", 0), table
    assert actual == expected_bronze(path)
    orphans = conn.execute(
        "select count(*) from _ingest.edge_sync_ledger as ledger where gateway_id = %s "
        "and destination = '_ingest.edge_unmapped' and not exists (select from "
        "_ingest.edge_unmapped as unmapped where unmapped.gateway_id = ledger.gateway_id "
        "and unmapped.source_table = ledger.source_table "
        "and unmapped.source_rowid = ledger.source_rowid "
        "and unmapped.source_updated_ts = ledger.source_updated_ts)", (gateway,)).fetchone()[0]
    assert orphans == 0
    assert unsynced(path) == 0


def part_counts(conn: psycopg.Connection, gateway: str) -> dict[int, list[int]]:
    counts: dict[int, list[int]] = {}
    for machine, count in conn.execute(
            "select machine_id, part_count from bronze.machine_cycles where gateway_id = %s "
            "order by machine_id, time", (gateway,)):
        counts.setdefault(machine, []).append(count)
    return counts


# -- tests ----------------------------------------------------------------------------------

def test_sync_maps_every_row_and_reports_what_has_no_bronze_home(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    path = build_gateway_file(tmp_path / "gw-a.db")
    outcome = sync(path, "gw-a")
    assert outcome.exit_code == 0, outcome.output
    edge = edge_keys(path)
    assert f"{sum(map(len, edge.values())):,} new row(s)" in outcome.output
    per_machine_status = HOURS * 6
    assert f"loaded into bronze.machine_state_events: {4 * per_machine_status:,}" \
        in outcome.output
    # OperatorID and Target of every loaded status row; the energy split and category.
    assert f"MachineRunningStatus_MVP.OperatorID: {4 * per_machine_status:,} " \
        "(no_bronze_column)" in outcome.output
    assert "MachineWiseEnergyDetails_MVP.ServoEnergy" in outcome.output
    assert "ParameterID=HydraulicPressure: " in outcome.output
    assert "MachineRunningStatus_MVP: 1 (unknown_machine)" in outcome.output
    assert "MachineWiseAlarmDetails_MVP: 1 (bad_time)" in outcome.output
    reconcile(conn, path, "gw-a")

    unmapped = dict(conn.execute(
        "select source_column, count(*) from _ingest.edge_unmapped where gateway_id = 'gw-a' "
        "and source_table = 'MachineRunningStatus_MVP' and reason = 'no_bronze_column' "
        "group by source_column").fetchall())
    assert unmapped == {"OperatorID": 4 * per_machine_status, "Target": 4 * per_machine_status}
    # The surrogate key of the parameter table is bookkeeping, not an unmapped value.
    assert conn.execute("select count(*) from _ingest.edge_unmapped where gateway_id = 'gw-a' "
                        "and source_column = 'ID'").fetchone()[0] == 0
    pressure = conn.execute(
        "select count(*), min(value), min(machine_id) from _ingest.edge_unmapped "
        "where gateway_id = 'gw-a' and reason = 'unmapped_parameter' "
        "and source_column = 'ParameterValue' and item = 'HydraulicPressure'").fetchone()
    assert pressure == (4 * HOURS * 12, "61", MACHINES[0])
    # One part per cycle, counted per machine from 1.
    cycles_per_machine = len(range(4, HOURS * 60, 4))
    assert part_counts(conn, "gw-a") == {
        machine: list(range(1, cycles_per_machine + 1))
        for machine in (*MACHINES, CODED_MACHINE[1])}

    again = sync(path, "gw-a")
    assert again.exit_code == 0 and "0 new row(s)" in again.output
    reconcile(conn, path, "gw-a")


def test_kill_after_commit_before_sqlite_update_loads_nothing_twice(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    path = build_gateway_file(tmp_path / "gw-kill.db")
    env = {**os.environ, "SETU_PG_DATABASE": DATABASE, PAUSE_AFTER_COMMIT_ENV: "60"}
    # Small batches: the kill lands in the middle of the first table.
    process = subprocess.Popen(
        [str(SETU), "sync-edge", str(path), "--gateway", "gw-kill", "--timezone", GATEWAY_ZONE,
         "--batch-rows", "25", "--iotid-is-machine-id"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if PAUSE_MARKER in line:
                break
        else:
            pytest.fail(f"sync-edge ended before its first commit: {process.wait()}")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    # The first batch is in PostgreSQL, yet SQLite still says nothing is synced.
    committed = sum(map(len, ledger_keys(conn, "gw-kill").values()))
    assert committed == 25
    assert conn.execute("select count(*) from bronze.machine_state_events "
                        "where gateway_id = 'gw-kill'").fetchone()[0] == 25
    total = sum(map(len, edge_keys(path).values()))
    assert unsynced(path) == total

    # Meanwhile the gateway logs more and rewrites a synced-looking row in place.
    with sqlite3.connect(path) as db:
        db.execute("insert into MachineWiseCycleDetails_MVP values ('8001', "
                   "'2026-01-05 09:10:00', '2026-01-05 09:13:20', 'O1000', 30, 120, 200, "
                   "'2026-01-05 09:13:20', 0)")
        db.execute("update MachineRunningStatus_MVP set Status = 'Setup', "
                   "UpdatedTS = '2026-01-05 09:20:00' where rowid = 1")

    outcome = sync(path, "gw-kill", "--batch-rows", "25")
    assert outcome.exit_code == 0, outcome.output
    # Rowid 1's first version was in the crashed batch; its rewrite is a new row.
    assert "already loaded (replayed rows), marked synced now: 24" in outcome.output
    assert f"{total - 24 + 1:,} new row(s)" in outcome.output
    ledger = ledger_keys(conn, "gw-kill")
    assert (1, "2026-01-05 06:00:00") in ledger["MachineRunningStatus_MVP"]
    assert (1, "2026-01-05 09:20:00") in ledger["MachineRunningStatus_MVP"]
    # The first version of rowid 1 stays in Bronze: reconcile against it as well.
    original_first = (8001, local_utc("2026-01-05 06:00:00"), "RUNNING", "O1000")
    actual = actual_bronze(conn, "gw-kill")["machine_state_events"]
    assert actual[original_first] == 1
    assert unsynced(path) == 0

    # Part counters run on across the crash: no gap, no repeat.
    cycles_per_machine = len(range(4, HOURS * 60, 4))
    assert part_counts(conn, "gw-kill")[8001] == list(range(1, cycles_per_machine + 2))


def test_kill_in_the_cycles_reconciles_row_for_row(conn: psycopg.Connection, tmp_path: Path
                                                   ) -> None:
    path = build_gateway_file(tmp_path / "gw-crash2.db", hours=1)
    # The second commit is the first batch of cycles (25 status rows make one batch): the
    # kill lands in the cycles, whose part counters must carry on from the committed ones.
    env = {**os.environ, "SETU_PG_DATABASE": DATABASE, PAUSE_AFTER_COMMIT_ENV: "60@2"}
    process = subprocess.Popen(
        [str(SETU), "sync-edge", str(path), "--gateway", "gw-crash2", "--timezone",
         GATEWAY_ZONE, "--batch-rows", "40", "--iotid-is-machine-id"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if PAUSE_MARKER in line:
                break
        else:
            pytest.fail(f"sync-edge ended before its second commit: {process.wait()}")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert conn.execute("select count(*) from bronze.machine_cycles "
                        "where gateway_id = 'gw-crash2'").fetchone()[0] == 40
    assert unsynced(path) == sum(map(len, edge_keys(path).values())) - 25
    resumed = sync(path, "gw-crash2", "--batch-rows", "40")
    assert resumed.exit_code == 0, resumed.output
    assert "already loaded (replayed rows), marked synced now: 40" in resumed.output
    reconcile(conn, path, "gw-crash2")
    cycles_per_machine = len(range(4, 60, 4))
    assert all(counts == list(range(1, cycles_per_machine + 1))
               for counts in part_counts(conn, "gw-crash2").values())


EPOCH_SECONDS = 1_767_700_000.5  # 2026-01-06 11:46:40.5 UTC, stored as a REAL


def test_unknown_status_loads_as_sent_and_status_option_maps_codes(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "gw-codes.db"
    db = sqlite3.connect(path)
    db.executescript(TEMPLATE_DDL)
    db.executemany("insert into MachineRunningStatus_MVP values ('8002', 'O7', ?, null, null, "
                   "?, 0)", [("1", "2026-01-06 08:00:00"), ("Warming", "2026-01-06 08:05:00"),
                             ("idle", EPOCH_SECONDS)])
    db.commit()
    db.close()
    outcome = sync(path, "gw-codes", "--status", "1=RUNNING")
    assert outcome.exit_code == 0, outcome.output
    assert not [line for line in outcome.output.splitlines()
                if "not in the file" in line and "MachineRunningStatus_MVP" in line]
    states = conn.execute("select time, state from bronze.machine_state_events "
                          "where gateway_id = 'gw-codes' order by time").fetchall()
    # Unknown spellings reach Bronze as sent: Silver quarantines them as invalid_code. A
    # numeric UpdatedTS is Unix seconds (UTC whatever the gateway's zone).
    assert states == [(local_utc("2026-01-06 08:00:00"), "RUNNING"),
                      (local_utc("2026-01-06 08:05:00"), "Warming"),
                      (datetime.fromtimestamp(EPOCH_SECONDS, UTC), "IDLE")]
    assert unsynced(path) == 0
    bad = sync(path, "gw-codes", "--status", "1=SPINNING")
    assert bad.exit_code == 2 and "--status" in bad.output


# -- issue 13: the template's meaning, on small files a machine code names (no flag) --------

NINE_TABLE_DDL = """
create table MachineWiseCycleDetails_MVP (IOTID text, CycleStart text, CycleEnd text,
    ProgramNo text, StdLoadUnload integer, DownThreshold integer, StdCycleTime integer,
    UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseAlarmDetails_MVP (IOTID text, AlarmNo integer, AlarmDesc text,
    AlarmTS text, UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseFocasDetails_MVP (IOTID text, Date text, ShiftID text,
    PartCount integer, RejCount integer, POT integer, OT integer, CT integer, OperatorID text,
    UpdatedTS text, SyncedStatus integer default 0);
create table MachineWiseEnergyDetails_MVP (IOTID text, Category text, ServoEnergy real,
    SpindleEnergy real, CO2 real, TotalEnergy real, UpdatedTS text,
    SyncedStatus integer default 0);
create table MachineRunningStatus_MVP (IOTID text, RunningProgramNo text, Status text,
    OperatorID text, Target integer, UpdatedTS text, SyncedStatus integer default 0);
"""


def small_file(path: Path, script: str = "") -> Path:
    db = sqlite3.connect(path)
    db.executescript(NINE_TABLE_DDL + script)
    db.commit()
    db.close()
    return path


def test_energy_is_the_consumed_meter_only(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = small_file(tmp_path / "gw-energy.db", """
        insert into MachineWiseEnergyDetails_MVP values
            ('VMC-8004', 'CONSP', 0.4, 0.9, 1.1, 1.34, '2026-01-07 10:00:00', 0),
            ('VMC-8004', 'REGEN', -0.1, -0.2, 0, -0.31, '2026-01-07 10:00:00', 0),
            ('VMC-8004', 'NET', 0.3, 0.7, 0.9, 1.03, '2026-01-07 10:00:00', 0);
    """)
    outcome = sync(path, "gw-energy", numeric_iotids=False)
    assert outcome.exit_code == 0, outcome.output
    assert conn.execute("select energy_kwh from bronze.machine_telemetry "
                        "where gateway_id = 'gw-energy'").fetchall() == [(1.34,)]
    assert "Category=NET: 1 (not_consumed_energy)" in outcome.output
    assert "Category=REGEN: 1 (not_consumed_energy)" in outcome.output


def test_interrupted_cycle_is_one_cycle_and_rejects_mark_scrap(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    conn.execute("insert into master.shifts values (%s, 1, 'A', '06:00', '18:00'), "
                 "(%s, 2, 'B', '18:00', '06:00') on conflict do nothing", (SITE_ID, SITE_ID))
    # Three parts: the second cut by alarm 300 at 10:05:10 and finished after the reset; the
    # operator books one reject (RejCount 1) after the first part.
    path = small_file(tmp_path / "gw-parts.db", """
        insert into MachineWiseCycleDetails_MVP values
            ('VMC-8004', '2026-01-07 10:00:00', '2026-01-07 10:03:20', 'O7', 30, 120, 200,
             '2026-01-07 10:03:20', 0),
            ('VMC-8004', '2026-01-07 10:03:50', '2026-01-07 10:05:10', 'O7', 30, 120, 200,
             '2026-01-07 10:05:10', 0),
            ('VMC-8004', '2026-01-07 10:08:00', '2026-01-07 10:10:00', 'O7', 30, 120, 200,
             '2026-01-07 10:10:00', 0),
            ('VMC-8004', '2026-01-07 10:10:30', '2026-01-07 10:13:50', 'O7', 30, 120, 200,
             '2026-01-07 10:13:50', 0);
        insert into MachineWiseAlarmDetails_MVP values
            ('VMC-8004', 300, 'Tool breakage detected', '2026-01-07 10:05:10',
             '2026-01-07 10:05:10', 0);
        insert into MachineWiseFocasDetails_MVP values
            ('VMC-8004', '2026-01-07', '1', 3, 1, 900, 800, 600, 'OP1', '2026-01-07 10:13:50', 0);
    """)
    # the same file as two gateways: in one transaction, and one row per transaction (the
    # held first part and the counters carried from batch to batch through PostgreSQL)
    for gateway, extra in (("gw-parts", ()), ("gw-parts-1", ("--batch-rows", "1"))):
        outcome = sync(path, gateway, *extra, numeric_iotids=False)
        assert outcome.exit_code == 0, outcome.output
        cycles = conn.execute("select cycle_start, time, result from bronze.machine_cycles "
                              "where gateway_id = %s order by time", (gateway,)).fetchall()
        assert [(start, end) for start, end, _ in cycles] == [
            (local_utc("2026-01-07 10:00:00"), local_utc("2026-01-07 10:03:20")),
            (local_utc("2026-01-07 10:03:50"), local_utc("2026-01-07 10:10:00")),
            (local_utc("2026-01-07 10:10:30"), local_utc("2026-01-07 10:13:50"))], gateway
        assert Counter(result for _, _, result in cycles) == Counter(GOOD=2, SCRAP=1)
        with sqlite3.connect(path) as db:
            for table in ("MachineWiseCycleDetails_MVP", "MachineWiseAlarmDetails_MVP",
                          "MachineWiseFocasDetails_MVP"):
                db.execute(f"update {table} set SyncedStatus = 0")


def test_status_rewritten_in_the_same_second_is_a_new_event(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    path = small_file(tmp_path / "gw-rewrite.db", """
        insert into MachineRunningStatus_MVP values
            ('VMC-8004', 'O7', 'Idle', 'OP1', 1, '2026-01-07 11:00:00', 0);
    """)
    assert sync(path, "gw-rewrite", numeric_iotids=False).exit_code == 0
    with sqlite3.connect(path) as db:
        db.execute("update MachineRunningStatus_MVP set Status = 'Running', SyncedStatus = 0")
    outcome = sync(path, "gw-rewrite", numeric_iotids=False)
    assert "1 new row(s)" in outcome.output, outcome.output
    assert conn.execute("select state from bronze.machine_state_events "
                        "where gateway_id = 'gw-rewrite' order by id").fetchall() == \
        [("IDLE",), ("RUNNING",)]
    # the same content again (flags reset) is a replay, not an event
    with sqlite3.connect(path) as db:
        db.execute("update MachineRunningStatus_MVP set SyncedStatus = 0")
    assert "0 new row(s)" in sync(path, "gw-rewrite", numeric_iotids=False).output


def test_stopped_is_a_stoppage_not_idle(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = small_file(tmp_path / "gw-stopped.db", """
        insert into MachineRunningStatus_MVP values
            ('VMC-8004', 'O7', 'Stopped', 'OP1', 1, '2026-01-07 12:00:00', 0);
    """)
    assert sync(path, "gw-stopped", numeric_iotids=False).exit_code == 0
    assert conn.execute("select state from bronze.machine_state_events "
                        "where gateway_id = 'gw-stopped'").fetchall() == [("MAINTENANCE",)]


def test_interrupted_cycle_that_never_resumes_made_no_part(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    path = small_file(tmp_path / "gw-abandon.db", """
        insert into MachineWiseCycleDetails_MVP values
            ('VMC-8004', '2026-01-08 10:00:00', '2026-01-08 10:01:40', 'O7', 30, 120, 200,
             '2026-01-08 10:01:40', 0);
        insert into MachineWiseAlarmDetails_MVP values
            ('VMC-8004', 101, 'Servo alarm - X axis', '2026-01-08 10:01:42',
             '2026-01-08 10:01:42', 0);
    """)
    first = sync(path, "gw-abandon", numeric_iotids=False)
    assert "0 never resumed (no part); 1 waiting for their end" in first.output, first.output
    assert conn.execute("select count(*) from bronze.machine_cycles "
                        "where gateway_id = 'gw-abandon'").fetchone()[0] == 0
    # the operator aborts O7 and runs O8: the held cycle made no part
    with sqlite3.connect(path) as db:
        db.execute("insert into MachineWiseCycleDetails_MVP values ('VMC-8004', "
                   "'2026-01-08 10:20:00', '2026-01-08 10:23:00', 'O8', 30, 120, 180, "
                   "'2026-01-08 10:23:00', 0)")
    second = sync(path, "gw-abandon", numeric_iotids=False)
    assert "1 never resumed (no part); 0 waiting for their end" in second.output, second.output
    assert conn.execute("select cycle_start, program_name from bronze.machine_cycles "
                        "where gateway_id = 'gw-abandon'").fetchall() == [
        (local_utc("2026-01-08 10:20:00"), "O8")]
    assert conn.execute("select source_rowid, value from _ingest.edge_unmapped "
                        "where gateway_id = 'gw-abandon' "
                        "and reason = 'interrupted_cycle_not_resumed'").fetchall() == [(1, "O7")]


# -- issue 16: a poison row is set aside with its reason; the rows behind it load ------------

def poison_file(path: Path) -> Path:
    """Good status rows around rows PostgreSQL would refuse: an IOTID beyond bigint, a NUL in
    Status, a Status that is not UTF-8 (what a gateway with a broken codec writes)."""
    db = sqlite3.connect(path)
    db.executescript(TEMPLATE_DDL)
    rows = [
        ("8001", "Running", "2026-01-09 08:00:00"),
        ("99999999999999999999", "Running", "2026-01-09 08:01:00"),
        ("8002", "Run\x00ning", "2026-01-09 08:02:00"),
        ("8003", None, "2026-01-09 08:03:00"),  # Status written as bytes below
        ("8001", "Idle", "2026-01-09 08:04:00"),
    ]
    for iotid, status, moment in rows:
        db.execute("insert into MachineRunningStatus_MVP values (?, 'O1', ?, null, null, ?, 0)",
                   (iotid, status, moment))
    db.execute("update MachineRunningStatus_MVP set Status = cast(x'52756e6e696e67ff' as text) "
               "where IOTID = '8003'")
    db.commit()
    db.close()
    return path


def test_poison_rows_are_set_aside_and_the_rest_loads(conn: psycopg.Connection,
                                                      tmp_path: Path) -> None:
    path = poison_file(tmp_path / "gw-poison.db")
    outcome = sync(path, "gw-poison")
    assert outcome.exit_code == 0, outcome.output
    assert conn.execute("select machine_id, state from bronze.machine_state_events "
                        "where gateway_id = 'gw-poison' order by time").fetchall() == [
        (8001, "RUNNING"), (8001, "IDLE")]
    reasons = dict(conn.execute(
        "select source_rowid, string_agg(distinct reason, ',') from _ingest.edge_unmapped "
        "where gateway_id = 'gw-poison' group by source_rowid").fetchall())
    assert reasons == {2: "out_of_range", 3: "nul_character", 4: "not_utf8"}
    # The offending values are kept, readable: the NUL and the bad byte spelled out.
    values = {value for (value,) in conn.execute(
        "select value from _ingest.edge_unmapped where gateway_id = 'gw-poison' "
        "and source_column = 'Status'")}
    assert {"Run\\x00ning", "Running\\xff"} <= values, values
    assert "MachineRunningStatus_MVP: 1 (nul_character)" in outcome.output
    # The watermark moved past them: every row is synced and a rerun has nothing to do.
    assert unsynced(path) == 0
    again = sync(path, "gw-poison")
    assert again.exit_code == 0 and "0 new row(s)" in again.output, again.output


def test_a_damaged_file_is_one_line(db: str, tmp_path: Path) -> None:
    path = build_gateway_file(tmp_path / "gw-damaged.db", hours=1)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page:] = b"\xa5" * (len(data) - 2 * page)  # every page but the schema's
    path.write_bytes(bytes(data))
    outcome = sync(path, "gw-damaged")
    assert outcome.exit_code == 2, outcome.output
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "gw-damaged.db" in lines[0] and "damaged" in lines[0], lines
    assert "Traceback" not in outcome.output


def test_without_rowid_tables_sync_by_their_integer_key(conn: psycopg.Connection,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "gw-norowid.db"
    db = sqlite3.connect(path)
    db.executescript("""
        create table MachineRunningStatus_MVP (ID integer primary key, IOTID text,
            RunningProgramNo text, Status text, OperatorID text, Target integer,
            UpdatedTS text, SyncedStatus integer default 0) without rowid;
        insert into MachineRunningStatus_MVP values
            (10, '8001', 'O1', 'Running', null, null, '2026-01-10 08:00:00', 0),
            (20, '8002', 'O1', 'Idle', null, null, '2026-01-10 08:01:00', 0);
    """)
    db.commit()
    db.close()
    outcome = sync(path, "gw-norowid")
    assert outcome.exit_code == 0, outcome.output
    assert conn.execute("select machine_id, state from bronze.machine_state_events "
                        "where gateway_id = 'gw-norowid' order by time").fetchall() == [
        (8001, "RUNNING"), (8002, "IDLE")]
    assert conn.execute("select source_rowid from _ingest.edge_sync_ledger where gateway_id = "
                        "'gw-norowid' order by 1").fetchall() == [(10,), (20,)]
    assert unsynced_rows(path, "MachineRunningStatus_MVP") == 0
    # A table keyed on anything but one integer cannot be synced row by row: one line.
    with sqlite3.connect(path) as db:
        db.executescript("""
            create table MachineWiseAlarmDetails_MVP (IOTID text, AlarmNo text, AlarmDesc text,
                AlarmTS text, UpdatedTS text, SyncedStatus integer default 0,
                primary key (IOTID, AlarmTS)) without rowid;
            insert into MachineWiseAlarmDetails_MVP values ('8001', 'A1', 'door',
                '2026-01-10 08:02:00', '2026-01-10 08:02:00', 0);
        """)
    outcome = sync(path, "gw-norowid")
    assert outcome.exit_code == 2, outcome.output
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "MachineWiseAlarmDetails_MVP" in lines[0], lines
    assert "WITHOUT ROWID" in lines[0]


def unsynced_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"select count(*) from {table} where SyncedStatus <> 1").fetchone()[0]


def test_a_row_the_database_refuses_is_set_aside_alone(
        conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the checks do not foresee: PostgreSQL refusing one row of a batch. The batch is
    written again row by row; the refused row is recorded with the database's reason."""
    from setu.ingest.connectors import edge_sync

    real_copy_rows = edge_sync.copy_rows

    def refuse_idle(conn, table, columns, values):
        if any("IDLE" in row for row in values):
            raise psycopg.errors.InvalidTextRepresentation("refused for the test")
        return real_copy_rows(conn, table, columns, values)

    monkeypatch.setattr(edge_sync, "copy_rows", refuse_idle)
    path = tmp_path / "gw-refused.db"
    db = sqlite3.connect(path)
    db.executescript(TEMPLATE_DDL)
    db.executemany("insert into MachineRunningStatus_MVP values ('8001', 'O1', ?, null, null, "
                   "?, 0)", [("Running", "2026-01-11 08:00:00"), ("Idle", "2026-01-11 08:01:00"),
                             ("Running", "2026-01-11 08:02:00")])
    db.commit()
    db.close()
    outcome = sync(path, "gw-refused")
    assert outcome.exit_code == 0, outcome.output
    assert "MachineRunningStatus_MVP: 1 (refused_by_database)" in outcome.output
    assert conn.execute("select count(*) from bronze.machine_state_events "
                        "where gateway_id = 'gw-refused'").fetchone()[0] == 2
    assert conn.execute("select source_rowid, value from _ingest.edge_unmapped "
                        "where gateway_id = 'gw-refused'").fetchall() == [
        (2, "refused for the test")]
    assert unsynced_rows(path, "MachineRunningStatus_MVP") == 0


@pytest.mark.parametrize("text", ["0001-01-01 00:30:00", "9999-12-31 23:00:00",
                                  "0001-01-01T00:00:00-05:00", "253402300799000"])
def test_a_time_at_the_ends_of_the_calendar_is_bad_time(text: str) -> None:
    # a zone conversion of these overflowed and stopped the sync (found by the fuzz test)
    with pytest.raises(BadValue, match="bad_time"):
        parse_time(text, ZoneInfo(GATEWAY_ZONE))
