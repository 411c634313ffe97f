"""The independent references (silver_reference, gold_reference) against cases worked out by
hand from the contract. Every Silver and Gold test trusts these oracles, so they get tests of
their own: unit tier, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import gold_reference as gold
import silver_reference as silver

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def cycle(row_id: int, start: float, end: float, part_count: int, result: str = "GOOD",
          machine: int = 1) -> dict:
    return {
        "id": row_id, "machine_id": machine, "cycle_start": at(start), "time": at(end),
        "ingested_at": at(end), "program_name": "O1", "part_count": part_count,
        "result": result, "std_cycle_seconds": 60.0, "std_load_unload_seconds": 30.0,
        "down_threshold_seconds": 300.0,
    }


def test_first_reason_follows_the_contract_order() -> None:
    row = {"id": 1, "machine_id": None, "state": "JUMPING", "time": at(10),
           "ingested_at": at(0)}
    found = silver.problems("machine_state_events", row, machines={1})
    assert sorted(found) == ["future_time", "invalid_code", "unknown_machine"]
    assert silver.first_reason(found) == "unknown_machine"
    row["machine_id"] = 1
    assert silver.first_reason(silver.problems("machine_state_events", row, {1})) == (
        "invalid_code")


def test_only_otherwise_valid_rows_are_duplicates_and_the_earliest_id_is_kept() -> None:
    base = {"machine_id": 1, "alarm_code": "A1", "severity": "error", "message": None,
            "event": "RAISED", "time": at(1), "ingested_at": at(1)}
    rows = [{**base, "id": 3}, {**base, "id": 1}, {**base, "id": 2, "machine_id": 9}]
    verdict = silver.classify("alarms", rows, machines={1})
    assert verdict == {1: None, 2: "unknown_machine", 3: "duplicate"}


def test_telemetry_ranges_are_inclusive_at_their_bounds() -> None:
    def reason(**measures: float) -> str | None:
        row = {"id": 1, "machine_id": 1, "time": at(0), "ingested_at": at(0), **measures}
        return silver.first_reason(silver.problems("machine_telemetry", row, {1}))

    assert reason(spindle_temp_c=300.0, spindle_speed_rpm=60000.0, power_kw=0.0) is None
    assert reason(spindle_temp_c=300.5) == "out_of_range"
    assert reason(coolant_temp_c=-50.5) == "out_of_range"
    assert reason(spindle_load_pct=1000.5) == "out_of_range"
    assert reason(feed_rate_mm_min=-0.1) == "out_of_range"
    assert reason() == "missing_value"


def test_cycle_gaps_split_into_exceed_and_downtime_and_parts_reset() -> None:
    rows = [
        cycle(1, 0, 1, 10),           # first cycle ever: gap null
        cycle(2, 1.25, 2, 11),        # gap 15 s <= std 30: both 0
        cycle(3, 4, 5, 12),           # gap 120 s: exceed 90, downtime 0
        cycle(4, 15, 16, 3),          # gap 600 s > 300: downtime 570; counter reset: 3
    ]
    facts = silver.cycle_facts(rows, dict.fromkeys(range(1, 5)))
    got = {i: (f["load_unload_seconds"], f["exceed_load_unload_seconds"],
               f["downtime_seconds"], f["parts_delta"]) for i, f in facts.items()}
    assert got == {
        1: (None, None, None, None),
        2: (15.0, 0.0, 0.0, 1),
        3: (120.0, 90.0, 0.0, 1),
        4: (600.0, 0.0, 570.0, 3),
    }


def test_the_previous_cycle_is_the_previous_by_start_not_by_arrival() -> None:
    late = cycle(3, 2, 3, 7)                      # arrives last, starts between 1 and 2
    facts = silver.cycle_facts([cycle(1, 0, 1, 5), cycle(2, 5, 6, 9), late],
                               dict.fromkeys(range(1, 4)))
    assert facts[3]["load_unload_seconds"] == 60.0 and facts[3]["parts_delta"] == 2
    assert facts[2]["load_unload_seconds"] == 120.0 and facts[2]["parts_delta"] == 2


def test_shift_of_an_overnight_shift_and_a_summer_time_switch() -> None:
    shifts = [silver.Shift(1, 1, time(6), time(14)), silver.Shift(1, 2, time(14), time(22)),
              silver.Shift(1, 3, time(22), time(6))]
    # Berlin: 2026-03-29 02:00 local is skipped; 00:30 UTC is 01:30 CET, 01:30 UTC 03:30 CEST.
    assert silver.shift_of("Europe/Berlin", shifts, datetime(2026, 3, 29, 0, 30,
                                                             tzinfo=UTC)) == 3
    assert silver.shift_of("Europe/Berlin", shifts, datetime(2026, 3, 29, 4, 0,
                                                             tzinfo=UTC)) == 1
    assert silver.shift_of("Europe/Berlin", shifts, datetime(2026, 3, 29, 20, 59,
                                                             tzinfo=UTC)) == 3


def test_utilization_splits_at_local_midnight_on_a_23_hour_day() -> None:
    zone = {1: "Europe/Berlin"}
    # RUNNING from 2026-03-28 22:00 UTC (23:00 CET) to 2026-03-30 00:00 UTC (02:00 CEST):
    # 1 h on the 28th, the whole 23-hour 29th, 2 h on the 30th; then IDLE closes nothing.
    rows = [
        {"id": 1, "machine_id": 1, "state": "running", "time": T0},
        {"id": 2, "machine_id": 1, "state": "IDLE", "time": datetime(2026, 3, 30, 0, 0,
                                                                      tzinfo=UTC)},
    ]
    days = gold.utilization_daily(rows, zone)
    assert {day: row["running_seconds"] for (_, day), row in days.items()} == {
        date(2026, 3, 28): 3600.0, date(2026, 3, 29): 23 * 3600.0,
        date(2026, 3, 30): 2 * 3600.0,
    }
    assert all(row["utilization_pct"] == 100.0 for row in days.values())


def test_utilization_is_null_when_the_machine_was_only_off() -> None:
    rows = [{"id": 1, "machine_id": 1, "state": "OFF", "time": T0},
            {"id": 2, "machine_id": 1, "state": "IDLE", "time": at(30)}]
    (row,) = gold.utilization_daily(rows, {1: "UTC"}).values()
    assert row["off_seconds"] == 1800.0 and row["utilization_pct"] is None


def test_energy_first_reading_counts_zero_and_a_reset_counts_the_new_value() -> None:
    readings = [(0, 100.0), (20, 101.5), (50, 103.0), (70, 0.5), (80, 1.0)]
    rows = [{"id": i, "machine_id": 1, "time": at(minutes), "energy_kwh": kwh}
            for i, (minutes, kwh) in enumerate(readings, 1)]
    hourly = gold.energy_hourly(rows)
    assert {bucket: round(row["kwh"], 9) for (_, bucket), row in hourly.items()} == {
        datetime(2026, 3, 28, 22, tzinfo=UTC): 3.0,     # 0 + 1.5 + 1.5
        datetime(2026, 3, 28, 23, tzinfo=UTC): 1.0,     # reset: 0.5, then 0.5
    }
    (day,) = gold.energy_daily(hourly, {1: "UTC"}).values()
    assert day["kwh_total"] == 4.0
    assert day["peak_hour"] == datetime(2026, 3, 28, 22, tzinfo=UTC)


def test_energy_peak_hour_takes_the_earliest_on_ties() -> None:
    hourly = {(1, datetime(2026, 3, 28, h, tzinfo=UTC)): {"kwh": 2.0} for h in (5, 3, 9)}
    (day,) = gold.energy_daily(hourly, {1: "UTC"}).values()
    assert day["peak_hour"] == datetime(2026, 3, 28, 3, tzinfo=UTC) and day["peak_kwh"] == 2.0


def test_percentile_cont_interpolates_as_postgresql_does() -> None:
    # select percentile_cont(array[0.25, 0.5, 0.75]) within group (order by v)
    # from unnest(array[1, 2, 3, 4]) as v  -->  {1.75, 2.5, 3.25}
    values = [4.0, 1.0, 3.0, 2.0]
    assert [gold.percentile_cont(values, f) for f in (0.25, 0.5, 0.75)] == [1.75, 2.5, 3.25]
    assert gold.percentile_cont([7.0], 0.5) == 7.0


def test_buckets_are_utc_aligned() -> None:
    instant = datetime(2026, 3, 29, 1, 59, 59, tzinfo=UTC)
    assert gold.floor_bucket(instant, 15) == datetime(2026, 3, 29, 1, 45, tzinfo=UTC)
    assert gold.floor_bucket(instant, 60) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
