"""MTConnect SHDR ingest: the parser and mapper on hand-made lines, then a four-hour log of one
mill (tests/fixtures/mtconnect/mill-4h.shdr) through `setu ingest` and dbt into
gold.machine_utilization_daily, compared with seconds worked out by hand from the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.cli import main
from setu.cli.ingest import ingest
from setu.ingest.connectors.mtconnect import (
    Accounting,
    default_mapping,
    load_mapping,
    map_observations,
    parse_shdr,
)

DATABASE = "setu_test_mtconnect"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mtconnect"
MILL_LOG = FIXTURES / "mill-4h.shdr"
MACHINE = 8101
LATHE = 8102  # tests/fixtures/mtconnect/lathe-sessions.shdr, four adapter sessions
SITE = (8100, "Europe/Berlin")  # CET, UTC+1 in January: local midnight is 23:00 UTC


def utc(hhmmss: str) -> datetime:
    """A time of the fixture's night, 2026-01-05 21:00 to 2026-01-06 01:00 UTC."""
    hours, minutes, seconds = map(int, hhmmss.split(":"))
    day = 5 if hours >= 12 else 6
    return datetime(2026, 1, day, hours, minutes, seconds, tzinfo=UTC)


def rows_of(text: str, machine: int = 1, mapping=None):
    """The Bronze rows of SHDR text; rows.acct is the run's accounting."""
    acct = Accounting()
    mapping = mapping or default_mapping()
    mapper = map_observations(parse_shdr(text.splitlines(), mapping, acct), machine, mapping,
                              acct=acct)
    rows = mapper.rows
    rows.acct = acct
    return rows


# -- the mapper on small inputs ---------------------------------------------------------------

def test_execution_mode_availability_and_faults_make_states() -> None:
    rows = rows_of("\n".join([
        "2026-01-05T08:00:00Z|avail|AVAILABLE|mode|AUTOMATIC|execution|READY|program|P1",
        "2026-01-05T08:01:00Z|execution|ACTIVE",
        "2026-01-05T08:02:00Z|execution|PROGRAM_STOPPED",
        "2026-01-05T08:03:00Z|execution|ACTIVE",
        # a fault and the stop it causes, on two lines of one instant: one ALARM event
        "2026-01-05T08:04:00Z|execution|STOPPED",
        "2026-01-05T08:04:00Z|logic|FAULT|EX42|1||DOOR INTERLOCK",
        "2026-01-05T08:05:00Z|logic|NORMAL||||",
        "2026-01-05T08:06:00Z|mode|MANUAL_DATA_INPUT",
        "2026-01-05T08:07:00Z|estop|TRIGGERED",
        "2026-01-05T08:08:00Z|estop|ARMED|mode|AUTOMATIC|execution|READY",
        "2026-01-05T08:09:00Z|avail|UNAVAILABLE",
        "2026-01-05T08:10:00Z|execution|ACTIVE",  # still unavailable: no new event
    ]))
    states = [(when.strftime("%H:%M"), state, program)
              for when, _, _, state, program in rows.machine_state_events]
    assert states == [
        ("08:00", "IDLE", "P1"), ("08:01", "RUNNING", "P1"), ("08:02", "IDLE", "P1"),
        ("08:03", "RUNNING", "P1"), ("08:04", "ALARM", "P1"), ("08:05", "IDLE", "P1"),
        ("08:06", "SETUP", "P1"), ("08:07", "ALARM", "P1"), ("08:08", "IDLE", "P1"),
        ("08:09", "OFF", None),
    ]
    assert [(alarm[3], alarm[4], alarm[6]) for alarm in rows.alarms] == [
        ("EX42", "error", "RAISED"), ("EX42", "error", "CLEARED")]


def test_part_count_increments_are_cycles() -> None:
    rows = rows_of("\n".join([
        "2026-01-05T08:00:00Z|execution|READY|PartCount|7|program|P1",
        "2026-01-05T08:01:00Z|execution|ACTIVE",
        "2026-01-05T08:03:00Z|PartCount|8",     # start: ACTIVE at 08:01
        "2026-01-05T08:05:00Z|PartCount|10",    # two parts at once: one cycle, counter 10
        "2026-01-05T08:06:00Z|execution|FEED_HOLD",
        "2026-01-05T08:07:00Z|execution|ACTIVE",  # resumes: the cycle began at 08:05
        "2026-01-05T08:08:00Z|PartCount|11|execution|READY",
        "2026-01-05T08:09:00Z|PartCount|UNAVAILABLE",
        "2026-01-05T08:10:00Z|PartCount|0",     # reset: no cycle
        "2026-01-05T08:20:00Z|execution|ACTIVE",
        "2026-01-05T08:22:00Z|PartCount|1",
    ]))
    cycles = [(start.strftime("%H:%M"), end.strftime("%H:%M"), count)
              for end, _, _, start, _, count, _ in rows.machine_cycles]
    assert cycles == [("08:01", "08:03", 8), ("08:03", "08:05", 10), ("08:05", "08:08", 11),
                      ("08:20", "08:22", 1)]
    assert {cycle[6] for cycle in rows.machine_cycles} == {"GOOD"}


def test_samples_scale_to_bronze_units_and_unknown_items_are_counted() -> None:
    rows = rows_of("\n".join([
        "* shdrVersion: 2",
        "2026-01-05T08:00:00.5Z|S1speed|1200|path_feedrate|10|Wattage|2500|Xload|14",
        "2026-01-05T08:00:00.5Z|coolant_temp|21|Stemp|UNAVAILABLE",
        "2026-01-05T08:00:01Z|Sspeed|1300|S1speed|1400",  # two spindle speeds: two rows
        "2026-01-05T08:00:02Z|message|M1|HELLO|S1load|abc",
        "2026-01-05T08:00:03Z|@ASSET@|A1|CuttingTool|--multiline--X",
        "<CuttingTool|looks|like|SHDR|but|is|not/>",
        "--multiline--X",
        "not a time|S1speed|1",
    ]))
    telemetry = [(row[0].isoformat(), row[3], row[4], row[6], row[8], row[9])
                 for row in rows.machine_telemetry]
    assert telemetry == [
        ("2026-01-05T08:00:00.500000+00:00", 1200.0, 600.0, None, 21.0, 2.5),
        ("2026-01-05T08:00:01+00:00", 1300.0, None, None, None, None),
        ("2026-01-05T08:00:01+00:00", 1400.0, None, None, None, None),
    ]
    assert rows.acct.unmapped == {"Xload": 1, "message": 1}
    assert rows.acct.not_numbers == {"S1load=abc": 1}
    # the @ASSET@ line and its two body lines; the line without a timestamp
    assert (rows.acct.lines["protocol"], rows.acct.lines["asset"],
            rows.acct.lines["malformed"]) == (1, 3, 1)


def test_device_prefix_and_an_asset_that_never_ends() -> None:
    rows = rows_of("\n".join([
        "2026-01-05T08:00:00Z|mill1:execution|ACTIVE|mill1:S1speed|900",
        "2026-01-05T08:00:01Z|@ASSET@|T1|CuttingTool|--multiline--Q",
        "2026-01-05T08:00:02Z|mill1:execution|READY",
    ]))
    assert [event[3] for event in rows.machine_state_events] == ["RUNNING"]
    assert [row[3] for row in rows.machine_telemetry] == [900.0]
    assert rows.acct.bad_lines == [
        "line 2: asset never ends (--multiline--Q missing): the lines after it were read as "
        "the asset"]


def test_mapping_file_overrides_the_sections_it_names(tmp_path: Path) -> None:
    custom = tmp_path / "haas.yaml"
    custom.write_text("execution: [RunState]\n"
                      "controller_mode_states: {MANUAL: MAINTENANCE}\n"
                      "telemetry:\n  spindle_speed_rpm: {items: [Srpm1], scale: 2}\n")
    rows = rows_of("\n".join([
        "2026-01-05T08:00:00Z|RunState|ACTIVE|Srpm1|500|S1speed|7|S1load|20",
        "2026-01-05T08:01:00Z|mode|MANUAL",
    ]), mapping=load_mapping(custom))
    assert [event[3] for event in rows.machine_state_events] == ["RUNNING", "MAINTENANCE"]
    # Srpm1 replaces the default spindle speed names; the other columns keep theirs.
    assert [(row[3], row[5]) for row in rows.machine_telemetry] == [(1000.0, 20.0)]
    assert rows.acct.unmapped == {"S1speed": 1}


# -- the fixture through `setu ingest` and dbt --------------------------------------------------

@pytest.fixture(scope="module")
def db(cluster, dbt_run, tmp_path_factory) -> Iterator[str]:
    scratch = tmp_path_factory.mktemp("dbt")
    with own_database(cluster, DATABASE) as url:
        dbt_paths = ["--target-path", str(scratch / "target"), "--log-path",
                     str(scratch / "logs")]
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse", *dbt_paths]) == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into master.sites values (%s, 'MTC', %s) on conflict "
                         "(site_id) do update set timezone = excluded.timezone", SITE)
            for machine, code in ((MACHINE, "MILL-8101"), (LATHE, "LATHE-8102")):
                conn.execute("insert into master.machines values (%s, %s, %s) on conflict "
                             "(machine_id) do update set site_id = excluded.site_id",
                             (machine, code, SITE[0]))
        yield url, dbt_paths


@pytest.fixture(scope="module")
def loaded(db, dbt_run) -> Iterator[tuple[str, str]]:
    """The mill's log ingested through the command line, then the warehouse built."""
    url, dbt_paths = db
    result = CliRunner().invoke(
        ingest, [str(MILL_LOG), "--format", "mtconnect-shdr", "--machine", str(MACHINE)],
        env={"SETU_PG_DATABASE": DATABASE}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lathe = CliRunner().invoke(
        main, ["mtconnect", "ingest", str(FIXTURES / "lathe-sessions.shdr"), "--machine",
               str(LATHE), "--probe", str(FIXTURES / "lathe-Devices.xml")],
        env={"SETU_PG_DATABASE": DATABASE}, catch_exceptions=False)
    assert lathe.exit_code == 0, lathe.output
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", DATABASE)
        assert dbt_run(["--quiet", "run", *dbt_paths]) == 0
    yield url, result.output


@pytest.fixture
def conn(loaded) -> Iterator[psycopg.Connection]:
    with psycopg.connect(loaded[0], autocommit=True) as connection:
        connection.execute("set time zone 'UTC'")
        yield connection


# The log's timeline (tests/fixtures/mtconnect/make_mill_fixture.py), as intervals of the
# state each event starts; the last event (RUNNING at 01:00) stays open and does not count.
MILL_INTERVALS = [
    ("IDLE", "21:00:00", "21:10:00"),     # READY
    ("RUNNING", "21:10:00", "21:40:00"),  # ACTIVE
    ("IDLE", "21:40:00", "21:45:00"),     # FEED_HOLD
    ("RUNNING", "21:45:00", "22:00:00"),
    ("ALARM", "22:00:00", "22:12:30"),    # system FAULT 1010 (and STOPPED)
    ("IDLE", "22:12:30", "22:15:00"),     # fault cleared, STOPPED
    ("SETUP", "22:15:00", "22:35:00"),    # mode MANUAL
    ("SETUP", "22:35:00", "22:40:00"),    # program O2002 loaded
    ("IDLE", "22:40:00", "22:45:00"),     # AUTOMATIC, READY
    ("RUNNING", "22:45:00", "00:20:00"),  # across local midnight (23:00 UTC)
    ("IDLE", "00:20:00", "00:30:00"),
    ("OFF", "00:30:00", "00:50:00"),      # avail UNAVAILABLE
    ("IDLE", "00:50:00", "01:00:00"),
]


def seconds_by_local_day() -> dict[date, dict[str, float]]:
    """The intervals above split at Berlin midnight, summed per state."""
    zone = ZoneInfo(SITE[1])
    totals: dict[date, dict[str, float]] = {}
    for state, start_text, end_text in MILL_INTERVALS:
        start, end = utc(start_text), utc(end_text)
        while start < end:
            local = start.astimezone(zone)
            midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                        zone).astimezone(UTC)
            piece_end = min(end, midnight)
            day = totals.setdefault(local.date(), {})
            day[state] = day.get(state, 0.0) + (piece_end - start).total_seconds()
            start = piece_end
    return totals


def test_hand_computation_of_the_fixture() -> None:
    """The same numbers once more, by hand: 2026-01-05 is 21:00-23:00 UTC, the 6th after."""
    assert seconds_by_local_day() == {
        date(2026, 1, 5): {"IDLE": 600 + 300 + 150 + 300, "RUNNING": 1800 + 900 + 900,
                           "ALARM": 750, "SETUP": 1200 + 300},
        date(2026, 1, 6): {"RUNNING": 4800, "IDLE": 600 + 600, "OFF": 1200},
    }


def test_log_becomes_state_events_cycles_telemetry_and_alarms(conn, loaded) -> None:
    output = loaded[1]
    assert ("loaded mill-4h.shdr for machine 8101: 14 machine_state_events, 25 machine_cycles, "
            "441 machine_telemetry, 4 alarms") in output
    assert "skipped, unmapped item: 964 (Xload 481, Xact 481, line 1, message 1)" in output
    # 542 lines: 7 `*` lines, the asset's 8 lines (its @ASSET@ line, 6 of XML, the end marker)
    assert "542 lines = 527 data + 7 protocol + 8 asset" in output

    events = conn.execute("select time, state, program_name from bronze.machine_state_events "
                          "where machine_id = %s order by time", (MACHINE,)).fetchall()
    expected = [(utc(start), state) for state, start, _ in MILL_INTERVALS] + [
        (utc("01:00:00"), "RUNNING")]
    assert [(when, state) for when, state, _ in events] == expected
    assert events[7][2] == "O2002" and events[11][2] is None

    cycles = conn.execute("select cycle_start, time, part_count, program_name "
                          "from bronze.machine_cycles where machine_id = %s order by time",
                          (MACHINE,)).fetchall()
    assert [count for _, _, count, _ in cycles] == list(range(101, 126))
    assert cycles[0][:2] == (utc("21:10:00"), utc("21:15:00"))  # from ACTIVE
    assert cycles[5][:2] == (utc("21:35:00"), utc("21:50:00"))  # a feed hold resumes
    assert cycles[7][:2] == (utc("22:45:00"), utc("22:50:00"))  # a new run after setup
    assert (cycles[0][3], cycles[-1][3]) == ("O1001", "O2002")

    # 481 sample lines every 30 s; the 40 while the machine was unavailable carry no value.
    telemetry = conn.execute(
        "select count(*), max(spindle_speed_rpm), max(feed_rate_mm_min), max(power_kw), "
        "min(power_kw) from bronze.machine_telemetry where machine_id = %s",
        (MACHINE,)).fetchone()
    assert telemetry == (441, 8000.0, 1200.0, 5.5, 0.8)

    alarms = conn.execute("select time, alarm_code, severity, event from bronze.alarms "
                          "where machine_id = %s order by time", (MACHINE,)).fetchall()
    assert alarms == [(utc("22:00:00"), "1010", "error", "RAISED"),
                      (utc("22:12:30"), "1010", "error", "CLEARED"),
                      (utc("23:30:00"), "C12", "warning", "RAISED"),
                      (utc("23:50:00"), "C12", "warning", "CLEARED")]
    quarantined = conn.execute("select count(*) from silver.quarantine").fetchone()[0]
    assert quarantined == 0


def test_gold_utilization_matches_the_hand_computation(conn) -> None:
    gold = conn.execute(
        "select local_date, off_seconds, idle_seconds, running_seconds, setup_seconds, "
        "alarm_seconds, maintenance_seconds, utilization_pct "
        "from gold.machine_utilization_daily where machine_id = %s order by local_date",
        (MACHINE,)).fetchall()
    expected = []
    for day, seconds in sorted(seconds_by_local_day().items()):
        by_state = [seconds.get(state, 0.0) for state in
                    ("OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE")]
        on = sum(by_state) - by_state[0]
        expected.append((day, *by_state, 100.0 * by_state[2] / on))
    assert [row[0] for row in gold] == [row[0] for row in expected]
    for actual_row, expected_row in zip(gold, expected, strict=True):
        assert [float(value) for value in actual_row[1:]] == pytest.approx(expected_row[1:])
    assert [round(float(row[-1]), 6) for row in gold] == [50.0, 80.0]


def test_same_log_loads_once_per_machine(loaded) -> None:
    again = CliRunner().invoke(ingest, [str(MILL_LOG), "--machine", str(MACHINE)],
                               env={"SETU_PG_DATABASE": DATABASE}, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert again.output.startswith("skipped mill-4h.shdr: already loaded for machine 8101")


def test_format_options_are_checked(tmp_path: Path) -> None:
    csv_file = tmp_path / "alarms.csv"
    csv_file.write_text("time\n")
    runner = CliRunner()
    no_machine = runner.invoke(ingest, [str(MILL_LOG)])
    assert no_machine.exit_code == 2 and "--machine is required" in no_machine.output
    stray = runner.invoke(ingest, [str(csv_file), "--machine", "1"])
    assert stray.exit_code == 2 and "--machine and --mapping go with" in stray.output
    wrong = runner.invoke(ingest, [str(csv_file), "--format", "parquet"])
    assert wrong.exit_code == 2 and "named as csv" in wrong.output
    bad_mapping = tmp_path / "bad.yaml"
    bad_mapping.write_text("telemetry:\n  axis_load_pct: [Xload]\n")
    refused = runner.invoke(ingest, [str(MILL_LOG), "--machine", "1", "--mapping",
                                     str(bad_mapping)])
    assert refused.exit_code == 2
    assert "axis_load_pct is not a Bronze telemetry column" in refused.output


def test_lathe_sessions_in_silver_and_gold(conn) -> None:
    """The four-session lathe recording through dbt. By hand from the state events of
    test_mtconnect_sessions.test_lathe_state_events_by_hand, ordered by time: IDLE 300 + 1500
    + 60 + 780 + 120 s, RUNNING 1800 + 960 + 600 + 1200 + 1200, ALARM 480, OFF 3600 + 1800 +
    600 (the gaps between sessions); the 10:10 IDLE stays open. Utilization 5760 / 9000."""
    gold = conn.execute(
        "select off_seconds, idle_seconds, running_seconds, alarm_seconds, utilization_pct "
        "from gold.machine_utilization_daily where machine_id = %s", (LATHE,)).fetchall()
    assert [tuple(float(v) for v in row) for row in gold] == [(6000, 2760, 5760, 480, 64.0)]
    cycles = conn.execute(
        "select parts_delta, load_unload_seconds from silver.fct_machine_cycles "
        "where machine_id = %s order by cycle_start", (LATHE,)).fetchall()
    # counters 11 12 13 | 16 17 | 21 22 23 | 24 25 by start: no phantom cycle, no negative
    # gap, every part counted (25 - 10 = 15 parts in 10 cycles, 11 for the first)
    assert [delta for delta, _ in cycles][1:] == [1, 1, 3, 1, 4, 1, 1, 1, 1]
    gaps = [gap for _, gap in cycles][1:]
    assert all(gap is not None and gap >= 0 for gap in gaps)
    assert conn.execute("select count(*) from silver.quarantine where bronze_id in (select id "
                        "from bronze.machine_cycles where machine_id = %s)",
                        (LATHE,)).fetchone()[0] == 0
