"""Issue 12, points 1-4 and 7, without a database: conditions by category, adapter sessions,
OFF when the data stops, the mapping from the device model (with --dry-run), and the line
accounting. Expected values are worked out by hand from the timeline in
tests/fixtures/mtconnect/make_lathe_fixtures.py (or counted by the small reference below),
never by calling the connector twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from setu.ingest.connectors.mtconnect import read_shdr_file

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mtconnect"
LATHE_LOG = FIXTURES / "lathe-sessions.shdr"
LATHE_PROBE = FIXTURES / "lathe-Devices.xml"


def at(hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 2, 2, hours, minutes, tzinfo=UTC)


def shdr_rows(path: Path, machine: int = 1, roles=None):
    result = read_shdr_file(path, machine, roles) if roles else read_shdr_file(path, machine)
    return getattr(result, "rows", result)  # the mapper's rows (the old reader gave rows)


def lathe_roles():
    from setu.ingest.connectors.mtconnect import build_roles

    return build_roles(None, LATHE_PROBE)


# -- 1: a condition is known by its category or name, never by counting fields --------------

def test_unavailable_followed_by_two_pairs_is_not_a_condition(tmp_path: Path) -> None:
    """The issue's reproduction: S1cmd is a sample whose value is UNAVAILABLE."""
    log = tmp_path / "repro.shdr"
    log.write_text("2026-01-05T10:00:00Z|execution|ACTIVE|S1speed|800\n"
                   "2026-01-05T10:00:05Z|S1cmd|UNAVAILABLE|S1speed|1200|S1load|15\n")
    rows = shdr_rows(log)
    assert [(row[0].second, row[3], row[5]) for row in rows.machine_telemetry] == [
        (0, 800.0, None), (5, 1200.0, 15.0)]
    assert rows.alarms == []


def test_condition_items_come_from_the_device_model() -> None:
    """`logic` and `system` are CONDITION data items in the probe; with it the lathe's
    alarms are read by category (hand-listed from the timeline)."""
    rows = shdr_rows(LATHE_LOG, 1, lathe_roles())
    assert [(row[0], row[3], row[4], row[6]) for row in rows.alarms] == [
        (at("06:30"), "W17", "warning", "RAISED"),
        (at("07:00"), "W17", "warning", "CLEARED"),  # session 1's data stops
        (at("09:00"), "W17", "warning", "RAISED"),
        (at("09:12"), "L5", "error", "RAISED"),
        (at("09:20"), "L5", "error", "CLEARED"),
        (at("09:30"), "W17", "warning", "CLEARED"),
    ]


# -- 2: sessions reset baselines and are reported -------------------------------------------

SESSIONS_TEXT = "\n".join([
    "* shdrVersion: 2",
    "2026-03-02T06:00:00Z|avail|AVAILABLE|mode|AUTOMATIC|execution|READY|program|P1|PartCount|10",
    "2026-03-02T06:05:00Z|execution|ACTIVE",
    "2026-03-02T06:15:00Z|PartCount|11",
    "2026-03-02T06:25:00Z|PartCount|12|execution|READY",
    # a second session pasted after it, starting earlier: the counter stood at 30 then
    "2026-03-02T05:00:00Z|avail|AVAILABLE|mode|AUTOMATIC|execution|ACTIVE|program|P2|PartCount|30",
    "2026-03-02T05:10:00Z|PartCount|31",
    "2026-03-02T05:20:00Z|PartCount|32|execution|READY",
    # a third one after a reconnect, an hour and a half later
    "* shdrVersion: 2",
    "2026-03-02T08:00:00Z|avail|AVAILABLE|mode|AUTOMATIC|execution|READY|program|P1|PartCount|40",
    "2026-03-02T08:01:00Z|execution|ACTIVE",
    "2026-03-02T08:09:00Z|PartCount|41",
])


def test_sessions_book_no_phantom_cycle_and_no_negative_gap(tmp_path: Path) -> None:
    log = tmp_path / "sessions.shdr"
    log.write_text(SESSIONS_TEXT + "\n")
    rows = shdr_rows(log)
    cycles = sorted((row[3].strftime("%H:%M"), row[0].strftime("%H:%M"), row[5])
                    for row in rows.machine_cycles)
    # Hand-listed: each session's first counter value is its baseline; starts from ACTIVE.
    assert cycles == [("05:00", "05:10", 31), ("05:10", "05:20", 32),
                      ("06:05", "06:15", 11), ("06:15", "06:25", 12),
                      ("08:01", "08:09", 41)]
    # Silver's gap (this start minus the previous end, by start) is never negative.
    gaps = [(cycles[i][0], cycles[i - 1][1]) for i in range(1, len(cycles))]
    assert all(start >= end for start, end in gaps)


def test_lathe_sessions_are_found_and_reported() -> None:
    from setu.ingest.connectors.mtconnect import describe_run

    mapper = read_shdr_file(LATHE_LOG, 1, lathe_roles())
    assert [(s.start, s.end, s.reason.split(" (")[0]) for s in mapper.sessions] == [
        (at("06:00"), at("07:00"), "start of data"),
        (at("09:00"), at("09:40"), "adapter reconnected"),
        (at("08:00"), at("08:30"), "time went back 1 h 40 min"),
        (at("09:30"), at("10:20"), "new snapshot of 15 items"),
    ]
    # session 4 replays 09:30-09:40 of session 2: 15 snapshot + 5 observations out of session
    assert [s.out_of_session for s in mapper.sessions] == [0, 0, 0, 20]
    assert [row[5] for row in sorted(mapper.rows.machine_cycles)] == [
        11, 12, 13, 16, 17, 21, 22, 23, 24, 25]
    assert sorted((row[3], row[0]) for row in mapper.rows.machine_cycles)[-2:] == [
        (at("09:50"), at("09:58")), (at("09:58"), at("10:06"))]
    text = "\n".join(describe_run(mapper))
    assert "4 sessions" in text and "time went back 1 h 40 min" in text


# -- 3: no data is OFF from the moment it stops -----------------------------------------------

def state_seconds(events: list[tuple]) -> dict[str, float]:
    """Reference: intervals between consecutive events by (time, file order); the last one
    stays open."""
    ordered = sorted(enumerate(events), key=lambda pair: (pair[1][0], pair[0]))
    totals: dict[str, float] = {}
    for (_, (start, state)), (_, (end, _)) in zip(ordered, ordered[1:], strict=False):
        totals[state] = totals.get(state, 0) + (end - start).total_seconds()
    return totals


def test_the_gap_between_sessions_is_off_not_idle(tmp_path: Path) -> None:
    log = tmp_path / "sessions.shdr"
    log.write_text(SESSIONS_TEXT + "\n")
    rows = shdr_rows(log)
    events = [(row[0], row[3]) for row in rows.machine_state_events]
    # By hand: session 2 (05:00-05:20) RUNNING 05:00-05:20, IDLE at 05:20, OFF at 05:20 (its
    # data stops); session 1 IDLE 06:00, RUNNING 06:05-06:25, OFF at 06:25; session 3 IDLE
    # 08:00, RUNNING 08:01 (open).
    assert state_seconds(events) == {"RUNNING": 20 * 60 + 20 * 60, "IDLE": 5 * 60 + 1 * 60,
                                     "OFF": 40 * 60 + 95 * 60}


def test_lathe_state_events_by_hand() -> None:
    rows = shdr_rows(LATHE_LOG, 1, lathe_roles())
    assert [(row[0], row[3], row[4]) for row in rows.machine_state_events] == [
        (at("06:00"), "IDLE", "O100"), (at("06:05"), "RUNNING", "O100"),
        (at("06:35"), "IDLE", "O100"), (at("07:00"), "OFF", None),
        (at("09:00"), "IDLE", "O200"), (at("09:02"), "RUNNING", "O200"),
        (at("09:12"), "ALARM", "O200"), (at("09:20"), "RUNNING", "O200"),
        (at("09:40"), "IDLE", "O200"), (at("09:40"), "OFF", None),
        (at("08:00"), "IDLE", "O150"), (at("08:01"), "RUNNING", "O150"),
        (at("08:17"), "IDLE", "O150"), (at("08:30"), "OFF", None),  # all UNAVAILABLE
        (at("09:50"), "RUNNING", "O200"), (at("10:10"), "IDLE", "O200"),
    ]


# -- 4: the mapping from the device model -----------------------------------------------------

def test_probe_maps_by_type_component_and_converts_units() -> None:
    rows = shdr_rows(LATHE_LOG, 1, lathe_roles())
    by_time = {row[0]: row[3:] for row in rows.machine_telemetry}
    # One row per instant (the sub spindle's S2speed is not the main spindle's speed).
    assert len(by_time) == len(rows.machine_telemetry) == 17
    speed, feed, load, temp = 0, 1, 2, 3
    assert by_time[at("06:05")][speed] == 1500.0 and by_time[at("09:50")][speed] == 2500.0
    # pfr nativeUnits INCH/MINUTE: 20 in/min = 508 mm/min; S1temp FAHRENHEIT: 86 F = 30 C
    assert by_time[at("06:05")][feed] == 20 * 25.4
    assert by_time[at("09:50")][feed] == 40 * 25.4
    assert by_time[at("06:40")][temp] == 30.0
    assert abs(by_time[at("10:20")][temp] - (75 - 32) * 5 / 9) < 1e-9
    assert by_time[at("09:50")][load] == 50.0


def test_yaml_mapping_overrides_the_probe(tmp_path: Path) -> None:
    from setu.ingest.connectors.mtconnect import build_roles

    override = tmp_path / "lathe.yaml"
    override.write_text("telemetry:\n  spindle_speed_rpm: {items: [S2speed], scale: 1}\n")
    roles = build_roles(override, LATHE_PROBE)
    assert roles.role_of("S2speed").kind == "telemetry"
    assert roles.role_of("pexecution").detail == "execution"  # the probe's, untouched


def test_dry_run_shows_each_item_and_rows_per_table() -> None:
    from setu.cli import main

    result = CliRunner().invoke(main, ["mtconnect", "ingest", str(LATHE_LOG), "--machine", "1",
                                       "--probe", str(LATHE_PROBE), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nothing written" in out
    assert "S1speed (17) -> machine_telemetry.spindle_speed_rpm (x1)" in out
    assert "S2speed (9) -> not loaded [probe: ROTARY_VELOCITY ACTUAL of Rotary C2" in out
    assert "pfr (16) -> machine_telemetry.feed_rate_mm_min (x25.4)" in out
    assert ("rows it would write: 16 machine_state_events, 10 machine_cycles, "
            "17 machine_telemetry, 6 alarms") in out


# -- 7: accounting ----------------------------------------------------------------------------

def reference_count(path: Path, conditions: set[str]) -> dict[str, int]:
    """Lines by kind and observations, counted without the connector: `*` lines are protocol,
    an @ASSET@ line up to its end marker is asset, a condition takes its line's 5 fields."""
    kinds = {"data": 0, "protocol": 0, "asset": 0, "observations": 0}
    in_asset = None
    for line in path.read_text().splitlines():
        if in_asset:
            kinds["asset"] += 1
            in_asset = None if line.strip() == in_asset else in_asset
        elif line.startswith("*"):
            kinds["protocol"] += 1
        elif "|@ASSET@|" in line:
            kinds["asset"] += 1
            in_asset = line.rsplit("|", 1)[-1]
        else:
            kinds["data"] += 1
            fields = line.split("|")[1:]
            kinds["observations"] += 1 if fields[0] in conditions else len(fields) // 2
    return kinds


def test_accounting_balances_and_names_every_skip() -> None:
    mapper = read_shdr_file(LATHE_LOG, 1, lathe_roles())
    acct = mapper.acct
    expected = reference_count(LATHE_LOG, {"system", "logic"})
    assert (acct.lines["data"], acct.lines["protocol"], acct.lines["asset"]) == (
        expected["data"], expected["protocol"], expected["asset"])
    assert acct.observations == expected["observations"]
    assert acct.observations == sum(acct.used.values()) + sum(acct.skipped.values())
    text = LATHE_LOG.read_text()
    # Unmapped by the probe: the sub spindle and the commanded speed, every occurrence, less
    # the 09:30 snapshot's (out of session).
    assert acct.unmapped == {"S2speed": text.count("|S2speed|") - 1,
                             "S1cmd": text.count("|S1cmd|") - 1,
                             "S2load": text.count("|S2load|") - 1}
    assert acct.skipped["out of session"] == 15 + 5
    # NORMAL conditions clearing nothing: 06:00 x2, 09:00 logic, 08:00 x2 (09:30's are out)
    assert acct.skipped["condition NORMAL"] == 5
    assert acct.rows == {"machine_state_events": 16, "machine_cycles": 10,
                         "machine_telemetry": 17, "alarms": 6}


def test_accounting_is_printed_after_every_run(tmp_path: Path) -> None:
    from setu.cli import main

    log = tmp_path / "repro.shdr"
    log.write_text("* shdrVersion: 2\n2026-01-05T10:00:00Z|execution|ACTIVE|S1speed|800\n"
                   "2026-01-05T10:00:05Z|S1cmd|UNAVAILABLE|S1speed|1200|S1load|15\n"
                   "2026-01-05T10:00:06Z|system|NORMAL||||\nno time|S1speed|3\n")
    result = CliRunner().invoke(main, ["mtconnect", "ingest", str(log), "--machine", "1",
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "5 lines = 3 data + 1 protocol + 1 malformed" in result.output
    assert "6 observations = 4 used + 2 skipped (balanced)" in result.output
    assert "skipped, unmapped item: 1 (S1cmd 1)" in result.output
    assert "skipped, condition NORMAL: 1" in result.output


def test_an_adapter_that_resends_every_item_is_one_session(tmp_path: Path) -> None:
    """Some adapters send every item on every line: full instants in a row are no
    reconnects. By hand: one session, cycles at 10:02 and 10:04 (counter 5 -> 7)."""
    lines = []
    for minute, (execution, count) in enumerate([("READY", 5), ("ACTIVE", 5), ("ACTIVE", 6),
                                                   ("ACTIVE", 6), ("ACTIVE", 7),
                                                   ("READY", 7)]):
        lines.append(f"2026-03-02T10:0{minute}:00Z|avail|AVAILABLE|mode|AUTOMATIC|execution|"
                     f"{execution}|program|P1|PartCount|{count}|S1speed|{minute * 100}")
    log = tmp_path / "dumper.shdr"
    log.write_text("\n".join(lines) + "\n")
    mapper = read_shdr_file(log, 1)
    assert len(mapper.sessions) == 1
    assert [(row[3].minute, row[0].minute, row[5]) for row in mapper.rows.machine_cycles] == [
        (1, 2, 6), (2, 4, 7)]


def test_a_wrong_probe_document_is_one_clear_line() -> None:
    from setu.cli import main

    streams = FIXTURES / "agent" / "A" / "current.xml"
    result = CliRunner().invoke(main, ["mtconnect", "ingest", str(LATHE_LOG), "--machine", "1",
                                       "--probe", str(streams), "--dry-run"])
    assert result.exit_code == 2
    assert ("current.xml: expected an MTConnectDevices document, found MTConnectStreams"
            in result.output)
    unknown = CliRunner().invoke(main, ["mtconnect", "ingest", str(LATHE_LOG), "--machine",
                                        "1", "--probe", str(LATHE_PROBE), "--device", "mill",
                                        "--dry-run"])
    assert unknown.exit_code == 2
    assert "lathe-Devices.xml: no device 'mill' (devices: lathe)" in unknown.output
