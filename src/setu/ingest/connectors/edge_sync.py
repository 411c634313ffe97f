"""`setu sync-edge`: load a shop-floor gateway's SQLite file (the SETU edge template) into Bronze.

The gateway logs into nine tables, each with `UpdatedTS` and `SyncedStatus` columns; a row
with SyncedStatus other than 1 is not synced yet. Each such row becomes exactly one Bronze row,
or state of the sync (the gateway's machine list, the controller's shift counters, the first
half of a cycle an alarm interrupted), or, when it has no home at all, records in
`_ingest.edge_unmapped`; values of a loaded row that Bronze has no column for are recorded
there too, never dropped. The one table SETU does not use is named with its row count and
left unsynced. docs/connectors/sqlite-sync.md has the mapping tables.

Exactly once across crashes: each batch's Bronze rows, its `_ingest.edge_sync_ledger` rows and
its part counters commit in one PostgreSQL transaction; SyncedStatus is set in SQLite only
afterwards. A sync killed between the two finds its rows in the ledger the next time, marks
them synced and loads nothing twice.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import psycopg
from psycopg import sql

from setu.ingest.loader import BRONZE_TABLES, copy_rows

LEDGER_TABLE = ("_ingest", "edge_sync_ledger")
UNMAPPED_TABLE = ("_ingest", "edge_unmapped")
COUNTERS_TABLE = ("_ingest", "edge_part_counters")
MACHINES_TABLE = ("_ingest", "edge_machines")
SHIFT_COUNTERS_TABLE = ("_ingest", "edge_shift_counters")
OPEN_CYCLES_TABLE = ("_ingest", "edge_open_cycles")
UNMAPPED_DESTINATION = "_ingest.edge_unmapped"
MACHINES_DESTINATION = "_ingest.edge_machines"
SHIFT_COUNTERS_DESTINATION = "_ingest.edge_shift_counters"
OPEN_CYCLES_DESTINATION = "_ingest.edge_open_cycles"
# A cycle row that ends within this many seconds of an alarm of its machine was cut short by
# the alarm: the gateway logs the rest of the cycle as a second row after the reset.
INTERRUPT_WINDOW_SECONDS = 5.0
# Separates UpdatedTS from the content digest in a row's version (the ledger key).
VERSION_SEPARATOR = "|"
# Rows per PostgreSQL transaction (and SQLite update): bounded memory and lock time for a
# gateway that was offline for weeks, few enough round trips for a normal sync.
BATCH_ROWS = 20_000
# Test-only hook: "SECONDS" sleeps after every PostgreSQL commit, before the SQLite update,
# "SECONDS@N" after the N-th commit only, so a test can kill the sync exactly there
# (tests/python/test_edge_sync.py).
PAUSE_AFTER_COMMIT_ENV = "SETU_EDGE_SYNC_PAUSE_AFTER_COMMIT"
PAUSE_MARKER = "sync-edge: committed, pausing before the SQLite update"

# The largest Bronze machine_id and counter (bigint).
BIGINT_MAX = 2**63 - 1
# Reasons a row is set aside whole because PostgreSQL could not store it as sent.
NUL_CHARACTER, NOT_UTF8, OUT_OF_RANGE = "nul_character", "not_utf8", "out_of_range"
REFUSED_BY_DATABASE = "refused_by_database"

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
    "READY": "IDLE", "HOLD": "IDLE", "FEEDHOLD": "IDLE", "WAITING": "IDLE",
    # The template's own statuses are Running, Idle and Stopped; it writes Stopped for a
    # stoppage (a down with a reason in MachineWiseDownDetails_MVP, or a breakdown), not for
    # a machine that waits: the machine is unavailable, as in maintenance.
    "STOP": "MAINTENANCE", "STOPPED": "MAINTENANCE",
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
# MachineWiseEnergyDetails_MVP.Category of the consumed-energy meter (the template writes
# CONSP, REGEN and NET rows); only this meter is the contract's energy_kwh.
CONSUMPTION_CATEGORIES = frozenset({"CONSP", "CONSUMPTION", "CONSUMED", "IMPORT"})


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
            return _within_calendar(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            raise BadValue("bad_time") from None
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return parse_time(float(text), zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("bad_time") from None
    return _within_calendar(parsed if parsed.tzinfo else parsed.replace(tzinfo=zone))


CALENDAR_START = datetime(1, 1, 2, tzinfo=UTC)
CALENDAR_END = datetime(9999, 12, 30, tzinfo=UTC)


def _within_calendar(moment: datetime) -> datetime:
    """A time a day or more inside Python's calendar (years 1 to 9999): at its ends a zone
    conversion or the shift and cycle arithmetic overflows. A gateway whose clock was reset
    sends such times; they are bad_time, set aside with the row."""
    if not CALENDAR_START <= moment <= CALENDAR_END:
        raise BadValue("bad_time")
    return moment


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


class NotUtf8Text(str):
    """A SQLite text value that is not UTF-8 (a gateway with a broken codec): reads as its
    bytes spelled out (\\xff), and keeps the bytes to find the row again in SQLite."""

    raw: bytes


def decode_sqlite_text(data: bytes) -> str:
    """The connection's text factory: a value that is not UTF-8 must not stop the sync."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        text = NotUtf8Text(data.decode("utf-8", "backslashreplace"))
        text.raw = data
        return text


def storable_text(value: str | None) -> str | None:
    """Text PostgreSQL can store: a NUL spelled out as \\x00 (a not-UTF-8 value already is)."""
    return value.replace("\x00", "\\x00") if value is not None else None


def poison_reason(values: Mapping[str, object]) -> str | None:
    """Why PostgreSQL could not store this row's text as sent, if it could not."""
    for value in values.values():
        if isinstance(value, NotUtf8Text):
            return NOT_UTF8
        if isinstance(value, str) and "\x00" in value:
            return NUL_CHARACTER
    return None


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
    """Where one gateway row went: one Bronze row, state of the sync (destination names the
    _ingest table), or (destination _ingest.edge_unmapped) only unmapped records."""

    rowid: int
    updated_ts: str
    machine_id: int | None
    time: datetime | None
    bronze_row: dict[str, Any] | None
    unmapped: list[UnmappedValue] = field(default_factory=list)
    destination: str = UNMAPPED_DESTINATION


@dataclass
class ShiftCounter:
    """The controller's counters of one machine and shift, and what the sync did with them."""

    part_count: int = 0
    rej_count: int = 0
    cycles: int = 0  # contract cycles loaded for the shift
    scrap_marked: int = 0  # of those, marked SCRAP for a reject
    reported: bool = False  # a FOCAS row of the shift was seen (the counters are real)


@dataclass
class OpenCycle:
    """The first row of a cycle an alarm interrupted, waiting for the row that finishes it."""

    cycle_start: datetime | None
    program_name: str | None
    fragments: int
    rowid: int
    updated_ts: str


@dataclass
class SiteShifts:
    zone: tzinfo
    shifts: list[tuple[str, Any, Any]]  # (shift_id, start_local, end_local)


@dataclass
class MappingContext:
    gateway_id: str
    zone: tzinfo
    machine_ids_by_code: Mapping[str, int]  # machine codes that name exactly one machine
    statuses: Mapping[str, str]
    parameters: Mapping[str, str]
    alarm_severity: str
    part_counters: dict[int, int]  # machine_id -> last part count, advanced by cycle rows
    mapped_iotids: Mapping[str, int] = field(default_factory=dict)  # master.gateway_machines
    gateway_machine_codes: dict[str, str] = field(default_factory=dict)  # IOTID -> MachineID
    iotid_is_machine_id: bool = False
    energy_categories: frozenset[str] = CONSUMPTION_CATEGORIES
    interrupt_window: float = INTERRUPT_WINDOW_SECONDS
    machine_shifts: dict[int, SiteShifts] = field(default_factory=dict)
    shift_counters: dict[tuple[int, str, str], ShiftCounter] = field(default_factory=dict)
    open_cycles: dict[int, OpenCycle] = field(default_factory=dict)
    closed_cycles: set[int] = field(default_factory=set)  # machines whose held cycle ended
    alarm_times: dict[str, list[datetime]] = field(default_factory=dict)  # IOTID -> AlarmTS
    abandoned: list[tuple[int, OpenCycle]] = field(default_factory=list)
    merged_fragments: int = 0


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


def iotid_key(value: object) -> str | None:
    """An IOTID as text: 3, 3.0 and '3' are the same machine of the gateway."""
    text = as_text(value)
    if text is not None and re.fullmatch(r"\d+\.0*", text):
        text = text.split(".")[0]
    return text


def resolve_machine(source: SourceRow, context: MappingContext) -> int:
    """The master.machines id of the row's IOTID, which only numbers the machine on its
    gateway: master.gateway_machines (gateway, IOTID) first, then the MachineID label the
    gateway gives that IOTID in MachineInformation_MVP, or the IOTID itself, as a machine
    code naming one machine; a bare number is the machine id only when the operator said so
    for this gateway (--iotid-is-machine-id). Anything else is no machine of ours."""
    text = iotid_key(source.get("IOTID"))
    if text is None:
        raise RowNotLoadable("unknown_machine")
    if text in context.mapped_iotids:
        return context.mapped_iotids[text]
    label = context.gateway_machine_codes.get(text)
    if label is not None and label in context.machine_ids_by_code:
        return context.machine_ids_by_code[label]
    if text in context.machine_ids_by_code:
        return context.machine_ids_by_code[text]
    if context.iotid_is_machine_id and text.isascii() and text.isdigit():
        if int(text) > BIGINT_MAX:
            raise RowNotLoadable(OUT_OF_RANGE, item="IOTID")
        return int(text)
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
    """Only the consumed-energy meter is energy_kwh; regenerated (negative) and net energy
    rows are kept in _ingest.edge_unmapped, never mixed into the meter."""
    category = as_text(source.get("Category"))
    if category is None or normalized_key(category) not in context.energy_categories:
        raise RowNotLoadable("not_consumed_energy", item=category)
    return {"energy_kwh": number_or_report(source, "TotalEnergy", unmapped)}


def map_downtime(source: SourceRow, context: MappingContext, unmapped: list[UnmappedValue]
                 ) -> dict[str, Any]:
    start_value = source.get("DownStart")
    try:
        down_start = parse_time(start_value, context.zone)
    except BadValue as exc:
        down_start = None  # Silver quarantines it as missing_value; the text is reported
        if not is_empty(start_value):
            unmapped.append(UnmappedValue(source.names.get("downstart", "DownStart"),
                                          exc.reason, as_text(start_value)))
    return {"down_start": down_start, "reason_code": as_text(source.get("DownID")),
            "program_name": as_text(source.get("ProgramNo"))}


def count_value(source: SourceRow, column: str) -> int:
    try:
        number = parse_number(source.get(column))
    except BadValue as exc:
        raise RowNotLoadable(exc.reason, item=column) from None
    if abs(number or 0) > BIGINT_MAX:
        raise RowNotLoadable(OUT_OF_RANGE, item=column)
    return int(number or 0)


def map_shift_counters(source: SourceRow, context: MappingContext,
                       unmapped: list[UnmappedValue]) -> dict[str, Any]:
    """A MachineWiseFocasDetails_MVP row: the controller's PartCount and RejCount so far in
    one shift (the gateway rewrites the row as they grow)."""
    date_text = as_text(source.get("Date"))
    shift = as_text(source.get("ShiftID"))
    try:
        shift_date = parse_time(date_text, context.zone).date().isoformat()
    except BadValue:
        raise RowNotLoadable("bad_time", item="Date") from None
    if shift is None:
        raise RowNotLoadable("missing_shift", item="ShiftID")
    return {"shift_date": shift_date, "shift_id": shift,
            "part_count": count_value(source, "PartCount"),
            "rej_count": count_value(source, "RejCount")}


def map_machine_info(source: SourceRow, context: MappingContext,
                     unmapped: list[UnmappedValue]) -> dict[str, Any]:
    return {"machine_code": as_text(source.get("MachineID"))}


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
    bronze_table: str | None  # None: the rows feed the sync's state (destination)
    time_column: str
    mapper: RowMapper
    time_fallback: str | None = None
    destination: str | None = None


# In this order: the machine list before everything that names machines, the shift counters
# before the cycles they mark as scrap.
EDGE_TABLES = (
    EdgeTable("MachineInformation_MVP", None, "UpdatedTS", map_machine_info,
              destination=MACHINES_DESTINATION),
    EdgeTable("MachineWiseFocasDetails_MVP", None, "UpdatedTS", map_shift_counters,
              destination=SHIFT_COUNTERS_DESTINATION),
    EdgeTable("MachineRunningStatus_MVP", "machine_state_events", "UpdatedTS",
              map_running_status),
    EdgeTable("MachineWiseCycleDetails_MVP", "machine_cycles", "CycleEnd", map_cycle),
    EdgeTable("MachineWiseAlarmDetails_MVP", "alarms", "AlarmTS", map_alarm,
              time_fallback="UpdatedTS"),
    EdgeTable("MachineWiseEnergyDetails_MVP", "machine_telemetry", "UpdatedTS", map_energy),
    EdgeTable("MachineWiseParameterDetails_MVP", "machine_telemetry", "UpdatedTS",
              map_parameter),
    EdgeTable("MachineWiseDownDetails_MVP", "downtime_events", "DownEnd", map_downtime),
)
# Template tables SETU reads nothing from, with why: named in every sync's output with their
# row count, their SyncedStatus left as it is.
UNUSED_TABLES = {
    "MachineWiseProgramDetails_MVP": "per-shift production per program (Actual, Target): "
                                     "Gold derives it from the cycles",
}
BRONZE_COLUMNS = {
    "machine_state_events": ("state", "program_name"),
    "machine_cycles": ("cycle_start", "program_name", "part_count", "result",
                       "std_cycle_seconds", "std_load_unload_seconds",
                       "down_threshold_seconds"),
    "alarms": ("alarm_code", "severity", "message", "event"),
    "machine_telemetry": TELEMETRY_COLUMNS,
    "downtime_events": ("down_start", "reason_code", "program_name"),
}


def map_row(table: EdgeTable, source: SourceRow, key: tuple[int, str], context: MappingContext
            ) -> MappedRow:
    """key: (rowid, version), the row's ledger key."""
    rowid, updated_ts = key
    machine_id: int | None = None
    when: datetime | None = None
    try:
        unmapped: list[UnmappedValue] = []
        poison = poison_reason(source.values)
        if poison is not None:
            raise RowNotLoadable(poison)
        if table.destination == MACHINES_DESTINATION:
            return map_machine_row(table, source, key, context)
        machine_id = resolve_machine(source, context)
        when = row_time(source, table.time_column, context, table.time_fallback)
        values = table.mapper(source, context, unmapped)
    except RowNotLoadable as exc:
        # Nothing of this row reaches Bronze: every value of it is recorded instead (with the
        # machine and time when those were readable, for the operator's queries).
        records = source.leftovers(exc.reason, everything=True)
        records = [UnmappedValue(record.column, record.reason, record.value, exc.item)
                   for record in records] or [UnmappedValue("*", exc.reason, None, exc.item)]
        return MappedRow(rowid, updated_ts, machine_id, when, None, records)
    # UpdatedTS is bookkeeping when another column gives the event time.
    source.used.add("updatedts")
    unmapped += source.leftovers("no_bronze_column")
    if table.destination == SHIFT_COUNTERS_DESTINATION:
        counter = context.shift_counters.setdefault(
            (machine_id, values["shift_date"], values["shift_id"]), ShiftCounter())
        counter.part_count, counter.rej_count = values["part_count"], values["rej_count"]
        counter.reported = True
        return MappedRow(rowid, updated_ts, machine_id, when, None, unmapped,
                         SHIFT_COUNTERS_DESTINATION)
    if table.bronze_table == "machine_cycles":
        if not stitch_cycle(source, key, machine_id, when, values, context):
            return MappedRow(rowid, updated_ts, machine_id, when, None, unmapped,
                             OPEN_CYCLES_DESTINATION)
        # The template has no per-cycle counter: one part per cycle, counted per machine
        # (the counter survives syncs in _ingest.edge_part_counters).
        part_count = context.part_counters.get(machine_id, 0) + 1
        context.part_counters[machine_id] = part_count
        values["part_count"] = part_count
        values["result"] = cycle_result(machine_id, when, context)
    bronze_row = {"time": when, "gateway_id": context.gateway_id, "machine_id": machine_id,
                  **values}
    return MappedRow(rowid, updated_ts, machine_id, when, bronze_row, unmapped,
                     f"bronze.{table.bronze_table}")


def map_machine_row(table: EdgeTable, source: SourceRow, key: tuple[int, str],
                    context: MappingContext) -> MappedRow:
    """A MachineInformation_MVP row: the gateway's IOTID (InterfaceID in some versions of
    the template) and its MachineID label, kept to map the IOTID to master.machines."""
    rowid, updated_ts = key
    iotid = iotid_key(source.get("IOTID"))
    if iotid is None:
        iotid = iotid_key(source.get("InterfaceID"))
    if iotid is None:
        raise RowNotLoadable("unknown_machine", item="IOTID")
    context.gateway_machine_codes[iotid] = table.mapper(source, context, [])["machine_code"]
    source.used.add("updatedts")
    return MappedRow(rowid, updated_ts, None, None, None, source.leftovers("no_bronze_column"),
                     MACHINES_DESTINATION)


def ended_by_alarm(source: SourceRow, when: datetime, context: MappingContext) -> bool:
    alarms = context.alarm_times.get(iotid_key(source.get("IOTID")) or "", [])
    at = bisect.bisect_left(alarms, when - timedelta(seconds=context.interrupt_window))
    return at < len(alarms) and alarms[at] <= when + timedelta(seconds=context.interrupt_window)


def stitch_cycle(source: SourceRow, key: tuple[int, str], machine_id: int, when: datetime,
                 values: dict[str, Any], context: MappingContext) -> bool:
    """One contract cycle per machined part. A cycle an alarm cuts short reaches the gateway
    as two rows (up to the alarm; after the reset, to the end): the first is held in
    _ingest.edge_open_cycles and the row that finishes it becomes one cycle from the first
    row's start. False when this row is such a first part (held, nothing to load yet)."""
    held = context.open_cycles.get(machine_id)
    if held is not None and held.program_name != values["program_name"]:
        # The interrupted program never resumed: that cycle made no part.
        context.abandoned.append((machine_id, held))
        del context.open_cycles[machine_id]
        context.closed_cycles.add(machine_id)
        held = None
    if ended_by_alarm(source, when, context):
        if held is not None:
            held.fragments += 1
        else:
            context.open_cycles[machine_id] = OpenCycle(
                values["cycle_start"], values["program_name"], 1, *key)
        return False
    if held is not None:
        values["cycle_start"] = held.cycle_start or values["cycle_start"]
        context.merged_fragments += held.fragments
        del context.open_cycles[machine_id]
        context.closed_cycles.add(machine_id)
    return True


def shift_of(machine_id: int, when: datetime, context: MappingContext
             ) -> tuple[str, str] | None:
    """(local date the shift starts, shift_id) of an instant, from master.shifts of the
    machine's site (a shift whose end is not after its start crosses midnight)."""
    site = context.machine_shifts.get(machine_id)
    if site is None:
        return None
    local = when.astimezone(site.zone)
    clock = local.time().replace(tzinfo=None)
    for shift_id, start, end in site.shifts:
        if start < end and start <= clock < end:
            return local.date().isoformat(), shift_id
        if start >= end and clock >= start:
            return local.date().isoformat(), shift_id
        if start >= end and clock < end:
            return (local.date() - timedelta(days=1)).isoformat(), shift_id
    return None


def cycle_result(machine_id: int, when: datetime, context: MappingContext) -> str:
    """SCRAP while the controller's RejCount of the cycle's shift is ahead of the cycles
    already marked SCRAP in that shift, else GOOD: an operator books a reject after the
    part, so the next cycles of the shift carry it, and per shift the SCRAP cycles equal
    RejCount once a cycle follows the booking."""
    shift = shift_of(machine_id, when, context)
    if shift is None:
        return "GOOD"
    counter = context.shift_counters.setdefault((machine_id, *shift), ShiftCounter())
    counter.cycles += 1
    if counter.rej_count > counter.scrap_marked:
        counter.scrap_marked += 1
        return "SCRAP"
    return "GOOD"


# -- the sync -------------------------------------------------------------------------------

@dataclass
class SyncReport:
    gateway_id: str
    loaded: Counter = field(default_factory=Counter)  # destination table -> rows
    not_loaded: Counter = field(default_factory=Counter)  # (source table, reason, item) -> rows
    # (source table, column, reason) -> values of loaded rows kept in _ingest.edge_unmapped
    unmapped_values: Counter = field(default_factory=Counter)
    already_loaded: int = 0  # rows an interrupted sync had loaded: marked synced now
    commits: int = 0
    marked_synced: int = 0
    absent_tables: list[str] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    unused_tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # rows, unsynced
    merged_fragments: int = 0  # first parts of interrupted cycles joined to their end
    abandoned_cycles: int = 0  # interrupted cycles that never resumed
    open_cycles: int = 0  # interrupted cycles waiting for their end after this sync
    rejects_unmarked: int = 0  # RejCount not yet carried by a SCRAP cycle (all shifts)
    shifts_agreeing: int = 0  # shifts whose cycles loaded equal the controller's PartCount
    shifts_differing: int = 0

    @property
    def new_rows(self) -> int:
        return sum(self.loaded.values()) + sum(self.not_loaded.values())


def open_gateway_file(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise EdgeSyncError(f"{path}: no such file")
    # The gateway keeps writing while we sync: wait for its locks rather than fail.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.text_factory = decode_sqlite_text
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
    "MachineInformation_MVP": ("MachineID",),
    "MachineWiseFocasDetails_MVP": ("IOTID", "Date", "ShiftID", "PartCount", "RejCount"),
    "MachineRunningStatus_MVP": ("IOTID", "RunningProgramNo", "Status", "OperatorID", "Target"),
    "MachineWiseCycleDetails_MVP": ("IOTID", "CycleStart", "CycleEnd", "ProgramNo",
                                    "StdLoadUnload", "DownThreshold", "StdCycleTime"),
    "MachineWiseAlarmDetails_MVP": ("IOTID", "AlarmNo", "AlarmDesc", "AlarmTS"),
    "MachineWiseEnergyDetails_MVP": ("IOTID", "Category", "ServoEnergy", "SpindleEnergy",
                                     "TotalEnergy"),
    "MachineWiseParameterDetails_MVP": ("IOTID", "ParameterID", "ParameterValue"),
    "MachineWiseDownDetails_MVP": ("IOTID", "ProgramNo", "DownStart", "DownEnd", "DownID"),
}
TEMPLATE_BOOKKEEPING = ("UpdatedTS", "SyncedStatus")


def table_columns(gateway: sqlite3.Connection, table_name: str) -> list[tuple[str, bool]]:
    """(name, is part of the primary key) of each column."""
    info = gateway.execute("select name, pk from pragma_table_info(?)", (table_name,)).fetchall()
    return [(name, bool(pk)) for name, pk in info]


def quote_sqlite(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def version_expression(column_names: Sequence[str]) -> str:
    """SQL for a row's UpdatedTS as SQLite spells it as text ('' when absent)."""
    for name in column_names:
        if name.lower() == "updatedts":
            return f"coalesce(cast({quote_sqlite(name)} as text), '')"
    return "''"


def row_version(updated_ts: str, names: Sequence[str], values: Sequence[object]) -> str:
    """The row's version, its ledger key with the rowid: UpdatedTS and a digest of the row's
    content. The edge writes 1-second timestamps, and rewrites a row in place within one
    second when a status changes twice: changed content is a new event, the same content
    (SyncedStatus reset, a replay) is not."""
    content = repr([(name.lower(), value) for name, value in zip(names, values, strict=True)
                    if name.lower() not in BOOKKEEPING_COLUMNS])
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{updated_ts}{VERSION_SEPARATOR}{digest}"


def row_key_sql(gateway: sqlite3.Connection, table_name: str) -> str:
    """The SQL naming each row of the table by one integer: rowid, or the integer primary
    key of a WITHOUT ROWID table. Any other WITHOUT ROWID table is an EdgeSyncError."""
    try:
        gateway.execute(f"select rowid from {quote_sqlite(table_name)} limit 0")
        return "rowid"
    except sqlite3.OperationalError:
        pass
    keys = gateway.execute("select name, type from pragma_table_info(?) where pk > 0",
                           (table_name,)).fetchall()
    if len(keys) == 1 and "INT" in (keys[0][1] or "").upper():
        key = quote_sqlite(keys[0][0])
        others = gateway.execute(f"select count(*) from {quote_sqlite(table_name)} "
                                 f"where typeof({key}) <> 'integer'").fetchone()[0]
        if not others:
            return key
    spelled = ", ".join(name for name, _ in keys)
    raise EdgeSyncError(
        f"{table_name} is a WITHOUT ROWID table keyed on ({spelled}): sync-edge names each "
        f"row by one integer; give the table an INTEGER PRIMARY KEY holding integers only "
        f"(or recreate it without WITHOUT ROWID) and sync again")


def unsynced_batches(gateway: sqlite3.Connection, table_name: str, version_sql: str,
                     batch_rows: int, key_sql: str = "rowid"
                     ) -> Iterator[tuple[list[str], list[tuple]]]:
    """(column names, rows as (rowid, version, *columns)) of the rows not synced yet."""
    last_rowid = -(2**63)
    while True:
        cursor = gateway.execute(
            f"select {key_sql}, {version_sql}, * from {quote_sqlite(table_name)} "
            f"where (SyncedStatus is null or SyncedStatus not in (1, '1')) and {key_sql} > ? "
            f"order by {key_sql} limit ?",
            (last_rowid, batch_rows),
        )
        names = [column[0] for column in cursor.description][2:]
        rows = [(row[0], row_version(storable_text(row[1]), names, row[2:]), *row[2:])
                for row in cursor.fetchall()]
        if not rows:
            return
        yield names, rows
        last_rowid = rows[-1][0]
        if len(rows) < batch_rows:
            return


def mark_synced(gateway: sqlite3.Connection, table_name: str, names: Sequence[str],
                rows: Sequence[tuple], key_sql: str = "rowid") -> int:
    """SyncedStatus = 1 for the rows whose content is still the one loaded (a row the gateway
    rewrote meanwhile, even within the same second, stays unsynced: its new version loads
    next time)."""
    data = [(position, name) for position, name in enumerate(names)
            if name.lower() not in BOOKKEEPING_COLUMNS]
    # Text that is not UTF-8 is matched on its bytes (it was read spelled out).
    condition = " and ".join(f"({quote_sqlite(name)} is ? or cast({quote_sqlite(name)} "
                             f"as blob) is ?)" for _, name in data)

    def bound(value: object) -> tuple[object, object]:
        return (None, value.raw) if isinstance(value, NotUtf8Text) else (value, None)

    gateway.execute("begin immediate")
    try:
        before = gateway.total_changes
        gateway.executemany(
            f"update {quote_sqlite(table_name)} set SyncedStatus = 1 where {key_sql} = ?"
            + (f" and {condition}" if condition else ""),
            [(row[0], *(part for position, _ in data for part in bound(row[2 + position])))
             for row in rows],
        )
        changed = gateway.total_changes - before
        gateway.execute("commit")
    except BaseException:
        gateway.execute("rollback")
        raise
    return changed


def already_loaded(conn: psycopg.Connection, gateway_id: str, table_name: str,
                   keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    """The keys the ledger holds. A ledger row written before versions carried a digest
    (bare UpdatedTS) covers every content of that rowid and UpdatedTS."""
    rows = conn.execute(
        sql.SQL("select source_rowid, source_updated_ts from {} where gateway_id = %s "
                "and source_table = %s and source_rowid = any(%s)"
                ).format(sql.Identifier(*LEDGER_TABLE)),
        (gateway_id, table_name, [rowid for rowid, _ in keys]),
    ).fetchall()
    ledger = {(rowid, version) for rowid, version in rows}
    return {(rowid, version) for rowid, version in keys
            if (rowid, version) in ledger
            or (rowid, version.rsplit(VERSION_SEPARATOR, 1)[0]) in ledger}


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


def load_shift_counters(conn: psycopg.Connection, gateway_id: str
                        ) -> dict[tuple[int, str, str], ShiftCounter]:
    rows = conn.execute(
        sql.SQL("select machine_id, shift_date, shift_id, part_count, rej_count, cycles, "
                "scrap_marked, reported from {} where gateway_id = %s"
                ).format(sql.Identifier(*SHIFT_COUNTERS_TABLE)),
        (gateway_id,),
    ).fetchall()
    return {(machine, day, shift): ShiftCounter(*counts)
            for machine, day, shift, *counts in rows}


def save_shift_counters(conn: psycopg.Connection, gateway_id: str,
                        counters: Mapping[tuple[int, str, str], ShiftCounter]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("insert into {} (gateway_id, machine_id, shift_date, shift_id, part_count, "
                    "rej_count, cycles, scrap_marked, reported) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "on conflict (gateway_id, machine_id, shift_date, shift_id) do update set "
                    "part_count = excluded.part_count, rej_count = excluded.rej_count, "
                    "cycles = excluded.cycles, scrap_marked = excluded.scrap_marked, "
                    "reported = excluded.reported, updated_at = now()"
                    ).format(sql.Identifier(*SHIFT_COUNTERS_TABLE)),
            [(gateway_id, *key, counter.part_count, counter.rej_count, counter.cycles,
              counter.scrap_marked, counter.reported) for key, counter in counters.items()],
        )


def load_open_cycles(conn: psycopg.Connection, gateway_id: str) -> dict[int, OpenCycle]:
    rows = conn.execute(
        sql.SQL("select machine_id, cycle_start, program_name, fragments, source_rowid, "
                "source_updated_ts from {} where gateway_id = %s and fragments > 0"
                ).format(sql.Identifier(*OPEN_CYCLES_TABLE)),
        (gateway_id,),
    ).fetchall()
    return {machine: OpenCycle(*rest) for machine, *rest in rows}


def save_open_cycles(conn: psycopg.Connection, context: MappingContext, source_table: str
                     ) -> None:
    # A closed hold is kept as fragments = 0, not deleted: the ingest role may insert and
    # update in _ingest, never delete.
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("update {} set fragments = 0, updated_at = now() where gateway_id = %s "
                    "and machine_id = any(%s)").format(sql.Identifier(*OPEN_CYCLES_TABLE)),
            (context.gateway_id, sorted(context.closed_cycles - set(context.open_cycles))))
        cursor.executemany(
            sql.SQL("insert into {} (gateway_id, machine_id, cycle_start, program_name, "
                    "fragments, source_rowid, source_updated_ts) "
                    "values (%s, %s, %s, %s, %s, %s, %s) "
                    "on conflict (gateway_id, machine_id) do update set "
                    "cycle_start = excluded.cycle_start, program_name = excluded.program_name, "
                    "fragments = excluded.fragments, source_rowid = excluded.source_rowid, "
                    "source_updated_ts = excluded.source_updated_ts, updated_at = now()"
                    ).format(sql.Identifier(*OPEN_CYCLES_TABLE)),
            [(context.gateway_id, machine, held.cycle_start, held.program_name,
              held.fragments, held.rowid, held.updated_ts)
             for machine, held in context.open_cycles.items()])
    # An interrupted cycle that never resumed made no part: its first row is kept as an
    # unmapped record, so the row still ends somewhere visible.
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("insert into {} (gateway_id, source_table, source_rowid, "
                    "source_updated_ts, source_column, reason, value, machine_id, time) "
                    "values (%s, %s, %s, %s, '*', 'interrupted_cycle_not_resumed', %s, %s, %s) "
                    "on conflict do nothing").format(sql.Identifier(*UNMAPPED_TABLE)),
            [(context.gateway_id, source_table, held.rowid, held.updated_ts,
              held.program_name, machine, held.cycle_start)
             for machine, held in context.abandoned],
        )


def save_gateway_machines(conn: psycopg.Connection, context: MappingContext) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("insert into {} (gateway_id, iotid, machine_code) values (%s, %s, %s) "
                    "on conflict (gateway_id, iotid) do update set "
                    "machine_code = excluded.machine_code, updated_at = now()"
                    ).format(sql.Identifier(*MACHINES_TABLE)),
            [(context.gateway_id, iotid, code)
             for iotid, code in context.gateway_machine_codes.items()],
        )


def write_batch(conn: psycopg.Connection, table: EdgeTable, source_table: str,
                mapped: Sequence[MappedRow], gateway_id: str) -> None:
    """Bronze rows, unmapped records and ledger rows of one batch (caller's transaction)."""
    bronze_rows = [row.bronze_row for row in mapped if row.bronze_row is not None]
    if bronze_rows:
        assert table.bronze_table is not None
        columns = ("time", "gateway_id", "machine_id", *BRONZE_COLUMNS[table.bronze_table])
        values = [[row.get(column) for column in columns] for row in bronze_rows]
        if table.bronze_table in BRONZE_TABLES:
            copy_rows(conn, table.bronze_table, columns, values)
        else:
            # A contract v2 table the ingest catalog may not list yet: plain COPY.
            copy_plain(conn, ("bronze", table.bronze_table), columns, values)
    copy_plain(
        conn, UNMAPPED_TABLE,
        ("gateway_id", "source_table", "source_rowid", "source_updated_ts", "source_column",
         "reason", "item", "value", "machine_id", "time"),
        [(gateway_id, source_table, row.rowid, row.updated_ts, storable_text(record.column),
          record.reason, storable_text(record.item), storable_text(record.value),
          row.machine_id, row.time)
         for row in mapped for record in row.unmapped],
    )
    copy_plain(
        conn, LEDGER_TABLE,
        ("gateway_id", "source_table", "source_rowid", "source_updated_ts", "destination"),
        [(gateway_id, source_table, row.rowid, row.updated_ts, row.destination)
         for row in mapped],
    )


def write_batch_or_set_aside(conn: psycopg.Connection, table: EdgeTable, source_table: str,
                             mapped: list[MappedRow], gateway_id: str) -> None:
    """write_batch; when PostgreSQL refuses a value the checks above did not foresee, each
    row again in its own savepoint, and a refused row becomes an unmapped record with the
    database's reason (in `mapped`, for the report), so it cannot block the rows after it."""
    try:
        with conn.transaction():
            write_batch(conn, table, source_table, mapped, gateway_id)
        return
    except psycopg.errors.DataError:
        pass
    for position, row in enumerate(mapped):
        try:
            with conn.transaction():
                write_batch(conn, table, source_table, [row], gateway_id)
        except psycopg.errors.DataError as exc:
            refusal = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            mapped[position] = MappedRow(
                row.rowid, row.updated_ts, None, row.time, None,
                [UnmappedValue("*", REFUSED_BY_DATABASE, refusal)])
            write_batch(conn, table, source_table, [mapped[position]], gateway_id)


def machine_codes(conn: psycopg.Connection) -> dict[str, int]:
    """Machine codes that name exactly one machine (a code two machines share maps to none,
    so a gateway's label can never pick one of them by chance)."""
    return dict(conn.execute(
        "select machine_code, min(machine_id) from master.machines "
        "where machine_code is not null group by machine_code having count(*) = 1"
    ).fetchall())


def load_gateway_statuses(conn: psycopg.Connection, gateway_id: str) -> dict[str, str]:
    """This gateway's Status meanings kept as master data (master.gateway_statuses)."""
    return {normalized_key(status): state.upper() for status, state in conn.execute(
        "select status, state from master.gateway_statuses where gateway_id = %s",
        (gateway_id,)).fetchall()}


def load_identity(conn: psycopg.Connection, context: MappingContext) -> None:
    context.machine_ids_by_code = machine_codes(conn)
    context.mapped_iotids = dict(conn.execute(
        "select iotid, machine_id from master.gateway_machines where gateway_id = %s",
        (context.gateway_id,)).fetchall())
    context.gateway_machine_codes = dict(conn.execute(
        sql.SQL("select iotid, machine_code from {} where gateway_id = %s"
                ).format(sql.Identifier(*MACHINES_TABLE)),
        (context.gateway_id,)).fetchall())


def load_machine_shifts(conn: psycopg.Connection) -> dict[int, SiteShifts]:
    shifts: dict[int, list[tuple[str, Any, Any]]] = {}
    for site_id, shift_id, start, end in conn.execute(
            "select site_id, shift_id, start_local, end_local from master.shifts "
            "order by site_id, start_local"):
        shifts.setdefault(site_id, []).append((str(shift_id), start, end))
    result = {}
    for machine_id, site_id, zone_name in conn.execute(
            "select machines.machine_id, machines.site_id, sites.timezone "
            "from master.machines as machines "
            "inner join master.sites as sites on machines.site_id = sites.site_id"):
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            continue  # Silver reports the site's bad zone; no shift, no scrap marking here
        if site_id in shifts:
            result[machine_id] = SiteShifts(zone, shifts[site_id])
    return result


def load_alarm_times(gateway: sqlite3.Connection, table_name: str | None, zone: tzinfo
                     ) -> dict[str, list[datetime]]:
    """AlarmTS (or UpdatedTS) of every alarm row in the file, synced or not, per IOTID."""
    times: dict[str, list[datetime]] = {}
    if table_name is None:
        return times
    columns = {name.lower() for name, _ in table_columns(gateway, table_name)}
    if "iotid" not in columns:
        return times
    moment_sql = " , ".join(quote_sqlite(name) for name in ("AlarmTS", "UpdatedTS")
                            if name.lower() in columns) or "null"
    for iotid, *moments in gateway.execute(
            f"select IOTID, {moment_sql} from {quote_sqlite(table_name)}"):
        key = iotid_key(iotid)
        for moment in moments:
            try:
                times.setdefault(key or "", []).append(parse_time(moment, zone))
                break
            except BadValue:
                continue
    for moments in times.values():
        moments.sort()
    return times


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
                 iotid_is_machine_id: bool = False,
                 energy_categories: Sequence[str] = (),
                 interrupt_window: float = INTERRUPT_WINDOW_SECONDS,
                 on_rows: Callable[[str, int], None] | None = None) -> SyncReport:
    """Load the gateway file's unsynced rows into Bronze, then mark them synced.

    Each batch commits its own PostgreSQL transaction (conn must not be inside one)."""
    if not gateway_id.strip():
        raise EdgeSyncError("--gateway must name the gateway (it becomes Bronze gateway_id)")
    path = Path(path)
    gateway = open_gateway_file(path)
    try:
        return sync_open_gateway(conn, gateway, path, gateway_id, zone=zone,
                                 statuses=statuses, parameters=parameters,
                                 alarm_severity=alarm_severity, batch_rows=batch_rows,
                                 iotid_is_machine_id=iotid_is_machine_id,
                                 energy_categories=energy_categories,
                                 interrupt_window=interrupt_window, on_rows=on_rows)
    except sqlite3.DatabaseError as exc:
        # Rows of the batches committed before are kept and marked synced: exactly once.
        raise EdgeSyncError(
            f"{path}: SQLite cannot read the file ({exc}): it is damaged; the rows synced "
            f"before this point are kept; recover a copy (`sqlite3 {path.name} .recover`) "
            f"and sync that") from None
    finally:
        gateway.close()


def sync_open_gateway(conn: psycopg.Connection, gateway: sqlite3.Connection, path: Path,
                      gateway_id: str, *, zone: tzinfo, statuses: Mapping[str, str] | None,
                      parameters: Mapping[str, str] | None, alarm_severity: str,
                      batch_rows: int, iotid_is_machine_id: bool,
                      energy_categories: Sequence[str], interrupt_window: float,
                      on_rows: Callable[[str, int], None] | None) -> SyncReport:
    report = SyncReport(gateway_id)
    present = template_tables(gateway)
    row_keys = {}
    for name in (*(table.name for table in EDGE_TABLES), *UNUSED_TABLES):
        source_table = present.get(name.lower())
        if source_table and "syncedstatus" not in {
                column.lower() for column, _ in table_columns(gateway, source_table)}:
            raise EdgeSyncError(f"{path}: {source_table} has no SyncedStatus column: not "
                                f"a table of the SETU edge template")
        if source_table and name not in UNUSED_TABLES:
            try:
                row_keys[source_table] = row_key_sql(gateway, source_table)
            except EdgeSyncError as exc:
                raise EdgeSyncError(f"{path}: {exc}") from None
    context = MappingContext(
        gateway_id=gateway_id, zone=zone, machine_ids_by_code={},
        # --status of this run over master.gateway_statuses over the built-in meanings
        statuses={**load_gateway_statuses(conn, gateway_id),
                  **{normalized_key(k): v for k, v in (statuses or {}).items()}},
        parameters={normalized_key(k): v for k, v in (parameters or {}).items()},
        alarm_severity=alarm_severity, part_counters={},
        iotid_is_machine_id=iotid_is_machine_id,
        energy_categories=CONSUMPTION_CATEGORIES | {normalized_key(category)
                                                    for category in energy_categories},
        interrupt_window=interrupt_window, machine_shifts=load_machine_shifts(conn),
        alarm_times=load_alarm_times(
            gateway, present.get("machinewisealarmdetails_mvp"), zone),
    )
    load_identity(conn, context)
    conn.commit()
    for table in EDGE_TABLES:
        source_table = present.get(table.name.lower())
        if source_table is None:
            report.absent_tables.append(table.name)
            continue
        sync_table(conn, gateway, table, source_table, context, report, batch_rows,
                   on_rows, row_keys[source_table])
        if table.destination == MACHINES_DESTINATION:
            load_identity(conn, context)
            conn.commit()
    for name in UNUSED_TABLES:
        source_table = present.get(name.lower())
        if source_table is None:
            report.absent_tables.append(name)
            continue
        total, unsynced = gateway.execute(
            "select count(*), coalesce(sum(SyncedStatus is null "
            f"or SyncedStatus not in (1, '1')), 0) from {quote_sqlite(source_table)}"
        ).fetchone()
        report.unused_tables[name] = (total, unsynced)
    (report.open_cycles, report.rejects_unmarked, report.shifts_agreeing,
     report.shifts_differing) = conn.execute(
        sql.SQL("select (select count(*) from {open} where gateway_id = %s "
                "and fragments > 0), "
                "coalesce(sum(greatest(rej_count - scrap_marked, 0)), 0), "
                "count(*) filter (where reported and cycles = part_count), "
                "count(*) filter (where reported and cycles <> part_count) "
                "from {counters} where gateway_id = %s").format(
            open=sql.Identifier(*OPEN_CYCLES_TABLE),
            counters=sql.Identifier(*SHIFT_COUNTERS_TABLE)),
        (gateway_id, gateway_id)).fetchone()
    conn.commit()
    return report


def sync_table(conn: psycopg.Connection, gateway: sqlite3.Connection, table: EdgeTable,
               source_table: str, context: MappingContext, report: SyncReport,
               batch_rows: int, on_rows: Callable[[str, int], None] | None,
               key_sql: str = "rowid") -> None:
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
    cycles = table.bronze_table == "machine_cycles"
    counters = cycles or table.destination == SHIFT_COUNTERS_DESTINATION
    for batch_names, rows in unsynced_batches(gateway, source_table, version_sql, batch_rows,
                                              key_sql):
        keys = [(row[0], row[1]) for row in rows]
        with conn.transaction():
            # The gateway marks these rows synced after this commit and never sends them
            # again: the commit must be durable even for a role with synchronous_commit off.
            conn.execute("set local synchronous_commit = on")
            # One sync per gateway at a time: the ledger check below then cannot race.
            conn.execute("select pg_advisory_xact_lock(hashtext('setu.sync-edge'), "
                         "hashtext(%s))", (context.gateway_id,))
            done = already_loaded(conn, context.gateway_id, source_table, keys)
            if cycles:
                context.part_counters = load_part_counters(conn, context.gateway_id)
                context.open_cycles = load_open_cycles(conn, context.gateway_id)
                context.abandoned = []
                context.closed_cycles = set()
                context.merged_fragments = 0
            if counters:
                context.shift_counters = load_shift_counters(conn, context.gateway_id)
            mapped = [map_row(table, SourceRow(batch_names, row[2:], bookkeeping), key, context)
                      for row, key in zip(rows, keys, strict=True) if key not in done]
            write_batch_or_set_aside(conn, table, source_table, mapped, context.gateway_id)
            if cycles:
                save_part_counters(conn, context.gateway_id, context.part_counters)
                save_open_cycles(conn, context, source_table)
            if counters:
                save_shift_counters(conn, context.gateway_id, context.shift_counters)
            if table.destination == MACHINES_DESTINATION:
                save_gateway_machines(conn, context)
        report.commits += 1
        pause_after_commit(report.commits)
        if cycles:
            report.merged_fragments += context.merged_fragments
            report.abandoned_cycles += len(context.abandoned)
        # done may hold older versions of these rowids too: count only the rows read now.
        report.already_loaded += sum(key in done for key in keys)
        for row in mapped:
            if row.destination != UNMAPPED_DESTINATION:
                report.loaded[row.destination] += 1
                for record in row.unmapped:
                    report.unmapped_values[(table.name, record.column, record.reason)] += 1
            else:
                first = row.unmapped[0]
                report.not_loaded[(table.name, first.reason, first.item)] += 1
        report.marked_synced += mark_synced(gateway, source_table, batch_names,
                                            [(row[0], row[1], *row[2:]) for row in rows],
                                            key_sql)
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


ITEM_LABELS = {"MachineWiseParameterDetails_MVP": "ParameterID",
               "MachineWiseEnergyDetails_MVP": "Category"}
DESTINATION_LABELS = {
    MACHINES_DESTINATION: "machine list",
    SHIFT_COUNTERS_DESTINATION: "controller shift counters",
    OPEN_CYCLES_DESTINATION: "first parts of interrupted cycles",
}


def format_report(report: SyncReport, path: Path) -> list[str]:
    lines = [f"gateway {report.gateway_id}: {report.new_rows:,} new row(s) from {path.name}"]
    for table in sorted(report.loaded):
        label = DESTINATION_LABELS.get(table)
        what = f"kept in {table} ({label})" if label else f"loaded into {table}"
        lines.append(f"  {what}: {report.loaded[table]:,}")
    if report.merged_fragments or report.abandoned_cycles or report.open_cycles:
        lines.append(f"  interrupted cycles: {report.merged_fragments:,} first part(s) joined "
                     f"to their end; {report.abandoned_cycles:,} never resumed (no part); "
                     f"{report.open_cycles:,} waiting for their end")
    if report.shifts_agreeing or report.shifts_differing:
        lines.append(f"  controller PartCount per machine and shift: {report.shifts_agreeing:,} "
                     f"equal the cycles loaded, {report.shifts_differing:,} differ "
                     f"(_ingest.edge_shift_counters)")
    if report.rejects_unmarked:
        lines.append(f"  rejects (RejCount) waiting for a cycle of their shift to mark SCRAP: "
                     f"{report.rejects_unmarked:,}")
    if report.not_loaded:
        lines.append("  rows with no Bronze home (values in _ingest.edge_unmapped):")
        for (table, reason, item), count in sorted(report.not_loaded.items(),
                                                   key=lambda kv: str(kv[0])):
            what = f" {ITEM_LABELS.get(table, 'column')}={item}" if item is not None else ""
            lines.append(f"    {table}{what}: {count:,} ({reason})")
    if report.unmapped_values:
        lines.append("  values without a Bronze column (in _ingest.edge_unmapped):")
        for (table, column, reason), count in sorted(report.unmapped_values.items()):
            lines.append(f"    {table}.{column}: {count:,} ({reason})")
    if report.already_loaded:
        lines.append(f"  already loaded (replayed rows), marked synced now: "
                     f"{report.already_loaded:,}")
    for table, (total, unsynced) in report.unused_tables.items():
        lines.append(f"  not used: {table}: {total:,} row(s), {unsynced:,} unsynced, left as "
                     f"they are ({UNUSED_TABLES[table]})")
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
              help="This gateway's Status spelling, e.g. --status 1=RUNNING or "
                   "--status Stopped=ALARM (repeatable; overrides master.gateway_statuses "
                   "and the built-in meaning).")
@click.option("--parameter", "parameter_pairs", multiple=True, metavar="ID=COLUMN",
              help="Extra ParameterID mapping, e.g. --parameter P12=coolant_temp_c "
                   "(repeatable).")
@click.option("--alarm-severity", default=DEFAULT_ALARM_SEVERITY, show_default=True,
              help="Severity of the gateway's alarms (the template carries none).")
@click.option("--iotid-is-machine-id", is_flag=True,
              help="A numeric IOTID not in master.gateway_machines is the machine_id itself "
                   "(only for a site with one gateway: each gateway numbers from 1).")
@click.option("--energy-category", "energy_categories", multiple=True, metavar="NAME",
              help="One more Category spelling of the consumed-energy meter (built in: "
                   "CONSP, CONSUMPTION, CONSUMED, IMPORT; repeatable).")
@click.option("--interrupt-window", default=INTERRUPT_WINDOW_SECONDS, show_default=True,
              type=click.FloatRange(min=0),
              help="Seconds between a cycle row's end and an alarm that mark the cycle as "
                   "interrupted (its rest follows as another row).")
@click.option("--target", help="dbt target to load into (default: the profile's target).")
@click.option("--batch-rows", default=BATCH_ROWS, hidden=True, type=click.IntRange(min=1),
              help="Rows per transaction (tests use small batches to crash mid-table).")
def sync_edge(path: Path, gateway_id: str, timezone_name: str, status_pairs: tuple[str, ...],
              parameter_pairs: tuple[str, ...], alarm_severity: str, iotid_is_machine_id: bool,
              energy_categories: tuple[str, ...], interrupt_window: float, target: str | None,
              batch_rows: int) -> None:
    """Load a gateway's SQLite file (SETU edge template) into Bronze, each row exactly once.

    Reads the rows whose SyncedStatus is not 1 from the *_MVP tables, loads them into the
    Bronze tables with gateway_id = --gateway (machines mapped through
    master.gateway_machines or the gateway's MachineInformation_MVP labels), then sets their
    SyncedStatus to 1. Values Bronze has no column for (OperatorID, Target, regenerated and
    net energy, unknown ParameterIDs, ...) are counted in the output and kept in
    _ingest.edge_unmapped. Safe to kill and rerun: rows loaded before a crash are recognised
    from _ingest.edge_sync_ledger, never loaded twice. See docs/connectors/sqlite-sync.md.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress

    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

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
                iotid_is_machine_id=iotid_is_machine_id, energy_categories=energy_categories,
                interrupt_window=interrupt_window,
                on_rows=lambda _table, rows: progress.advance(task, rows))
        except (EdgeSyncError, psycopg.errors.UndefinedTable) as exc:
            hint = (" (run `setu bronze` first)"
                    if isinstance(exc, psycopg.errors.UndefinedTable) else "")
            console.print(f"[bold red]error:[/] {exc}{hint}", highlight=False, soft_wrap=True)
            raise SystemExit(2) from None
    for line in format_report(report, path):
        click.echo(line)
