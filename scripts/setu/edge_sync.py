"""`setu sync-edge`: load a shop-floor gateway's SQLite file (the SETU edge template) into Bronze.

The gateway logs into five tables, each with `UpdatedTS` and `SyncedStatus` columns; a row
with SyncedStatus other than 1 is not synced yet. Each such row becomes exactly one Bronze row
or, when it has no Bronze home at all, records in `_ingest.edge_unmapped`; values of a loaded
row that Bronze has no column for are recorded there too, never dropped. docs/connectors/
sqlite-sync.md has the mapping tables.

Exactly once across crashes: each batch's Bronze rows, its `_ingest.edge_sync_ledger` rows and
its part counters commit in one PostgreSQL transaction; SyncedStatus is set in SQLite only
afterwards. A sync killed between the two finds its rows in the ledger the next time, marks
them synced and loads nothing twice.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import psycopg
from psycopg import sql

from setu.ingest import copy_rows

LEDGER_TABLE = ("_ingest", "edge_sync_ledger")
UNMAPPED_TABLE = ("_ingest", "edge_unmapped")
COUNTERS_TABLE = ("_ingest", "edge_part_counters")
UNMAPPED_DESTINATION = "_ingest.edge_unmapped"
# Rows per PostgreSQL transaction (and SQLite update): bounded memory and lock time for a
# gateway that was offline for weeks, few enough round trips for a normal sync.
BATCH_ROWS = 20_000
# Test-only hook: "SECONDS" sleeps after every PostgreSQL commit, before the SQLite update,
# "SECONDS@N" after the N-th commit only, so a test can kill the sync exactly there
# (tests/python/test_edge_sync.py).
PAUSE_AFTER_COMMIT_ENV = "SETU_EDGE_SYNC_PAUSE_AFTER_COMMIT"
PAUSE_MARKER = "sync-edge: committed, pausing before the SQLite update"

# Bookkeeping columns of every template table: neither mapped nor reported.
BOOKKEEPING_COLUMNS = frozenset({"syncedstatus"})

CONTRACT_STATES = ("OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE")
# Status spellings seen on gateways -> contract state, matched after removing case, spaces,
# '_' and '-'. Anything else is loaded as sent, so Silver quarantines it as invalid_code and
# the value stays visible (--status adds spellings such as numeric codes).
STATUS_SYNONYMS = {
    **{state: state for state in CONTRACT_STATES},
    "RUN": "RUNNING", "ACTIVE": "RUNNING", "CYCLE": "RUNNING", "INCYCLE": "RUNNING",
    "CYCLESTART": "RUNNING", "PRODUCTION": "RUNNING",
    "READY": "IDLE", "STOP": "IDLE", "STOPPED": "IDLE", "HOLD": "IDLE", "FEEDHOLD": "IDLE",
    "WAITING": "IDLE",
    "FAULT": "ALARM", "EMERGENCY": "ALARM", "EMG": "ALARM", "ESTOP": "ALARM",
    "POWEROFF": "OFF", "OFFLINE": "OFF", "DISCONNECTED": "OFF", "NOTCONNECTED": "OFF",
    "MANUAL": "SETUP", "SETTING": "SETUP",
    "PM": "MAINTENANCE", "SERVICE": "MAINTENANCE", "BREAKDOWN": "MAINTENANCE",
}
# ParameterID -> Bronze telemetry column, matched the same way (--parameter adds more).
PARAMETER_COLUMNS = {
    "SPINDLESPEED": "spindle_speed_rpm", "SPINDLERPM": "spindle_speed_rpm",
    "S1SPEED": "spindle_speed_rpm", "SPEED": "spindle_speed_rpm", "RPM": "spindle_speed_rpm",
    "FEEDRATE": "feed_rate_mm_min", "FEED": "feed_rate_mm_min",
    "SPINDLELOAD": "spindle_load_pct", "S1LOAD": "spindle_load_pct", "LOAD": "spindle_load_pct",
    "SPINDLETEMP": "spindle_temp_c", "SPINDLETEMPERATURE": "spindle_temp_c",
    "MOTORTEMP": "motor_temp_c", "MOTORTEMPERATURE": "motor_temp_c",
    "SERVOTEMP": "motor_temp_c",
    "COOLANTTEMP": "coolant_temp_c", "COOLANTTEMPERATURE": "coolant_temp_c",
    "POWER": "power_kw", "POWERKW": "power_kw", "ACTIVEPOWER": "power_kw",
    "ENERGY": "energy_kwh", "ENERGYKWH": "energy_kwh", "TOTALENERGY": "energy_kwh",
}
TELEMETRY_COLUMNS = (
    "spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct", "spindle_temp_c",
    "motor_temp_c", "coolant_temp_c", "power_kw", "energy_kwh",
)
DEFAULT_ALARM_SEVERITY = "error"


class EdgeSyncError(RuntimeError):
    """A gateway file that cannot be synced, phrased as what to fix."""


def normalized_key(value: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(value)).upper()


# -- values ---------------------------------------------------------------------------------

class BadValue(ValueError):
    """A value that cannot become the Bronze column it maps to; `reason` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_time(value: object, zone: tzinfo) -> datetime:
    """A gateway timestamp: ISO 8601 text (naive text is in the gateway's zone) or Unix
    seconds (milliseconds when too large to be seconds)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadValue("bad_time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadValue("bad_time") from None
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return parse_time(float(text), zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("bad_time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def parse_number(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadValue("not_a_number") from None
    if not math.isfinite(number):
        raise BadValue("not_a_number")
    return number


def as_text(value: object) -> str | None:
    """SQLite values as Bronze text: a program number stored as 1001.0 reads 1001."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- mapping one gateway row ----------------------------------------------------------------

@dataclass(frozen=True)
class UnmappedValue:
    column: str  # the gateway column, as the gateway spells it
    reason: str
    value: str | None
    item: str | None = None  # the ParameterID of a parameter row


@dataclass
class MappedRow:
    """Where one gateway row went: one Bronze row, or (bronze_row None) only unmapped records."""

    rowid: int
    updated_ts: str
    machine_id: int | None
    time: datetime | None
    bronze_row: dict[str, Any] | None
    unmapped: list[UnmappedValue] = field(default_factory=list)


@dataclass
class MappingContext:
    gateway_id: str
    zone: tzinfo
    machine_ids_by_code: Mapping[str, int]
    statuses: Mapping[str, str]
    parameters: Mapping[str, str]
    alarm_severity: str
    part_counters: dict[int, int]  # machine_id -> last part count, advanced by cycle rows


class SourceRow:
    """A gateway row with case-insensitive column access that remembers what was used."""

    def __init__(self, names: Sequence[str], values: Sequence[object],
                 bookkeeping: frozenset[str] = BOOKKEEPING_COLUMNS) -> None:
        self.names = {name.lower(): name for name in names}
        self.values = {name.lower(): value for name, value in zip(names, values, strict=True)}
        self.bookkeeping = bookkeeping
        self.used: set[str] = set(bookkeeping)

    def get(self, column: str) -> object:
        key = column.lower()
        self.used.add(key)
        return self.values.get(key)

    def leftovers(self, reason: str, everything: bool = False) -> list[UnmappedValue]:
        """Non-empty values not used (or, with everything, all of them) as unmapped records."""
        return [
            UnmappedValue(self.names[key], reason, as_text(value))
            for key, value in self.values.items()
            if key not in self.bookkeeping and not is_empty(value)
            and (everything or key not in self.used)
        ]


class RowNotLoadable(Exception):
    def __init__(self, reason: str, item: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.item = item


def resolve_machine(source: SourceRow, context: MappingContext) -> int:
    """IOTID is the machine id; a non-numeric IOTID is looked up as master.machines'
    machine_code (gateways often label machines by name)."""
    value = source.get("IOTID")
    text = as_text(value)
    if text is None:
        raise RowNotLoadable("unknown_machine")
    if re.fullmatch(r"\d+(\.0*)?", text):  # 8001, or 8001.0 from a REAL column
        return int(text.split(".")[0])
    if text in context.machine_ids_by_code:
        return context.machine_ids_by_code[text]
    raise RowNotLoadable("unknown_machine")


def row_time(source: SourceRow, column: str, context: MappingContext,
             fallback: str | None = None) -> datetime:
    value = source.get(column)
    if is_empty(value) and fallback:
        value = source.get(fallback)
    try:
        return parse_time(value, context.zone)
    except BadValue as exc:
        raise RowNotLoadable(exc.reason) from None


def number_or_report(source: SourceRow, column: str, unmapped: list[UnmappedValue]
                     ) -> float | None:
    """A numeric column; a value that is no number goes to Bronze as null and is reported."""
    value = source.get(column)
    try:
        return parse_number(value)
    except BadValue as exc:
        unmapped.append(UnmappedValue(source.names.get(column.lower(), column), exc.reason,
                                      as_text(value)))
        return None


def map_running_status(source: SourceRow, context: MappingContext,
                       unmapped: list[UnmappedValue]) -> dict[str, Any]:
    status = as_text(source.get("Status"))
    state = None
    if status is not None:
        key = normalized_key(status)
        state = context.statuses.get(key) or STATUS_SYNONYMS.get(key) or status
    return {"state": state, "program_name": as_text(source.get("RunningProgramNo"))}


def map_cycle(source: SourceRow, context: MappingContext, unmapped: list[UnmappedValue]
              ) -> dict[str, Any]:
    start_value = source.get("CycleStart")
    try:
        cycle_start = parse_time(start_value, context.zone)
    except BadValue as exc:
        cycle_start = None  # Silver quarantines it as missing_value; the text is reported
        if not is_empty(start_value):
            unmapped.append(UnmappedValue(source.names.get("cyclestart", "CycleStart"),
                                          exc.reason, as_text(start_value)))
    return {
        "cycle_start": cycle_start,
        "program_name": as_text(source.get("ProgramNo")),
        "result": "GOOD",  # the template records no reject flag
        "std_cycle_seconds": number_or_report(source, "StdCycleTime", unmapped),
        "std_load_unload_seconds": number_or_report(source, "StdLoadUnload", unmapped),
        "down_threshold_seconds": number_or_report(source, "DownThreshold", unmapped),
    }


def map_alarm(source: SourceRow, context: MappingContext, unmapped: list[UnmappedValue]
              ) -> dict[str, Any]:
    return {
        "alarm_code": as_text(source.get("AlarmNo")),
        "message": as_text(source.get("AlarmDesc")),
        "severity": context.alarm_severity,
        "event": "RAISED",  # the template logs an alarm when it is raised, never its end
    }


def map_energy(source: SourceRow, context: MappingContext, unmapped: list[UnmappedValue]
               ) -> dict[str, Any]:
    return {"energy_kwh": number_or_report(source, "TotalEnergy", unmapped)}


def map_parameter(source: SourceRow, context: MappingContext, unmapped: list[UnmappedValue]
                  ) -> dict[str, Any]:
    parameter = as_text(source.get("ParameterID"))
    key = normalized_key(parameter) if parameter is not None else ""
    column = context.parameters.get(key) or PARAMETER_COLUMNS.get(key)
    if column is None:
        raise RowNotLoadable("unmapped_parameter", item=parameter)
    try:
        # A null value still loads: Silver quarantines it as missing_value, visibly.
        value = parse_number(source.get("ParameterValue"))
    except BadValue as exc:
        raise RowNotLoadable(exc.reason, item=parameter) from None
    return {column: value}


RowMapper = Callable[[SourceRow, MappingContext, list[UnmappedValue]], dict[str, Any]]


@dataclass(frozen=True)
class EdgeTable:
    name: str  # as the template spells it
    bronze_table: str
    time_column: str
    mapper: RowMapper
    time_fallback: str | None = None


EDGE_TABLES = (
    EdgeTable("MachineRunningStatus_MVP", "machine_state_events", "UpdatedTS",
              map_running_status),
    EdgeTable("MachineWiseCycleDetails_MVP", "machine_cycles", "CycleEnd", map_cycle),
    EdgeTable("MachineWiseAlarmDetails_MVP", "alarms", "AlarmTS", map_alarm,
              time_fallback="UpdatedTS"),
    EdgeTable("MachineWiseEnergyDetails_MVP", "machine_telemetry", "UpdatedTS", map_energy),
    EdgeTable("MachineWiseParameterDetails_MVP", "machine_telemetry", "UpdatedTS",
              map_parameter),
)
BRONZE_COLUMNS = {
    "machine_state_events": ("state", "program_name"),
    "machine_cycles": ("cycle_start", "program_name", "part_count", "result",
                       "std_cycle_seconds", "std_load_unload_seconds",
                       "down_threshold_seconds"),
    "alarms": ("alarm_code", "severity", "message", "event"),
    "machine_telemetry": TELEMETRY_COLUMNS,
}


def map_row(table: EdgeTable, source: SourceRow, key: tuple[int, str], context: MappingContext
            ) -> MappedRow:
    """key: (rowid, version), the row's ledger key."""
    rowid, updated_ts = key
    machine_id: int | None = None
    when: datetime | None = None
    try:
        machine_id = resolve_machine(source, context)
        when = row_time(source, table.time_column, context, table.time_fallback)
        unmapped: list[UnmappedValue] = []
        values = table.mapper(source, context, unmapped)
    except RowNotLoadable as exc:
        # Nothing of this row reaches Bronze: every value of it is recorded instead (with the
        # machine and time when those were readable, for the operator's queries).
        records = source.leftovers(exc.reason, everything=True)
        records = [UnmappedValue(record.column, record.reason, record.value, exc.item)
                   for record in records] or [UnmappedValue("*", exc.reason, None, exc.item)]
        return MappedRow(rowid, updated_ts, machine_id, when, None, records)
    if table.bronze_table == "machine_cycles":
        # The template has no controller counter: one part per cycle, counted per machine
        # (the counter survives syncs in _ingest.edge_part_counters).
        part_count = context.part_counters.get(machine_id, 0) + 1
        context.part_counters[machine_id] = part_count
        values["part_count"] = part_count
    # UpdatedTS is bookkeeping when another column gives the event time.
    source.used.add("updatedts")
    bronze_row = {"time": when, "gateway_id": context.gateway_id, "machine_id": machine_id,
                  **values}
    return MappedRow(rowid, updated_ts, machine_id, when, bronze_row,
                     unmapped + source.leftovers("no_bronze_column"))


# -- the sync -------------------------------------------------------------------------------

@dataclass
class SyncReport:
    gateway_id: str
    loaded: Counter = field(default_factory=Counter)  # bronze table -> rows
    not_loaded: Counter = field(default_factory=Counter)  # (source table, reason, item) -> rows
    # (source table, column, reason) -> values of loaded rows kept in _ingest.edge_unmapped
    unmapped_values: Counter = field(default_factory=Counter)
    already_loaded: int = 0  # rows an interrupted sync had loaded: marked synced now
    commits: int = 0
    marked_synced: int = 0
    absent_tables: list[str] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def new_rows(self) -> int:
        return sum(self.loaded.values()) + sum(self.not_loaded.values())


def open_gateway_file(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise EdgeSyncError(f"{path}: no such file")
    # The gateway keeps writing while we sync: wait for its locks rather than fail.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise EdgeSyncError(f"{path}: not a readable SQLite database: {exc}") from None
    return connection


def template_tables(gateway: sqlite3.Connection) -> dict[str, str]:
    """Lower-case name -> actual name of the tables in the gateway file."""
    names = gateway.execute("select name from sqlite_master where type = 'table'").fetchall()
    return {name.lower(): name for (name,) in names}


EXPECTED_COLUMNS = {
    "MachineRunningStatus_MVP": ("IOTID", "RunningProgramNo", "Status", "OperatorID", "Target"),
    "MachineWiseCycleDetails_MVP": ("IOTID", "CycleStart", "CycleEnd", "ProgramNo",
                                    "StdLoadUnload", "DownThreshold", "StdCycleTime"),
    "MachineWiseAlarmDetails_MVP": ("IOTID", "AlarmNo", "AlarmDesc", "AlarmTS"),
    "MachineWiseEnergyDetails_MVP": ("IOTID", "Category", "ServoEnergy", "SpindleEnergy",
                                     "TotalEnergy"),
    "MachineWiseParameterDetails_MVP": ("IOTID", "ParameterID", "ParameterValue"),
}
TEMPLATE_BOOKKEEPING = ("UpdatedTS", "SyncedStatus")


def table_columns(gateway: sqlite3.Connection, table_name: str) -> list[tuple[str, bool]]:
    """(name, is part of the primary key) of each column."""
    info = gateway.execute("select name, pk from pragma_table_info(?)", (table_name,)).fetchall()
    return [(name, bool(pk)) for name, pk in info]


def quote_sqlite(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def version_expression(column_names: Sequence[str]) -> str:
    """SQL for a row's version: its UpdatedTS as SQLite spells it as text ('' when absent).
    SQLite computes it for the read and the update alike, so the two always agree."""
    for name in column_names:
        if name.lower() == "updatedts":
            return f"coalesce(cast({quote_sqlite(name)} as text), '')"
    return "''"


def unsynced_batches(gateway: sqlite3.Connection, table_name: str, version_sql: str,
                     batch_rows: int) -> Iterator[tuple[list[str], list[tuple]]]:
    """(column names, rows as (rowid, version, *columns)) of the rows not synced yet."""
    last_rowid = -1
    while True:
        cursor = gateway.execute(
            f"select rowid, {version_sql}, * from {quote_sqlite(table_name)} "
            "where (SyncedStatus is null or SyncedStatus not in (1, '1')) and rowid > ? "
            "order by rowid limit ?",
            (last_rowid, batch_rows),
        )
        names = [column[0] for column in cursor.description][2:]
        rows = cursor.fetchall()
        if not rows:
            return
        yield names, rows
        last_rowid = rows[-1][0]
        if len(rows) < batch_rows:
            return


def mark_synced(gateway: sqlite3.Connection, table_name: str, version_sql: str,
                keys: Sequence[tuple[int, str]]) -> int:
    """SyncedStatus = 1 for the rows whose UpdatedTS is still the one loaded (a row the
    gateway rewrote meanwhile stays unsynced: its new version loads next time)."""
    gateway.execute("begin immediate")
    try:
        before = gateway.total_changes
        gateway.executemany(
            f"update {quote_sqlite(table_name)} set SyncedStatus = 1 "
            f"where rowid = ? and {version_sql} = ?",
            keys,
        )
        changed = gateway.total_changes - before
        gateway.execute("commit")
    except BaseException:
        gateway.execute("rollback")
        raise
    return changed


def already_loaded(conn: psycopg.Connection, gateway_id: str, table_name: str,
                   keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    rows = conn.execute(
        sql.SQL("select source_rowid, source_updated_ts from {} where gateway_id = %s "
                "and source_table = %s and source_rowid = any(%s)"
                ).format(sql.Identifier(*LEDGER_TABLE)),
        (gateway_id, table_name, [rowid for rowid, _ in keys]),
    ).fetchall()
    return {(rowid, updated_ts) for rowid, updated_ts in rows}


def copy_plain(conn: psycopg.Connection, table: tuple[str, str], columns: Sequence[str],
               rows: Sequence[Sequence[object]]) -> None:
    if not rows:
        return
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(*table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def load_part_counters(conn: psycopg.Connection, gateway_id: str) -> dict[int, int]:
    rows = conn.execute(
        sql.SQL("select machine_id, part_count from {} where gateway_id = %s"
                ).format(sql.Identifier(*COUNTERS_TABLE)),
        (gateway_id,),
    ).fetchall()
    return dict(rows)


def save_part_counters(conn: psycopg.Connection, gateway_id: str, counters: Mapping[int, int]
                       ) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("insert into {} (gateway_id, machine_id, part_count) values (%s, %s, %s) "
                    "on conflict (gateway_id, machine_id) do update set "
                    "part_count = excluded.part_count, updated_at = now()"
                    ).format(sql.Identifier(*COUNTERS_TABLE)),
            [(gateway_id, machine_id, count) for machine_id, count in counters.items()],
        )


def write_batch(conn: psycopg.Connection, table: EdgeTable, source_table: str,
                mapped: Sequence[MappedRow], gateway_id: str) -> None:
    """Bronze rows, unmapped records and ledger rows of one batch (caller's transaction)."""
    bronze_rows = [row.bronze_row for row in mapped if row.bronze_row is not None]
    if bronze_rows:
        columns = ("time", "gateway_id", "machine_id", *BRONZE_COLUMNS[table.bronze_table])
        copy_rows(conn, table.bronze_table, columns,
                  ([row.get(column) for column in columns] for row in bronze_rows))
    copy_plain(
        conn, UNMAPPED_TABLE,
        ("gateway_id", "source_table", "source_rowid", "source_updated_ts", "source_column",
         "reason", "item", "value", "machine_id", "time"),
        [(gateway_id, source_table, row.rowid, row.updated_ts, record.column, record.reason,
          record.item, record.value, row.machine_id, row.time)
         for row in mapped for record in row.unmapped],
    )
    copy_plain(
        conn, LEDGER_TABLE,
        ("gateway_id", "source_table", "source_rowid", "source_updated_ts", "destination"),
        [(gateway_id, source_table, row.rowid, row.updated_ts,
          f"bronze.{table.bronze_table}" if row.bronze_row is not None
          else UNMAPPED_DESTINATION)
         for row in mapped],
    )


def machine_codes(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("select machine_code, machine_id from master.machines "
                             "where machine_code is not null").fetchall())


def pause_after_commit(commit_number: int) -> None:
    setting = os.environ.get(PAUSE_AFTER_COMMIT_ENV)
    if not setting:
        return
    seconds, _, only_at = setting.partition("@")
    if not only_at or int(only_at) == commit_number:
        print(PAUSE_MARKER, file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def sync_gateway(conn: psycopg.Connection, path: Path | str, gateway_id: str, *,
                 zone: tzinfo = UTC, statuses: Mapping[str, str] | None = None,
                 parameters: Mapping[str, str] | None = None,
                 alarm_severity: str = DEFAULT_ALARM_SEVERITY, batch_rows: int = BATCH_ROWS,
                 on_rows: Callable[[str, int], None] | None = None) -> SyncReport:
    """Load the gateway file's unsynced rows into Bronze, then mark them synced.

    Each batch commits its own PostgreSQL transaction (conn must not be inside one)."""
    if not gateway_id.strip():
        raise EdgeSyncError("--gateway must name the gateway (it becomes Bronze gateway_id)")
    path = Path(path)
    report = SyncReport(gateway_id)
    gateway = open_gateway_file(path)
    try:
        present = template_tables(gateway)
        for table in EDGE_TABLES:
            source_table = present.get(table.name.lower())
            if source_table and "syncedstatus" not in {
                    name.lower() for name, _ in table_columns(gateway, source_table)}:
                raise EdgeSyncError(f"{path}: {source_table} has no SyncedStatus column: not "
                                    f"a table of the SETU edge template")
        context = MappingContext(
            gateway_id=gateway_id, zone=zone, machine_ids_by_code=machine_codes(conn),
            statuses={normalized_key(k): v for k, v in (statuses or {}).items()},
            parameters={normalized_key(k): v for k, v in (parameters or {}).items()},
            alarm_severity=alarm_severity, part_counters={},
        )
        conn.commit()
        for table in EDGE_TABLES:
            source_table = present.get(table.name.lower())
            if source_table is None:
                report.absent_tables.append(table.name)
                continue
            sync_table(conn, gateway, table, source_table, context, report, batch_rows,
                       on_rows)
    finally:
        gateway.close()
    return report


def sync_table(conn: psycopg.Connection, gateway: sqlite3.Connection, table: EdgeTable,
               source_table: str, context: MappingContext, report: SyncReport,
               batch_rows: int, on_rows: Callable[[str, int], None] | None) -> None:
    columns = table_columns(gateway, source_table)
    names = [name for name, _ in columns]
    missing = [name for name in (*EXPECTED_COLUMNS[table.name], *TEMPLATE_BOOKKEEPING)
               if name.lower() not in {present.lower() for present in names}]
    if missing:
        report.missing_columns[table.name] = missing
    # SyncedStatus and the primary key (a surrogate id the ledger's rowid already identifies)
    # are bookkeeping, not data to report as unmapped.
    bookkeeping = BOOKKEEPING_COLUMNS | {name.lower() for name, is_key in columns if is_key}
    version_sql = version_expression(names)
    for batch_names, rows in unsynced_batches(gateway, source_table, version_sql, batch_rows):
        keys = [(row[0], row[1]) for row in rows]
        with conn.transaction():
            # The gateway marks these rows synced after this commit and never sends them
            # again: the commit must be durable even for a role with synchronous_commit off.
            conn.execute("set local synchronous_commit = on")
            # One sync per gateway at a time: the ledger check below then cannot race.
            conn.execute("select pg_advisory_xact_lock(hashtext('setu.sync-edge'), "
                         "hashtext(%s))", (context.gateway_id,))
            done = already_loaded(conn, context.gateway_id, source_table, keys)
            if table.bronze_table == "machine_cycles":
                context.part_counters = load_part_counters(conn, context.gateway_id)
            mapped = [map_row(table, SourceRow(batch_names, row[2:], bookkeeping), key, context)
                      for row, key in zip(rows, keys, strict=True) if key not in done]
            write_batch(conn, table, source_table, mapped, context.gateway_id)
            if table.bronze_table == "machine_cycles":
                save_part_counters(conn, context.gateway_id, context.part_counters)
        report.commits += 1
        pause_after_commit(report.commits)
        # done may hold older versions of these rowids too: count only the rows read now.
        report.already_loaded += sum(key in done for key in keys)
        for row in mapped:
            if row.bronze_row is not None:
                report.loaded[f"bronze.{table.bronze_table}"] += 1
                for record in row.unmapped:
                    report.unmapped_values[(table.name, record.column, record.reason)] += 1
            else:
                first = row.unmapped[0]
                report.not_loaded[(table.name, first.reason, first.item)] += 1
        report.marked_synced += mark_synced(gateway, source_table, version_sql, keys)
        if on_rows:
            on_rows(table.name, len(rows))


# -- command line ---------------------------------------------------------------------------

def parse_pairs(pairs: Sequence[str], option: str, allowed: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or value.strip() not in allowed:
            raise click.BadParameter(f"{pair!r}: expected VALUE=one of {', '.join(allowed)}",
                                     param_hint=option)
        mapping[key.strip()] = value.strip()
    return mapping


def format_report(report: SyncReport, path: Path) -> list[str]:
    lines = [f"gateway {report.gateway_id}: {report.new_rows:,} new row(s) from {path.name}"]
    for table in sorted(report.loaded):
        lines.append(f"  loaded into {table}: {report.loaded[table]:,}")
    if report.not_loaded:
        lines.append("  rows with no Bronze home (values in _ingest.edge_unmapped):")
        for (table, reason, item), count in sorted(report.not_loaded.items(),
                                                   key=lambda kv: str(kv[0])):
            what = f" ParameterID={item}" if item is not None else ""
            lines.append(f"    {table}{what}: {count:,} ({reason})")
    if report.unmapped_values:
        lines.append("  values without a Bronze column (in _ingest.edge_unmapped):")
        for (table, column, reason), count in sorted(report.unmapped_values.items()):
            lines.append(f"    {table}.{column}: {count:,} ({reason})")
    if report.already_loaded:
        lines.append(f"  already loaded by an interrupted sync, marked synced now: "
                     f"{report.already_loaded:,}")
    for table, columns in report.missing_columns.items():
        lines.append(f"  note: {table} lacks column(s) {', '.join(columns)} (read as empty)")
    if report.absent_tables:
        lines.append(f"  note: not in the file: {', '.join(report.absent_tables)}")
    return lines


@click.command("sync-edge")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gateway", "gateway_id", required=True,
              help="The gateway's name; becomes gateway_id of every Bronze row.")
@click.option("--timezone", "timezone_name", default="UTC", show_default=True,
              help="IANA zone of the gateway's clock, for timestamps written without offset.")
@click.option("--status", "status_pairs", multiple=True, metavar="VALUE=STATE",
              help="Extra Status spelling, e.g. --status 1=RUNNING (repeatable).")
@click.option("--parameter", "parameter_pairs", multiple=True, metavar="ID=COLUMN",
              help="Extra ParameterID mapping, e.g. --parameter P12=coolant_temp_c "
                   "(repeatable).")
@click.option("--alarm-severity", default=DEFAULT_ALARM_SEVERITY, show_default=True,
              help="Severity of the gateway's alarms (the template carries none).")
@click.option("--target", help="dbt target to load into (default: the profile's target).")
@click.option("--batch-rows", default=BATCH_ROWS, hidden=True, type=click.IntRange(min=1),
              help="Rows per transaction (tests use small batches to crash mid-table).")
def sync_edge(path: Path, gateway_id: str, timezone_name: str, status_pairs: tuple[str, ...],
              parameter_pairs: tuple[str, ...], alarm_severity: str, target: str | None,
              batch_rows: int) -> None:
    """Load a gateway's SQLite file (SETU edge template) into Bronze, each row exactly once.

    Reads the rows whose SyncedStatus is not 1 from the five *_MVP tables, loads them into
    the Bronze tables with gateway_id = --gateway, then sets their SyncedStatus to 1. Values
    Bronze has no column for (OperatorID, Target, the energy split, unknown ParameterIDs,
    ...) are counted in the output and kept in _ingest.edge_unmapped. Safe to kill and rerun: rows
    loaded before a crash are recognised from _ingest.edge_sync_ledger, never loaded twice.
    See docs/connectors/sqlite-sync.md.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress

    from setu.cli import ensure_database
    from setu.profile import connect

    try:
        zone = ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {timezone_name!r}",
                                 param_hint="--timezone") from None
    statuses = parse_pairs(status_pairs, "--status", CONTRACT_STATES)
    parameters = parse_pairs(parameter_pairs, "--parameter", TELEMETRY_COLUMNS)
    console = Console(stderr=True)
    ensure_database(target)
    with connect(target) as conn, Progress(
            "[progress.description]{task.description}", BarColumn(), "{task.completed:,} rows",
            console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(path.name, total=None)
        try:
            report = sync_gateway(
                conn, path, gateway_id, zone=zone, statuses=statuses, parameters=parameters,
                alarm_severity=alarm_severity, batch_rows=batch_rows,
                on_rows=lambda _table, rows: progress.advance(task, rows))
        except (EdgeSyncError, psycopg.errors.UndefinedTable) as exc:
            hint = (" (run `setu bronze` first)"
                    if isinstance(exc, psycopg.errors.UndefinedTable) else "")
            console.print(f"[bold red]error:[/] {exc}{hint}", highlight=False, soft_wrap=True)
            raise SystemExit(2) from None
    for line in format_report(report, path):
        click.echo(line)
