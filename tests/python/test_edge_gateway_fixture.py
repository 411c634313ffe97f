"""Two gateways of the SETU edge template, a working day each, synced as the plant syncs them.

The gateway files are simulated in the template's original nine-table schema
(tests/fixtures/edge/gateway_template.py): energy categories, cycles an alarm interrupts,
rejects, stoppages with reasons, statuses rewritten within one second, and two gateways that
both number their machines from 1. Every few minutes `sync_gateway` runs, as a timer would;
just before each run the test copies the rows it is about to see (SyncedStatus not 1). What
Bronze and Gold must hold is then worked out here from those rows and from the controller's
own counters, with the rules of docs/connectors/sqlite-sync.md and the contract, not with the
code under test. One test per point of issue 13 (1-6); the CSV mapping (7) is in
test_ingest.py.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from gold_reference import SELECTION, dbt_args
from setu.ingest.connectors.edge_sync import sync_edge, sync_gateway

FIXTURE = Path(__file__).parents[1] / "fixtures" / "edge" / "gateway_template.py"
_spec = importlib.util.spec_from_file_location("gateway_template", FIXTURE)
template = importlib.util.module_from_spec(_spec)
sys.modules["gateway_template"] = template  # dataclasses look their module up there
_spec.loader.exec_module(template)

DATABASE = "setu_test_edge_gateway"
ZONE_NAME = "Asia/Kolkata"
ZONE = ZoneInfo(ZONE_NAME)
SITE_ID = 9100
DAY = date(2026, 1, 5)
START = datetime(2026, 1, 5, 6, 0)
END = datetime(2026, 1, 5, 16, 0)
SYNC_EVERY = timedelta(minutes=5)
# line-1 is mapped in master.gateway_machines (its labels are not our machine codes); line-2
# through the MachineID labels of its MachineInformation_MVP. Both number machines from 1;
# line-2's third machine is in no master data at all.
GATEWAYS = {"line-1": (1, (1, 2), 11), "line-2": (2, (1, 2, 3), 22)}
MACHINES = {9101: "VMC-11", 9102: "VMC-12", 9201: "M_2_001", 9202: "M_2_002"}
MAPPING = {("line-1", "1"): 9101, ("line-1", "2"): 9102}
LABELS = {("line-2", "1"): 9201, ("line-2", "2"): 9202}
PLANNED_REASONS = {"7", "13"}
STATES = {"Running": "RUNNING", "Idle": "IDLE", "Stopped": "MAINTENANCE"}
USED_TABLES = tuple(name for name in template.TABLES if name != "MachineWiseProgramDetails_MVP")


def machine_of(gateway: str, iotid: object) -> int | None:
    key = (gateway, str(iotid))
    return MAPPING.get(key) or LABELS.get(key)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).astimezone(UTC)


@dataclass
class Synced:
    url: str
    paths: dict[str, Path]
    # per gateway and table: every row version a sync saw unsynced, in the order seen
    seen: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    syncs: int = 0
    resync_output: dict[str, str] = field(default_factory=dict)
    reset_output: dict[str, str] = field(default_factory=dict)


def unsynced_rows(path: Path) -> dict[str, list[dict]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {table: [dict(row) for row in db.execute(
            f"select * from {table} where SyncedStatus is null or SyncedStatus <> 1 "
            "order by rowid")] for table in template.TABLES}
    finally:
        db.close()


@pytest.fixture(scope="module")
def synced(cluster, dbt_run, tmp_path_factory) -> Iterator[Synced]:
    folder = tmp_path_factory.mktemp("gateways")
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(dbt_args("--quiet", "run-operation", "setup_warehouse")) == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into master.sites values (%s, 'EDGE', %s)", (SITE_ID, ZONE_NAME))
            for shift_id, start, end in template.SHIFTS:
                conn.execute("insert into master.shifts values (%s, %s, %s, %s, %s)",
                             (SITE_ID, int(shift_id), f"S{shift_id}", start, end))
            for machine, code in MACHINES.items():
                conn.execute("insert into master.machines values (%s, %s, %s)",
                             (machine, code, SITE_ID))
            for code in template.DOWN_REASONS:
                conn.execute("insert into master.downtime_reasons values (%s, %s, %s)",
                             (str(code), f"reason {code}", str(code) in PLANNED_REASONS))
            if conn.execute("select to_regclass('master.gateway_machines')").fetchone()[0]:
                for (gateway, iotid), machine in MAPPING.items():
                    conn.execute("insert into master.gateway_machines values (%s, %s, %s)",
                                 (gateway, iotid, machine))
        data = Synced(url, {})
        with psycopg.connect(url, autocommit=True) as conn:
            for gateway, (number, iotids, seed) in GATEWAYS.items():
                path = folder / f"{gateway}.db"
                data.paths[gateway] = path
                seen = data.seen[gateway] = {table: [] for table in template.TABLES}

                def on_sync(_moment, path=path, seen=seen, gateway=gateway) -> None:
                    for table, rows in unsynced_rows(path).items():
                        seen[table].extend(rows)
                    sync_gateway(conn, path, gateway, zone=ZONE)
                    data.syncs += 1

                writer = template.Gateway(path, number, iotids, START, END, seed)
                try:
                    writer.run(on_sync, SYNC_EVERY)
                finally:
                    writer.close()
        for gateway, path in data.paths.items():
            data.resync_output[gateway] = cli_sync(path, gateway)
            with sqlite3.connect(path) as db:
                for table in template.TABLES:
                    db.execute(f"update {table} set SyncedStatus = 0")
            data.reset_output[gateway] = cli_sync(path, gateway)
        assert dbt_run(dbt_args("run", *SELECTION)) == 0, "dbt run on the gateway fixture"
        yield data


def cli_sync(path: Path, gateway: str, *extra: str) -> str:
    result = CliRunner().invoke(sync_edge, [str(path), "--gateway", gateway, "--timezone",
                                            ZONE_NAME, *extra],
                                env={"SETU_PG_DATABASE": DATABASE}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def conn(synced: Synced) -> Iterator[psycopg.Connection]:
    with psycopg.connect(synced.url, autocommit=True) as connection:
        connection.execute("set time zone 'UTC'")
        yield connection


def final_rows(path: Path, table: str) -> list[dict]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(f"select * from {table} order by rowid")]
    finally:
        db.close()


def seen_rows(synced: Synced, table: str) -> Iterator[tuple[str, int, dict]]:
    """(gateway, machine_id, row) of the rows syncs saw, for mapped machines only."""
    for gateway, tables in synced.seen.items():
        for row in tables[table]:
            machine = machine_of(gateway, row["IOTID"])
            if machine is not None:
                yield gateway, machine, row


# -- the fixture is what it claims ----------------------------------------------------------

def test_fixture_has_the_field_quirks(synced: Synced) -> None:
    for gateway, path in synced.paths.items():
        cycles = final_rows(path, "MachineWiseCycleDetails_MVP")
        alarms = {(row["IOTID"], row["AlarmTS"])
                  for row in final_rows(path, "MachineWiseAlarmDetails_MVP")}
        interrupted = [row for row in cycles if (row["IOTID"], row["CycleEnd"]) in alarms]
        assert len(interrupted) >= 2, gateway
        focas = final_rows(path, "MachineWiseFocasDetails_MVP")
        assert sum(row["RejCount"] for row in focas) >= 2, gateway
        assert sum(row["PartCount"] for row in focas) == len(cycles) - len(interrupted)
        categories = Counter(row["Category"] for row in final_rows(
            path, "MachineWiseEnergyDetails_MVP"))
        assert set(categories) == {"CONSP", "REGEN", "NET"}
        assert final_rows(path, "MachineWiseDownDetails_MVP"), gateway
    # statuses rewritten within one second, each version seen by a sync
    status = [(gateway, row["IOTID"], row["UpdatedTS"])
              for gateway, tables in synced.seen.items()
              for row in tables["MachineRunningStatus_MVP"]]
    assert [key for key, count in Counter(status).items() if count > 1]
    assert synced.syncs > 200


# -- issue 13, point by point ---------------------------------------------------------------

def energy_readings(synced: Synced) -> dict[int, list[tuple[datetime, float]]]:
    readings: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for _, machine, row in seen_rows(synced, "MachineWiseEnergyDetails_MVP"):
        if row["Category"] == "CONSP":
            readings[machine].append((utc(row["UpdatedTS"]), row["TotalEnergy"]))
    return readings


def test_point_1_energy_is_the_consumed_meter_only(synced: Synced,
                                                   conn: psycopg.Connection) -> None:
    readings = energy_readings(synced)
    bronze = defaultdict(list)
    for machine, moment, kwh in conn.execute(
            "select machine_id, time, energy_kwh from bronze.machine_telemetry "
            "where gateway_id like 'line-%' and energy_kwh is not null order by id"):
        bronze[machine].append((moment, kwh))
    assert {m: Counter(r) for m, r in bronze.items()} == \
        {m: Counter(r) for m, r in readings.items()}
    # Gold: the day's consumption, meter deltas of consecutive readings (first counts 0)
    gold = dict(conn.execute("select machine_id, kwh_total from gold.energy_daily "
                             "where local_date = %s and machine_id = any(%s)",
                             (DAY, list(MACHINES))).fetchall())
    for machine, series in readings.items():
        values = [kwh for _, kwh in sorted(series)]
        expected = sum(b - a if b >= a else b for a, b in zip(values, values[1:], strict=False))
        assert gold[machine] == pytest.approx(expected, abs=1e-6), machine
        assert 1.0 < expected < 40.0  # a machine's day, not the 45x of mixing categories
    others = sum(1 for _, _, row in seen_rows(synced, "MachineWiseEnergyDetails_MVP")
                 if row["Category"] != "CONSP")
    kept = conn.execute(
        "select count(distinct (gateway_id, source_rowid, source_updated_ts)) "
        "from _ingest.edge_unmapped where reason = 'not_consumed_energy' "
        "and item in ('REGEN', 'NET') and gateway_id like 'line-%'").fetchone()[0]
    assert kept == others > 0


def test_point_2_every_table_synced_or_named_as_not_used(synced: Synced,
                                                         conn: psycopg.Connection) -> None:
    for gateway, path in synced.paths.items():
        with sqlite3.connect(path) as db:
            for table in USED_TABLES:
                assert db.execute(f"select count(*) from {table} where SyncedStatus <> 1"
                                  ).fetchone()[0] == 0, (gateway, table)
            program_rows = db.execute(
                "select count(*) from MachineWiseProgramDetails_MVP").fetchone()[0]
        ledger = Counter(dict(conn.execute(
            "select source_table, count(*) from _ingest.edge_sync_ledger "
            "where gateway_id = %s group by source_table", (gateway,)).fetchall()))
        # one ledger row per row version a sync saw, for every used table
        assert ledger == Counter({table: len(synced.seen[gateway][table])
                                  for table in USED_TABLES}), gateway
        # the reset-flags sync: every row of the file a replay, the unused table named once
        output = synced.reset_output[gateway]
        assert " 0 new row(s)" in output
        used_rows = sum(len(final_rows(path, table)) for table in USED_TABLES)
        assert f"already loaded (replayed rows), marked synced now: {used_rows:,}" \
            in output
        assert output.count("MachineWiseProgramDetails_MVP") == 1
        assert (f"not used: MachineWiseProgramDetails_MVP: {program_rows:,} row(s), "
                f"{program_rows:,} unsynced") in output
        assert "not in the file" not in output
    # the stoppages: bronze.downtime_events, one row per down row, time = its end
    expected = Counter((gateway, machine, utc(row["DownEnd"]), utc(row["DownStart"]),
                        str(row["DownID"]), row["ProgramNo"])
                       for gateway, machine, row in seen_rows(synced, "MachineWiseDownDetails_MVP"))
    actual = Counter(conn.execute(
        "select gateway_id, machine_id, time, down_start, reason_code, program_name "
        "from bronze.downtime_events where gateway_id like 'line-%'").fetchall())
    assert actual == expected and expected.total() >= 4


def test_point_3_parts_and_scrap_match_the_controller_counters(
        synced: Synced, conn: psycopg.Connection) -> None:
    counters: dict[int, Counter] = defaultdict(Counter)
    for gateway, path in synced.paths.items():
        for row in final_rows(path, "MachineWiseFocasDetails_MVP"):
            machine = machine_of(gateway, row["IOTID"])
            if machine is not None and row["Date"] == DAY.isoformat():
                counters[machine]["parts"] += row["PartCount"]
                counters[machine]["rejects"] += row["RejCount"]
    gold = {machine: Counter(cycles=cycles, good=good, scrap=scrap)
            for machine, cycles, good, scrap in conn.execute(
                "select machine_id, sum(cycles), sum(good_parts), sum(scrap_parts) "
                "from gold.program_history_daily where local_date = %s "
                "and machine_id = any(%s) group by machine_id", (DAY, list(MACHINES)))}
    assert set(gold) == set(counters) == set(MACHINES)
    for machine, counter in counters.items():
        assert gold[machine] == Counter(cycles=counter["parts"],
                                        good=counter["parts"] - counter["rejects"],
                                        scrap=counter["rejects"]), machine
    assert sum(c["rejects"] for c in counters.values()) >= 2
    # the joined cycle starts where the interrupted one started
    for gateway, path in synced.paths.items():
        cycles = final_rows(path, "MachineWiseCycleDetails_MVP")
        alarms = {(row["IOTID"], row["AlarmTS"])
                  for row in final_rows(path, "MachineWiseAlarmDetails_MVP")}
        for first, rest in zip(cycles, cycles[1:], strict=False):
            machine = machine_of(gateway, first["IOTID"])
            if (first["IOTID"], first["CycleEnd"]) not in alarms or machine is None:
                continue
            rest = next(row for row in cycles[cycles.index(first) + 1:]
                        if row["IOTID"] == first["IOTID"])
            assert conn.execute(
                "select count(*) from bronze.machine_cycles where machine_id = %s "
                "and cycle_start = %s and time = %s",
                (machine, utc(first["CycleStart"]), utc(rest["CycleEnd"]))).fetchone()[0] == 1


def expected_state_events(synced: Synced) -> Counter:
    return Counter((machine, utc(row["UpdatedTS"]), STATES[row["Status"]],
                    row["RunningProgramNo"])
                   for _, machine, row in seen_rows(synced, "MachineRunningStatus_MVP"))


def test_point_4_a_status_rewritten_within_the_second_is_a_new_event(
        synced: Synced, conn: psycopg.Connection) -> None:
    actual = Counter(conn.execute(
        "select machine_id, time, state, program_name from bronze.machine_state_events "
        "where gateway_id like 'line-%'").fetchall())
    expected = expected_state_events(synced)
    assert actual == expected
    same_second = Counter((machine, moment) for machine, moment, _, _ in expected.elements())
    assert max(same_second.values()) >= 2
    # resync and flag reset load nothing again
    for gateway in synced.paths:
        assert "0 new row(s)" in synced.resync_output[gateway]


def test_point_5_stopped_is_a_stoppage_configurable_per_gateway(
        synced: Synced, conn: psycopg.Connection, tmp_path: Path) -> None:
    stopped = conn.execute(
        "select count(*) from bronze.machine_state_events where gateway_id like 'line-%' "
        "and state = 'MAINTENANCE'").fetchone()[0]
    assert stopped == sum(1 for _, _, row in seen_rows(synced, "MachineRunningStatus_MVP")
                          if row["Status"] == "Stopped") > 0
    # utilization from the state events synced, closed intervals only, by hand
    events = defaultdict(list)
    for _, machine, row in seen_rows(synced, "MachineRunningStatus_MVP"):
        events[machine].append((utc(row["UpdatedTS"]), STATES[row["Status"]]))
    gold = {row[0]: row[1:] for row in conn.execute(
        "select machine_id, running_seconds, idle_seconds, maintenance_seconds, "
        "utilization_pct from gold.machine_utilization_daily where local_date = %s "
        "and machine_id = any(%s)", (DAY, list(MACHINES)))}
    for machine, series in events.items():
        series.sort(key=lambda event: event[0])  # stable: same-second rewrites keep order
        seconds = Counter()
        for (start, state), (end, _) in zip(series, series[1:], strict=False):
            seconds[state] += (end - start).total_seconds()
        assert gold[machine][0] == pytest.approx(seconds["RUNNING"])
        assert gold[machine][1] == pytest.approx(seconds["IDLE"])
        assert gold[machine][2] == pytest.approx(seconds["MAINTENANCE"])
        total = sum(seconds.values())
        assert gold[machine][3] == pytest.approx(100 * seconds["RUNNING"] / total)
    # gateways whose Stopped means an alarm stop: master data for line-9, --status for
    # line-8's run; line-1 and line-2 keep the template's meaning (above)
    with psycopg.connect(synced.url, autocommit=True) as admin:
        admin.execute("insert into master.gateway_machines values ('line-9', '1', 9101), "
                      "('line-8', '1', 9102) on conflict do nothing")
        admin.execute("insert into master.gateway_statuses values ('line-9', 'Stopped', "
                      "'ALARM') on conflict do nothing")
    for gateway, extra in (("line-9", ()), ("line-8", ("--status", "Stopped=ALARM"))):
        path = tmp_path / f"{gateway}.db"
        db = sqlite3.connect(path)
        db.executescript(template.TEMPLATE_DDL)
        db.executemany("insert into MachineRunningStatus_MVP values (1, 'O9', ?, 'OP1', 1, ?, "
                       "0)", [("Stopped", "2026-01-06 08:00:00"),
                              ("Running", "2026-01-06 08:05:00")])
        db.commit()
        db.close()
        cli_sync(path, gateway, *extra)
        assert conn.execute("select state from bronze.machine_state_events "
                            "where gateway_id = %s order by time", (gateway,)).fetchall() == \
            [("ALARM",), ("RUNNING",)], gateway


def test_point_6_colliding_iotids_stay_apart(synced: Synced, conn: psycopg.Connection) -> None:
    per_gateway = dict(conn.execute(
        "select gateway_id, array_agg(distinct machine_id order by machine_id) from ("
        "select gateway_id, machine_id from bronze.machine_state_events union all "
        "select gateway_id, machine_id from bronze.machine_cycles union all "
        "select gateway_id, machine_id from bronze.machine_telemetry union all "
        "select gateway_id, machine_id from bronze.alarms union all "
        "select gateway_id, machine_id from bronze.downtime_events) as rows "
        "where gateway_id in ('line-1', 'line-2') group by gateway_id").fetchall())
    assert per_gateway == {"line-1": [9101, 9102], "line-2": [9201, 9202]}
    # line-2's machine 3 is in no master data: its rows are kept, never loaded as another
    unmapped = sum(1 for table in USED_TABLES if table != "MachineInformation_MVP"
                   for row in synced.seen["line-2"][table] if row["IOTID"] == 3)
    kept = conn.execute(
        "select count(distinct (source_table, source_rowid, source_updated_ts)) "
        "from _ingest.edge_unmapped where gateway_id = 'line-2' "
        "and reason = 'unknown_machine'").fetchone()[0]
    assert kept == unmapped > 0


def test_downtime_and_oee_match_the_fixture(synced: Synced, conn: psycopg.Connection) -> None:
    """Contract v2 on the gateway's own data: gold.downtime_daily from the down rows synced,
    and gold.oee_daily from the status rows, the down rows and the controller's counters."""
    stoppages: dict[tuple, Counter] = defaultdict(Counter)
    planned_down: Counter = Counter()
    for _, machine, row in seen_rows(synced, "MachineWiseDownDetails_MVP"):
        start, end = utc(row["DownStart"]), utc(row["DownEnd"])
        day = start.astimezone(ZONE).date()
        reason = str(row["DownID"])
        stoppages[(machine, day, reason)].update(events=1, seconds=(end - start).total_seconds())
        if reason in PLANNED_REASONS and day == DAY:
            planned_down[machine] += (end - start).total_seconds()
    gold = {(machine, day, reason): (events, seconds, planned)
            for machine, day, reason, events, seconds, planned in conn.execute(
                "select machine_id, local_date, reason_code, events, down_seconds, planned "
                "from gold.downtime_daily where machine_id = any(%s)", (list(MACHINES),))}
    assert set(gold) == set(stoppages)
    for key, counted in stoppages.items():
        assert gold[key][0] == counted["events"], key
        assert gold[key][1] == pytest.approx(counted["seconds"]), key
        assert gold[key][2] == (key[2] in PLANNED_REASONS), key
    assert sum(planned_down.values()) > 0 and len(gold) >= 4

    events = defaultdict(list)
    for _, machine, row in seen_rows(synced, "MachineRunningStatus_MVP"):
        events[machine].append((utc(row["UpdatedTS"]), STATES[row["Status"]]))
    counters: dict[int, Counter] = defaultdict(Counter)
    for gateway, path in synced.paths.items():
        for row in final_rows(path, "MachineWiseFocasDetails_MVP"):
            machine = machine_of(gateway, row["IOTID"])
            if machine is not None and row["Date"] == DAY.isoformat():
                counters[machine].update(parts=row["PartCount"], rejects=row["RejCount"])
    oee = {row[0]: row[1:] for row in conn.execute(
        "select machine_id, planned_seconds, availability, performance, quality, oee "
        "from gold.oee_daily where local_date = %s and machine_id = any(%s)",
        (DAY, list(MACHINES)))}
    assert set(oee) == set(MACHINES)
    for machine, series in events.items():
        series.sort(key=lambda event: event[0])
        seconds = Counter()
        for (start, state), (end, _) in zip(series, series[1:], strict=False):
            seconds[state] += (end - start).total_seconds()
        planned = max(sum(seconds.values()) - planned_down[machine], 0.0)
        availability = seconds["RUNNING"] / planned
        performance = counters[machine]["parts"] * template.STD_CYCLE_SECONDS / seconds["RUNNING"]
        quality = 1 - counters[machine]["rejects"] / counters[machine]["parts"]
        got = oee[machine]
        assert got[0] == pytest.approx(planned), machine
        assert got[1:] == pytest.approx((availability, performance, quality,
                                         availability * performance * quality)), machine
        assert 0.0 < got[4] < 1.0, machine
