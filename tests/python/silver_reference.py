"""An independent Python reading of the contract's Silver rules, and database helpers for the
Silver tests.

The reference works on Bronze rows as plain dicts (the values the tests inserted, with the ids
the database assigned) and computes, from /work/shared/contract.md alone, which rows are
quarantined and why, and what every Silver fact must hold. It shares no code or SQL with the
models: when the two disagree, one of them misreads the contract.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

Row = dict[str, Any]

BRONZE_TABLES = (
    "machine_state_events", "machine_cycles", "machine_telemetry", "alarms", "platform_extension",
    "downtime_events",
)
# Bronze columns beyond id, time, ingested_at, gateway_id (contract, "Bronze inputs").
BRONZE_COLUMNS: dict[str, tuple[str, ...]] = {
    "machine_state_events": ("machine_id", "state", "program_name"),
    "machine_cycles": (
        "machine_id", "cycle_start", "program_name", "part_count", "result",
        "std_cycle_seconds", "std_load_unload_seconds", "down_threshold_seconds",
    ),
    "machine_telemetry": (
        "machine_id", "spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct",
        "spindle_temp_c", "motor_temp_c", "coolant_temp_c", "power_kw", "energy_kwh",
    ),
    "alarms": ("machine_id", "alarm_code", "severity", "message", "event"),
    "platform_extension": ("device_id", "device_serial", "value", "unit", "firmware"),
    "downtime_events": ("machine_id", "down_start", "reason_code", "program_name"),
}
FACT_OF = {
    "machine_state_events": "fct_state_intervals",
    "machine_cycles": "fct_machine_cycles",
    "machine_telemetry": "fct_telemetry",
    "alarms": "fct_alarm_events",
    "platform_extension": "fct_platform_extension",
    "downtime_events": "fct_downtime_events",
}
TELEMETRY_MEASURES = BRONZE_COLUMNS["machine_telemetry"][1:]
STATES = {"OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE"}
REASON_ORDER = (
    "unknown_machine", "missing_value", "invalid_code", "out_of_range", "bad_interval",
    "future_time", "duplicate",
)
DEFAULT_TICKS_PER_MM = 20.0
# Hostile values, out_of_range like the contract's ranges (issue #16): codes and names longer
# than this, NaN, ±Infinity or beyond ±MAX_MAGNITUDE in any double precision column, and a
# time (or cycle_start, down_start) more than MAX_EVENT_AGE_YEARS calendar years (UTC) before
# ingested_at.
MAX_CHARS = 256
MAX_MAGNITUDE = 1e12
LONG_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "machine_state_events": ("program_name",),
    "machine_cycles": ("program_name",),
    "alarms": ("alarm_code", "severity"),
    "platform_extension": ("device_serial", "firmware"),
    "downtime_events": ("reason_code", "program_name"),
}
DOUBLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "machine_cycles": ("std_cycle_seconds", "std_load_unload_seconds",
                       "down_threshold_seconds"),
    "machine_telemetry": BRONZE_COLUMNS["machine_telemetry"][1:],
    "platform_extension": ("value",),
}
INTERVAL_START = {"machine_cycles": "cycle_start", "downtime_events": "down_start"}
MAX_EVENT_AGE_YEARS = 5


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Validation (contract: "Validation: nothing is lost", "Validation details")
# --------------------------------------------------------------------------------------------

def _outside(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None:
        return False
    return (low is not None and value < low) or (high is not None and value > high)


def years_before(instant: datetime, years: int) -> datetime | None:
    """instant minus whole calendar years in UTC (Feb 29 becomes Feb 28, as in PostgreSQL);
    None before year 1, where no datetime is."""
    at = instant.astimezone(UTC)
    if at.year - years < 1:
        return None
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def hostile(table: str, row: Row) -> bool:
    """A value that the contract's ranges alone would let through but that no index, sum or
    day split survives: too long, not finite, or older than the event horizon."""
    if any(row.get(c) is not None and len(row[c]) > MAX_CHARS
           for c in LONG_TEXT_COLUMNS.get(table, ())):
        return True
    if any(row.get(c) is not None and not abs(row[c]) <= MAX_MAGNITUDE  # NaN fails too
           for c in DOUBLE_COLUMNS.get(table, ())):
        return True
    oldest = years_before(row["ingested_at"], MAX_EVENT_AGE_YEARS)
    dated = [row["time"], row.get(INTERVAL_START.get(table, ""))]
    return oldest is not None and any(t is not None and t < oldest for t in dated)


def _code(value: str | None) -> str | None:
    return None if value is None else value.strip().upper()


def problems(table: str, row: Row, machines: set[int]) -> list[str]:
    """Every reason but `duplicate` that applies to row, in any order."""
    found: list[str] = []
    if table != "platform_extension" and (
        row.get("machine_id") is None or row["machine_id"] not in machines
    ):
        found.append("unknown_machine")
    if table == "machine_state_events":
        if row.get("state") is None:
            found.append("missing_value")
        elif _code(row["state"]) not in STATES:
            found.append("invalid_code")
    elif table == "machine_cycles":
        if any(row.get(c) is None for c in ("cycle_start", "part_count", "result")):
            found.append("missing_value")
        else:
            if _code(row["result"]) not in ("GOOD", "SCRAP"):
                found.append("invalid_code")
            if row["cycle_start"] > row["time"]:
                found.append("bad_interval")
    elif table == "machine_telemetry":
        if all(row.get(c) is None for c in TELEMETRY_MEASURES):
            found.append("missing_value")
        elif (
            _outside(row.get("spindle_temp_c"), -50, 300)
            or _outside(row.get("motor_temp_c"), -50, 300)
            or _outside(row.get("coolant_temp_c"), -50, 300)
            or _outside(row.get("spindle_speed_rpm"), 0, 60000)
            or _outside(row.get("power_kw"), 0, None)
            or _outside(row.get("feed_rate_mm_min"), 0, None)
            or _outside(row.get("spindle_load_pct"), 0, 1000)
        ):
            found.append("out_of_range")
    elif table == "alarms":
        if any(row.get(c) is None for c in ("alarm_code", "severity", "event")):
            found.append("missing_value")
        elif _code(row["event"]) not in ("RAISED", "CLEARED"):
            found.append("invalid_code")
    elif table == "platform_extension":
        if (
            row.get("value") is None
            or row.get("unit") is None
            or (row.get("device_id") is None and row.get("device_serial") is None)
        ):
            found.append("missing_value")
        elif row["unit"].strip().lower() not in ("ticks", "mm"):
            found.append("invalid_code")
    elif table == "downtime_events":
        # no code list: a reason missing from master.downtime_reasons is accepted
        if row.get("down_start") is None or row.get("reason_code") is None:
            found.append("missing_value")
        elif row["down_start"] > row["time"]:
            found.append("bad_interval")
    if hostile(table, row) and "out_of_range" not in found:
        found.append("out_of_range")
    if row["time"] > row["ingested_at"] + timedelta(minutes=5):
        found.append("future_time")
    return found


def first_reason(found: Iterable[str]) -> str | None:
    ranked = sorted(found, key=REASON_ORDER.index)
    return ranked[0] if ranked else None


def duplicate_key(table: str, row: Row) -> tuple:
    """Same table, machine (or device), time and values (contract)."""
    return (row["time"], *(row.get(c) for c in BRONZE_COLUMNS[table]))


def classify(table: str, rows: Sequence[Row], machines: set[int]) -> dict[int, str | None]:
    """bronze id -> quarantine reason (None when accepted). The earliest id of a set of
    otherwise valid rows with the same key is kept, later ones are duplicates."""
    verdict: dict[int, str | None] = {}
    kept: set[tuple] = set()
    for row in sorted(rows, key=lambda r: r["id"]):
        reason = first_reason(problems(table, row, machines))
        if reason is None:
            key = duplicate_key(table, row)
            if key in kept:
                reason = "duplicate"
            else:
                kept.add(key)
        verdict[row["id"]] = reason
    return verdict


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shift:
    site_id: int
    shift_id: int
    start_local: time
    end_local: time


def shift_of(site_timezone: str, shifts: Sequence[Shift], ts: datetime) -> int | None:
    """The shift whose local wall-clock window holds ts (lowest id when several do)."""
    local = ts.astimezone(ZoneInfo(site_timezone)).time().replace(tzinfo=None)
    for shift in sorted(shifts, key=lambda s: s.shift_id):
        if shift.start_local < shift.end_local:
            inside = shift.start_local <= local < shift.end_local
        else:  # crosses midnight (end == start: all day)
            inside = local >= shift.start_local or local < shift.end_local
        if inside:
            return shift.shift_id
    return None


def cycle_facts(
    rows: Sequence[Row],
    verdict: dict[int, str | None],
    shift_for: Callable[[int, datetime], int | None] = lambda machine, ts: None,
) -> dict[int, Row]:
    """bronze id -> the fct_machine_cycles values the contract fixes."""
    by_machine: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        if verdict[row["id"]] is None:
            by_machine[row["machine_id"]].append(row)
    facts: dict[int, Row] = {}
    for machine, cycles in by_machine.items():
        previous: Row | None = None
        for row in sorted(cycles, key=lambda r: (r["cycle_start"], r["id"])):
            gap = exceed = downtime = delta = None
            if previous is not None:
                gap = (row["cycle_start"] - previous["time"]).total_seconds()
                std = row["std_load_unload_seconds"]
                threshold = row["down_threshold_seconds"]
                if gap <= std:
                    exceed, downtime = 0.0, 0.0
                elif gap <= threshold:
                    exceed, downtime = gap - std, 0.0
                else:
                    exceed, downtime = 0.0, gap - std
                delta = row["part_count"] - previous["part_count"]
                if delta < 0:
                    delta = row["part_count"]
            facts[row["id"]] = {
                "machine_id": machine,
                "cycle_start": row["cycle_start"],
                "cycle_end": row["time"],
                "cycle_seconds": (row["time"] - row["cycle_start"]).total_seconds(),
                "load_unload_seconds": gap,
                "exceed_load_unload_seconds": exceed,
                "downtime_seconds": downtime,
                "parts_delta": delta,
                "result": row["result"].strip().upper(),
                "program_name": row["program_name"],
                "shift_id": shift_for(machine, row["cycle_start"]),
            }
            previous = row
    return facts


def latest_cycles(
    rows: Sequence[Row], verdict: dict[int, str | None], machines: Iterable[int]
) -> dict[int, Row]:
    """machine -> latest_cycle_state values (nulls for a machine without cycles)."""
    latest: dict[int, Row] = {
        m: {"last_cycle_end": None, "last_part_count": None, "last_bronze_id": None}
        for m in machines
    }
    best: dict[int, tuple] = {}
    for row in rows:
        if verdict[row["id"]] is not None:
            continue
        key = (row["cycle_start"], row["id"])
        if row["machine_id"] not in best or key > best[row["machine_id"]]:
            best[row["machine_id"]] = key
            latest[row["machine_id"]] = {
                "last_cycle_end": row["time"],
                "last_part_count": row["part_count"],
                "last_bronze_id": row["id"],
            }
    return latest


def state_intervals(rows: Sequence[Row], verdict: dict[int, str | None]) -> dict[int, Row]:
    """bronze id -> fct_state_intervals values: valid_to is the next event by (time, id)."""
    by_machine: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        if verdict[row["id"]] is None:
            by_machine[row["machine_id"]].append(row)
    facts: dict[int, Row] = {}
    for machine, events in by_machine.items():
        ordered = sorted(events, key=lambda r: (r["time"], r["id"]))
        for row, following in zip(ordered, [*ordered[1:], None], strict=True):
            facts[row["id"]] = {
                "machine_id": machine,
                "state": row["state"].strip().upper(),
                "program_name": row["program_name"],
                "valid_from": row["time"],
                "valid_to": None if following is None else following["time"],
            }
    return facts


def telemetry_facts(rows: Sequence[Row], verdict: dict[int, str | None]) -> dict[int, Row]:
    return {
        row["id"]: {"machine_id": row["machine_id"], "time": row["time"],
                    **{c: row.get(c) for c in TELEMETRY_MEASURES}}
        for row in rows if verdict[row["id"]] is None
    }


def severity_class(severity: str) -> str:
    lowered = severity.lower()
    return lowered if lowered in ("emergency", "error", "warning") else "other"


def alarm_facts(rows: Sequence[Row], verdict: dict[int, str | None]) -> dict[int, Row]:
    return {
        row["id"]: {
            "machine_id": row["machine_id"], "time": row["time"],
            "alarm_code": row["alarm_code"], "severity": row["severity"],
            "severity_class": severity_class(row["severity"]),
            "event": row["event"].strip().upper(),
        }
        for row in rows if verdict[row["id"]] is None
    }


def platform_facts(
    rows: Sequence[Row], verdict: dict[int, str | None], ticks_per_mm: dict[int, float]
) -> dict[int, Row]:
    """bronze id -> fct_platform_extension values. `device` is ("id", n) for a numeric id (sent,
    or the id an earlier accepted reading tied to the serial) or ("serial", s) for the device
    created for a serial seen alone (its numeric id is the warehouse's choice)."""
    owners: dict[str, int] = {}
    facts: dict[int, Row] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        if verdict[row["id"]] is not None:
            continue
        serial = row.get("device_serial")
        if row.get("device_id") is not None:
            device: tuple = ("id", row["device_id"])
            created_from = "device_id"
        elif serial in owners:
            device, created_from = ("id", owners[serial]), "serial_of_known_device"
        else:
            device, created_from = ("serial", serial), "serial"
        unit = row["unit"].strip().lower()
        value = row["value"]
        if unit == "ticks":
            scale = ticks_per_mm.get(device[1], DEFAULT_TICKS_PER_MM) if device[0] == "id" \
                else DEFAULT_TICKS_PER_MM
            value_mm = value / scale
        else:
            value_mm = value
        facts[row["id"]] = {
            "device": device, "time": row["time"], "value_mm": value_mm,
            "side": "LEFT" if value < 0 else "RIGHT" if value > 0 else "CENTER",
            "unit": unit, "firmware": row.get("firmware"), "device_created_from": created_from,
        }
        if row.get("device_id") is not None and serial is not None:
            owners.setdefault(serial, row["device_id"])
    return facts


def downtime_facts(
    rows: Sequence[Row],
    verdict: dict[int, str | None],
    shift_for: Callable[[int, datetime], int | None] = lambda machine, ts: None,
) -> dict[int, Row]:
    """bronze id -> fct_downtime_events values: down_end is the Bronze time, the shift is
    that of down_start, the reason code as sent."""
    return {
        row["id"]: {
            "machine_id": row["machine_id"], "down_start": row["down_start"],
            "down_end": row["time"],
            "down_seconds": (row["time"] - row["down_start"]).total_seconds(),
            "reason_code": row["reason_code"], "program_name": row.get("program_name"),
            "shift_id": shift_for(row["machine_id"], row["down_start"]),
        }
        for row in rows if verdict[row["id"]] is None
    }


# --------------------------------------------------------------------------------------------
# Database helpers (the tests' plumbing, not part of the reference)
# --------------------------------------------------------------------------------------------

DBT_SCRATCH = Path(tempfile.gettempdir()) / f"setu-test-silver-{os.getuid()}"


def dbt_args(*args: str) -> list[str]:
    """dbt arguments with target/ and logs/ away from the developer's (and shared by the
    Silver test modules, so partial parsing is reused)."""
    return [*args, "--target-path", str(DBT_SCRATCH / "target"),
            "--log-path", str(DBT_SCRATCH / "logs")]


# Staging and Silver with the tests whose parents are all among them (Gold's relationship
# tests to the Silver dims stay out: Gold is not built here).
SILVER_SELECTION = ("--select", "staging", "silver", "source:bronze", "source:master",
                    "--indirect-selection", "cautious")


def batch_vars(batch_size: int) -> list[str]:
    return ["--vars", f"{{setu_batch_size: {batch_size}}}"]


SILVER_STATE_TABLES = (
    "silver.quarantine", "silver.latest_cycle_state", "silver.dim_device", "silver.dim_program",
    "silver.dim_alarm_code",
)


def reset_warehouse(conn: psycopg.Connection) -> None:
    """Empty Bronze, master and Silver so a module starts from nothing (each test module
    shares the session cluster). Facts are dropped: the next run recreates them."""
    with conn.cursor() as cur:
        cur.execute(
            "select format('%I.%I', schemaname, tablename) from pg_tables"
            " where schemaname = 'bronze' or (schemaname, tablename) in"
            " (select 'master', unnest(array['sites','shifts','machines',"
            "  'device_calibrations','alarm_codes','downtime_reasons']))"
        )
        tables = [r[0] for r in cur.fetchall()]
        if tables:
            cur.execute(f"truncate {', '.join(tables)} restart identity")
        for fact in FACT_OF.values():
            cur.execute(f"drop table if exists silver.{fact} cascade")
        for table in SILVER_STATE_TABLES:
            cur.execute(f"select to_regclass('{table}')")
            if cur.fetchone()[0] is not None:
                cur.execute(f"truncate {table}")
        cur.execute("select to_regclass('_etl.watermarks')")
        if cur.fetchone()[0] is not None:
            cur.execute("delete from _etl.watermarks")


def insert_rows(cur: psycopg.Cursor, table: str, rows: Sequence[Row]) -> None:
    """Inserts rows in order (so ids follow the list) and stores each row's id in it."""
    for row in rows:
        columns = [c for c in ("time", "ingested_at", "gateway_id", *BRONZE_COLUMNS[table])
                   if c in row]
        cur.execute(
            f"insert into bronze.{table} ({', '.join(columns)})"
            f" values ({', '.join(['%s'] * len(columns))}) returning id, ingested_at",
            [row[c] for c in columns],
        )
        row["id"], row["ingested_at"] = cur.fetchone()


def fetch_dicts(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def quarantine_reasons(conn: psycopg.Connection, table: str) -> dict[int, str]:
    return {
        r["bronze_id"]: r["reason"]
        for r in fetch_dicts(
            conn, "select bronze_id, reason from silver.quarantine where source_table = %s",
            [table])
    }


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every Silver fact, the quarantine and the cycle state cache, row for row, without the
    columns that record processing (etl_batch_id, quarantined_at, updated_at)."""
    skip = {"etl_batch_id", "quarantined_at", "updated_at"}
    relations = {
        **{fact: "bronze_id" for fact in FACT_OF.values()},
        "quarantine": "source_table, bronze_id",
        "latest_cycle_state": "machine_id",
    }
    result: dict[str, list[tuple]] = {}
    with conn.cursor() as cur:
        for relation, order in relations.items():
            cur.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'silver' and table_name = %s order by ordinal_position",
                [relation],
            )
            columns = [r[0] for r in cur.fetchall() if r[0] not in skip]
            assert columns, f"silver.{relation} does not exist"
            cur.execute(f"select {', '.join(columns)} from silver.{relation} order by {order}")
            result[relation] = [tuple(columns), *cur.fetchall()]
    return result


def close(a: Any, b: Any, tolerance: float = 1e-9) -> bool:
    if isinstance(a, float) and isinstance(b, float | int) and b is not None:
        return math.isclose(a, float(b), rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(b, float) and isinstance(a, int):
        return math.isclose(float(a), b, rel_tol=tolerance, abs_tol=tolerance)
    return a == b


def differences(expected: dict[int, Row], actual: dict[int, Row]) -> list[str]:
    """Human-readable differences between two {bronze_id: {column: value}} maps (only the
    expected columns are compared)."""
    out: list[str] = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            out.append(f"{key}: missing, expected {expected[key]}")
        elif key not in expected:
            out.append(f"{key}: unexpected row {actual[key]}")
        else:
            for column, value in expected[key].items():
                if not close(actual[key].get(column), value):
                    out.append(f"{key}.{column}: expected {value!r}, got "
                               f"{actual[key].get(column)!r}")
    return out
