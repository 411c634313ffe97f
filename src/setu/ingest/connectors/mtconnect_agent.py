"""Following an MTConnect agent (`setu follow-agent URL --machine M`), and the `setu mtconnect`
commands.

The follower reads the agent's REST API: `/probe` for the device model (the mapping), then
`/sample?from=N&count=M` page by page. Each page's Bronze rows and the cursor (the agent's
instanceId, the next sequence and what the mapper knows about the machine) commit in one
transaction, so a follower killed at any point resumes where its last commit left off: every
observation loads exactly once. A new instanceId is an agent restart (a new session, read from
the new buffer's start); an OUT_OF_RANGE error for our `from` is a buffer overrun: the lost
sequence range is reported and counted, and reading goes on from the first sequence the agent
still has. docs/connectors/mtconnect.md is the user's side.
"""

from __future__ import annotations

import json
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import psycopg

from setu.ingest.connectors.mtconnect import (
    DEFAULT_SESSION_GAP,
    MACHINE_ID,
    Condition,
    IngestError,
    Mapper,
    MappingError,
    Observation,
    Session,
    clip,
    copy_rows,
    describe_run,
    ingest_shdr_files,
    load_mapping,
    parse_mapping,
    parse_timestamp,
    read_mapping_file,
)
from setu.ingest.connectors.mtconnect_probe import ProbeError, ProbeMapping, local, parse_probe

CURSOR_TABLE = "_ingest.agent_cursors"
CONDITION_LEVELS = {"Normal": "NORMAL", "Warning": "WARNING", "Fault": "FAULT",
                    "Unavailable": "UNAVAILABLE"}
HTTP_TIMEOUT_SECONDS = 30


class AgentError(RuntimeError):
    """The agent cannot be read, phrased as one line."""


@dataclass
class StreamsPage:
    instance_id: str | None
    first_sequence: int | None
    next_sequence: int | None
    last_sequence: int | None
    observations: list[Observation] = field(default_factory=list)
    error_code: str | None = None
    error_text: str = ""
    # (sequence, why) of observations that cannot be read (a timestamp out of range): each
    # is counted as a malformed skip, never a crash.
    unreadable: list[tuple[int, str]] = field(default_factory=list)


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def parse_streams(text: str | bytes, device: str | None = None) -> StreamsPage:
    """An MTConnectStreams (or MTConnectError) document: the header and, for the device,
    every observation in sequence order."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise AgentError(f"the agent's answer is not XML: {exc}") from None
    header = next((e for e in root if local(e.tag) == "Header"), None)
    attrs = header.attrib if header is not None else {}
    page = StreamsPage(attrs.get("instanceId"), _int(attrs.get("firstSequence")),
                       _int(attrs.get("nextSequence")), _int(attrs.get("lastSequence")))
    kind = local(root.tag)
    if kind == "MTConnectError":
        error = next(root.iter(f"{root.tag.split('}')[0]}}}Error" if "}" in root.tag
                               else "Error"), None)
        page.error_code = error.get("errorCode") if error is not None else "UNKNOWN"
        page.error_text = (error.text or "").strip() if error is not None else ""
        return page
    if kind != "MTConnectStreams":
        raise AgentError(f"expected an MTConnectStreams document, found {kind}")
    for stream in root.iter():
        if local(stream.tag) != "DeviceStream":
            continue
        if device is not None and device not in (stream.get("name"), stream.get("uuid")):
            continue
        for component in stream:
            for group in component:
                category = local(group.tag)
                for element in group:
                    try:
                        page.observations.append(_observation(element, category))
                    except ValueError as exc:
                        sequence = element.get("sequence") or ""
                        page.unreadable.append((int(sequence) if sequence.isdigit() else 0,
                                                f"{clip(str(exc))}"))
    page.observations.sort(key=lambda observation: observation.line)
    return page


def _observation(element: ET.Element, category: str) -> Observation:
    tag = local(element.tag)
    item = element.get("dataItemId") or element.get("name") or tag
    when = parse_timestamp(element.get("timestamp") or "")
    sequence = int(element.get("sequence") or 0)
    text = (element.text or "").strip()
    if category == "Condition":
        level = CONDITION_LEVELS.get(tag, tag.upper())
        value: Any = Condition(level, element.get("nativeCode") or "",
                               element.get("nativeSeverity") or "",
                               element.get("qualifier") or "", text)
    elif len(element):  # a data set or table: its entries, as SHDR would send them
        value = " ".join(f"{entry.get('key')}={(entry.text or '').strip()}"
                         for entry in element)
    else:
        value = text
    return Observation(when, item, value, sequence)


def http_get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if body.lstrip().startswith(b"<"):
            return body  # an MTConnectError document comes with an HTTP error status
        raise AgentError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AgentError(f"{url}: {reason}") from None


# -- the cursor --------------------------------------------------------------------------------

@dataclass
class Cursor:
    instance_id: str | None = None
    next_sequence: int | None = None
    state: dict[str, Any] | None = None
    observations: int = 0
    rows: int = 0
    lost_sequences: int = 0


def read_cursor(conn: psycopg.Connection, url: str, device: str) -> Cursor:
    try:
        row = conn.execute(
            f"select instance_id, next_sequence, mapper_state, observations, rows_written, "
            f"lost_sequences from {CURSOR_TABLE} where agent_url = %s and device = %s",
            (url, device)).fetchone()
    except psycopg.errors.UndefinedTable:
        raise AgentError(f"{CURSOR_TABLE} does not exist: run `setu bronze` first") from None
    return Cursor(*row) if row else Cursor()


def write_cursor(conn: psycopg.Connection, url: str, device: str, machine_id: int,
                 cursor: Cursor) -> None:
    conn.execute(
        f"insert into {CURSOR_TABLE} (agent_url, device, machine_id, instance_id, "
        "next_sequence, mapper_state, observations, rows_written, lost_sequences) "
        "values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (agent_url, device) do update "
        "set machine_id = excluded.machine_id, instance_id = excluded.instance_id, "
        "next_sequence = excluded.next_sequence, mapper_state = excluded.mapper_state, "
        "observations = excluded.observations, rows_written = excluded.rows_written, "
        "lost_sequences = excluded.lost_sequences, updated_at = now()",
        (url, device, machine_id, cursor.instance_id, cursor.next_sequence,
         json.dumps(cursor.state), cursor.observations, cursor.rows, cursor.lost_sequences))


def mapper_state(mapper: Mapper) -> dict[str, Any]:
    session = mapper.session
    return {"view": mapper.view.to_json(),
            "session": None if session is None else {
                "number": session.number, "start": session.start.isoformat(),
                "end": session.end.isoformat() if session.end else None,
                "last_written": session.last_written.isoformat()
                if session.last_written else None,
                "observations": session.observations,
                "items": sorted(mapper.session_items)}}


def restore_mapper(mapper: Mapper, state: dict[str, Any] | None) -> None:
    if not state:
        return
    mapper.view.load_json(state["view"])
    saved = state.get("session")
    if saved:
        session = Session(saved["number"], datetime.fromisoformat(saved["start"]),
                          "an earlier run", "resumed", saved["observations"])
        session.end = datetime.fromisoformat(saved["end"]) if saved["end"] else None
        session.last_written = (datetime.fromisoformat(saved["last_written"])
                                if saved["last_written"] else None)
        mapper.sessions.append(session)
        mapper.session_items = set(saved.get("items", ()))


# -- following ---------------------------------------------------------------------------------

@dataclass
class FollowReport:
    polls: int = 0
    pages: int = 0
    restarts: list[str] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)  # sequence ranges, inclusive
    stopped_by: str = ""


def follow_agent(conn: psycopg.Connection, url: str, machine_id: int, *,
                 device: str | None = None, mapping_path: Path | None = None,
                 interval: float = 1.0, count: int = 1000, until_caught_up: bool = False,
                 max_polls: int | None = None,
                 session_gap: timedelta | None = DEFAULT_SESSION_GAP,
                 echo: Callable[[str], None] = click.echo,
                 stop: threading.Event | None = None) -> tuple[FollowReport, Mapper]:
    """Follow the agent at url until stopped (or caught up / max_polls)."""
    base = url.rstrip("/")
    stop = stop or threading.Event()
    probe = parse_probe(http_get(f"{base}/probe"), f"{base}/probe", device)
    override = parse_mapping(read_mapping_file(mapping_path), mapping_path.name) \
        if mapping_path else None
    roles = ProbeMapping(probe, load_mapping(mapping_path), override, values_in="units")
    mapper = Mapper(machine_id, roles, session_gap=session_gap)
    mapper.position = "sequence"
    # Streams name items by id; the accounting reads better with the names the shop knows,
    # where a name is unambiguous.
    ids = {item.id for item in probe.items}
    names = Counter(item.name for item in probe.items if item.name)
    display = {item.id: item.name for item in probe.items if item.name
               and names[item.name] == 1 and item.name not in ids - {item.id}}
    report = FollowReport()
    cursor = read_cursor(conn, base, probe.name)
    conn.commit()
    restore_mapper(mapper, cursor.state)
    echo(f"following {base} device {probe.name} for machine {machine_id}: "
         f"{len(probe.items)} data items; "
         + (f"resuming at sequence {cursor.next_sequence} of instance {cursor.instance_id}"
            if cursor.next_sequence else "starting at the agent's first sequence"))
    while not stop.is_set():
        if max_polls is not None and report.polls >= max_polls:
            report.stopped_by = f"{max_polls} polls"
            break
        report.polls += 1
        start = cursor.next_sequence
        query = {"count": count} if start is None else {"from": start, "count": count}
        try:
            page = parse_streams(http_get(f"{base}/sample?{urllib.parse.urlencode(query)}"),
                                 probe.name)
        except AgentError as exc:
            if until_caught_up:
                raise
            # An agent being restarted, a network blip: a follower keeps following.
            echo(f"agent not answering ({exc}); trying again in {max(interval, 5):g} s")
            stop.wait(max(interval, 5))
            continue
        lost: tuple[int, int] | None = None
        if cursor.instance_id is not None and page.instance_id != cursor.instance_id:
            reason = (f"agent restarted (instanceId {cursor.instance_id} -> "
                      f"{page.instance_id})")
            echo(f"{reason}: reading the new instance from its first sequence (the old "
                 f"one was read up to sequence {(start or 1) - 1}; anything it held after "
                 f"that went with it)")
            report.restarts.append(reason)
            mapper.new_session(reason)
            cursor.instance_id, cursor.next_sequence = page.instance_id, None
            page = _first_page(base, count, probe.name)
        elif page.error_code is not None:
            if page.error_code != "OUT_OF_RANGE":
                raise AgentError(f"{base}: {page.error_code}: {page.error_text}")
            current = parse_streams(http_get(f"{base}/current"), probe.name)
            first = current.first_sequence or 1
            if start is not None and start < first:
                lost = (start, first - 1)
                echo(f"buffer overrun: sequences {start}-{first - 1} "
                     f"({first - start:,}) were dropped by the agent before they were read; "
                     f"reading on from {first}")
                report.lost.append(lost)
                cursor.lost_sequences += first - start
                mapper.new_session(f"buffer overrun: sequences {start}-{first - 1} lost")
            else:
                echo(f"sequence {start} is not in the agent's buffer "
                     f"({page.error_text}); reading from its first sequence {first}")
            page = parse_streams(http_get(
                f"{base}/sample?{urllib.parse.urlencode({'from': first, 'count': count})}"),
                probe.name)
        if page.error_code is not None:
            raise AgentError(f"{base}: {page.error_code}: {page.error_text}")
        cursor.instance_id = page.instance_id
        before = mapper.acct.observations
        for observation in page.observations:
            mapper.feed(replace(observation, item=display.get(observation.item,
                                                              observation.item)))
        next_sequence = page.next_sequence
        caught_up = page.last_sequence is None or next_sequence is None or \
            next_sequence > page.last_sequence
        if not caught_up and mapper.group and \
                mapper.group[0].line > page.observations[0].line:
            # The page may end inside an instant: read that instant again with the next
            # page rather than write it as two telemetry rows (or judge the state halfway).
            next_sequence, mapper.group = mapper.group[0].line, []
        for sequence, why in page.unreadable:
            # Those the next page reads again are counted then.
            if next_sequence is None or sequence < next_sequence:
                mapper.acct.skip("malformed")
                mapper.acct.bad(f"sequence {sequence}", why)
        mapper.close_group()
        mapper.view.flush_telemetry()
        read = mapper.acct.observations - before
        written = commit_page(conn, base, probe.name, machine_id, mapper, cursor,
                              next_sequence, read)
        report.pages += 1
        if read or lost:
            echo(f"sequences {page.observations[0].line if read else start}-"
                 f"{(next_sequence or 1) - 1}: {read:,} observations -> {written:,} rows "
                 f"(next {next_sequence}, instance {page.instance_id})")
        if not read:
            if until_caught_up:
                report.stopped_by = "caught up"
                break
            stop.wait(interval)
    else:
        report.stopped_by = report.stopped_by or "stopped"
    return report, mapper


def _first_page(base: str, count: int, device: str) -> StreamsPage:
    current = parse_streams(http_get(f"{base}/current"), device)
    first = current.first_sequence or 1
    return parse_streams(http_get(
        f"{base}/sample?{urllib.parse.urlencode({'from': first, 'count': count})}"), device)


def commit_page(conn: psycopg.Connection, base: str, device: str, machine_id: int,
                mapper: Mapper, cursor: Cursor, next_sequence: int | None,
                observations: int) -> int:
    """The page's rows and the cursor after it, in one transaction."""
    written = 0
    with conn.transaction():
        for table, (columns, rows) in mapper.rows.tables().items():
            if rows:
                written += copy_rows(conn, table, columns, rows)
        cursor.next_sequence = next_sequence
        cursor.state = mapper_state(mapper)
        cursor.observations += observations
        cursor.rows += written
        write_cursor(conn, base, device, machine_id, cursor)
    for _, rows in mapper.rows.tables().values():
        rows.clear()
    return written


# -- commands ----------------------------------------------------------------------------------

def _gap(minutes: float) -> timedelta | None:
    return timedelta(minutes=minutes) if minutes > 0 else None


@click.group("mtconnect")
def mtconnect() -> None:
    """MTConnect: SHDR logs with a device model, and agents (docs/connectors/mtconnect.md)."""


@mtconnect.command("ingest")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--machine", "machine_id", type=MACHINE_ID, required=True,
              help="machine_id of the rows (an SHDR log does not name its machine).")
@click.option("--probe", "probe_path", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="The device model (Devices.xml or a saved /probe): the mapping by type.")
@click.option("--device", help="The device of the probe document, when it has several.")
@click.option("--mapping", "mapping_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML mapping: with --probe it overrides by item name.")
@click.option("--dry-run", is_flag=True,
              help="Show what each item becomes and the rows per table; write nothing.")
@click.option("--replace", is_flag=True,
              help="Replace the rows of an earlier load of the same file (another mapping).")
@click.option("--session-gap", type=float, default=60, show_default=True,
              help="Minutes without data that end an adapter session (0: never).")
@click.option("--target", help="dbt target to load into (default: the profile's target).")
def mtconnect_ingest(files: tuple[Path, ...], machine_id: int, probe_path: Path | None,
                     device: str | None, mapping_path: Path | None, dry_run: bool,
                     replace: bool, session_gap: float, target: str | None) -> None:
    """Load MTConnect SHDR logs FILES for one machine, each in one transaction, once."""
    ingest_shdr_files(files, machine_id, mapping_path, target, probe_path=probe_path,
                      device=device, dry_run=dry_run, replace=replace,
                      session_gap=_gap(session_gap))


@click.command("follow-agent")
@click.argument("url")
@click.option("--machine", "machine_id", type=MACHINE_ID, required=True,
              help="machine_id of the rows.")
@click.option("--device", help="The agent's device (name or uuid), when it has several.")
@click.option("--mapping", "mapping_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML mapping overriding the device model by item name.")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between polls once caught up.")
@click.option("--count", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Observations per /sample request (one transaction each).")
@click.option("--until-caught-up", is_flag=True,
              help="Stop when the agent has nothing new (for a scheduled run).")
@click.option("--session-gap", type=float, default=60, show_default=True,
              help="Minutes without data that end a session (0: never).")
@click.option("--target", help="dbt target to load into (default: the profile's target).")
def follow_agent_command(url: str, machine_id: int, device: str | None,
                         mapping_path: Path | None, interval: float, count: int,
                         until_caught_up: bool, session_gap: float, target: str | None) -> None:
    """Follow the MTConnect agent at URL: /probe, then /sample pages, committing Bronze rows
    and the agent's sequence together (exactly once). Ctrl-C stops after the page at hand."""
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    stop = threading.Event()

    def interrupted(signum: int, frame: object) -> None:
        click.echo("stopping after the page at hand (Ctrl-C)", err=True)
        stop.set()

    previous = signal.signal(signal.SIGINT, interrupted)
    ensure_database(target)
    try:
        with connect(target) as conn:
            report, mapper = follow_agent(
                conn, url, machine_id, device=device, mapping_path=mapping_path,
                interval=interval, count=count, until_caught_up=until_caught_up,
                session_gap=_gap(session_gap), stop=stop)
    except (AgentError, MappingError, ProbeError, IngestError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    stopped = "Ctrl-C" if stop.is_set() else report.stopped_by
    click.echo(f"stopped ({stopped}) after {report.pages} page(s); restarts: "
               f"{len(report.restarts)}; lost sequences: "
               + (", ".join(f"{a}-{b}" for a, b in report.lost) or "none"))
    for line in describe_run(mapper, "responses"):
        click.echo(line)


mtconnect.add_command(follow_agent_command, "follow")
