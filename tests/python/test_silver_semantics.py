"""Silver semantics on small hand-made Bronze inputs: the expected values are worked out by
hand from the contract (and cross-checked with the independent reference in
silver_reference.py), never read back from the SQL under test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta

import psycopg
import pytest

import silver_reference as ref
from silver_reference import Row, batch_vars, dbt_args, fetch_dicts, utc

BERLIN = "Europe/Berlin"
SHIFTS = [
    ref.Shift(1, 1, time(6), time(14)),   # early
    ref.Shift(1, 2, time(14), time(22)),  # late
    ref.Shift(1, 3, time(22), time(6)),   # night, crosses midnight
]
MACHINES = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}  # machine -> site; 3 never sends a cycle
UNKNOWN_MACHINE = 99
STD, THR = 10.0, 100.0
T0 = utc(2026, 1, 5, 10, 0, 0)  # 11:00 in Berlin (CET): early shift


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def cycle(machine, start, end, part_count, result="GOOD", **extra) -> Row:
    row = {
        "machine_id": machine, "cycle_start": start, "time": end, "part_count": part_count,
        "result": result, "program_name": "P-100", "std_cycle_seconds": 60.0,
        "std_load_unload_seconds": STD, "down_threshold_seconds": THR,
        "gateway_id": "gw-1",
    }
    row.update(extra)
    row.setdefault("ingested_at", row["time"] + timedelta(seconds=2))
    return row


def event(table: str, when, **values) -> Row:
    row = {"time": when, "gateway_id": "gw-1", **values}
    row.setdefault("ingested_at", when + timedelta(seconds=2))
    return row


def future(row: Row, seconds_ahead: float) -> Row:
    """The row's time lies seconds_ahead after its arrival."""
    return {**row, "ingested_at": row["time"] - timedelta(seconds=seconds_ahead)}


# ---- the hand-made Bronze rows, by name, in insertion (id) order per table -----------------

def bronze_cases() -> dict[str, dict[str, Row]]:
    c = {}
    # Machine 1: one gap of every kind (std = 10 s, threshold = 100 s) and a counter reset.
    c["c1_first"] = cycle(1, at(0), at(60), 5)
    c["c2_gap_5"] = cycle(1, at(65), at(125), 6)
    c["c3_gap_std"] = cycle(1, at(135), at(195), 7)
    c["c4_gap_50"] = cycle(1, at(245), at(305), 8)
    c["c5_gap_thr"] = cycle(1, at(405), at(465), 9, result="scrap")
    c["c6_gap_250_reset"] = cycle(1, at(715), at(775), 2)
    c["c7_gap_3"] = cycle(1, at(778), at(838), 3, result=" Good ")
    # Machine 2: shifts, Berlin wall clock (CET = UTC+1, CEST = UTC+2).
    c["s_late_end"] = cycle(2, utc(2026, 1, 5, 20, 59, 59), utc(2026, 1, 5, 21, 0, 30), 1)
    c["s_night_start"] = cycle(2, utc(2026, 1, 5, 21, 0, 0), utc(2026, 1, 5, 21, 1), 2)
    c["s_night_midnight"] = cycle(2, utc(2026, 1, 5, 23, 30), utc(2026, 1, 5, 23, 31), 3)
    c["s_night_0530"] = cycle(2, utc(2026, 1, 6, 4, 30), utc(2026, 1, 6, 4, 31), 4)
    c["s_early_0600"] = cycle(2, utc(2026, 1, 6, 5, 0), utc(2026, 1, 6, 5, 1), 5)
    # 2026-03-29: clocks jump 02:00 CET -> 03:00 CEST at 01:00 UTC.
    c["dst_spring_0159"] = cycle(2, utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0), 6)
    c["dst_spring_0559"] = cycle(2, utc(2026, 3, 29, 3, 59), utc(2026, 3, 29, 4, 0), 7)
    c["dst_spring_0600"] = cycle(2, utc(2026, 3, 29, 4, 0), utc(2026, 3, 29, 4, 1), 8)
    c["dst_spring_1400"] = cycle(2, utc(2026, 3, 29, 12, 0), utc(2026, 3, 29, 12, 1), 9)
    # 2026-10-25: clocks fall back 03:00 CEST -> 02:00 CET at 01:00 UTC.
    c["dst_autumn_eve_0630"] = cycle(2, utc(2026, 10, 24, 4, 30), utc(2026, 10, 24, 4, 31), 10)
    c["dst_autumn_0530"] = cycle(2, utc(2026, 10, 25, 4, 30), utc(2026, 10, 25, 4, 31), 11)
    c["dst_autumn_0600"] = cycle(2, utc(2026, 10, 25, 5, 0), utc(2026, 10, 25, 5, 1), 12)
    c["dst_autumn_2200"] = cycle(2, utc(2026, 10, 25, 21, 0), utc(2026, 10, 25, 21, 1), 13)
    # Machine 4: quarantine reasons, precedence and duplicates.
    ok = cycle(4, at(0), at(60), 1)
    c["q_ok"] = ok
    c["q_unknown"] = cycle(UNKNOWN_MACHINE, at(0), at(60), 1)
    c["q_null_machine"] = cycle(None, at(0), at(60), 1)
    c["q_no_start"] = cycle(4, None, at(70), 1)
    c["q_no_count"] = cycle(4, at(0), at(70), None)
    c["q_no_result"] = cycle(4, at(0), at(70), 1, result=None)
    c["q_bad_result"] = cycle(4, at(0), at(70), 1, result="MAYBE")
    c["q_bad_interval"] = cycle(4, at(71), at(70), 1)
    c["q_future"] = future(cycle(4, at(80), at(90), 1), 301)
    c["q_future_edge_ok"] = future(cycle(4, at(100), at(110), 2), 300)
    c["q_dup_of_ok"] = {**ok, "ingested_at": at(500), "gateway_id": "gw-2"}
    c["q_dup_but_future"] = future({**ok}, 600)
    # precedence: several problems, the first in the contract's order wins
    c["p_unknown_missing_future"] = future(cycle(UNKNOWN_MACHINE, None, at(70), 1), 900)
    c["p_missing_invalid"] = cycle(4, None, at(70), 1, result="MAYBE")
    c["p_invalid_interval_future"] = future(cycle(4, at(80), at(70), 1, result="??"), 900)
    c["p_interval_future"] = future(cycle(4, at(80), at(70), 1), 900)
    # a duplicate of a future_time row is not a duplicate; a copy of that copy is
    fut = cycle(4, at(200), at(260), 3)
    c["f1_future"] = future(fut, 3600)
    c["f2_copy_ok"] = {**fut, "ingested_at": at(270)}
    c["f3_copy_dup"] = {**fut, "ingested_at": at(280)}
    # Machine 5: a cycle that is a duplicate except for one value is not a duplicate.
    c["m5_a"] = cycle(5, at(0), at(60), 1)
    c["m5_b_other_value"] = {**c["m5_a"], "std_cycle_seconds": 61.0}
    return {"machine_cycles": c}


def state_cases() -> dict[str, Row]:
    e = {}
    e["s1"] = event("machine_state_events", at(0), machine_id=1, state="running",
                    program_name="P-100")
    e["s2"] = event("machine_state_events", at(300), machine_id=1, state="IDLE",
                    program_name=None)
    e["s3_tie_first"] = event("machine_state_events", at(600), machine_id=1, state="Setup",
                              program_name="P-200")
    e["s4_tie_second"] = event("machine_state_events", at(600), machine_id=1,
                               state="RUNNING", program_name="P-200")
    e["s5_open"] = event("machine_state_events", at(1200), machine_id=1, state="OFF",
                         program_name=None)
    e["s_only_m2"] = event("machine_state_events", at(0), machine_id=2, state="ALARM",
                           program_name=None)
    e["sq_missing"] = event("machine_state_events", at(10), machine_id=2, state=None)
    e["sq_invalid"] = event("machine_state_events", at(10), machine_id=2, state="DANCING")
    e["sq_unknown"] = event("machine_state_events", at(10), machine_id=UNKNOWN_MACHINE,
                            state="IDLE")
    e["sq_future"] = future(event("machine_state_events", at(10), machine_id=2,
                                  state="IDLE"), 400)
    e["sq_dup"] = {**e["s2"], "ingested_at": at(900)}
    return e


def telemetry_cases() -> dict[str, Row]:
    def sample(seconds, **values):
        return event("machine_telemetry", at(seconds), machine_id=1, **values)

    t = {}
    t["edges_low"] = sample(0, spindle_temp_c=-50.0, motor_temp_c=-50.0, coolant_temp_c=-50.0,
                            spindle_speed_rpm=0.0, feed_rate_mm_min=0.0, power_kw=0.0,
                            spindle_load_pct=0.0, energy_kwh=-3.0)
    t["edges_high"] = sample(10, spindle_temp_c=300.0, motor_temp_c=300.0, coolant_temp_c=300.0,
                             spindle_speed_rpm=60000.0, feed_rate_mm_min=1e9,
                             spindle_load_pct=1000.0, power_kw=1e6)
    t["only_energy"] = sample(20, energy_kwh=12.5)
    t["q_all_null"] = sample(30)
    outside = {
        "spindle_temp_c": [300.001, -50.001], "motor_temp_c": [300.5, -50.5],
        "coolant_temp_c": [301.0, -51.0], "spindle_speed_rpm": [60000.5, -1.0],
        "power_kw": [-0.1], "feed_rate_mm_min": [-0.01], "spindle_load_pct": [1000.1, -0.1],
    }
    for column, values in outside.items():
        for i, value in enumerate(values):
            t[f"q_oor_{column}_{i}"] = sample(40 + i, **{column: value}, energy_kwh=1.0)
    t["q_unknown_and_oor"] = event("machine_telemetry", at(50), machine_id=UNKNOWN_MACHINE,
                                   power_kw=-5.0)
    t["q_missing_and_future"] = future(sample(60), 900)
    t["q_oor_and_future"] = future(sample(70, power_kw=-5.0), 900)
    t["q_future"] = future(sample(80, power_kw=5.0), 900)
    t["q_dup"] = {**t["only_energy"], "ingested_at": at(500)}
    t["q_future_of_dup"] = future({**t["only_energy"]}, 900)
    return t


def alarm_cases() -> dict[str, Row]:
    def alarm(seconds, severity, evt="RAISED", code="A-1", machine=1, **extra):
        return event("alarms", at(seconds), machine_id=machine, alarm_code=code,
                     severity=severity, event=evt, message="spindle", **extra)

    a = {}
    a["emergency"] = alarm(0, "EMERGENCY")
    a["error"] = alarm(1, "Error")
    a["warning"] = alarm(2, "warning", evt="cleared")
    a["info"] = alarm(3, "info", code="A-NEW")
    a["critical"] = alarm(4, "Critical")
    a["q_no_code"] = alarm(5, "error", code=None)
    a["q_no_severity"] = alarm(6, None)
    a["q_no_event"] = alarm(7, "error", evt=None)
    a["q_bad_event"] = alarm(8, "error", evt="BOOM")
    a["q_unknown"] = alarm(9, "error", machine=UNKNOWN_MACHINE)
    a["q_future"] = future(alarm(10, "error"), 301)
    a["q_dup"] = {**a["error"], "ingested_at": at(700)}
    return a


def platform_cases() -> dict[str, Row]:
    def reading(seconds, value, unit, device_id=None, serial=None, firmware="1.0"):
        return event("platform_extension", at(seconds), device_id=device_id,
                     device_serial=serial, value=value, unit=unit, firmware=firmware)

    p = {}
    p["calibrated_ticks"] = reading(0, 80.0, "ticks", device_id=7)        # 40 ticks/mm
    p["default_ticks"] = reading(1, -30.0, "ticks", device_id=8)          # 20 ticks/mm
    p["mm_zero"] = reading(2, 0.0, "mm", device_id=8, firmware="2.1")
    p["upper_ticks"] = reading(3, 20.0, "TICKS", device_id=9)
    p["serial_a"] = reading(4, 12.5, "mm", serial="SN-A", firmware="3.0")
    p["serial_a_again"] = reading(5, -2.5, "mm", serial="SN-A", firmware="3.0")
    p["serial_b_ticks"] = reading(6, -20.0, "ticks", serial="SN-B")
    p["known_c_pair"] = reading(7, 1.0, "mm", device_id=10, serial="SN-C")
    p["known_c_serial"] = reading(8, 40.0, "ticks", serial="SN-C")        # device 10: 40/mm
    p["q_no_value"] = reading(9, None, "mm", device_id=7)
    p["q_no_unit"] = reading(10, 1.0, None, device_id=7)
    p["q_no_device"] = reading(11, 1.0, "mm")
    p["q_bad_unit"] = reading(12, 1.0, "inch", device_id=7)
    p["q_future"] = future(reading(13, 1.0, "mm", device_id=7), 301)
    p["q_dup"] = {**p["calibrated_ticks"], "ingested_at": at(900)}
    p["q_missing_and_bad_unit"] = reading(14, None, "inch", device_id=7)
    return p


def downtime_cases() -> dict[str, Row]:
    def stop(start_seconds, end_seconds, reason, machine=1, program="P-1"):
        return event("downtime_events", at(end_seconds), machine_id=machine,
                     down_start=None if start_seconds is None else at(start_seconds),
                     reason_code=reason, program_name=program)

    d = {}
    d["break"] = stop(0, 600, "BREAK")
    d["tool_no_program"] = stop(600, 660, "TOOL", program=None)
    d["uncatalogued"] = stop(700, 730, "X-99")        # not in master: accepted as sent
    d["instant"] = stop(800, 800, "tool")             # zero length, code case kept
    # 21:50 to 22:10 CET: the shift of the start (late), not of the end (night)
    d["across_shifts"] = stop(10 * 3600 + 50 * 60, 11 * 3600 + 10 * 60, "BREAK", machine=2)
    d["q_no_start"] = stop(None, 900, "BREAK")
    d["q_no_reason"] = stop(900, 960, None)
    d["q_unknown"] = stop(900, 960, "BREAK", machine=UNKNOWN_MACHINE)
    d["q_unknown_no_reason"] = stop(900, 960, None, machine=None)
    d["q_ends_before_start"] = stop(1000, 990, "BREAK")
    d["q_missing_and_future"] = future(stop(None, 1100, "BREAK"), 900)
    d["q_interval_and_future"] = future(stop(1200, 1190, "BREAK"), 900)
    d["q_future"] = future(stop(1200, 1300, "BREAK"), 301)
    d["q_dup"] = {**d["break"], "ingested_at": at(5000)}
    d["not_dup_other_reason"] = {**d["break"], "reason_code": "TOOL"}
    return d


EXPECTED_REASONS = {
    "machine_cycles": {
        "q_unknown": "unknown_machine", "q_null_machine": "unknown_machine",
        "q_no_start": "missing_value", "q_no_count": "missing_value",
        "q_no_result": "missing_value", "q_bad_result": "invalid_code",
        "q_bad_interval": "bad_interval", "q_future": "future_time",
        "q_dup_of_ok": "duplicate", "q_dup_but_future": "future_time",
        "p_unknown_missing_future": "unknown_machine", "p_missing_invalid": "missing_value",
        "p_invalid_interval_future": "invalid_code", "p_interval_future": "bad_interval",
        "f1_future": "future_time", "f3_copy_dup": "duplicate",
    },
    "machine_state_events": {
        "sq_missing": "missing_value", "sq_invalid": "invalid_code",
        "sq_unknown": "unknown_machine", "sq_future": "future_time", "sq_dup": "duplicate",
    },
    "machine_telemetry": {
        "q_all_null": "missing_value", "q_unknown_and_oor": "unknown_machine",
        "q_missing_and_future": "missing_value", "q_oor_and_future": "out_of_range",
        "q_future": "future_time", "q_dup": "duplicate", "q_future_of_dup": "future_time",
        **{name: "out_of_range" for name in telemetry_cases() if name.startswith("q_oor_")
           and name != "q_oor_and_future"},
    },
    "alarms": {
        "q_no_code": "missing_value", "q_no_severity": "missing_value",
        "q_no_event": "missing_value", "q_bad_event": "invalid_code",
        "q_unknown": "unknown_machine", "q_future": "future_time", "q_dup": "duplicate",
    },
    "downtime_events": {
        "q_no_start": "missing_value", "q_no_reason": "missing_value",
        "q_unknown": "unknown_machine", "q_unknown_no_reason": "unknown_machine",
        "q_ends_before_start": "bad_interval", "q_missing_and_future": "missing_value",
        "q_interval_and_future": "bad_interval", "q_future": "future_time",
        "q_dup": "duplicate",
    },
    "platform_extension": {
        "q_no_value": "missing_value", "q_no_unit": "missing_value",
        "q_no_device": "missing_value", "q_bad_unit": "invalid_code",
        "q_future": "future_time", "q_dup": "duplicate",
        "q_missing_and_bad_unit": "missing_value",
    },
}


class Loaded:
    """The hand-made rows (ids filled in) and the watermarks of the two builds."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Row]] = {
            **bronze_cases(),
            "machine_state_events": state_cases(),
            "machine_telemetry": telemetry_cases(),
            "alarms": alarm_cases(),
            "platform_extension": platform_cases(),
            "downtime_events": downtime_cases(),
        }
        self.watermarks_first: list[Row] = []
        self.watermarks_second: list[Row] = []
        self.facts_first: dict = {}
        self.facts_second: dict = {}

    def id(self, table: str, name: str) -> int:
        return self.rows[table][name]["id"]

    def name_of(self, table: str) -> dict[int, str]:
        return {row["id"]: name for name, row in self.rows[table].items()}


def setup_master(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("insert into master.sites values (1, 'BER', %s)", [BERLIN])
        for shift in SHIFTS:
            cur.execute("insert into master.shifts values (%s, %s, %s, %s, %s)",
                        [shift.site_id, shift.shift_id, f"shift {shift.shift_id}",
                         shift.start_local, shift.end_local])
        for machine, site in MACHINES.items():
            cur.execute("insert into master.machines values (%s, %s, %s)",
                        [machine, f"M{machine}", site])
        cur.execute("insert into master.device_calibrations values (7, 40.0), (10, 40.0)")
        cur.execute("insert into master.alarm_codes values ('A-1', 'spindle overload')")


@pytest.fixture(scope="module")
def loaded(db_url: str, dbt_run) -> Iterator[Loaded]:
    assert dbt_run(dbt_args("run-operation", "setup_warehouse")) == 0
    data = Loaded()
    with psycopg.connect(db_url, autocommit=True) as conn:
        ref.reset_warehouse(conn)
        setup_master(conn)
        with conn.cursor() as cur:
            for table, rows in data.rows.items():
                ref.insert_rows(cur, table, list(rows.values()))
        # a small batch size: the build walks the backlog in several batches
        assert dbt_run(dbt_args("build", *ref.SILVER_SELECTION, *batch_vars(7))) == 0
        data.watermarks_first = fetch_dicts(conn, "select * from _etl.watermarks order by 1")
        data.facts_first = ref.snapshot(conn)
        assert dbt_run(dbt_args("build", *ref.SILVER_SELECTION, *batch_vars(7))) == 0
        data.watermarks_second = fetch_dicts(conn, "select * from _etl.watermarks order by 1")
        data.facts_second = ref.snapshot(conn)
    yield data


@pytest.fixture
def q(conn: psycopg.Connection):
    def query(sql: str, params=()) -> list[Row]:
        return fetch_dicts(conn, sql, params)
    return query


def cycles_by_name(loaded: Loaded, q) -> dict[str, Row]:
    names = loaded.name_of("machine_cycles")
    return {names[r["bronze_id"]]: r for r in q("select * from silver.fct_machine_cycles")}


# ---- cycles -------------------------------------------------------------------------------

def test_cycle_gaps_exceed_downtime_and_parts_delta(loaded: Loaded, q) -> None:
    cycles = cycles_by_name(loaded, q)
    # name: (load_unload, exceed, downtime, parts_delta) worked out by hand
    expected = {
        "c1_first": (None, None, None, None),      # first cycle ever
        "c2_gap_5": (5.0, 0.0, 0.0, 1),            # gap <= std
        "c3_gap_std": (10.0, 0.0, 0.0, 1),         # gap == std
        "c4_gap_50": (50.0, 40.0, 0.0, 1),         # std < gap <= thr: exceed = gap - std
        "c5_gap_thr": (100.0, 90.0, 0.0, 1),       # gap == thr is still "exceed"
        "c6_gap_250_reset": (250.0, 0.0, 240.0, 2),  # gap > thr: downtime; counter 9 -> 2
        "c7_gap_3": (3.0, 0.0, 0.0, 1),
    }
    for name, (gap, exceed, down, delta) in expected.items():
        row = cycles[name]
        got = (row["load_unload_seconds"], row["exceed_load_unload_seconds"],
               row["downtime_seconds"], row["parts_delta"])
        assert got == (gap, exceed, down, delta), name
        assert row["cycle_seconds"] == 60.0, name
        assert row["cycle_end"] == loaded.rows["machine_cycles"][name]["time"]
    assert cycles["c5_gap_thr"]["result"] == "SCRAP"
    assert cycles["c7_gap_3"]["result"] == "GOOD"


def test_shift_of_cycle_start_overnight_and_daylight_saving(loaded: Loaded, q) -> None:
    cycles = cycles_by_name(loaded, q)
    expected = {
        "s_late_end": 2,           # 21:59:59 CET
        "s_night_start": 3,        # 22:00 CET, the night shift starts
        "s_night_midnight": 3,     # 00:30 CET, after midnight: same night shift
        "s_night_0530": 3,         # 05:30 CET
        "s_early_0600": 1,         # 06:00 CET
        "dst_spring_0159": 3,      # 01:59 CET, just before the jump
        "dst_spring_0559": 3,      # 05:59 CEST (03:59 UTC)
        "dst_spring_0600": 1,      # 06:00 CEST (04:00 UTC; UTC+1 would say 05:00: night)
        "dst_spring_1400": 2,      # 14:00 CEST
        "dst_autumn_eve_0630": 1,  # 06:30 CEST the day before
        "dst_autumn_0530": 3,      # 05:30 CET (04:30 UTC; UTC+2 would say 06:30: early)
        "dst_autumn_0600": 1,      # 06:00 CET
        "dst_autumn_2200": 3,      # 22:00 CET
        "c1_first": 1,             # 11:00 CET
    }
    assert {name: cycles[name]["shift_id"] for name in expected} == expected
    # the reference computes the same from the zone database
    for name in expected:
        assert ref.shift_of(BERLIN, SHIFTS, cycles[name]["cycle_start"]) == expected[name]


@pytest.mark.parametrize(("instant", "shift"), [
    (utc(2026, 3, 29, 0, 30), 3),    # 01:30 CET
    (utc(2026, 3, 29, 1, 0), 3),     # 03:00 CEST, the first instant after the jump
    (utc(2026, 3, 29, 3, 59, 59), 3),
    (utc(2026, 3, 29, 4, 0), 1),
    (utc(2026, 3, 29, 19, 59, 59), 2),
    (utc(2026, 3, 29, 20, 0), 3),    # 22:00 CEST
    (utc(2026, 10, 25, 0, 30), 3),   # 02:30 CEST, first pass
    (utc(2026, 10, 25, 1, 30), 3),   # 02:30 CET, second pass
    (utc(2026, 10, 25, 4, 59, 59), 3),
    (utc(2026, 10, 25, 5, 0), 1),
    (utc(2026, 10, 25, 12, 59, 59), 1),
    (utc(2026, 10, 25, 13, 0), 2),
    (utc(2026, 10, 25, 21, 0), 3),   # 22:00 CET
])
def test_fn_get_shift_id_on_daylight_saving_days(loaded: Loaded, q, instant, shift) -> None:
    assert ref.shift_of(BERLIN, SHIFTS, instant) == shift
    got = q("select silver.fn_get_shift_id(1, %s) as shift_id", [instant])[0]["shift_id"]
    assert got == shift


def test_fn_get_shift_id_unknown_site_or_uncovered_instant(loaded: Loaded, q) -> None:
    assert q("select silver.fn_get_shift_id(42, now()) as s")[0]["s"] is None


def test_cycle_facts_match_the_reference(loaded: Loaded, q) -> None:
    rows = list(loaded.rows["machine_cycles"].values())
    verdict = ref.classify("machine_cycles", rows, set(MACHINES))
    expected = ref.cycle_facts(rows, verdict,
                               lambda m, ts: ref.shift_of(BERLIN, SHIFTS, ts))
    actual = {r["bronze_id"]: r for r in q("select * from silver.fct_machine_cycles")}
    assert ref.differences(expected, actual) == []


def test_latest_cycle_state_has_every_machine(loaded: Loaded, q) -> None:
    state = {r["machine_id"]: r for r in q("select * from silver.latest_cycle_state")}
    assert set(state) == set(MACHINES)
    assert state[3]["last_cycle_end"] is None and state[3]["last_bronze_id"] is None
    c7 = loaded.rows["machine_cycles"]["c7_gap_3"]
    assert (state[1]["last_bronze_id"], state[1]["last_cycle_end"],
            state[1]["last_part_count"]) == (c7["id"], c7["time"], 3)
    rows = list(loaded.rows["machine_cycles"].values())
    verdict = ref.classify("machine_cycles", rows, set(MACHINES))
    expected = ref.latest_cycles(rows, verdict, MACHINES)
    assert ref.differences(expected, state) == []


# ---- states, telemetry, alarms, platform extension ----------------------------------------

def test_state_intervals_close_at_the_next_event_by_time_then_id(loaded: Loaded, q) -> None:
    names = loaded.name_of("machine_state_events")
    got = {names[r["bronze_id"]]: (r["state"], r["valid_from"], r["valid_to"])
           for r in q("select * from silver.fct_state_intervals")}
    assert got == {
        "s1": ("RUNNING", at(0), at(300)),
        "s2": ("IDLE", at(300), at(600)),
        "s3_tie_first": ("SETUP", at(600), at(600)),   # same time: ordered by id
        "s4_tie_second": ("RUNNING", at(600), at(1200)),
        "s5_open": ("OFF", at(1200), None),             # open: null
        "s_only_m2": ("ALARM", at(0), None),
    }


def test_telemetry_bounds_are_inclusive(loaded: Loaded, q) -> None:
    names = loaded.name_of("machine_telemetry")
    accepted = {names[r["bronze_id"]] for r in q("select bronze_id from silver.fct_telemetry")}
    assert accepted == {"edges_low", "edges_high", "only_energy"}
    row = q("select * from silver.fct_telemetry where bronze_id = %s",
            [loaded.id("machine_telemetry", "edges_high")])[0]
    assert (row["spindle_temp_c"], row["spindle_speed_rpm"], row["spindle_load_pct"]) \
        == (300.0, 60000.0, 1000.0)


def test_alarm_severity_class(loaded: Loaded, q) -> None:
    names = loaded.name_of("alarms")
    got = {names[r["bronze_id"]]: (r["severity_class"], r["event"])
           for r in q("select * from silver.fct_alarm_events")}
    assert got == {
        "emergency": ("emergency", "RAISED"), "error": ("error", "RAISED"),
        "warning": ("warning", "CLEARED"), "info": ("other", "RAISED"),
        "critical": ("other", "RAISED"),
    }
    codes = {r["alarm_code"]: r["is_in_catalogue"]
             for r in q("select * from silver.dim_alarm_code")}
    assert codes == {"A-1": True, "A-NEW": False}


def test_platform_extension_mm_side_and_devices(loaded: Loaded, q) -> None:
    names = loaded.name_of("platform_extension")
    got = {names[r["bronze_id"]]: r for r in q("select * from silver.fct_platform_extension")}
    simple = {name: (r["device_id"], r["value_mm"], r["side"], r["unit"])
              for name, r in got.items() if r["device_id"] > 0}
    assert simple == {
        "calibrated_ticks": (7, 2.0, "RIGHT", "ticks"),     # 80 / 40
        "default_ticks": (8, -1.5, "LEFT", "ticks"),        # -30 / 20.0
        "mm_zero": (8, 0.0, "CENTER", "mm"),
        "upper_ticks": (9, 1.0, "RIGHT", "ticks"),          # 20 / 20.0
        "known_c_pair": (10, 1.0, "RIGHT", "mm"),
        "known_c_serial": (10, 1.0, "RIGHT", "ticks"),      # serial tied to device 10: 40/mm
    }
    a, a2, b = got["serial_a"], got["serial_a_again"], got["serial_b_ticks"]
    assert a["device_id"] < 0 and a["device_id"] == a2["device_id"] != b["device_id"] < 0
    assert (a["value_mm"], a["side"], a2["value_mm"], a2["side"]) == (12.5, "RIGHT", -2.5, "LEFT")
    assert (b["value_mm"], b["side"]) == (-1.0, "LEFT")                # default 20.0
    devices = {r["device_id"]: r for r in q("select * from silver.dim_device")}
    assert set(devices) == {7, 8, 9, 10, a["device_id"], b["device_id"]}
    assert devices[a["device_id"]]["device_serial"] == "SN-A"
    assert devices[a["device_id"]]["created_from"] == "serial"
    assert devices[a["device_id"]]["first_bronze_id"] == loaded.id("platform_extension",
                                                                    "serial_a")
    assert devices[9]["created_from"] == "device_id"     # never seen before: created
    assert devices[10]["device_serial"] == "SN-C"


def test_every_fact_matches_the_reference(loaded: Loaded, q) -> None:
    machines = set(MACHINES)
    checks = {
        "machine_state_events": (ref.state_intervals, "fct_state_intervals"),
        "machine_telemetry": (ref.telemetry_facts, "fct_telemetry"),
        "alarms": (ref.alarm_facts, "fct_alarm_events"),
    }
    for table, (build, fact) in checks.items():
        rows = list(loaded.rows[table].values())
        expected = build(rows, ref.classify(table, rows, machines))
        actual = {r["bronze_id"]: r for r in q(f"select * from silver.{fact}")}
        assert ref.differences(expected, actual) == [], table
    rows = list(loaded.rows["platform_extension"].values())
    expected = ref.platform_facts(rows, ref.classify("platform_extension", rows, machines),
                                  {7: 40.0, 10: 40.0})
    serials = {r["device_id"]: r["device_serial"] for r in q("select * from silver.dim_device")}
    actual = {
        r["bronze_id"]: {**r, "device": ("id", r["device_id"]) if r["device_id"] > 0
                         else ("serial", serials[r["device_id"]])}
        for r in q("select * from silver.fct_platform_extension")
    }
    assert ref.differences(expected, actual) == []


def test_downtime_facts_by_hand(loaded: Loaded, q) -> None:
    names = loaded.name_of("downtime_events")
    got = {names[r["bronze_id"]]: (r["machine_id"], r["down_seconds"], r["reason_code"],
                                   r["program_name"], r["shift_id"])
           for r in q("select * from silver.fct_downtime_events")}
    assert got == {
        "break": (1, 600.0, "BREAK", "P-1", 1),
        "tool_no_program": (1, 60.0, "TOOL", None, 1),
        "uncatalogued": (1, 30.0, "X-99", "P-1", 1),
        "instant": (1, 0.0, "tool", "P-1", 1),
        "across_shifts": (2, 1200.0, "BREAK", "P-1", 2),   # 21:50 CET starts in the late shift
        "not_dup_other_reason": (1, 600.0, "TOOL", "P-1", 1),
    }
    rows = list(loaded.rows["downtime_events"].values())
    expected = ref.downtime_facts(rows, ref.classify("downtime_events", rows, set(MACHINES)),
                                  lambda m, ts: ref.shift_of(BERLIN, SHIFTS, ts))
    actual = {r["bronze_id"]: r for r in q("select * from silver.fct_downtime_events")}
    assert ref.differences(expected, actual) == []
    for r in q("select * from silver.fct_downtime_events"):
        sent = loaded.rows["downtime_events"][names[r["bronze_id"]]]
        assert (r["down_start"], r["down_end"]) == (sent["down_start"], sent["time"])


# ---- quarantine -----------------------------------------------------------------------------

@pytest.mark.parametrize("table", ref.BRONZE_TABLES)
def test_quarantine_reasons_and_precedence(loaded: Loaded, q, table: str) -> None:
    names = loaded.name_of(table)
    got = {names[r["bronze_id"]]: r["reason"] for r in q(
        "select bronze_id, reason from silver.quarantine where source_table = %s", [table])}
    assert got == EXPECTED_REASONS[table]
    # the reference agrees with the hand-made expectations
    rows = list(loaded.rows[table].values())
    verdict = ref.classify(table, rows, set(MACHINES))
    assert {names[i]: r for i, r in verdict.items() if r} == EXPECTED_REASONS[table]


@pytest.mark.parametrize("table", ref.BRONZE_TABLES)
def test_every_bronze_row_lands_exactly_once(loaded: Loaded, q, table: str) -> None:
    fact = ref.FACT_OF[table]
    accounted = [r["bronze_id"] for r in q(
        f"select bronze_id from silver.{fact} union all"
        " select bronze_id from silver.quarantine where source_table = %s", [table])]
    assert sorted(accounted) == sorted(r["id"] for r in loaded.rows[table].values())


def test_quarantine_keeps_the_values_as_sent(loaded: Loaded, q) -> None:
    sent = loaded.rows["machine_cycles"]["q_bad_result"]
    row = q("select * from silver.quarantine where source_table = 'machine_cycles'"
            " and bronze_id = %s", [sent["id"]])[0]
    for column in ("time", "ingested_at", "gateway_id", *ref.BRONZE_COLUMNS["machine_cycles"]):
        assert row[column] == sent[column], column


# ---- incremental bookkeeping ------------------------------------------------------------------

def test_second_build_with_nothing_new_processes_nothing(loaded: Loaded) -> None:
    first = {(w["model_name"], w["source_name"]): w for w in loaded.watermarks_first}
    second = {(w["model_name"], w["source_name"]): w for w in loaded.watermarks_second}
    # The dimensions sweep the facts on etl_batch_id: a second run leaves them alone too.
    for key, w in first.items():
        assert second[key]["updated_at"] == w["updated_at"], key
    first = {key: w for key, w in first.items() if key[1].startswith("bronze.")}
    assert set(first) == {(fact, f"bronze.{table}") for table, fact in ref.FACT_OF.items()}
    for key, w in first.items():
        total = len(loaded.rows[key[1].split(".")[1]])
        assert w["rows_processed"] == total, key
        assert w["last_processed_id"] == total, key
        assert second[key]["rows_processed"] == w["rows_processed"], key
        assert second[key]["last_processed_id"] == w["last_processed_id"], key
        assert second[key]["updated_at"] == w["updated_at"], key
    assert loaded.facts_second == loaded.facts_first


def test_dbt_unit_tests_of_the_silver_window_logic(loaded: Loaded, dbt_run) -> None:
    """models/silver/_silver__unit_tests.yml (they need the mocked tables to exist)."""
    assert dbt_run(dbt_args("test", "--select", "test_type:unit,silver")) == 0


def test_late_cycle_reopens_its_neighbour_and_new_machine_gets_state(
    loaded: Loaded, conn: psycopg.Connection, dbt_run, q
) -> None:
    """Runs last: adds rows. A cycle that arrives after later ones lands between c2 and c3
    of machine 1: c3's gap is measured from it; machine 6, new in master, gets a state row."""
    late = cycle(1, at(127), at(130), 100)
    with conn.cursor() as cur:
        ref.insert_rows(cur, "machine_cycles", [late])
        cur.execute("insert into master.machines values (6, 'M6', 1)")
    loaded.rows["machine_cycles"]["late"] = late
    assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, *batch_vars(7))) == 0
    cycles = cycles_by_name(loaded, q)
    new = q("select * from silver.fct_machine_cycles where bronze_id = %s", [late["id"]])[0]
    # c2 ends at 125: gap 2; counter 6 -> 100
    assert (new["load_unload_seconds"], new["parts_delta"]) == (2.0, 94)
    # c3 starts at 135: gap 5 from the late cycle (was 10 from c2); counter 100 -> 7: reset
    c3 = cycles["c3_gap_std"]
    assert (c3["load_unload_seconds"], c3["exceed_load_unload_seconds"], c3["parts_delta"]) \
        == (5.0, 0.0, 7)
    assert cycles["c4_gap_50"]["parts_delta"] == 1
    state = {r["machine_id"]: r for r in q("select * from silver.latest_cycle_state")}
    assert state[1]["last_bronze_id"] == loaded.id("machine_cycles", "c7_gap_3")
    assert 6 in state and state[6]["last_bronze_id"] is None
