"""MTConnect into Bronze: SHDR logs (`setu ingest --format mtconnect-shdr`, `setu mtconnect
ingest`) and, through mtconnect_agent.py, an agent's REST API (`setu follow-agent`).

SHDR is the line protocol between an MTConnect adapter and its agent:
``timestamp|item|value|item|value...``; a condition is
``item|LEVEL|nativeCode|nativeSeverity|qualifier|message``, a MESSAGE ``item|nativeCode|text``,
a time series ``item|count|rate|v1 v2...``; assets span lines between ``--multiline--TAG``
markers; lines starting with ``*`` are protocol lines. How many fields an item takes is a
property of the item (its category and type in the device model, mtconnect_probe.py, or its
known name in the YAML mapping), never guessed from the number of fields on the line: an item
of unknown shape takes one value.

What each item becomes comes from the device model (a probe document) when one is given, with
the YAML mapping (mtconnect_default_mapping.yaml, or --mapping FILE) as the override; without a
probe, from the YAML names alone:

- Availability, Execution, ControllerMode, EmergencyStop, FAULT conditions and the program
  -> machine_state_events, one row whenever the derived (state, program) changes;
- PartCount increases -> machine_cycles;
- samples -> machine_telemetry (one row per timestamp, converted to SETU's units);
- conditions -> alarms (FAULT/WARNING RAISED, NORMAL CLEARED).

Adapter sessions (a log of several connections pasted together) are found by time going back,
a gap, a new full snapshot, or a reconnect line; each session starts from fresh baselines and
the machine is OFF from the moment a session's data stops. Every observation ends as the input
of a Bronze table or as a skip counted by reason (the accounting printed after every run).
docs/connectors/mtconnect.md is the user's side.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import psycopg

from setu.ingest.connectors.mtconnect_mapping import (
    CONDITION_FIELDS,
    STATE_ROLES,
    TELEMETRY_COLUMNS,
    MappingError,
    Roles,
    TelemetryRule,
    default_mapping,
    load_mapping,
    parse_mapping,
    read_mapping_file,
)
from setu.ingest.loader import (
    LEDGER_TABLE,
    READ_ERRORS,
    IngestError,
    clip,
    copy_rows,
    file_format,
    file_sha256,
    require_regular_file,
    unreadable,
)

FORMAT_NAME = "mtconnect-shdr"
SHDR_SUFFIXES = (".shdr", ".shdr.gz")
GATEWAY_ID = "mtconnect"
UNAVAILABLE = "UNAVAILABLE"
MULTILINE_PREFIX = "--multiline--"
ASSET_COMMANDS = ("@ASSET@", "@UPDATE_ASSET@", "@REMOVE_ASSET@", "@REMOVE_ALL_ASSETS@")
# Protocol lines an adapter sends when it (re)connects: a new session follows.
CONNECT_LINES = ("* shdrversion", "* adapterversion")
BRONZE_OUTPUTS = ("machine_state_events", "machine_cycles", "machine_telemetry", "alarms")

STATE_COLUMNS = ("time", "gateway_id", "machine_id", "state", "program_name")
CYCLE_COLUMNS = ("time", "gateway_id", "machine_id", "cycle_start", "program_name",
                 "part_count", "result")
ALARM_COLUMNS = ("time", "gateway_id", "machine_id", "alarm_code", "severity", "message",
                 "event")

# Session detection. Clocks of one adapter may step back a little (NTP); more is a new session.
BACKWARD_TOLERANCE = timedelta(seconds=1)
DEFAULT_SESSION_GAP = timedelta(hours=1)
SNAPSHOT_SHARE = 0.8  # a timestamp carrying this share of the session's items is a snapshot
SNAPSHOT_MIN_ITEMS = 5

SKIP_REASONS = ("unmapped item", "condition NORMAL", "condition repeated", "unavailable",
                "not a number", "out of range", "malformed", "out of session")
# Bronze's integer columns are bigint.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Timestamps the session arithmetic (a gap, a clock stepping back) can move in Python's
# datetime range: a day inside years 1 to 9999.
EARLIEST_TIME = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST_TIME = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
# --machine: a machine_id Bronze can store, checked before any file is read.
MACHINE_ID = click.IntRange(BIGINT_MIN, BIGINT_MAX)
DRY_RUN_ITEMS = 200  # a device has fewer; a log with more lists the first ones
LINE_KINDS = ("data", "protocol", "asset", "blank", "malformed")


def build_roles(mapping_path: Path | None, probe_path: Path | None,
                device: str | None = None) -> Roles:
    """The roles of a run: the probe's device model with the YAML file as override, or the
    YAML names alone. MappingError (and the probe's ProbeError) name what to fix."""
    mapping = load_mapping(mapping_path)
    if probe_path is None:
        return mapping
    from setu.ingest.connectors.mtconnect_probe import ProbeMapping, read_probe_file

    override = parse_mapping(read_mapping_file(mapping_path), mapping_path.name) \
        if mapping_path else None
    return ProbeMapping(read_probe_file(probe_path, device), mapping, override)


# -- accounting ------------------------------------------------------------------------------

@dataclass
class Accounting:
    """Where every line and observation went: lines = data + protocol + asset + blank +
    malformed; observations = used (fed a Bronze table) + skipped by reason."""

    lines: Counter = field(default_factory=Counter)  # kind -> lines
    observations: int = 0
    used: Counter = field(default_factory=Counter)  # table -> observations
    skipped: Counter = field(default_factory=Counter)  # reason -> observations
    unmapped: Counter = field(default_factory=Counter)  # item -> observations
    not_numbers: Counter = field(default_factory=Counter)  # "item=value" -> observations
    rows: Counter = field(default_factory=Counter)  # table -> rows
    bad_lines: list[str] = field(default_factory=list)  # "line N: why", the first few
    not_utf8: list[int] = field(default_factory=list)  # lines whose bytes were replaced

    def line(self, kind: str) -> None:
        self.lines[kind] += 1

    def bad(self, where: str, why: str) -> None:
        if len(self.bad_lines) < 5:
            self.bad_lines.append(f"{where}: {clip(why)}")

    def use(self, table: str) -> None:
        self.observations += 1
        self.used[table] += 1

    def skip(self, reason: str, item: str | None = None) -> None:
        assert reason in SKIP_REASONS, reason
        self.observations += 1
        self.skipped[reason] += 1
        if reason == "unmapped item" and item is not None:
            self.unmapped[item] += 1

    def balanced(self) -> bool:
        return self.observations == sum(self.used.values()) + sum(self.skipped.values())

    def merge(self, other: Accounting) -> None:
        for name in ("lines", "used", "skipped", "unmapped", "not_numbers", "rows"):
            getattr(self, name).update(getattr(other, name))
        self.observations += other.observations

    def describe(self, unit: str = "lines") -> list[str]:
        out = []
        if self.lines:
            parts = " + ".join(f"{self.lines[kind]:,} {kind}" for kind in LINE_KINDS
                               if self.lines[kind])
            out.append(f"  {sum(self.lines.values()):,} {unit} = {parts}")
        used, skipped = sum(self.used.values()), sum(self.skipped.values())
        out.append(f"  {self.observations:,} observations = {used:,} used + {skipped:,} "
                   f"skipped{' (balanced)' if self.balanced() else ' (DO NOT BALANCE)'}")
        for table in BRONZE_OUTPUTS:
            if self.used[table] or self.rows[table]:
                out.append(f"    {table}: {self.used[table]:,} observations -> "
                           f"{self.rows[table]:,} rows")
        for reason in SKIP_REASONS:
            if self.skipped[reason]:
                detail = ""
                if reason == "unmapped item":
                    detail = " (" + ", ".join(f"{clip(item, 60)} {count:,}" for item, count
                                              in self.unmapped.most_common(12)) + \
                        (", ..." if len(self.unmapped) > 12 else "") + ")"
                elif reason == "not a number":
                    detail = " (" + ", ".join(f"{value} {count:,}" for value, count
                                              in self.not_numbers.most_common(5)) + ")"
                out.append(f"    skipped, {reason}: {self.skipped[reason]:,}{detail}")
        if self.bad_lines:
            out.append(f"    malformed: {'; '.join(self.bad_lines)}")
        if self.not_utf8:
            first = ", ".join(map(str, self.not_utf8[:5]))
            out.append(f"    {len(self.not_utf8):,} line(s) not UTF-8, their bad bytes read as "
                       f"U+FFFD (line {first}{', ...' if len(self.not_utf8) > 5 else ''})")
        return out


# -- SHDR lines ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    level: str
    native_code: str
    native_severity: str
    qualifier: str
    message: str


@dataclass(frozen=True)
class Observation:
    time: datetime
    item: str
    value: str | Condition | tuple[str, ...]
    line: int  # the SHDR line, or the agent's sequence number


@dataclass(frozen=True)
class Reconnect:
    """An adapter's greeting (`* shdrVersion: 2`): a new connection, so a new session."""

    line: int
    text: str


class TimestampOutOfRange(ValueError):
    """An ISO 8601 timestamp too close to the ends of Python's datetime range."""


def parse_timestamp(text: str) -> datetime:
    """An SHDR timestamp: ISO 8601, UTC when it has no offset (adapters send UTC).
    ValueError when it is not one, or lies outside EARLIEST_TIME..LATEST_TIME."""
    parsed = datetime.fromisoformat(text.strip())
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST_TIME <= parsed <= LATEST_TIME
    except OverflowError:  # an offset takes it past year 1 or 9999
        in_range = False
    if not in_range:
        raise TimestampOutOfRange(f"timestamp out of range (years 1 to 9999): "
                                  f"{clip(text.strip(), 40)!r}")
    return parsed


def parse_shdr(lines: Iterable[str], roles: Roles, acct: Accounting
               ) -> Iterator[Observation | Reconnect]:
    """The observations of an SHDR log, in file order; every line is counted in acct."""
    multiline_end: str | None = None
    asset_started = 0
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.rstrip("\r\n")
        if multiline_end is not None:
            acct.line("asset")
            if line.strip() == multiline_end:
                multiline_end = None
            continue
        if not line.strip():
            acct.line("blank")
            continue
        if line.startswith("*"):
            acct.line("protocol")
            if line.lower().startswith(CONNECT_LINES):
                yield Reconnect(number, clip(line.strip()))
            continue
        fields = line.split("|")
        try:
            when = parse_timestamp(fields[0])
        except TimestampOutOfRange as exc:
            acct.line("malformed")
            acct.bad(f"line {number}", str(exc))
            continue
        except ValueError:
            acct.line("malformed")
            acct.bad(f"line {number}", f"unreadable timestamp {clip(fields[0], 40)!r}")
            continue
        if len(fields) > 1 and fields[1].strip() in ASSET_COMMANDS:
            acct.line("asset")
            if fields[-1].startswith(MULTILINE_PREFIX):
                multiline_end, asset_started = fields[-1].strip(), number
            continue
        acct.line("data")
        yield from _line_observations(when, fields, number, roles, acct)
    if multiline_end is not None:
        acct.bad(f"line {asset_started}", f"asset never ends ({multiline_end} missing): the "
                                          f"lines after it were read as the asset")


def _line_observations(when: datetime, fields: list[str], number: int, roles: Roles,
                       acct: Accounting) -> Iterator[Observation]:
    index = 1
    while index < len(fields):
        item = fields[index].strip()
        if not item:
            acct.skip("malformed")
            acct.bad(f"line {number}", f"empty data item name in field {index + 1}")
            return
        role = roles.role_of(item)
        # Only the fields this item takes: slicing the rest of the line for every item made a
        # long line quadratic (200,000 items: minutes).
        rest = fields[index + 1:index + 1 + max(CONDITION_FIELDS, role.fields)]
        if role.kind == "condition":
            # Adapters cut trailing empty fields of a condition (`system|NORMAL`).
            padded = [part.strip() for part in rest[:CONDITION_FIELDS]]
            padded += [""] * (CONDITION_FIELDS - len(padded))
            yield Observation(when, item, Condition(padded[0].upper(), *padded[1:]), number)
            index += 1 + CONDITION_FIELDS
            continue
        width = role.fields
        if len(rest) < width:
            acct.skip("malformed")
            acct.bad(f"line {number}", f"{clip(item, 60)}: expected {width} value field(s)")
            return
        value = rest[0] if width == 1 else tuple(rest[:width])
        yield Observation(when, item, value, number)
        index += 1 + width


# -- observations to Bronze rows -------------------------------------------------------------

@dataclass
class ShdrRows:
    machine_state_events: list[tuple] = field(default_factory=list)
    machine_cycles: list[tuple] = field(default_factory=list)
    machine_telemetry: list[tuple] = field(default_factory=list)
    alarms: list[tuple] = field(default_factory=list)

    def tables(self) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
        return {
            "machine_state_events": (STATE_COLUMNS, self.machine_state_events),
            "machine_cycles": (CYCLE_COLUMNS, self.machine_cycles),
            "machine_telemetry": (("time", "gateway_id", "machine_id", *TELEMETRY_COLUMNS),
                                  self.machine_telemetry),
            "alarms": (ALARM_COLUMNS, self.alarms),
        }

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, (_, rows) in self.tables().items()}


@dataclass
class Session:
    number: int
    start: datetime
    where: str  # "line N" or "sequence N"
    reason: str
    observations: int = 0
    out_of_session: int = 0
    end: datetime | None = None  # the last observation's time
    last_written: datetime | None = None  # the last time rows came from

    def describe(self) -> str:
        end = f" to {self.end:%Y-%m-%d %H:%M:%S}" if self.end else ""
        out = f", {self.out_of_session:,} out of session" if self.out_of_session else ""
        return (f"session {self.number} from {self.where}, {self.start:%Y-%m-%d %H:%M:%S}"
                f"{end} UTC: {self.reason} ({self.observations:,} observations{out})")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class MachineView:
    """What the data has said about the machine so far, and the rows it implies."""

    def __init__(self, machine_id: int, roles: Roles, rows: ShdrRows, acct: Accounting,
                 gateway_id: str) -> None:
        self.machine_id = machine_id
        self.roles = roles
        self.mapping = roles.values
        self.rows = rows
        self.acct = acct
        self.gateway_id = gateway_id
        self.reset()
        self.emitted: tuple[str, str | None] | None = None  # the last (state, program) sent
        self.pending_telemetry: dict[str, float] = {}
        self.pending_time: datetime | None = None

    def reset(self) -> None:
        """Fresh baselines: what a new session's snapshot will tell again."""
        self.values: dict[str, str | None] = dict.fromkeys(STATE_ROLES)
        # condition item -> native code -> (level, severity) of what is active
        self.active_conditions: dict[str, dict[str, tuple[str, str]]] = {}
        self.part_count: int | None = None
        self.part_count_changed_at: datetime | None = None
        self.active_since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "active_conditions": self.active_conditions,
                "emitted": self.emitted, "part_count": self.part_count,
                "part_count_changed_at": _iso(self.part_count_changed_at),
                "active_since": _iso(self.active_since)}

    def load_json(self, state: Mapping[str, Any]) -> None:
        self.values = {role: state["values"].get(role) for role in STATE_ROLES}
        self.active_conditions = {item: {code: tuple(v) for code, v in codes.items()}
                                  for item, codes in state["active_conditions"].items()}
        self.emitted = tuple(state["emitted"]) if state["emitted"] else None
        self.part_count = state["part_count"]
        self.part_count_changed_at = _from_iso(state["part_count_changed_at"])
        self.active_since = _from_iso(state["active_since"])

    # state ---------------------------------------------------------------------------------
    def state(self) -> str | None:
        mapping, values = self.mapping, self.values
        availability = (values["availability"] or "").upper()
        if availability in mapping.availability_states:
            return mapping.availability_states[availability]
        faulted = any(level == "FAULT" for codes in self.active_conditions.values()
                      for level, _ in codes.values())
        if faulted or (values["emergency_stop"] or "").upper() in mapping.emergency_stop_alarm:
            return "ALARM"
        mode = (values["controller_mode"] or "").upper()
        if mode in mapping.controller_mode_states:
            return mapping.controller_mode_states[mode]
        execution = (values["execution"] or "").upper()
        return mapping.execution_states.get(execution)

    def set_state_value(self, role: str, value: str, when: datetime) -> None:
        text = value.strip()
        upper = text.upper()
        if role == "execution":
            previous = (self.values["execution"] or "").upper()
            if upper == "ACTIVE" and previous != "ACTIVE" and (
                    previous not in self.mapping.execution_pauses):
                self.active_since = when
        if role == "program":
            # An unavailable program is an unknown one, not a program named UNAVAILABLE.
            self.values[role] = None if upper in ("", UNAVAILABLE) else text
        else:
            self.values[role] = upper or None

    def emit_state(self, when: datetime) -> None:
        state = self.state()
        if state is None:
            return  # nothing known yet: no interval rather than a guessed one
        self._emit(when, state, self.values["program"] if state != "OFF" else None)

    def _emit(self, when: datetime, state: str, program: str | None) -> None:
        if (state, program) != self.emitted:
            self.rows.machine_state_events.append(
                (when, self.gateway_id, self.machine_id, state, program))
            self.acct.rows["machine_state_events"] += 1
            self.emitted = (state, program)

    # cycles --------------------------------------------------------------------------------
    def set_part_count(self, value: str, when: datetime, write: bool) -> str | None:
        """None when used, else the skip reason."""
        if value.strip().upper() in ("", UNAVAILABLE):
            return "unavailable"  # the counter is unknown for a while: it has not changed
        try:
            count = int(value)  # exact, also beyond a float's 53 bits
        except ValueError:
            try:
                number = float(value)  # an adapter writing 12.0
            except ValueError:
                return "not a number"
            if not math.isfinite(number):
                return "out of range"
            count = int(number)
        if not BIGINT_MIN <= count <= BIGINT_MAX:
            return "out of range"  # part_count is a bigint
        if write and self.part_count is not None and count > self.part_count:
            starts = [t for t in (self.part_count_changed_at, self.active_since)
                      if t and t <= when]
            self.rows.machine_cycles.append(
                (when, self.gateway_id, self.machine_id, max(starts) if starts else None,
                 self.values["program"], count, "GOOD"))
            self.acct.rows["machine_cycles"] += 1
        # The first value of a session is where the counter stood when it began; a lower
        # value is a reset: neither ends a cycle.
        if count != self.part_count:  # a resent value (a snapshot, a chatty adapter) is no change
            self.part_count = count
            self.part_count_changed_at = when
        return None

    # alarms --------------------------------------------------------------------------------
    def _alarm(self, when: datetime, code: str, severity: str, message: str | None,
               event: str) -> None:
        self.rows.alarms.append((when, self.gateway_id, self.machine_id, code, severity,
                                 message, event))
        self.acct.rows["alarms"] += 1

    def set_condition(self, item: str, condition: Condition, when: datetime, write: bool
                      ) -> str | None:
        """None when the observation made a row, else the skip reason."""
        active = self.active_conditions.setdefault(item, {})
        code = condition.native_code or item
        if condition.level in self.mapping.condition_severity:
            severity = self.mapping.condition_severity[condition.level]
            if active.get(code) == (condition.level, severity):
                return "condition repeated"  # adapters resend conditions on reconnect
            active[code] = (condition.level, severity)
            if write:
                self._alarm(when, code, severity, condition.message or None, "RAISED")
            return None
        # NORMAL with a code clears that code; NORMAL without one, or UNAVAILABLE, clears
        # every code of the item (the controller no longer reports them).
        if condition.level == "NORMAL" and condition.native_code:
            cleared = [condition.native_code] if condition.native_code in active else []
        else:
            cleared = list(active)
        for cleared_code in cleared:
            _, severity = active.pop(cleared_code)
            if write:
                self._alarm(when, cleared_code, severity, condition.message or None, "CLEARED")
        if cleared:
            return None
        if condition.level == "NORMAL":
            return "condition NORMAL"
        if condition.level == UNAVAILABLE:
            return "unavailable"
        return "malformed"  # a level MTConnect does not have

    def clear_conditions(self, when: datetime) -> None:
        for active in self.active_conditions.values():
            for code, (_, severity) in active.items():
                self._alarm(when, code, severity, None, "CLEARED")
            active.clear()

    # telemetry -----------------------------------------------------------------------------
    def set_sample(self, rule: TelemetryRule, value: str, when: datetime) -> str | None:
        if value.strip().upper() in ("", UNAVAILABLE):
            return "unavailable"
        try:
            number = rule.convert(float(value))
        except ValueError:
            return "not a number"
        if not math.isfinite(number):
            return "not a number"
        if self.pending_time != when or rule.column in self.pending_telemetry:
            self.flush_telemetry()
            self.pending_time = when
        self.pending_telemetry[rule.column] = number
        return None

    def flush_telemetry(self) -> None:
        if self.pending_telemetry and self.pending_time is not None:
            self.rows.machine_telemetry.append(
                (self.pending_time, self.gateway_id, self.machine_id,
                 *(self.pending_telemetry.get(column) for column in TELEMETRY_COLUMNS)))
            self.acct.rows["machine_telemetry"] += 1
        self.pending_telemetry = {}

    def observe(self, observation: Observation, write: bool = True) -> None:
        """Apply one observation; write=False (out of session) updates what is known (the
        baselines) without writing rows. Counts it in the accounting either way."""
        role = self.roles.role_of(observation.item)
        value, when = observation.value, observation.time
        reason: str | None
        table = None
        if isinstance(value, Condition):
            reason, table = self.set_condition(observation.item, value, when, write), "alarms"
        elif role.kind == "state" and isinstance(value, str):
            self.set_state_value(str(role.detail), value, when)
            reason, table = None, "machine_state_events"
        elif role.kind == "part_count" and isinstance(value, str):
            reason, table = self.set_part_count(value, when, write), "machine_cycles"
        elif role.kind == "telemetry" and isinstance(value, str):
            assert isinstance(role.detail, TelemetryRule)
            reason = self.set_sample(role.detail, value, when) if write else None
            table = "machine_telemetry"
            if reason == "not a number":
                self.acct.not_numbers[f"{clip(observation.item, 60)}={value.strip()[:20]}"] += 1
        else:
            reason = "unmapped item"
        if not write:
            self.acct.skip("out of session")
        elif reason is None:
            self.acct.use(table or "")
        else:
            self.acct.skip(reason, observation.item)


class Mapper:
    """Observations of one machine, in order, to Bronze rows: groups them by timestamp (all
    of one instant is applied before the state is judged, so a fault and the stop it causes
    make one ALARM event), finds session boundaries and keeps the accounting."""

    def __init__(self, machine_id: int, roles: Roles, *, gateway_id: str = GATEWAY_ID,
                 session_gap: timedelta | None = DEFAULT_SESSION_GAP,
                 acct: Accounting | None = None) -> None:
        self.roles = roles
        self.rows = ShdrRows()
        self.acct = acct or Accounting()
        self.view = MachineView(machine_id, roles, self.rows, self.acct, gateway_id)
        self.session_gap = session_gap
        self.group: list[Observation] = []
        self.sessions: list[Session] = []
        self.covered: list[tuple[datetime, datetime]] = []  # spans of finished sessions
        self.session_items: set[str] = set()
        self.seen_items: Counter = Counter()  # item -> observations, for --dry-run
        self.pending_reason: str | None = None
        self.position = "line"  # what Observation.line is: an SHDR line or a sequence
        self.previous_full = False  # the last instant carried (nearly) every item
        self.resends_everything = False

    @property
    def session(self) -> Session | None:
        return self.sessions[-1] if self.sessions else None

    def feed(self, event: Observation | Reconnect) -> None:
        if isinstance(event, Reconnect):
            self.new_session(f"adapter reconnected ({event.text})")
            return
        if self.group and event.time != self.group[0].time:
            self.close_group()
        self.group.append(event)

    def feed_all(self, events: Iterable[Observation | Reconnect]) -> Mapper:
        for event in events:
            self.feed(event)
        return self

    def new_session(self, reason: str) -> None:
        """The next observation starts a new session (a reconnect, an agent restart)."""
        self.close_group()
        if self.session is not None and self.session.observations and \
                self.pending_reason is None:
            self.pending_reason = reason

    def close_group(self) -> None:
        group, self.group = self.group, []
        if not group:
            return
        when = group[0].time
        session = self.session
        reason = self.pending_reason
        full = self._is_snapshot(group)
        if full and self.previous_full:
            # Two full instants in a row: this adapter sends every item every time, so a
            # full instant says nothing about a reconnect (time, gaps and greetings still do).
            self.resends_everything = True
        if session is not None and reason is None and session.end is not None:
            if when < session.end - BACKWARD_TOLERANCE:
                reason = (f"time went back {_span(session.end - when)} (from "
                          f"{session.end:%Y-%m-%d %H:%M:%S})")
            elif self.session_gap and when - session.end > self.session_gap:
                reason = f"no data for {_span(when - session.end)}"
            elif full and not self.previous_full and not self.resends_everything:
                reason = f"new snapshot of {len({o.item for o in group})} items"
        where = f"{self.position} {group[0].line}"
        if session is None:
            self._start(when, where, "start of data")
        elif reason is not None:
            self._end_session()
            self._start(when, where, reason)
        self.pending_reason = None
        session = self.session
        assert session is not None
        # A session's first instant is its snapshot.
        self.previous_full = full or (session.observations == 0 and
                                      len({o.item for o in group}) >= SNAPSHOT_MIN_ITEMS)
        out = any(start <= when <= end for start, end in self.covered)
        for observation in group:
            self.session_items.add(observation.item)
            self.seen_items[observation.item] += 1
            self.view.observe(observation, write=not out)
        session.observations += len(group)
        session.end = when if session.end is None else max(session.end, when)
        if out:
            session.out_of_session += len(group)
        else:
            self.view.emit_state(when)
            session.last_written = when

    def _is_snapshot(self, group: list[Observation]) -> bool:
        items = {observation.item for observation in group}
        known = self.session_items | items
        # Everything UNAVAILABLE at once is the adapter going away, not a new snapshot.
        drives_state = any(self.roles.role_of(o.item).kind in ("state", "part_count")
                           and isinstance(o.value, str) and o.value.strip().upper()
                           not in ("", UNAVAILABLE) for o in group)
        return (drives_state and len(self.session_items) >= SNAPSHOT_MIN_ITEMS
                and len(items) >= SNAPSHOT_MIN_ITEMS
                and len(items) >= SNAPSHOT_SHARE * len(known))

    def _start(self, when: datetime, where: str, reason: str) -> None:
        number = self.sessions[-1].number + 1 if self.sessions else 1
        self.sessions.append(Session(number, when, where, reason))
        self.session_items = set()

    def _end_session(self) -> None:
        """The session's data stops: the machine is OFF from its last observation, active
        alarms clear there, and the next session starts from fresh baselines."""
        session = self.session
        assert session is not None
        view = self.view
        view.flush_telemetry()
        if session.last_written is not None:
            view.clear_conditions(session.last_written)
            view._emit(session.last_written, "OFF", None)
        if session.end is not None:
            self.covered.append((session.start, session.end))
        view.reset()

    def finish(self, end_of_data: bool = True) -> ShdrRows:
        """Process what is pending. At the end of a file the last session stays open (the
        machine's state after the log is not known), unless a later session already covers
        the time after it."""
        self.close_group()
        self.view.flush_telemetry()
        session = self.session
        if end_of_data and session is not None and session.end is not None and any(
                end > session.end for _, end in self.covered):
            self._end_session()
        return self.rows


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{hours} h {minutes} min" if hours else
            f"{minutes} min {seconds} s" if minutes else f"{seconds} s")


def map_observations(events: Iterable[Observation | Reconnect], machine_id: int,
                     roles: Roles, *, session_gap: timedelta | None = DEFAULT_SESSION_GAP,
                     acct: Accounting | None = None) -> Mapper:
    """Bronze rows for one machine's observations (mapper.rows), with its sessions."""
    mapper = Mapper(machine_id, roles, session_gap=session_gap, acct=acct)
    mapper.feed_all(events).finish()
    return mapper


def open_text(path: Path, acct: Accounting | None = None) -> Iterator[str]:
    """The log's lines. Bytes that are not UTF-8 are read as U+FFFD (an adapter's odd
    byte should not cost the rest of its line) and the lines they were on are counted."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if acct is not None:
                    acct.not_utf8.append(number)
                yield raw.decode("utf-8", errors="replace")


def read_shdr_file(path: Path | str, machine_id: int, roles: Roles | None = None, *,
                   session_gap: timedelta | None = DEFAULT_SESSION_GAP) -> Mapper:
    """The rows of one SHDR log; IngestError when the file cannot be read."""
    path = Path(path)
    require_regular_file(path)
    roles = roles or default_mapping()
    acct = Accounting()
    try:
        return map_observations(parse_shdr(open_text(path, acct), roles, acct), machine_id,
                                roles, session_gap=session_gap, acct=acct)
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None


# -- loading: the ledger ---------------------------------------------------------------------

@dataclass(frozen=True)
class ShdrResult:
    path: Path
    machine_id: int
    mapper: Mapper
    mapping_sha256: str
    rows: dict[str, int]
    skipped: bool = False
    loaded_at: object = None
    replaced_rows: int = 0
    seconds: float = 0.0
    mapping_known: bool = True  # whether the ledger knew the earlier load's mapping


def ledger_key(file_digest: str, machine_id: int) -> str:
    """One load per file and machine: the same log may not load twice for one machine."""
    return hashlib.sha256(f"{FORMAT_NAME}|{machine_id}|{file_digest}".encode()).hexdigest()


def mapping_digest(roles: Roles, session_gap: timedelta | None) -> str:
    """What decides the rows besides the file: the mapping (and probe) and the session gap."""
    gap = session_gap.total_seconds() if session_gap else 0
    return hashlib.sha256(f"{roles.digest()}|gap={gap:g}".encode()).hexdigest()


def delete_load(conn: psycopg.Connection, machine_id: int, loaded_at: datetime) -> int:
    """Delete the Bronze rows of one earlier load: its transaction stamped them all with the
    ledger row's loaded_at as ingested_at (both are that transaction's now())."""
    deleted = 0
    for table in BRONZE_OUTPUTS:
        cursor = conn.execute(f"delete from bronze.{table} where gateway_id = %s and "
                              "machine_id = %s and ingested_at = %s",
                              (GATEWAY_ID, machine_id, loaded_at))
        deleted += cursor.rowcount
    return deleted


def ingest_shdr(conn: psycopg.Connection, path: Path | str, machine_id: int,
                roles: Roles | None = None, *, replace: bool = False,
                session_gap: timedelta | None = DEFAULT_SESSION_GAP) -> ShdrResult:
    """Load one SHDR log for machine_id into Bronze in one transaction, exactly once.

    The ledger keeps the digest of the mapping the file was loaded with. The same file with
    the same mapping is skipped; with another mapping it is refused unless replace, which
    deletes the earlier load's rows and writes the new ones in the same transaction."""
    path = Path(path)
    started = time.perf_counter()
    roles = roles or default_mapping()
    mapper = read_shdr_file(path, machine_id, roles, session_gap=session_gap)
    key = ledger_key(file_sha256(path), machine_id)
    digest = mapping_digest(roles, session_gap)
    name = f"{path.name} (machine {machine_id})"
    replaced = 0
    with conn.transaction():
        try:
            earlier = conn.execute(
                f"select loaded_at, mapping_sha256 from {LEDGER_TABLE} "
                "where content_sha256 = %s for update", (key,)).fetchone()
        except psycopg.errors.UndefinedTable:
            raise IngestError(f"{LEDGER_TABLE} does not exist: run `setu bronze` first") from None
        except psycopg.errors.UndefinedColumn:
            raise IngestError(f"{LEDGER_TABLE} has no mapping_sha256 column: run `setu bronze` "
                              "to add it") from None
        if earlier is not None:
            loaded_at, earlier_digest = earlier
            # A load recorded before mappings were is skipped as before (a scheduled re-run
            # must not start failing); --replace reloads it with the mapping of today.
            if not replace and earlier_digest in (digest, None):
                return ShdrResult(path, machine_id, mapper, digest, {}, skipped=True,
                                  loaded_at=loaded_at, mapping_known=earlier_digest is not None)
            if not replace:
                raise IngestError(
                    f"{path.name}: already loaded for machine {machine_id} at "
                    f"{loaded_at:%Y-%m-%d %H:%M:%S%z} with mapping "
                    f"{(earlier_digest or 'unknown')[:12]}, now {digest[:12]}: preview with "
                    f"`setu mtconnect ingest --dry-run`, then `setu mtconnect ingest --replace` "
                    f"to swap that load's rows for the new ones")
            replaced = delete_load(conn, machine_id, loaded_at)
            conn.execute(f"update {LEDGER_TABLE} set loaded_at = now(), loaded_by = "
                         "current_user, mapping_sha256 = %s, mapping_name = %s, "
                         "replaced_count = replaced_count + 1 where content_sha256 = %s",
                         (digest, _mapping_name(roles), key))
        else:
            conn.execute(
                f"insert into {LEDGER_TABLE} (content_sha256, source_kind, source_name, "
                "byte_count, mapping_sha256, mapping_name) values (%s, %s, %s, %s, %s, %s)",
                (key, FORMAT_NAME, name, path.stat().st_size, digest, _mapping_name(roles)))
        counts = {}
        for table, (columns, table_rows) in mapper.rows.tables().items():
            try:
                counts[table] = copy_rows(conn, table, columns, table_rows) if table_rows else 0
            except psycopg.Error as exc:
                reason = " ".join((exc.diag.message_primary or str(exc)).split())
                raise IngestError(f"{path.name}: bronze.{table} refused a row: {clip(reason)}"
                                  ) from None
        conn.execute(f"update {LEDGER_TABLE} set row_count = %s where content_sha256 = %s",
                     (sum(counts.values()), key))
    return ShdrResult(path, machine_id, mapper, digest, counts, replaced_rows=replaced,
                      seconds=time.perf_counter() - started)


def _mapping_name(roles: Roles) -> str:
    return getattr(roles, "name", None) or roles.values.source


def describe(result: ShdrResult) -> list[str]:
    name = result.path.name
    if result.skipped:
        mapping = (f"with this mapping ({result.mapping_sha256[:12]})" if result.mapping_known
                   else "before mappings were recorded (`setu mtconnect ingest --replace` "
                        "reloads it with this one)")
        return [f"skipped {name}: already loaded for machine {result.machine_id} at "
                f"{result.loaded_at:%Y-%m-%d %H:%M:%S%z} {mapping}"]
    loaded = ", ".join(f"{count:,} {table}" for table, count in result.rows.items())
    verb = "replaced" if result.replaced_rows else "loaded"
    lines = [f"{verb} {name} for machine {result.machine_id}: {loaded} "
             f"({result.seconds:.1f} s, mapping {result.mapping_sha256[:12]})"]
    if result.replaced_rows:
        lines.append(f"  deleted the {result.replaced_rows:,} rows of the earlier load; "
                     f"Silver and Gold built from them need `setu run --full-refresh`")
    lines += describe_run(result.mapper)
    return lines


def describe_run(mapper: Mapper, unit: str = "lines") -> list[str]:
    lines = []
    if len(mapper.sessions) > 1 or any(s.out_of_session for s in mapper.sessions):
        lines.append(f"  {len(mapper.sessions)} sessions (baselines reset at each; OFF "
                     f"from the end of each one's data):")
        lines += [f"    {session.describe()}" for session in mapper.sessions]
    lines.append("  accounting:")
    lines += ["  " + line for line in mapper.acct.describe(unit)]
    return lines


def dry_run_lines(mapper: Mapper, title: str) -> list[str]:
    """What each item seen becomes and the rows per Bronze table; nothing is written."""
    lines = [f"dry run of {title} (nothing written); what each item becomes:"]
    items = sorted(mapper.seen_items.items())
    for item, count in items[:DRY_RUN_ITEMS]:
        role = mapper.roles.role_of(item)
        lines.append(f"  {clip(item, 60)} ({count:,}) -> {role.target()} [{role.source}]")
    if len(items) > DRY_RUN_ITEMS:
        lines.append(f"  ... and {len(items) - DRY_RUN_ITEMS:,} more items (all counted in the "
                     f"accounting below)")
    counts = mapper.rows.counts()
    lines.append("  rows it would write: " + ", ".join(f"{counts[t]:,} {t}"
                                                       for t in BRONZE_OUTPUTS))
    return lines + describe_run(mapper)


# -- `setu ingest` dispatch ------------------------------------------------------------------

def is_shdr(path: Path) -> bool:
    return path.name.lower().endswith(SHDR_SUFFIXES)


def wants_shdr(files: Iterable[Path], format_name: str) -> bool:
    """Whether `setu ingest` should read FILES as SHDR (explicitly or by their suffix)."""
    files = list(files)
    if format_name == FORMAT_NAME:
        return True
    if format_name != "auto":
        return False
    shdr = [is_shdr(path) for path in files]
    if any(shdr) and not all(shdr):
        raise click.UsageError("SHDR and CSV/Parquet files in one call: load them separately")
    return all(shdr)


def check_file_format(files: Iterable[Path], format_name: str) -> None:
    """--format csv|parquet: each file's suffix must agree (the CSV/Parquet loader reads
    the format from it)."""
    if format_name in ("auto", FORMAT_NAME):
        return
    for path in files:
        try:
            actual = file_format(path)
        except IngestError as exc:
            raise click.UsageError(str(exc)) from None
        if actual != format_name:
            raise click.UsageError(f"{path.name}: --format {format_name}, but the file is "
                                   f"named as {actual}")


def ingest_shdr_files(files: Iterable[Path], machine_id: int | None, mapping_path: Path | None,
                      target: str | None, *, probe_path: Path | None = None,
                      device: str | None = None, dry_run: bool = False, replace: bool = False,
                      session_gap: timedelta | None = DEFAULT_SESSION_GAP) -> None:
    """Each SHDR file in its own transaction (or, with dry_run, read and described only)."""
    from rich.console import Console
    from rich.markup import escape

    from setu.ingest.connectors.mtconnect_probe import ProbeError

    console = Console(stderr=True)
    if machine_id is None:
        raise click.UsageError("--machine is required with --format mtconnect-shdr "
                               "(an SHDR log does not name its machine)")
    try:
        roles = build_roles(mapping_path, probe_path, device)
    except (MappingError, ProbeError) as exc:
        raise click.UsageError(str(exc)) from None
    if dry_run:
        for path in files:
            try:
                mapper = read_shdr_file(path, machine_id, roles, session_gap=session_gap)
            except IngestError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
                raise SystemExit(2) from None
            for line in dry_run_lines(mapper, f"{path.name} for machine {machine_id}"):
                click.echo(line)
        return
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    ensure_database(target)
    with connect(target) as conn:
        for path in files:
            try:
                result = ingest_shdr(conn, path, machine_id, roles, replace=replace,
                                     session_gap=session_gap)
            except IngestError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
                raise SystemExit(2) from None
            for line in describe(result):
                click.echo(line)


def dispatch_ingest(files: Iterable[Path], format_name: str, machine_id: int | None,
                    mapping_path: Path | None, target: str | None) -> bool:
    """`setu ingest`'s --format: loads SHDR files here (returns True), or checks the options
    of a CSV/Parquet load and returns False for the CSV/Parquet loader to go on."""
    files = list(files)
    if wants_shdr(files, format_name):
        ingest_shdr_files(files, machine_id, mapping_path, target)
        return True
    if machine_id is not None or mapping_path is not None:
        raise click.UsageError("--machine and --mapping go with --format mtconnect-shdr "
                               "(or .shdr files)")
    check_file_format(files, format_name)
    return False
