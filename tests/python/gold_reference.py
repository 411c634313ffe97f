"""An independent Python reading of the contract's Gold and serving rules, and the database
plumbing of the Gold tests.

The reference takes the accepted Bronze rows as plain dicts (the values the tests inserted,
with the ids the database assigned) and computes, from /work/shared/contract.md alone, every
row of the Gold relations and of webapp.machine_status_current. It shares no code or SQL with
the models: when the two disagree, one of them misreads the contract.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]
Key = tuple

STATES = ("OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE")
SENSORS = ("spindle_temp_c", "motor_temp_c", "coolant_temp_c", "spindle_load_pct", "power_kw")
MEASURES = (
    "spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct", "spindle_temp_c",
    "motor_temp_c", "coolant_temp_c", "power_kw", "energy_kwh",
)
# Bronze columns beyond id, time, ingested_at, gateway_id (contract, "Bronze inputs").
BRONZE_COLUMNS: dict[str, tuple[str, ...]] = {
    "machine_state_events": ("machine_id", "state", "program_name"),
    "machine_cycles": (
        "machine_id", "cycle_start", "program_name", "part_count", "result",
        "std_cycle_seconds", "std_load_unload_seconds", "down_threshold_seconds",
    ),
    "machine_telemetry": ("machine_id", *MEASURES),
    "alarms": ("machine_id", "alarm_code", "severity", "message", "event"),
    "downtime_events": ("machine_id", "down_start", "reason_code", "program_name"),
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _by_time_then_id(row: Row) -> tuple:
    # contract: events of one machine with the same time are ordered by id
    return (row["time"], row["id"])


def _per_machine(rows: Iterable[Row]) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row["machine_id"]].append(row)
    return {machine: sorted(events, key=_by_time_then_id) for machine, events in grouped.items()}


def local_date(instant: datetime, timezone: str) -> date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant (UTC) where the local day starts."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def floor_bucket(instant: datetime, minutes: int) -> datetime:
    """UTC-aligned bucket start (time_bucket from the epoch; widths dividing a day)."""
    at = instant.astimezone(UTC)
    since_midnight = (at.hour * 60 + at.minute) // minutes * minutes
    return at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        minutes=since_midnight)


# ---- gold.machine_utilization_daily ----------------------------------------------------------

def closed_intervals(state_rows: Iterable[Row]) -> list[tuple[int, str, datetime, datetime]]:
    """(machine, state, from, to) for every state event its machine's next event closed."""
    out = []
    for machine, events in _per_machine(state_rows).items():
        for current, following in zip(events, events[1:], strict=False):
            out.append((machine, current["state"].strip().upper(), current["time"],
                        following["time"]))
    return out


# An interval counts for at most this many calendar years (UTC) from its start: the
# contract's event horizon (max_event_age), so no interval splits into more days.
MAX_EVENT_AGE_YEARS = 5


def years_after(instant: datetime, years: int) -> datetime:
    """instant plus whole calendar years in UTC (Feb 29 becomes Feb 28, as in PostgreSQL)."""
    at = instant.astimezone(UTC)
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def utilization_daily(state_rows: Iterable[Row], timezone_of: dict[int, str]) -> dict[Key, Row]:
    seconds: dict[Key, dict[str, float]] = {}
    for machine, state, start, closed_at in closed_intervals(state_rows):
        end = min(closed_at, years_after(start, MAX_EVENT_AGE_YEARS))
        zone = timezone_of[machine]
        piece_start = start
        while piece_start < end:
            day = local_date(piece_start, zone)
            piece_end = min(end, local_midnight(day + timedelta(days=1), zone))
            totals = seconds.setdefault((machine, day), dict.fromkeys(STATES, 0.0))
            totals[state] += (piece_end - piece_start).total_seconds()
            piece_start = piece_end
    result = {}
    for key, totals in seconds.items():
        not_off = sum(value for state, value in totals.items() if state != "OFF")
        result[key] = {
            **{f"{state.lower()}_seconds": value for state, value in totals.items()},
            "utilization_pct": 100.0 * totals["RUNNING"] / not_off if not_off else None,
        }
    return result


# ---- gold.program_history_daily --------------------------------------------------------------

def program_history_daily(cycle_rows: Iterable[Row], timezone_of: dict[int, str]
                          ) -> dict[Key, Row]:
    result: dict[Key, Row] = {}
    for cycle in cycle_rows:
        machine = cycle["machine_id"]
        key = (machine, local_date(cycle["time"], timezone_of[machine]), cycle["program_name"])
        group = result.setdefault(
            key, {"cycles": 0, "good_parts": 0, "scrap_parts": 0, "cycle_seconds": 0.0})
        outcome = cycle["result"].strip().upper()
        group["cycles"] += 1
        group["good_parts"] += outcome == "GOOD"
        group["scrap_parts"] += outcome == "SCRAP"
        group["cycle_seconds"] += (cycle["time"] - cycle["cycle_start"]).total_seconds()
    return result


# ---- gold.alerts_daily -----------------------------------------------------------------------

def severity_class(severity: str) -> str:
    lowered = severity.lower()
    return lowered if lowered in ("emergency", "error", "warning") else "other"


def alerts_daily(alarm_rows: Iterable[Row], timezone_of: dict[int, str]) -> dict[Key, Row]:
    result: dict[Key, Row] = {}
    for alarm in alarm_rows:
        if alarm["event"].strip().upper() != "RAISED":
            continue
        machine = alarm["machine_id"]
        key = (machine, local_date(alarm["time"], timezone_of[machine]),
               severity_class(alarm["severity"]))
        result.setdefault(key, {"alert_count": 0})["alert_count"] += 1
    return result


# ---- gold.energy_hourly, gold.energy_daily --------------------------------------------------

def energy_hourly(telemetry_rows: Iterable[Row]) -> dict[Key, Row]:
    result: dict[Key, Row] = {}
    readings = [row for row in telemetry_rows if row.get("energy_kwh") is not None]
    for machine, events in _per_machine(readings).items():
        previous = None
        for reading in events:
            value = reading["energy_kwh"]
            if previous is None:
                kwh = 0.0                      # a machine's first reading counts 0
            elif value < previous:
                kwh = value                    # meter reset: the new reading's value
            else:
                kwh = value - previous
            bucket = floor_bucket(reading["time"], 60)
            result.setdefault((machine, bucket), {"kwh": 0.0})["kwh"] += kwh
            previous = value
    return result


def energy_daily(hourly: dict[Key, Row], timezone_of: dict[int, str]) -> dict[Key, Row]:
    days: dict[Key, list[tuple[datetime, float]]] = defaultdict(list)
    for (machine, bucket), row in hourly.items():
        days[(machine, local_date(bucket, timezone_of[machine]))].append((bucket, row["kwh"]))
    result = {}
    for key, hours in days.items():
        # the most kWh, the earliest bucket on ties
        peak_hour, peak_kwh = min(hours, key=lambda hour: (-hour[1], hour[0]))
        result[key] = {"kwh_total": sum(kwh for _, kwh in hours), "peak_hour": peak_hour,
                       "peak_kwh": peak_kwh}
    return result


# ---- gold.sensor_stats_15m -------------------------------------------------------------------

def percentile_cont(values: Sequence[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])


def sensor_stats_15m(telemetry_rows: Iterable[Row]) -> dict[Key, Row]:
    samples: dict[Key, list[float]] = defaultdict(list)
    for row in telemetry_rows:
        for sensor in SENSORS:
            if row.get(sensor) is not None:
                samples[(row["machine_id"], sensor, floor_bucket(row["time"], 15))].append(
                    row[sensor])
    return {
        key: {
            "sample_count": len(values), "min_value": min(values),
            "p25": percentile_cont(values, 0.25), "median": percentile_cont(values, 0.5),
            "p75": percentile_cont(values, 0.75), "max_value": max(values),
            "mean_value": sum(values) / len(values),
        }
        for key, values in samples.items()
    }


# ---- gold.downtime_daily, gold.oee_daily -------------------------------------------------------

def downtime_daily(downtime_rows: Iterable[Row], timezone_of: dict[int, str],
                   planned_reasons: dict[str, bool]) -> dict[Key, Row]:
    """Each stoppage whole on the local date of its start; `planned` false for a code that
    master.downtime_reasons does not hold."""
    result: dict[Key, Row] = {}
    for stop in downtime_rows:
        machine = stop["machine_id"]
        key = (machine, local_date(stop["down_start"], timezone_of[machine]),
               stop["reason_code"])
        group = result.setdefault(key, {"events": 0, "down_seconds": 0.0,
                                        "planned": planned_reasons.get(key[2], False)})
        group["events"] += 1
        group["down_seconds"] += (stop["time"] - stop["down_start"]).total_seconds()
    return result


def oee_daily(utilization: dict[Key, Row], downtime: dict[Key, Row],
              cycle_rows: Iterable[Row], timezone_of: dict[int, str]) -> dict[Key, Row]:
    """One row per utilization row, with the contract's formulas."""
    planned_down: dict[Key, float] = defaultdict(float)
    for (machine, day, _reason), group in downtime.items():
        if group["planned"]:
            planned_down[(machine, day)] += group["down_seconds"]
    standard: dict[Key, float] = defaultdict(float)
    cycles: dict[Key, int] = defaultdict(int)
    good: dict[Key, int] = defaultdict(int)
    for cycle in cycle_rows:
        machine = cycle["machine_id"]
        key = (machine, local_date(cycle["time"], timezone_of[machine]))
        cycles[key] += 1
        good[key] += cycle["result"].strip().upper() == "GOOD"
        if cycle.get("std_cycle_seconds") is not None:
            standard[key] += cycle["std_cycle_seconds"]
    result = {}
    for key, day in utilization.items():
        scheduled = sum(day[f"{state.lower()}_seconds"] for state in STATES if state != "OFF")
        planned = max(scheduled - planned_down[key], 0.0)
        running = day["running_seconds"]
        availability = running / planned if planned else None
        performance = standard[key] / running if running else None
        quality = good[key] / cycles[key] if cycles[key] else None
        factors = (availability, performance, quality)
        result[key] = {
            "planned_seconds": planned, "availability": availability,
            "performance": performance, "quality": quality,
            "oee": None if None in factors else availability * performance * quality,
        }
    return result


# ---- webapp.machine_status_current -----------------------------------------------------------

def machine_status_current(machines: Iterable[int], state_rows: Iterable[Row],
                           telemetry_rows: Iterable[Row], alarm_rows: Iterable[Row]
                           ) -> dict[Key, Row]:
    states = _per_machine(state_rows)
    telemetry = _per_machine(telemetry_rows)
    alarms = _per_machine(alarm_rows)
    result = {}
    for machine in machines:
        latest_state = states[machine][-1] if machine in states else None
        samples = telemetry.get(machine, [])
        row: Row = {
            "state": latest_state["state"].strip().upper() if latest_state else None,
            "state_since": latest_state["time"] if latest_state else None,
            "program_name": latest_state["program_name"] if latest_state else None,
            "last_telemetry_at": max((s["time"] for s in samples), default=None),
        }
        for measure in MEASURES:
            sent = [s[measure] for s in samples if s.get(measure) is not None]
            row[measure] = sent[-1] if sent else None
        latest_event_of_code: dict[str, str] = {}
        for alarm in alarms.get(machine, []):
            latest_event_of_code[alarm["alarm_code"]] = alarm["event"].strip().upper()
        row["open_alarm_count"] = sum(
            event == "RAISED" for event in latest_event_of_code.values())
        result[(machine,)] = row
    return result


def every_relation(machines: dict[int, str], rows: dict[str, list[Row]],
                   planned_reasons: dict[str, bool] | None = None) -> dict[str, dict]:
    """Every Gold and serving relation from the accepted Bronze rows; machines maps each
    machine in master.machines to its site's time zone, planned_reasons each code of
    master.downtime_reasons to its `planned`."""
    hourly = energy_hourly(rows["machine_telemetry"])
    utilization = utilization_daily(rows["machine_state_events"], machines)
    downtime = downtime_daily(rows.get("downtime_events", []), machines, planned_reasons or {})
    return {
        "gold.machine_utilization_daily": utilization,
        "gold.downtime_daily": downtime,
        "gold.oee_daily": oee_daily(utilization, downtime, rows["machine_cycles"], machines),
        "gold.program_history_daily": program_history_daily(rows["machine_cycles"], machines),
        "gold.alerts_daily": alerts_daily(rows["alarms"], machines),
        "gold.energy_hourly": hourly,
        "gold.energy_daily": energy_daily(hourly, machines),
        "gold.sensor_stats_15m": sensor_stats_15m(rows["machine_telemetry"]),
        "webapp.machine_status_current": machine_status_current(
            machines, rows["machine_state_events"], rows["machine_telemetry"], rows["alarms"]),
    }


# ---- comparison ------------------------------------------------------------------------------

KEYS = {
    "gold.machine_utilization_daily": ("machine_id", "local_date"),
    "gold.program_history_daily": ("machine_id", "local_date", "program_name"),
    "gold.alerts_daily": ("machine_id", "local_date", "severity_class"),
    "gold.downtime_daily": ("machine_id", "local_date", "reason_code"),
    "gold.oee_daily": ("machine_id", "local_date"),
    "gold.energy_hourly": ("machine_id", "bucket"),
    "gold.energy_daily": ("machine_id", "local_date"),
    "gold.sensor_stats_15m": ("machine_id", "sensor", "bucket"),
    "webapp.machine_status_current": ("machine_id",),
}
# Columns that record when or in which batch a row was written, not what it says.
BOOKKEEPING = {"etl_batch_id", "refreshed_at"}


def close(expected: Any, actual: Any, tolerance: float = 1e-9) -> bool:
    if isinstance(expected, float) and isinstance(actual, float | int):
        return math.isclose(expected, float(actual), rel_tol=tolerance, abs_tol=tolerance)
    return expected == actual


def keyed(relation: str, rows: Iterable[Row]) -> dict[Key, Row]:
    return {tuple(row[column] for column in KEYS[relation]): row for row in rows}


def differences(relation: str, expected: dict[Key, Row], actual_rows: Iterable[Row]
                ) -> list[str]:
    """Human-readable differences (only the expected columns are compared)."""
    actual = keyed(relation, actual_rows)
    out: list[str] = []
    for key in sorted(set(expected) | set(actual), key=repr):
        if key not in actual:
            out.append(f"{relation} {key}: missing, expected {expected[key]}")
        elif key not in expected:
            out.append(f"{relation} {key}: unexpected row {actual[key]}")
        else:
            for column, value in expected[key].items():
                if not close(value, actual[key][column]):
                    out.append(f"{relation} {key}.{column}: expected {value!r}, got "
                               f"{actual[key][column]!r}")
    return out


# ---- database plumbing -----------------------------------------------------------------------

DBT_SCRATCH = Path(tempfile.gettempdir()) / f"setu-test-gold-{os.getuid()}"
# Staging, Silver, Gold and serving, without the telemetry rollups (not contract relations,
# covered by test_timescale_macros); tests only when all their parents are selected.
SELECTION = ("--select", "staging", "silver", "gold", "webapp",
             "--exclude", "telemetry_hourly", "telemetry_daily",
             "--indirect-selection", "cautious")


def dbt_args(*args: str) -> list[str]:
    """dbt arguments with target/ and logs/ away from the developer's."""
    return [*args, "--target-path", str(DBT_SCRATCH / "target"),
            "--log-path", str(DBT_SCRATCH / "logs")]


def reset_inputs(conn: psycopg.Connection) -> None:
    """Empty Bronze and master (other test modules share the session cluster)."""
    tables = [name for (name,) in conn.execute(
        "select format('%I.%I', schemaname, tablename) from pg_tables"
        " where schemaname = 'bronze' or (schemaname, tablename) in"
        " (select 'master', unnest(array['sites', 'shifts', 'machines',"
        "  'device_calibrations', 'alarm_codes', 'downtime_reasons']))")]
    conn.execute(f"truncate {', '.join(tables)} restart identity")


def insert_rows(conn: psycopg.Connection, table: str, rows: Sequence[Row]) -> None:
    """Inserts rows in order (so ids follow the list) and stores each row's id in it."""
    for row in rows:
        columns = [c for c in ("time", "ingested_at", "gateway_id", *BRONZE_COLUMNS[table])
                   if c in row]
        row["id"] = conn.execute(
            f"insert into bronze.{table} ({', '.join(columns)})"
            f" values ({', '.join(['%s'] * len(columns))}) returning id",
            [row[c] for c in columns],
        ).fetchone()[0]


def fetch_dicts(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def snapshot(conn: psycopg.Connection, bookkeeping: bool = False) -> dict[str, list[Row]]:
    """Every Gold and serving relation, row for row in key order; without the bookkeeping
    columns unless asked for."""
    result = {}
    for relation, key in KEYS.items():
        schema, table = relation.split(".")
        columns = [name for (name,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, table]) if bookkeeping or name not in BOOKKEEPING]
        assert columns, f"{relation} does not exist"
        result[relation] = fetch_dicts(
            conn, f"select {', '.join(columns)} from {relation} order by {', '.join(key)}")
    return result
