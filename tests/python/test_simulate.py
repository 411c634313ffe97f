"""The fleet simulator: determinism, bad input at the configured rates, plausible behaviour.

Rates are checked from the rows themselves with the contract's own definitions (not from
the simulator's bookkeeping), so a class the simulator forgets or miscounts fails here.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from setu.tools.fleet_model import DEFAULT_TICKS_PER_MM, TABLE_COLUMNS, TABLES
from setu.tools.simulate import (
    BadInputRates,
    SimulationConfig,
    generate,
    run_stream,
    simulate,
    simulate_into_database,
)
from setu.warehouse.cluster import DatabaseError

START = datetime(2026, 3, 28, 18, 0, tzinfo=UTC)  # spans Berlin's switch to summer time
TEST_RATE = 0.03
MEASURE_COLUMNS = TABLE_COLUMNS["machine_telemetry"][4:]


TEMPLATE_DATABASE = "setu_test_sim_template"


@pytest.fixture(scope="module")
def bronze_template(cluster, dbt_run) -> str:
    """A database with the Bronze DDL applied through dbt, as `setu` does; tests clone it."""
    cluster.psql(f"drop database if exists {TEMPLATE_DATABASE} with (force)", db="postgres")
    cluster.create_database(TEMPLATE_DATABASE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", TEMPLATE_DATABASE)
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
    # Cloning needs a template nobody is connected to, TimescaleDB's scheduler included.
    cluster.psql(f"alter database {TEMPLATE_DATABASE} with allow_connections false",
                 db="postgres")
    cluster.psql("select pg_terminate_backend(pid) from pg_stat_activity "
                 f"where datname = '{TEMPLATE_DATABASE}'", db="postgres")
    return TEMPLATE_DATABASE


def fresh_database(cluster, template: str, name: str) -> str:
    cluster.psql(f"drop database if exists {name} with (force)", db="postgres")
    for attempt in range(50):
        try:
            cluster.psql(f"create database {name} template {template}", db="postgres")
            break
        except DatabaseError as exc:  # a backend of the template still exiting
            if "being accessed" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


def bronze_rows(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        conn.execute("set time zone 'UTC'")
        return {table: conn.execute(f"select * from bronze.{table} order by id").fetchall()
                for table in TABLES}


@pytest.fixture(scope="module")
def rated_run(cluster, bronze_template) -> str:
    """4 machines for 12 hours, every bad-input class and late events at 3%."""
    url = fresh_database(cluster, bronze_template, "setu_test_sim_rates")
    rates = BadInputRates(**{name: TEST_RATE for name in BadInputRates.__dataclass_fields__})
    config = SimulationConfig(machines=4, start=START, duration=timedelta(hours=12), seed=11,
                              rates=rates, stoppages=True)
    with psycopg.connect(url) as conn:
        result = simulate_into_database(conn, config)
    assert not result.skipped and sum(result.rows.values()) > 20_000
    return url


# -- determinism ---------------------------------------------------------------------------------

def small_config(**overrides) -> SimulationConfig:
    values = dict(machines=3, start=START, duration=timedelta(hours=3), seed=5)
    return SimulationConfig(**(values | overrides))


def test_same_seed_gives_identical_rows_whatever_the_window():
    first = generate(small_config())
    again = generate(small_config(), window=timedelta(minutes=7))
    assert first == again
    assert sum(map(len, first.values())) > 3_000
    other_seed = generate(small_config(seed=6))
    assert other_seed["machine_telemetry"] != first["machine_telemetry"]


def test_a_machine_does_not_depend_on_fleet_size_or_rates():
    clean = small_config(rates=BadInputRates.clean())
    alone = [row for row in generate(clean)["machine_cycles"] if row[3] == 2]
    in_bigger_fleet = [row for row in generate(small_config(machines=6, rates=clean.rates))
                       ["machine_cycles"] if row[3] == 2]
    assert alone and alone == in_bigger_fleet


def test_same_seed_gives_identical_databases(cluster, bronze_template):
    config = SimulationConfig(machines=2, start=START, duration=timedelta(hours=3), seed=3,
                              rates=BadInputRates(duplicate=0.05, late=0.05))
    dumps = []
    for name in ("setu_test_sim_det_a", "setu_test_sim_det_b"):
        url = fresh_database(cluster, bronze_template, name)
        with psycopg.connect(url) as conn:
            simulate_into_database(conn, config)
        dumps.append(bronze_rows(url))
    # ids, times and ingested_at included: the same rows in the same order.
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["machine_telemetry"]) > 2_000
    ingested = [row[2] for row in dumps[0]["machine_telemetry"]]
    assert all(moment.year == 2026 and moment.month == 3 for moment in ingested), \
        "ingested_at is the simulated arrival time, not now()"


def test_rows_are_inserted_in_arrival_order(rated_run):
    for table, rows in bronze_rows(rated_run).items():
        arrivals = [row[2] for row in rows]  # id, time, ingested_at, ...
        assert arrivals == sorted(arrivals), table


# -- bad input at the configured rates ---------------------------------------------------------

MACHINE_TABLES = ("machine_state_events", "machine_cycles", "machine_telemetry", "alarms")
MISSING = {
    "machine_state_events": "state is null",
    "machine_cycles": "cycle_start is null or part_count is null or result is null",
    "machine_telemetry": f"num_nonnulls({', '.join(MEASURE_COLUMNS)}) = 0",
    "alarms": "alarm_code is null or severity is null or event is null",
    "platform_extension": "value is null or unit is null "
                          "or (device_id is null and device_serial is null)",
    "downtime_events": "down_start is null or reason_code is null",
}
INVALID = {
    "machine_state_events": "upper(state) not in "
                            "('OFF', 'IDLE', 'RUNNING', 'SETUP', 'ALARM', 'MAINTENANCE')",
    "machine_cycles": "result not in ('GOOD', 'SCRAP')",
    "alarms": "event not in ('RAISED', 'CLEARED')",
    "platform_extension": "unit not in ('ticks', 'mm')",
}
OUT_OF_RANGE = (
    "spindle_temp_c not between -50 and 300 or motor_temp_c not between -50 and 300 "
    "or coolant_temp_c not between -50 and 300 or spindle_speed_rpm not between 0 and 60000 "
    "or power_kw < 0 or feed_rate_mm_min < 0 or spindle_load_pct not between 0 and 1000"
)
UNKNOWN = "machine_id is null or machine_id not in (select machine_id from master.machines)"
FUTURE = "time > ingested_at + interval '5 minutes'"


def class_conditions() -> dict[str, dict[str, str]]:
    return {
        "unknown_machine": {table: UNKNOWN for table in (*MACHINE_TABLES, "downtime_events")},
        "future_time": {table: FUTURE for table in TABLES},
        "missing_value": MISSING,
        "out_of_range": {"machine_telemetry": OUT_OF_RANGE},
        "invalid_code": INVALID,
        "bad_interval": {"machine_cycles": "cycle_start > time",
                         "downtime_events": "down_start > time"},
    }


def originals_sql(table: str) -> str:
    """The table's rows without re-sends: a duplicate is a later id with the same values."""
    values = [column for column in TABLE_COLUMNS[table] if column != "ingested_at"]
    return (f"select *, row_number() over (partition by {', '.join(values)} order by id) > 1 "
            f"as is_resend from bronze.{table}")


def within_sampling_error(observed: int, total: int, rate: float) -> bool:
    expected = rate * total
    return abs(observed - expected) <= 5 * math.sqrt(total * rate * (1 - rate)) + 1


def count(conn: psycopg.Connection, query: str) -> int:
    return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize("bad_class", list(class_conditions()))
def test_every_bad_input_class_at_its_rate(rated_run, bad_class):
    with psycopg.connect(rated_run) as conn:
        observed = total = 0
        for table, condition in class_conditions()[bad_class].items():
            rows = f"({originals_sql(table)}) as rows where not is_resend"
            total += count(conn, f"select count(*) from {rows}")
            table_count = count(conn, f"select count(*) from {rows} and ({condition})")
            observed += table_count
            if table in ("machine_telemetry", "platform_extension"):  # enough rows to see it
                assert table_count > 0, f"no {bad_class} in {table}"
    assert observed > 0
    assert within_sampling_error(observed, total, TEST_RATE), (bad_class, observed, total)


def test_duplicates_are_resends_of_earlier_rows_at_their_rate(rated_run):
    with psycopg.connect(rated_run) as conn:
        resends = originals = 0
        for table in TABLES:
            resends += count(conn, f"select count(*) from ({originals_sql(table)}) as rows "
                                   f"where is_resend")
            originals += count(conn, f"select count(*) from ({originals_sql(table)}) as rows "
                                     f"where not is_resend")
            # The re-send arrives after the row it repeats.
            values = ", ".join(c for c in TABLE_COLUMNS[table] if c != "ingested_at")
            assert count(conn, f"""
                select count(*) from (
                    select ingested_at, lag(ingested_at) over (
                        partition by {values} order by id) as first_arrival
                    from bronze.{table}
                ) as rows
                where ingested_at <= first_arrival""") == 0
    assert within_sampling_error(resends, originals, TEST_RATE), (resends, originals)


def test_late_events_at_their_rate_and_after_later_events(rated_run):
    with psycopg.connect(rated_run) as conn:
        late = eligible = overtaken = 0
        for table in MACHINE_TABLES:
            rows = (f"({originals_sql(table)}) as rows where not is_resend "
                    f"and time <= ingested_at")
            eligible += count(conn, f"select count(*) from {rows}")
            late += count(conn, f"select count(*) from {rows} "
                                f"and ingested_at > time + interval '60 seconds'")
            # A late event gets a higher id than some later event of the same machine.
            overtaken += count(conn, f"""
                select count(*) from {rows} and ingested_at > time + interval '60 seconds'
                and exists (select from bronze.{table} as newer
                            where newer.machine_id = rows.machine_id and newer.time > rows.time
                            and newer.id < rows.id)""")
            assert count(conn, f"select count(*) from {rows} "
                               f"and ingested_at > time + interval '1 hour'") == 0
    assert within_sampling_error(late, eligible, TEST_RATE), (late, eligible)
    assert overtaken >= 0.9 * late


def test_clean_run_has_no_bad_input(cluster, bronze_template):
    url = fresh_database(cluster, bronze_template, "setu_test_sim_clean")
    config = small_config(rates=BadInputRates.clean())
    with psycopg.connect(url) as conn:
        simulate_into_database(conn, config)
        for bad_class, conditions in class_conditions().items():
            for table, condition in conditions.items():
                assert count(conn, f"select count(*) from bronze.{table} "
                                   f"where {condition}") == 0, (bad_class, table)
        for table in TABLES:
            assert count(conn, f"select count(*) from ({originals_sql(table)}) as rows "
                               f"where is_resend") == 0
            assert count(conn, f"select count(*) from bronze.{table} "
                               f"where ingested_at > time + interval '60 seconds'") == 0


# -- plausible behaviour ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clean_day() -> dict[str, list[tuple]]:
    config = SimulationConfig(machines=12, start=START, duration=timedelta(days=1), seed=21,
                              rates=BadInputRates.clean(), stoppages=True)
    return generate(config)


def by_name(table: str, row: tuple) -> dict:
    return dict(zip(TABLE_COLUMNS[table], row, strict=True))


def test_states_change_only_on_change_in_mixed_case(clean_day):
    events = [by_name("machine_state_events", row) for row in clean_day["machine_state_events"]]
    states = Counter(event["state"].upper() for event in events)
    assert set(states) == {"OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE"}
    assert any(event["state"] != event["state"].upper() for event in events)
    per_machine = defaultdict(list)
    for event in sorted(events, key=lambda event: (event["machine_id"], event["time"])):
        per_machine[event["machine_id"]].append(event["state"].upper())
    for sequence in per_machine.values():
        assert all(a != b for a, b in zip(sequence, sequence[1:], strict=False))


def test_cycles_gaps_counters_and_results(clean_day):
    cycles = sorted((by_name("machine_cycles", row) for row in clean_day["machine_cycles"]),
                    key=lambda cycle: (cycle["machine_id"], cycle["cycle_start"]))
    gaps = Counter()
    resets = 0
    for previous, cycle in zip(cycles, cycles[1:], strict=False):
        assert cycle["cycle_start"] < cycle["time"]
        if previous["machine_id"] != cycle["machine_id"]:
            continue
        gap = (cycle["cycle_start"] - previous["time"]).total_seconds()
        assert gap >= 0
        if gap <= cycle["std_load_unload_seconds"]:
            gaps["within"] += 1
        elif gap <= cycle["down_threshold_seconds"]:
            gaps["exceeded"] += 1
        else:
            gaps["down"] += 1
        if cycle["part_count"] < previous["part_count"]:
            resets += 1
        else:
            assert cycle["part_count"] == previous["part_count"] + 1
    assert gaps["within"] > gaps["exceeded"] > 0 and gaps["down"] > 0
    assert resets > 0
    results = Counter(cycle["result"] for cycle in cycles)
    assert set(results) == {"GOOD", "SCRAP"}
    assert 0.01 < results["SCRAP"] / len(cycles) < 0.08


def test_telemetry_every_10_s_warming_while_running(clean_day):
    rows = [by_name("machine_telemetry", row) for row in clean_day["machine_telemetry"]]
    machine_1 = [row for row in rows if row["machine_id"] == 1]
    assert len(machine_1) == 24 * 360
    steps = {round((b["time"] - a["time"]).total_seconds())
             for a, b in zip(machine_1, machine_1[1:], strict=False)}
    assert steps == {10}
    cutting = [row["spindle_temp_c"] for row in rows
               if row["spindle_speed_rpm"] and row["spindle_speed_rpm"] > 1500
               and row["spindle_temp_c"] is not None]
    resting = [row["spindle_temp_c"] for row in rows
               if row["power_kw"] == 0 and row["spindle_temp_c"] is not None]
    assert sum(cutting) / len(cutting) > sum(resting) / len(resting) + 10
    meters = defaultdict(list)
    for row in rows:
        if row["energy_kwh"] is not None:
            meters[row["machine_id"]].append(row["energy_kwh"])
    falls = sum(1 for readings in meters.values()
                for a, b in zip(readings, readings[1:], strict=False) if b < a)
    assert falls > 0, "the energy meter never resets"


def test_alarms_raised_then_cleared_in_every_severity(clean_day):
    alarms = [by_name("alarms", row) for row in clean_day["alarms"]]
    classes = Counter(alarm["severity"].lower() for alarm in alarms)
    assert {"emergency", "error", "warning"} <= set(classes)
    assert set(classes) - {"emergency", "error", "warning"}, "no 'other' severity"
    assert any(alarm["severity"] not in (alarm["severity"].lower(), alarm["severity"].upper())
               for alarm in alarms), "no mixed case"
    raised = {(a["machine_id"], a["alarm_code"], a["time"]) for a in alarms
              if a["event"] == "RAISED"}
    cleared = [a for a in alarms if a["event"] == "CLEARED"]
    assert cleared
    for alarm in cleared:
        assert any(machine == alarm["machine_id"] and code == alarm["alarm_code"]
                   and at < alarm["time"] for machine, code, at in raised)


def test_without_stoppages_every_other_row_is_unchanged():
    """Stoppages draw from streams of their own: switching them on adds downtime rows and
    changes no other row (so runs and ledger keys from before contract v2 stay valid)."""
    without = generate(small_config(rates=BadInputRates(late=0.05)))
    with_stops = generate(small_config(rates=BadInputRates(late=0.05), stoppages=True))
    assert not without["downtime_events"] and with_stops["downtime_events"]
    for table in TABLES:
        if table != "downtime_events":
            assert with_stops[table] == without[table], table
    assert small_config().ledger_key() != small_config(stoppages=True).ledger_key()


def test_stoppages_planned_unplanned_and_uncatalogued(clean_day):
    from setu.tools.fleet_model import DOWNTIME_REASONS, UNKNOWN_DOWNTIME_REASON

    stops = [by_name("downtime_events", row) for row in clean_day["downtime_events"]]
    planned = {reason.code for reason in DOWNTIME_REASONS if reason.planned}
    reasons = Counter(stop["reason_code"] for stop in stops)
    assert set(reasons) & planned and set(reasons) - planned - {UNKNOWN_DOWNTIME_REASON}
    assert reasons[UNKNOWN_DOWNTIME_REASON] > 0
    assert UNKNOWN_DOWNTIME_REASON not in {reason.code for reason in DOWNTIME_REASONS}
    assert all(stop["down_start"] < stop["time"] for stop in stops)
    # each stoppage is a real pause: the machine was not RUNNING for most of it
    states = defaultdict(list)
    for row in clean_day["machine_state_events"]:
        event = by_name("machine_state_events", row)
        states[event["machine_id"]].append((event["time"], event["state"].upper()))
    for stop in stops:
        before = [state for at, state in sorted(states[stop["machine_id"]])
                  if at <= stop["down_start"] + timedelta(seconds=1)]
        assert before and before[-1] != "RUNNING", stop


def test_master_fill_keeps_the_operators_rows(rated_run):
    """Master data is the operators': the demo's fill adds what is missing and changes no row
    that is already there."""
    from setu.tools.fleet_model import make_device
    from setu.tools.simulate import upsert_master_data

    edits = {
        "sites": ("update master.sites set timezone = 'UTC' where site_id = 1",
                  "select timezone from master.sites where site_id = 1", "UTC"),
        "downtime_reasons": (
            "update master.downtime_reasons set planned = false where reason_code = 'BREAK'",
            "select planned from master.downtime_reasons where reason_code = 'BREAK'", False),
        "machines": ("update master.machines set machine_code = 'LATHE-7' where machine_id = 1",
                     "select machine_code from master.machines where machine_id = 1",
                     "LATHE-7"),
    }
    with psycopg.connect(rated_run) as conn:
        for update, _, _ in edits.values():
            conn.execute(update)
        conn.execute("delete from master.alarm_codes where alarm_code = 'OP-010'")
        config = SimulationConfig(machines=4, start=START, duration=timedelta(hours=1))
        upsert_master_data(conn, config, [make_device(i, 11) for i in range(5)])
        kept = {table: conn.execute(query).fetchone()[0]
                for table, (_, query, _) in edits.items()}
        restored = conn.execute(
            "select description from master.alarm_codes where alarm_code = 'OP-010'").fetchone()
        conn.rollback()
    assert kept == {table: value for table, (_, _, value) in edits.items()}
    assert restored == ("Operator call",), "a missing row is filled from seeds/"


def test_fleet_reads_its_master_data_from_the_seeds(tmp_path, monkeypatch):
    from setu.tools import fleet_model

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "demo_sites.csv").write_text(
        "site_id,site_code,timezone,ambient_c\n7,OSL,Europe/Oslo,18.5\n")
    (tmp_path / "seeds" / "demo_shifts.csv").write_text(
        "site_id,shift_id,shift_name,start_local,end_local\n7,1,day,06:30:00,18:30:00\n"
        "7,2,night,18:30:00,06:30:00\n")
    monkeypatch.setattr(fleet_model, "PROJECT_DIR", tmp_path)
    [site] = fleet_model._sites()
    assert (site.site_id, site.site_code, site.timezone, site.ambient_c) == (
        7, "OSL", "Europe/Oslo", 18.5)
    assert [(shift.name, shift.start_local.isoformat(), shift.end_local.isoformat())
            for shift in site.shifts] == [("day", "06:30:00", "18:30:00"),
                                          ("night", "18:30:00", "06:30:00")]


def test_platform_extension_rollout(clean_day):
    rows = [by_name("platform_extension", row) for row in clean_day["platform_extension"]]
    units = Counter((row["unit"], row["firmware"]) for row in rows)
    assert units[("ticks", "1.4.2")] and units[("mm", "2.1.0")]
    assert all(row["device_serial"] is None for row in rows if row["unit"] == "ticks")
    assert any(row["device_id"] is None and row["device_serial"] for row in rows)
    rollout = {row["unit"] for row in rows if row["device_id"] == 5001}
    assert rollout == {"ticks", "mm"}, "device 5001 upgrades during the run"
    signs = Counter((row["value"] > 0) - (row["value"] < 0) for row in rows)
    assert signs[-1] and signs[0] and signs[1]


def test_master_data_upsert_is_idempotent(rated_run):
    with psycopg.connect(rated_run) as conn:
        from setu.tools.simulate import upsert_master_data

        before = {table: conn.execute(f"select * from master.{table} order by 1, 2").fetchall()
                  for table in ("sites", "shifts", "machines", "alarm_codes",
                                "device_calibrations", "downtime_reasons")}
        config = SimulationConfig(machines=4, start=START, duration=timedelta(hours=1))
        from setu.tools.fleet_model import make_device

        upsert_master_data(conn, config, [make_device(i, 11) for i in range(5)])
        after = {table: conn.execute(f"select * from master.{table} order by 1, 2").fetchall()
                 for table in before}
        assert before == after
        zones = {row[2] for row in after["sites"]}
        assert {"Europe/Berlin", "Asia/Kolkata"} <= zones
        for site_id in {row[0] for row in after["sites"]}:
            shifts = [row for row in after["shifts"] if row[0] == site_id]
            assert len(shifts) == 3
            assert sum(1 for row in shifts if row[4] <= row[3]) == 1  # one crosses midnight
        assert [row[0] for row in after["machines"]] == [1, 2, 3, 4]
        calibrated = {row[0] for row in after["device_calibrations"]}
        # Bronze rows: id, time, ingested_at, gateway_id, device_id, ..., unit, firmware.
        legacy = {row[4] for row in bronze_rows(rated_run)["platform_extension"]
                  if row[7] == "ticks" and row[4] is not None}
        assert legacy - calibrated, f"no uncalibrated device (default {DEFAULT_TICKS_PER_MM})"


# -- command line and stream -----------------------------------------------------------------------

def test_cli_repeated_run_is_a_no_op(cluster, bronze_template):
    url = fresh_database(cluster, bronze_template, "setu_test_sim_cli")
    args = ["--machines", "2", "--start", "2026-01-05T00:00:00Z", "--duration", "2h",
            "--seed", "9"]
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", "setu_test_sim_cli")
        first = runner.invoke(simulate, args)
        assert first.exit_code == 0, first.output
        counts = {table: len(rows) for table, rows in bronze_rows(url).items()}
        second = runner.invoke(simulate, args)
        assert second.exit_code == 0, second.output
        assert "skipped" in second.output
    assert {table: len(rows) for table, rows in bronze_rows(url).items()} == counts
    # 2 machines x 2 hours x one sample per 10 s, plus the default 0.5% of re-sends.
    assert 2 * 720 <= counts["machine_telemetry"] <= 2 * 720 * 1.02


class MemoryWriter:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
        self.writes: list[int] = []

    def write(self, rows: dict[str, list[tuple]]) -> None:
        for table, batch in rows.items():
            self.rows[table].extend(batch)
        self.writes.append(sum(map(len, rows.values())))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


@pytest.mark.parametrize("rows_per_second", [None, 50.0])
def test_stream_paces_and_writes_the_same_rows(rows_per_second):
    config = small_config(duration=timedelta(minutes=20))
    writer, clock = MemoryWriter(), FakeClock()
    run_stream(config, writer, commit=lambda: None, rows_per_second=rows_per_second,
               tick_seconds=1.0, sleep=clock.sleep, clock=clock)
    assert writer.rows == generate(config)
    if rows_per_second is None:
        assert clock.now == pytest.approx(20 * 60, abs=2)  # real time: 20 wall minutes
    else:
        total = sum(writer.writes)
        assert total > 500
        assert abs(clock.now - total / rows_per_second) <= 1.5  # within a tick or so
        assert max(writer.writes) < 2 * rows_per_second
