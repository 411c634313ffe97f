"""analyses/: the CNC dashboard and IoT rollout queries compile with dbt and run on a small
built warehouse (analyst_build.py), giving rows that make sense for their panel."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from analyst_build import Build, on_database, small_build
from setu.warehouse.paths import PROJECT_DIR

ANALYSES = sorted(path.relative_to(PROJECT_DIR / "analyses")
                  for path in (PROJECT_DIR / "analyses").rglob("*.sql"))
STATES = {"OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE"}
Query = Callable[[str], list[dict]]


@pytest.fixture(scope="module")
def build(cluster, dbt_run) -> Build:
    return small_build(cluster, dbt_run)


def compile_analyses(dbt_run, build: Build, target: Path, variables: dict | None = None) -> Path:
    args = ["--quiet", "compile", "--select", "resource_type:analysis",
            "--target-path", str(target)]
    if variables:
        args += ["--vars", json.dumps(variables)]
    with on_database(build.database):
        assert dbt_run(args) == 0, "dbt compile of analyses/"
    return target / "compiled" / "setu" / "analyses"


@pytest.fixture(scope="module")
def compiled(dbt_run, build: Build, tmp_path_factory) -> Path:
    """Every analysis with its defaults (the latest day, every machine)."""
    return compile_analyses(dbt_run, build, tmp_path_factory.mktemp("analyses-default"))


@pytest.fixture(scope="module")
def run(build: Build, compiled: Path) -> Query:
    def query(name: str, folder: Path = compiled) -> list[dict]:
        sql = (folder / name).read_text()
        with psycopg.connect(build.url, row_factory=dict_row) as conn:
            conn.execute("set time zone 'UTC'")
            return conn.execute(sql).fetchall()
    return query


def test_there_are_dashboard_and_rollout_analyses() -> None:
    names = {str(path) for path in ANALYSES}
    assert {
        "cnc_dashboard/utilization.sql", "cnc_dashboard/operational_timeline_30m.sql",
        "cnc_dashboard/temperature_box_plot.sql", "cnc_dashboard/program_history.sql",
        "cnc_dashboard/energy_hourly.sql", "cnc_dashboard/alert_summary.sql",
        "cnc_dashboard/alert_list.sql", "iot_rollout/format_counts.sql",
        "iot_rollout/devices_with_both_formats.sql", "iot_rollout/unified_recent_readings.sql",
        "iot_rollout/side_switches.sql", "cnc_dashboard/oee.sql",
        "cnc_dashboard/downtime_by_reason.sql",
    } <= names


@pytest.mark.parametrize("name", ANALYSES, ids=str)
def test_every_analysis_compiles_and_runs(run: Query, name: Path) -> None:
    run(str(name))


def test_utilization(run: Query, build: Build) -> None:
    rows = run("cnc_dashboard/utilization.sql")
    assert rows and {str(row["local_date"]) for row in rows} == {build.day}
    for row in rows:
        assert row["utilization_pct"] is None or 0 <= row["utilization_pct"] <= 100
        assert row["machine_code"]


def test_operational_timeline_has_48_slots_a_day(run: Query) -> None:
    rows = run("cnc_dashboard/operational_timeline_30m.sql")
    slots: dict[int, int] = {}
    for row in rows:
        slots[row["machine_id"]] = slots.get(row["machine_id"], 0) + 1
        total = sum(row[f"{state.lower()}_seconds"] for state in STATES)
        assert 0 <= total <= 1800 + 1e-6 and row["unknown_seconds"] >= -1e-6
        assert row["dominant_state"] is None or row["dominant_state"] in STATES
    # No daylight-saving change on the test day: 48 half hours from local midnight.
    assert slots and set(slots.values()) == {48}
    assert any(row["dominant_state"] == "RUNNING" for row in rows)


def test_timeline_dominant_state_has_the_most_seconds(run: Query) -> None:
    """A state entered twice in a slot counts with both stretches (ties: by name)."""
    rows = run("cnc_dashboard/operational_timeline_30m.sql")
    for row in rows:
        seconds = {state: row[f"{state.lower()}_seconds"] for state in STATES}
        busiest = min((state for state in STATES if seconds[state] > 0),
                      key=lambda state: (-seconds[state], state), default=None)
        assert row["dominant_state"] == busiest, row


def test_timeline_adds_up_the_stretches_of_a_state(build: Build, compiled: Path) -> None:
    """RUNNING 10 min, IDLE 12 min, RUNNING 8 min: the slot is RUNNING's (18 min), though
    IDLE's single stretch is the longest. Written into the facts in a transaction that is
    rolled back, in a slot of the test day before the simulation starts."""
    sql = (compiled / "cnc_dashboard" / "operational_timeline_30m.sql").read_text()
    with psycopg.connect(build.url, row_factory=dict_row) as conn:
        conn.execute("set time zone 'UTC'")
        zone = conn.execute("select s.timezone from master.machines as m inner join"
                            " master.sites as s using (site_id) where m.machine_id = 1"
                            ).fetchone()["timezone"]
        stretches = [("RUNNING", "00:00", "00:10"), ("IDLE", "00:10", "00:22"),
                     ("RUNNING", "00:22", "00:30")]
        for number, (state, start, end) in enumerate(stretches, start=1):
            conn.execute(
                "insert into silver.fct_state_intervals"
                " (bronze_id, machine_id, state, valid_from, valid_to, etl_batch_id)"
                " values (%s, 1, %s, (%s::date + %s::time) at time zone %s,"
                " (%s::date + %s::time) at time zone %s, 0)",
                (-number, state, build.day, start, zone, build.day, end, zone))
        midnight = datetime.combine(date.fromisoformat(build.day), time(), ZoneInfo(zone))
        [slot] = [row for row in conn.execute(sql).fetchall()
                  if row["machine_id"] == 1 and row["slot_start"] == midnight]
        conn.rollback()
    assert (slot["running_seconds"], slot["idle_seconds"]) == (1080, 720)
    assert slot["dominant_state"] == "RUNNING"


def test_every_analysis_is_for_the_warehouse_only() -> None:
    """The lake target (Spark) builds none of the Gold the analyses read: each disables
    itself there, as dbt < 1.12 has no project-level config for analyses."""
    for name in ANALYSES:
        text = (PROJECT_DIR / "analyses" / name).read_text()
        assert "{{ config(enabled=target.type == 'postgres') }}" in text, name


def test_temperature_box_plot(run: Query) -> None:
    rows = run("cnc_dashboard/temperature_box_plot.sql")
    assert {row["sensor"] for row in rows} == {"spindle_temp_c", "motor_temp_c",
                                              "coolant_temp_c"}
    for row in rows:
        assert row["min_c"] <= row["p25_c"] <= row["median_c"] <= row["p75_c"] <= row["max_c"]


def test_program_history(run: Query) -> None:
    rows = run("cnc_dashboard/program_history.sql")
    assert rows
    for row in rows:
        assert row["good_parts"] + row["scrap_parts"] == row["cycles"]
        assert 0 <= row["scrap_rate_pct"] <= 100


def test_energy_hourly_marks_one_peak_and_adds_up(run: Query) -> None:
    rows = run("cnc_dashboard/energy_hourly.sql")
    assert rows
    by_machine: dict[int, list[dict]] = {}
    for row in rows:
        by_machine.setdefault(row["machine_id"], []).append(row)
    for hours in by_machine.values():
        assert sum(row["is_peak_hour"] for row in hours) == 1
        peak = next(row for row in hours if row["is_peak_hour"])
        assert peak["kwh"] == max(row["kwh"] for row in hours) == peak["peak_kwh"]
        assert float(sum(row["kwh"] for row in hours)) == pytest.approx(
            float(hours[0]["day_kwh_total"]), abs=0.01)


def test_alert_summary_and_list_agree(run: Query) -> None:
    summary = run("cnc_dashboard/alert_summary.sql")
    listed = run("cnc_dashboard/alert_list.sql")
    assert summary, "one row per machine, also without alarms"
    assert sum(row["total_count"] for row in summary) == len(listed)
    for row in listed:
        assert row["cleared_at"] is None or row["cleared_at"] > row["raised_at"]


def test_dashboard_vars_pick_the_day_and_machine(dbt_run, build: Build, run: Query,
                                                 tmp_path: Path) -> None:
    folder = compile_analyses(dbt_run, build, tmp_path,
                              {"dashboard_day": build.day, "dashboard_machine_id": 2})
    rows = run("cnc_dashboard/utilization.sql", folder)
    assert [row["machine_id"] for row in rows] == [2]
    assert {row["machine_id"] for row in run("cnc_dashboard/alert_summary.sql", folder)} == {2}
    assert {row["machine_id"] for row in run("cnc_dashboard/energy_hourly.sql", folder)} == {2}
    slots = run("cnc_dashboard/operational_timeline_30m.sql", folder)
    assert len(slots) == 48 and {str(row["local_date"]) for row in slots} == {build.day}


def test_rollout_format_counts(run: Query) -> None:
    rows = run("iot_rollout/format_counts.sql")
    assert rows
    assert sum(row["legacy_readings"] for row in rows) > 0
    assert sum(row["new_readings"] for row in rows) > 0


def test_rollout_devices_with_both_formats(run: Query) -> None:
    rows = run("iot_rollout/devices_with_both_formats.sql")
    assert rows, "the simulated fleet has a device upgraded during the run"
    for row in rows:
        assert row["legacy_readings"] > 0 and row["new_readings"] > 0
        assert row["first_new_at"] > row["first_legacy_at"]


def test_rollout_unified_readings_are_in_mm_with_their_side(run: Query) -> None:
    rows = run("iot_rollout/unified_recent_readings.sql")
    assert rows and {row["sent_unit"] for row in rows} <= {"ticks", "mm"}
    latest = max(row["time"] for row in rows)
    assert all((latest - row["time"]).total_seconds() <= 3600 for row in rows)
    for row in rows:
        sign = (row["value_mm"] > 0) - (row["value_mm"] < 0)
        assert {1: "RIGHT", -1: "LEFT", 0: "CENTER"}[sign] == row["side"]


def test_rollout_side_switches(run: Query) -> None:
    rows = run("iot_rollout/side_switches.sql")
    assert rows, "simulated platforms move between sides"
    for row in rows:
        assert {row["from_side"], row["to_side"]} == {"LEFT", "RIGHT"}
        assert (row["value_mm_before"] > 0) == (row["from_side"] == "RIGHT")
        assert row["switched_at"] > row["last_reading_before_at"]


def test_oee_panel_matches_gold_and_downtime(run: Query, build: Build) -> None:
    rows = run("cnc_dashboard/oee.sql")
    assert rows and {str(row["local_date"]) for row in rows} == {build.day}
    with psycopg.connect(build.url, row_factory=dict_row) as conn:
        gold = {r["machine_id"]: r for r in conn.execute(
            "select * from gold.oee_daily where local_date = %s", [build.day])}
        stops = conn.execute(
            "select machine_id, sum(down_seconds) filter (where planned) as planned,"
            " sum(down_seconds) filter (where not planned) as unplanned"
            " from gold.downtime_daily where local_date = %s group by machine_id",
            [build.day]).fetchall()
    assert {row["machine_id"] for row in rows} == set(gold)
    for row in rows:
        expected = gold[row["machine_id"]]
        for factor in ("availability", "performance", "quality", "oee"):
            value, shown = expected[factor], row[f"{factor}_pct"]
            if value is None:
                assert shown is None, factor
            else:
                assert float(shown) == pytest.approx(100 * value, abs=0.051), factor
        assert row["good_cycles"] <= row["cycles"]
    assert stops, "the simulated day has classified stoppages"
    by_machine = {row["machine_id"]: row for row in rows}
    for stop in stops:
        row = by_machine[stop["machine_id"]]
        assert float(row["planned_stop_hours"]) == pytest.approx(
            (stop["planned"] or 0) / 3600, abs=0.006)
        assert float(row["unplanned_stop_hours"]) == pytest.approx(
            (stop["unplanned"] or 0) / 3600, abs=0.006)


def test_downtime_by_reason_adds_up(run: Query, build: Build) -> None:
    rows = run("cnc_dashboard/downtime_by_reason.sql")
    assert rows
    with psycopg.connect(build.url) as conn:
        events, seconds = conn.execute(
            "select sum(events), sum(down_seconds) from gold.downtime_daily").fetchone()
    assert sum(row["events"] for row in rows) == events
    assert float(sum(row["down_hours"] for row in rows)) == pytest.approx(
        seconds / 3600, abs=0.01 * len(rows))
    # a code that master does not hold is listed, unplanned and without a description
    for row in rows:
        if row["reason_description"] is None:
            assert row["planned"] is False
