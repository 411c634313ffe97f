"""Batch-split invariance: Bronze rows from a seeded random generator (late events up to one
hour, duplicates, bad rows of every class) loaded in random chunks with incremental runs and a
small random batch size in between give, row for row, the Silver that a --full-refresh builds
from the same Bronze; and both agree with the independent reference (silver_reference.py)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

import psycopg
import pytest

import silver_reference as ref
from silver_reference import Row, batch_vars, dbt_args, fetch_dicts, utc

BERLIN = "Europe/Berlin"
SHIFTS = [ref.Shift(1, 1, time(6), time(14)), ref.Shift(1, 2, time(14), time(22)),
          ref.Shift(1, 3, time(22), time(6))]
MACHINES = (1, 2, 3)
UNKNOWN = 99
CALIBRATIONS = {21: 40.0}
START = utc(2026, 3, 29, 0, 0)  # the spring daylight-saving night in Berlin
HOURS = 2
LATE_WINDOW = timedelta(hours=1)
STATES = ["OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE", "running", "Idle"]


class Generator:
    """Bronze rows with their arrival (ingested_at), most on time, some late by up to an hour,
    plus duplicates, near-duplicates and rows that break every rule."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.rows: dict[str, list[Row]] = {t: [] for t in ref.BRONZE_TABLES}

    def arrival(self, when: datetime) -> datetime:
        if self.rnd.random() < 0.15:  # late: behind later events of the same machine
            return when + timedelta(seconds=self.rnd.randint(60, int(LATE_WINDOW.seconds)))
        return when + timedelta(seconds=self.rnd.uniform(0, 5))

    def add(self, table: str, when: datetime, **values) -> Row:
        row = {"time": when, "ingested_at": self.arrival(when), "gateway_id": "gw", **values}
        self.rows[table].append(row)
        return row

    def cycles(self, machine: int) -> None:
        end, count = START, self.rnd.randint(0, 50)
        while end < START + timedelta(hours=HOURS):
            gap = self.rnd.choice([
                self.rnd.randint(0, 10), 10, self.rnd.randint(11, 100), 100,
                self.rnd.randint(101, 600),
            ])
            start = end + timedelta(seconds=gap)
            end = start + timedelta(seconds=self.rnd.randint(30, 240))
            count = self.rnd.randint(0, 2) if self.rnd.random() < 0.07 else count + 1
            self.add("machine_cycles", end, machine_id=machine, cycle_start=start,
                     program_name=self.rnd.choice(["P-1", "P-2", None]), part_count=count,
                     result=self.rnd.choice(["GOOD", "GOOD", "SCRAP", "good"]),
                     std_cycle_seconds=60.0, std_load_unload_seconds=10.0,
                     down_threshold_seconds=100.0)

    def states(self, machine: int) -> None:
        when = START
        while when < START + timedelta(hours=HOURS):
            self.add("machine_state_events", when, machine_id=machine,
                     state=self.rnd.choice(STATES), program_name=self.rnd.choice(["P-1", None]))
            # sometimes two events at the same instant: ordered by id
            when += timedelta(seconds=self.rnd.choice([0, 60, 300, 600, 900]))

    def telemetry(self, machine: int) -> None:
        when, energy = START, 100.0
        while when < START + timedelta(hours=HOURS):
            energy = 0.5 if self.rnd.random() < 0.05 else energy + self.rnd.uniform(0, 2)
            self.add("machine_telemetry", when, machine_id=machine,
                     spindle_speed_rpm=self.rnd.choice([0.0, 1200.0, 60000.0]),
                     feed_rate_mm_min=self.rnd.uniform(0, 500), spindle_load_pct=None,
                     spindle_temp_c=self.rnd.uniform(-50, 300), motor_temp_c=40.0,
                     coolant_temp_c=None, power_kw=self.rnd.uniform(0, 20), energy_kwh=energy)
            when += timedelta(minutes=self.rnd.choice([3, 5, 7]))

    def alarms(self, machine: int) -> None:
        for _ in range(6):
            when = START + timedelta(seconds=self.rnd.randint(0, HOURS * 3600))
            self.add("alarms", when, machine_id=machine, alarm_code=self.rnd.choice(["A1", "A2"]),
                     severity=self.rnd.choice(["EMERGENCY", "error", "Warning", "info", "x"]),
                     message="m", event=self.rnd.choice(["RAISED", "CLEARED", "raised"]))

    def downtime(self, machine: int) -> None:
        # stoppages sent when they end; reasons planned, unplanned and one not catalogued
        end = START
        while end < START + timedelta(hours=HOURS):
            start = end + timedelta(seconds=self.rnd.randint(0, 900))
            end = start + timedelta(seconds=self.rnd.choice([0, 30, 600, 2400]))
            self.add("downtime_events", end, machine_id=machine, down_start=start,
                     reason_code=self.rnd.choice(["BREAK", "TOOL", "NO-ORDER", "??"]),
                     program_name=self.rnd.choice(["P-1", None]))

    def platform(self) -> None:
        # numeric devices (one calibrated), a serial-only device, and a serial that is sent
        # alone first and paired with a numeric id later (the pairing applies from then on)
        for i in range(30):
            when = START + timedelta(minutes=4 * i)
            device_id, serial = self.rnd.choice([
                (21, None), (22, None), (None, "SN-X"), (None, "SN-Y"),
                (23, "SN-Y") if i > 10 else (None, "SN-Y"),
            ])
            self.add("platform_extension", when, device_id=device_id, device_serial=serial,
                     value=self.rnd.choice([-40.0, 0.0, 13.0, 80.0]),
                     unit=self.rnd.choice(["ticks", "mm", "Ticks"]), firmware="1.2")

    def bad_rows(self) -> None:
        """At least one row per quarantine reason and table, and rows with several problems."""
        rnd = self.rnd

        def copy_of(table: str, **changes) -> Row:
            """A later copy of a random earlier row (a duplicate unless changes differ)."""
            original = rnd.choice(self.rows[table])
            delay = timedelta(seconds=rnd.randint(1, 1800))
            row = {**original, "ingested_at": original["ingested_at"] + delay, **changes}
            self.rows[table].append(row)
            return row

        def early(row: Row, minutes: float) -> Row:
            """The row's time is `minutes` after its arrival."""
            row["ingested_at"] = row["time"] - timedelta(minutes=minutes)
            return row

        for table in ref.BRONZE_TABLES:
            for _ in range(3):
                copy_of(table)                                     # duplicates
            future = copy_of(table)                                # future_time, own key
            future["time"] += timedelta(seconds=7)
            for start_column in ("cycle_start", "down_start"):
                if future.get(start_column) is not None:
                    future[start_column] += timedelta(seconds=7)
            early(future, 6)
            later = future["time"] + timedelta(seconds=10)
            self.rows[table].append({**future, "ingested_at": later})  # not a duplicate
            self.rows[table].append({**future, "ingested_at": later + timedelta(seconds=5)})
            early(copy_of(table), 5)                               # exactly 5 minutes: fine
            if table != "platform_extension":
                copy_of(table, machine_id=UNKNOWN)
                copy_of(table, machine_id=None)
                early(copy_of(table, machine_id=UNKNOWN), 30)      # unknown wins over future
        copy_of("machine_cycles", cycle_start=None)
        copy_of("machine_cycles", part_count=None)
        copy_of("machine_cycles", result=None, machine_id=UNKNOWN)
        copy_of("machine_cycles", result="MAYBE")
        bad = copy_of("machine_cycles")
        bad["cycle_start"] = bad["time"] + timedelta(seconds=1)    # bad_interval
        bad = early(copy_of("machine_cycles", result="??"), 20)    # invalid > interval > future
        bad["cycle_start"] = bad["time"] + timedelta(seconds=1)
        bad = early(copy_of("machine_cycles"), 20)                 # bad_interval > future
        bad["cycle_start"] = bad["time"] + timedelta(seconds=1)
        copy_of("machine_cycles", std_cycle_seconds=61.0)          # near-duplicate: accepted
        copy_of("machine_state_events", state=None)
        copy_of("machine_state_events", state="DANCING")
        early(copy_of("machine_state_events", state="DANCING"), 30)
        nulls = {c: None for c in ref.TELEMETRY_MEASURES}
        copy_of("machine_telemetry", **nulls)
        for column, value in [("spindle_temp_c", 300.5), ("motor_temp_c", -50.5),
                              ("coolant_temp_c", 999.0), ("spindle_speed_rpm", -1.0),
                              ("spindle_speed_rpm", 60001.0), ("power_kw", -0.5),
                              ("feed_rate_mm_min", -1.0), ("spindle_load_pct", 1000.5)]:
            copy_of("machine_telemetry", **{column: value})
        early(copy_of("machine_telemetry", power_kw=-1.0), 30)     # out_of_range > future
        early(copy_of("machine_telemetry", **nulls), 30)           # missing > future
        copy_of("alarms", alarm_code=None)
        copy_of("alarms", severity=None)
        copy_of("alarms", event=None)
        copy_of("alarms", event="BOOM")
        copy_of("downtime_events", down_start=None)
        copy_of("downtime_events", reason_code=None)
        copy_of("downtime_events", reason_code="NEVER-SEEN")         # accepted as sent
        bad = copy_of("downtime_events")
        bad["down_start"] = bad["time"] + timedelta(seconds=1)      # bad_interval
        bad = early(copy_of("downtime_events"), 20)                  # bad_interval > future
        bad["down_start"] = bad["time"] + timedelta(seconds=1)
        early(copy_of("downtime_events", reason_code=None), 30)     # missing > future
        copy_of("platform_extension", value=None)
        copy_of("platform_extension", unit=None, value=None)
        copy_of("platform_extension", device_id=None, device_serial=None)
        copy_of("platform_extension", unit="inch")
        early(copy_of("platform_extension", unit="inch"), 30)

    def generate(self) -> list[tuple[str, Row]]:
        for machine in MACHINES:
            self.cycles(machine)
            self.states(machine)
            self.telemetry(machine)
            self.alarms(machine)
            self.downtime(machine)
        self.platform()
        self.bad_rows()
        events = [(table, row) for table, rows in self.rows.items() for row in rows]
        # Bronze receives rows in arrival order (ties in generation order)
        events.sort(key=lambda item: item[1]["ingested_at"])
        return events


def chunks(rnd: random.Random, events: list, count: int) -> list[list]:
    cuts = sorted(rnd.sample(range(1, len(events)), count - 1))
    return [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]


def setup_master(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("insert into master.sites values (1, 'BER', %s)", [BERLIN])
        for s in SHIFTS:
            cur.execute("insert into master.shifts values (1, %s, 'shift', %s, %s)",
                        [s.shift_id, s.start_local, s.end_local])
        for machine in MACHINES:
            cur.execute("insert into master.machines values (%s, %s, 1)", [machine, f"M{machine}"])
        for device, ticks in CALIBRATIONS.items():
            cur.execute("insert into master.device_calibrations values (%s, %s)", [device, ticks])


def check_against_reference(conn: psycopg.Connection, rows: dict[str, list[Row]]) -> None:
    machines = set(MACHINES)
    for table in ref.BRONZE_TABLES:
        verdict = ref.classify(table, rows[table], machines)
        expected = {i: r for i, r in verdict.items() if r is not None}
        assert ref.quarantine_reasons(conn, table) == expected, table
        # every reason of the table's rule set occurs at least once
        assert "duplicate" in expected.values() and "future_time" in expected.values(), table
    everything = {
        "fct_machine_cycles": ref.cycle_facts(
            rows["machine_cycles"], ref.classify("machine_cycles", rows["machine_cycles"],
                                                 machines),
            lambda m, ts: ref.shift_of(BERLIN, SHIFTS, ts)),
        "fct_state_intervals": ref.state_intervals(
            rows["machine_state_events"],
            ref.classify("machine_state_events", rows["machine_state_events"], machines)),
        "fct_telemetry": ref.telemetry_facts(
            rows["machine_telemetry"],
            ref.classify("machine_telemetry", rows["machine_telemetry"], machines)),
        "fct_alarm_events": ref.alarm_facts(
            rows["alarms"], ref.classify("alarms", rows["alarms"], machines)),
        "fct_downtime_events": ref.downtime_facts(
            rows["downtime_events"],
            ref.classify("downtime_events", rows["downtime_events"], machines),
            lambda m, ts: ref.shift_of(BERLIN, SHIFTS, ts)),
    }
    for fact, expected in everything.items():
        actual = {r["bronze_id"]: r for r in fetch_dicts(conn, f"select * from silver.{fact}")}
        assert ref.differences(expected, actual) == [], fact
    cycles = rows["machine_cycles"]
    expected_state = ref.latest_cycles(
        cycles, ref.classify("machine_cycles", cycles, machines), machines)
    actual_state = {r["machine_id"]: r
                    for r in fetch_dicts(conn, "select * from silver.latest_cycle_state")}
    assert ref.differences(expected_state, actual_state) == []
    platform = rows["platform_extension"]
    expected = ref.platform_facts(
        platform, ref.classify("platform_extension", platform, machines), CALIBRATIONS)
    serials = {r["device_id"]: r["device_serial"]
               for r in fetch_dicts(conn, "select * from silver.dim_device")}
    actual = {r["bronze_id"]: {**r, "device": ("id", r["device_id"]) if r["device_id"] > 0
                               else ("serial", serials[r["device_id"]])}
              for r in fetch_dicts(conn, "select * from silver.fct_platform_extension")}
    assert ref.differences(expected, actual) == []


def late_arrivals(events: list[tuple[str, Row]], table: str, order_key: str) -> int:
    """How many rows of table arrive after a row of the same machine that comes later."""
    latest: dict = {}
    late = 0
    for name, row in events:
        if name != table or row.get("machine_id") not in MACHINES:
            continue
        machine = row["machine_id"]
        key = row[order_key]
        if key is None:
            continue
        if machine in latest and key < latest[machine]:
            late += 1
        latest[machine] = max(latest.get(machine, key), key)
    return late


def run_scenario(db_url: str, dbt_run, seed: int, chunk_count: int) -> None:
    rnd = random.Random(seed * 7919)
    generator = Generator(seed)
    events = generator.generate()
    # the scenario exercises what it is about
    assert late_arrivals(events, "machine_cycles", "cycle_start") >= 5
    assert late_arrivals(events, "machine_state_events", "time") >= 5
    assert late_arrivals(events, "downtime_events", "time") >= 1
    with psycopg.connect(db_url, autocommit=True) as conn:
        ref.reset_warehouse(conn)
        setup_master(conn)
        for chunk in chunks(rnd, events, chunk_count):
            with conn.transaction(), conn.cursor() as cur:
                for table, row in chunk:
                    ref.insert_rows(cur, table, [row])
            batch_size = rnd.randint(3, 25)
            assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, *batch_vars(batch_size))) == 0
        incremental = ref.snapshot(conn)
        check_against_reference(conn, generator.rows)
        assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, "--full-refresh")) == 0
        rebuilt = ref.snapshot(conn)
    for relation in incremental:
        assert len(incremental[relation]) > 1, f"{relation} is empty: the scenario is too thin"
        assert incremental[relation] == rebuilt[relation], relation


@pytest.fixture(scope="module", autouse=True)
def bronze_ready(dbt_run) -> None:
    assert dbt_run(dbt_args("run-operation", "setup_warehouse")) == 0


@pytest.mark.parametrize("seed", [11])
def test_incremental_chunks_equal_full_refresh_and_reference(db_url, dbt_run, seed) -> None:
    run_scenario(db_url, dbt_run, seed, chunk_count=4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_chunks_equal_full_refresh_more_seeds(db_url, dbt_run, seed) -> None:
    run_scenario(db_url, dbt_run, seed, chunk_count=6)


def test_serial_sent_alone_before_its_pairing_is_split_invariant(db_url, dbt_run) -> None:
    """A serial first sent alone, then with a numeric id, then alone again: each reading's
    device must not depend on whether the three share a batch."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ref.reset_warehouse(conn)
        setup_master(conn)
        rows = [
            {"time": START, "device_serial": "SN-P", "value": 10.0, "unit": "mm"},
            {"time": START + timedelta(seconds=1), "device_id": 31, "device_serial": "SN-P",
             "value": -40.0, "unit": "ticks"},
            {"time": START + timedelta(seconds=2), "device_serial": "SN-P", "value": 40.0,
             "unit": "ticks"},
            {"time": START + timedelta(seconds=3), "device_id": 32, "value": 1.0, "unit": "mm"},
            {"time": START + timedelta(seconds=4), "device_id": 32, "device_serial": "SN-Q",
             "value": 1.0, "unit": "mm"},
        ]
        for row in rows:
            row["ingested_at"] = row["time"]
        with conn.cursor() as cur:
            ref.insert_rows(cur, "platform_extension", rows)
        assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, *batch_vars(1))) == 0
        one_by_one = ref.snapshot(conn)["fct_platform_extension"]
        devices_one_by_one = fetch_dicts(conn, "select * from silver.dim_device order by 1")
        conn.execute("truncate silver.dim_device")
        assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION, "--full-refresh")) == 0
        together = ref.snapshot(conn)["fct_platform_extension"]
        devices_together = fetch_dicts(conn, "select * from silver.dim_device order by 1")
        got = {r["bronze_id"]: (r["device_id"], r["device_created_from"])
               for r in fetch_dicts(conn, "select * from silver.fct_platform_extension")}
    assert one_by_one == together
    assert devices_one_by_one == devices_together
    assert got[1][0] < 0 and got[1][1] == "serial"        # nothing tied SN-P yet
    assert got[2] == (31, "device_id")
    assert got[3] == (31, "serial_of_known_device")        # tied by the earlier reading 2
    serials = {d["device_id"]: d["device_serial"] for d in devices_together}
    assert serials[32] == "SN-Q"  # first reading came without a serial; the next had one
