"""Issue 12, points 5 and 6 against a database: a load with a wrong mapping replaced without
counting twice, and the agent follower (`setu follow-agent`) against a local HTTP server that
serves the agent XML of tests/fixtures/mtconnect/agent (written by make_lathe_fixtures.py):
killed with SIGKILL mid-run, resumed, through an agent restart and a buffer overrun."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.cli import main

DATABASE = "setu_test_mtconnect_agent"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mtconnect"
AGENT = FIXTURES / "agent"
LATHE_LOG = FIXTURES / "lathe-sessions.shdr"
LATHE_PROBE = FIXTURES / "lathe-Devices.xml"
SETU = Path(sys.executable).with_name("setu")
STREAMS_NS = "urn:mtconnect.org:MTConnectStreams:2.0"
TABLES = ("machine_state_events", "machine_cycles", "machine_telemetry", "alarms")


@pytest.fixture(scope="module")
def db(cluster, dbt_run, tmp_path_factory) -> Iterator[str]:
    scratch = tmp_path_factory.mktemp("dbt")
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse", "--target-path",
                        str(scratch / "target"), "--log-path", str(scratch / "logs")]) == 0
        yield url


def counts(url: str, machine: int) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(f"select count(*) from bronze.{table} where machine_id = %s",
                                    (machine,)).fetchone()[0] for table in TABLES}


# -- 5: a wrong mapping replaced ---------------------------------------------------------------

def test_a_load_with_a_wrong_mapping_is_replaced_once(db, tmp_path: Path) -> None:
    machine = 9501
    env = {"SETU_PG_DATABASE": DATABASE}
    wrong = tmp_path / "wrong.yaml"  # the sub spindle taken for the main one
    wrong.write_text("telemetry:\n  spindle_speed_rpm: {items: [S2speed], scale: 1}\n")
    runner = CliRunner()
    first = runner.invoke(main, ["ingest", str(LATHE_LOG), "--format", "mtconnect-shdr",
                                 "--machine", str(machine), "--mapping", str(wrong)], env=env)
    assert first.exit_code == 0, first.output
    # By hand (default names + S2speed): 16 states, 10 cycles, 6 alarms as with the probe;
    # telemetry at every instant with S1load/S1temp/S2speed values: 17 less the 06:05 S1...
    wrong_counts = counts(db, machine)
    assert wrong_counts["machine_cycles"] == 10

    again = runner.invoke(main, ["ingest", str(LATHE_LOG), "--format", "mtconnect-shdr",
                                 "--machine", str(machine)], env=env)
    assert again.exit_code == 2
    assert "already loaded for machine 9501" in again.output
    assert "--replace" in again.output
    assert counts(db, machine) == wrong_counts

    replaced = runner.invoke(main, ["mtconnect", "ingest", str(LATHE_LOG), "--machine",
                                    str(machine), "--probe", str(LATHE_PROBE), "--replace"],
                             env=env)
    assert replaced.exit_code == 0, replaced.output
    assert f"deleted the {sum(wrong_counts.values()):,} rows of the earlier load" in \
        replaced.output
    # Only the corrected load's rows remain: the hand counts of test_mtconnect_sessions.
    assert counts(db, machine) == {"machine_state_events": 16, "machine_cycles": 10,
                                   "machine_telemetry": 17, "alarms": 6}
    with psycopg.connect(db) as conn:
        speeds = conn.execute("select max(spindle_speed_rpm) from bronze.machine_telemetry "
                              "where machine_id = %s", (machine,)).fetchone()[0]
        ledger = conn.execute("select replaced_count, mapping_name from _ingest.ledger "
                              "where source_name = %s", (f"{LATHE_LOG.name} (machine "
                                                        f"{machine})",)).fetchone()
    assert speeds == 2500.0  # S1speed's maximum, not S2speed's 300
    assert ledger == (1, "probe lathe-Devices.xml device lathe")

    same = runner.invoke(main, ["mtconnect", "ingest", str(LATHE_LOG), "--machine",
                                str(machine), "--probe", str(LATHE_PROBE)], env=env)
    assert same.exit_code == 0 and same.output.startswith("skipped lathe-sessions.shdr")


# -- 6: the agent follower ---------------------------------------------------------------------

class Agent:
    """A stand-in MTConnect agent: serves the fixture documents of one phase (A, B, C);
    the gate_from-th /sample request waits until released (so a kill lands mid-run)."""

    def __init__(self) -> None:
        self.manifest = json.loads((AGENT / "manifest.json").read_text())
        self.phase = "A"
        self.gate_from: int | None = None  # the n-th /sample request waits
        self.samples = 0
        self.gate_reached = threading.Event()
        self.release = threading.Event()
        self.requests: list[str] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                agent.requests.append(self.path)
                status, body = agent.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The follower may have been killed while it waited.
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[int, bytes]:
        parsed = urllib.parse.urlparse(path)
        phase = self.manifest[self.phase]
        directory = AGENT / self.phase
        if parsed.path == "/probe":
            return 200, (AGENT / "probe.xml").read_bytes()
        if parsed.path == "/current":
            return 200, (directory / "current.xml").read_bytes()
        query = urllib.parse.parse_qs(parsed.query)
        start = int(query.get("from", [phase["firstSequence"]])[0])
        count = int(query.get("count", ["100"])[0])
        self.samples += 1
        if self.gate_from is not None and self.samples == self.gate_from:
            self.gate_reached.set()
            self.release.wait(30)
        if not phase["firstSequence"] <= start <= phase["nextSequence"]:
            return 404, (directory / "out-of-range.xml").read_bytes()
        return 200, sample_page(directory / "sample-all.xml", start, count)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def sample_page(buffer: Path, start: int, count: int) -> bytes:
    """/sample?from=start&count=count cut from the agent's whole buffer: what the agent does."""
    ET.register_namespace("", STREAMS_NS)
    root = ET.fromstring(buffer.read_bytes())
    last = start
    for group in root.iter():
        for element in list(group):
            sequence = element.get("sequence")
            if sequence is None:
                continue
            if start <= int(sequence) < start + count:
                last = max(last, int(sequence) + 1)
            else:
                group.remove(element)
    header = root.find(f"{{{STREAMS_NS}}}Header")
    header.set("nextSequence", str(last))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@pytest.fixture
def agent() -> Iterator[Agent]:
    server = Agent()
    yield server
    server.close()


def follower(url: str, machine: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "SETU_PG_DATABASE": DATABASE}
    return subprocess.Popen([str(SETU), "follow-agent", url, "--machine", str(machine),
                             "--count", "16", "--interval", "0.05", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def cursor(url: str, agent_url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute("select instance_id, next_sequence, lost_sequences "
                            "from _ingest.agent_cursors where agent_url = %s",
                            (agent_url,)).fetchone()


def test_follower_exactly_once_across_kill_restart_and_overrun(db, agent: Agent) -> None:
    machine = 9601
    # Phase A: SIGKILL while the follower waits for its third page. Pages of 16: 1-16 commits
    # 1-15 (06:00; 06:05 starts at 16 and is read again with the next page), 16-31 commits
    # 16-30 (06:40 starts at 31). Then run it again to the end.
    agent.gate_from = 3
    run = follower(agent.url, machine)
    assert agent.gate_reached.wait(60), run.communicate()[0] if run.poll() is not None else ""
    os.kill(run.pid, signal.SIGKILL)
    run.wait(30)
    agent.release.set()
    assert cursor(db, agent.url) == ("1770000000", 31, 0)
    agent.gate_from = None
    resumed = follower(agent.url, machine, "--until-caught-up")
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    assert "resuming at sequence 31 of instance 1770000000" in output
    assert cursor(db, agent.url) == ("1770000000", 36, 0)
    with psycopg.connect(db) as conn:
        read = conn.execute("select observations from _ingest.agent_cursors where agent_url = %s",
                            (agent.url,)).fetchone()[0]
    assert read == 35  # sequences 1-35, each once: 30 before the kill, 5 after
    # Session 1 by hand: 3 cycles (11, 12, 13), 6 telemetry instants, W17 raised.
    with psycopg.connect(db) as conn:
        cycles = [row[0] for row in conn.execute(
            "select part_count from bronze.machine_cycles where machine_id = %s order by time",
            (machine,))]
        telemetry = conn.execute(
            "select count(*), count(distinct time), max(feed_rate_mm_min), "
            "max(spindle_temp_c) from bronze.machine_telemetry where machine_id = %s",
            (machine,)).fetchone()
    assert cycles == [11, 12, 13]
    # every instant once (no duplicate after the kill); the agent's mm/s x 60 = 508 mm/min
    with psycopg.connect(db) as conn:
        times = conn.execute("select time, spindle_speed_rpm, spindle_temp_c from "
                             "bronze.machine_telemetry where machine_id = %s order by id",
                             (machine,)).fetchall()
    assert telemetry[0] == telemetry[1] == 6, [(t.strftime("%H:%M"), a, b) for t, a, b in times]
    assert abs(telemetry[2] - 508.0) < 1e-3 and abs(telemetry[3] - (88 - 32) * 5 / 9) < 1e-3

    # Phase B: the agent restarted (new instanceId, sequences from 1).
    agent.phase = "B"
    restarted = follower(agent.url, machine, "--until-caught-up")
    output = restarted.communicate(timeout=120)[0]
    assert restarted.returncode == 0, output
    assert "agent restarted (instanceId 1770000000 -> 1770007200)" in output
    assert cursor(db, agent.url) == ("1770007200", 53, 0)

    # Phase C: the follower was away while the agent's buffer dropped 53-56.
    agent.phase = "C"
    overrun = follower(agent.url, machine, "--until-caught-up")
    output = overrun.communicate(timeout=120)[0]
    assert overrun.returncode == 0, output
    assert "buffer overrun: sequences 53-56 (4) were dropped" in output
    assert "lost sequences: 53-56" in output
    assert "(balanced)" in output
    assert cursor(db, agent.url)[1:] == (agent.manifest["C"]["nextSequence"], 4)
    with psycopg.connect(db) as conn:
        cycles = [row[0] for row in conn.execute(
            "select part_count from bronze.machine_cycles where machine_id = %s order by time",
            (machine,))]
        states = [row for row in conn.execute(
            "select to_char(time, 'HH24:MI'), state from bronze.machine_state_events "
            "where machine_id = %s order by time, id", (machine,))]
    # B: 21, 22, 23 as in session 2; C: after the overrun 24 is the new baseline (the
    # 09:50 ACTIVE was lost), so 25 and 26 are cycles.
    assert cycles == [11, 12, 13, 21, 22, 23, 25, 26]
    assert states[:4] == [("06:00", "IDLE"), ("06:05", "RUNNING"), ("06:35", "IDLE"),
                          ("07:00", "OFF")]
    assert ("09:40", "OFF") in states  # the data stopped before the overrun


def test_ctrl_c_stops_after_the_page_at_hand(db, agent: Agent) -> None:
    """SIGINT while the second page is on its way: that page still commits, then the follower
    stops cleanly with its accounting (exit 0, no traceback)."""
    agent.gate_from = 2
    run = follower(agent.url, 9602)
    assert agent.gate_reached.wait(60)
    run.send_signal(signal.SIGINT)
    agent.release.set()
    output = run.communicate(timeout=60)[0]
    assert run.returncode == 0, output
    assert "Traceback" not in output
    assert "stopping after the page at hand (Ctrl-C)" in output
    assert "stopped (Ctrl-C) after 2 page(s)" in output
    # pages of 16: 1-15 (06:00), then 16-30 (06:05 to 06:35) before it stopped
    assert "sequences 1-15: 15 observations -> 2 rows (next 16" in output
    assert "sequences 16-30: 15 observations -> 8 rows (next 31" in output
    assert "30 observations = " in output and "(balanced)" in output
    assert cursor(db, agent.url) == ("1770000000", 31, 0)


def test_an_agent_that_does_not_answer_is_one_clear_line(db) -> None:
    """No server on that port (this test's own socket, closed): exit 2, one line."""
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    result = subprocess.run([str(SETU), "follow-agent", f"http://127.0.0.1:{port}",
                             "--machine", "1"], capture_output=True, text=True,
                            env={**os.environ, "SETU_PG_DATABASE": DATABASE}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: http://127.0.0.1:{port}/probe:")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
