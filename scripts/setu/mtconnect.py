"""MTConnect SHDR logs into Bronze: `setu ingest --format mtconnect-shdr FILE --machine M`.

SHDR is the line protocol between an MTConnect adapter and its agent:
``timestamp|item|value|item|value...``; a condition takes a line of its own,
``timestamp|item|LEVEL|nativeCode|nativeSeverity|qualifier|message``; assets span lines
between ``--multiline--TAG`` markers; lines starting with ``*`` are protocol commands. The
data item names are the machine's (the agent's device file names them), so what maps where
comes from a small YAML file (mtconnect_default_mapping.yaml, or --mapping FILE):

- Availability, Execution, ControllerMode, EmergencyStop, FAULT conditions and the program
  -> machine_state_events, one row whenever the derived (state, program) changes;
- PartCount increases -> machine_cycles (cycle_start = the later of the previous counter
  change and the start of the current ACTIVE run; part_count = the counter);
- samples -> machine_telemetry (one row per timestamp, unit-scaled);
- conditions -> alarms (FAULT/WARNING RAISED, NORMAL CLEARED).
Everything else is counted per item and reported, never silently dropped. A file loads in
one transaction, exactly once per machine (the ingest ledger). docs/connectors/mtconnect.md
has the mapping tables.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import click
import psycopg
import yaml

from setu.ingest import (
    IngestError,
    claim_ledger,
    copy_rows,
    file_format,
    file_sha256,
    record_ledger_rows,
)

DEFAULT_MAPPING_PATH = Path(__file__).with_name("mtconnect_default_mapping.yaml")
FORMAT_NAME = "mtconnect-shdr"
SHDR_SUFFIXES = (".shdr", ".shdr.gz")
GATEWAY_ID = "mtconnect"
UNAVAILABLE = "UNAVAILABLE"
CONDITION_LEVELS = ("NORMAL", "WARNING", "FAULT", UNAVAILABLE)
CONDITION_FIELDS = 5  # LEVEL|nativeCode|nativeSeverity|qualifier|message
MULTILINE_PREFIX = "--multiline--"
ASSET_COMMANDS = ("@ASSET@", "@UPDATE_ASSET@", "@REMOVE_ASSET@", "@REMOVE_ALL_ASSETS@")
STATE_ROLES = ("availability", "execution", "controller_mode", "emergency_stop", "program")

STATE_COLUMNS = ("time", "gateway_id", "machine_id", "state", "program_name")
CYCLE_COLUMNS = ("time", "gateway_id", "machine_id", "cycle_start", "program_name",
                 "part_count", "result")
TELEMETRY_COLUMNS = ("spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct",
                     "spindle_temp_c", "motor_temp_c", "coolant_temp_c", "power_kw",
                     "energy_kwh")
ALARM_COLUMNS = ("time", "gateway_id", "machine_id", "alarm_code", "severity", "message",
                 "event")


class MappingError(ValueError):
    """A mapping file that does not say what SETU needs, phrased as what to fix."""


# -- the mapping ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TelemetryRule:
    column: str
    patterns: tuple[str, ...]
    scale: float


@dataclass(frozen=True)
class ItemMapping:
    """The YAML mapping, checked; `role_of` answers what an SHDR item is."""

    roles: dict[str, tuple[str, ...]]  # state role or "part_count" -> name patterns
    telemetry: tuple[TelemetryRule, ...]
    conditions: tuple[str, ...]
    field_counts: dict[str, int]
    availability_states: dict[str, str]
    controller_mode_states: dict[str, str]
    execution_states: dict[str, str]
    emergency_stop_alarm: frozenset[str]
    execution_pauses: frozenset[str]
    condition_severity: dict[str, str]
    _cache: dict[str, tuple[str, object]] = field(default_factory=dict, compare=False)

    def role_of(self, item: str) -> tuple[str, object]:
        """("state", role) | ("part_count", None) | ("telemetry", rule) | ("condition", None)
        | ("fields", n) | ("unmapped", None)."""
        if item not in self._cache:
            # A multi-device adapter prefixes the device: "mill1:execution".
            self._cache[item] = self._classify(item.rsplit(":", 1)[-1])
        return self._cache[item]

    def _classify(self, item: str) -> tuple[str, object]:
        for role in STATE_ROLES:
            if matches(item, self.roles[role]):
                return "state", role
        if matches(item, self.roles["part_count"]):
            return "part_count", None
        for rule in self.telemetry:
            if matches(item, rule.patterns):
                return "telemetry", rule
        if matches(item, self.conditions):
            return "condition", None
        for pattern, count in self.field_counts.items():
            if matches(item, (pattern,)):
                return "fields", count
        return "unmapped", None


def matches(item: str, patterns: Iterable[str]) -> bool:
    name = item.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns)


CONTRACT_STATES = ("OFF", "IDLE", "RUNNING", "SETUP", "ALARM", "MAINTENANCE")


def _names(raw: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise MappingError(f"{source}: {key} must be a list of item names")
    return tuple(str(v) for v in value)


def _states(raw: Mapping[str, Any], key: str, source: str) -> dict[str, str]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise MappingError(f"{source}: {key} must map values to states")
    # YAML 1.1 reads a bare OFF as false: take it as the OFF that was meant.
    states = {str(k).upper(): "OFF" if v is False else str(v).upper() for k, v in value.items()}
    for k, v in states.items():
        if v not in CONTRACT_STATES:
            raise MappingError(f"{source}: {key}: {k}: {v} is not one of "
                               f"{', '.join(CONTRACT_STATES)}")
    return states


def parse_mapping(raw: object, source: str) -> ItemMapping:
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected a YAML mapping at the top level")
    telemetry = []
    for column, rule in (raw.get("telemetry") or {}).items():
        if column not in TELEMETRY_COLUMNS:
            raise MappingError(f"{source}: telemetry: {column} is not a Bronze telemetry "
                               f"column ({', '.join(TELEMETRY_COLUMNS)})")
        rule = rule if isinstance(rule, dict) else {"items": rule}
        try:
            scale = float(rule.get("scale", 1))
        except (TypeError, ValueError):
            raise MappingError(f"{source}: telemetry: {column}: scale must be a number"
                               ) from None
        telemetry.append(TelemetryRule(column, _names(rule, "items", f"{source}: {column}"),
                                       scale))
    field_counts = raw.get("field_counts") or {}
    if not isinstance(field_counts, dict) or not all(
            isinstance(n, int) and n >= 1 for n in field_counts.values()):
        raise MappingError(f"{source}: field_counts must map item names to field counts")
    severity = raw.get("condition_severity") or {}
    if not isinstance(severity, dict):
        raise MappingError(f"{source}: condition_severity must map levels to severities")
    return ItemMapping(
        roles={role: _names(raw, role, source) for role in (*STATE_ROLES, "part_count")},
        telemetry=tuple(telemetry),
        conditions=_names(raw, "conditions", source),
        field_counts={str(k): int(v) for k, v in field_counts.items()},
        availability_states=_states(raw, "availability_states", source),
        controller_mode_states=_states(raw, "controller_mode_states", source),
        execution_states=_states(raw, "execution_states", source),
        emergency_stop_alarm=frozenset(v.upper()
                                       for v in _names(raw, "emergency_stop_alarm", source)),
        execution_pauses=frozenset(v.upper() for v in _names(raw, "execution_pauses", source)),
        condition_severity={str(k).upper(): str(v) for k, v in severity.items()},
    )


def load_mapping(path: Path | None = None) -> ItemMapping:
    """The built-in default with the sections of the file at path (if any) in place of its
    own: a machine's file names only what differs. Telemetry columns merge one by one."""
    if path is None:
        return default_mapping()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: unreadable mapping: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: expected a YAML mapping at the top level")
    merged = {**default_raw(), **raw}
    telemetry = raw.get("telemetry")
    if isinstance(telemetry, dict):
        merged["telemetry"] = {**default_raw()["telemetry"], **telemetry}
    return parse_mapping(merged, str(path))


def default_raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())


@cache
def default_mapping() -> ItemMapping:
    return parse_mapping(default_raw(), DEFAULT_MAPPING_PATH.name)


# -- SHDR lines -----------------------------------------------------------------------------

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
    line: int


@dataclass
class ParseReport:
    lines: int = 0
    commands: int = 0  # `* PING`, `* shdrVersion: 2`, ...
    assets: int = 0
    bad_lines: list[str] = field(default_factory=list)  # "line N: why", the first few
    bad_line_count: int = 0

    def bad(self, number: int, why: str) -> None:
        self.bad_line_count += 1
        if len(self.bad_lines) < 5:
            self.bad_lines.append(f"line {number}: {why}")


def parse_timestamp(text: str) -> datetime:
    """An SHDR timestamp: ISO 8601, UTC when it has no offset (adapters send UTC)."""
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_shdr(lines: Iterable[str], mapping: ItemMapping, report: ParseReport
               ) -> Iterator[Observation]:
    """The observations of an SHDR log, in file order."""
    multiline_end: str | None = None
    asset_started = 0
    for number, raw_line in enumerate(lines, start=1):
        report.lines += 1
        line = raw_line.rstrip("\r\n")
        if multiline_end is not None:
            if line.strip() == multiline_end:
                multiline_end = None
            continue
        if not line.strip():
            continue
        if line.startswith("*"):
            report.commands += 1
            continue
        fields = line.split("|")
        try:
            when = parse_timestamp(fields[0])
        except ValueError:
            report.bad(number, f"unreadable timestamp {fields[0][:40]!r}")
            continue
        if len(fields) > 1 and fields[1].strip() in ASSET_COMMANDS:
            report.assets += 1
            if fields[-1].startswith(MULTILINE_PREFIX):
                multiline_end, asset_started = fields[-1].strip(), number
            continue
        yield from _line_observations(when, fields, number, mapping, report)
    if multiline_end is not None:
        report.bad(asset_started, f"asset never ends ({multiline_end} missing): the lines "
                                  f"after it were read as the asset")


def _line_observations(when: datetime, fields: list[str], number: int, mapping: ItemMapping,
                       report: ParseReport) -> Iterator[Observation]:
    index = 1
    while index < len(fields):
        item = fields[index].strip()
        rest = fields[index + 1:]
        if not item:
            report.bad(number, f"empty data item name in field {index + 1}")
            return
        kind, detail = mapping.role_of(item)
        # A condition is read by its shape as well: conditions come on lines of their own,
        # so an item followed by a level and exactly the condition's fields is one.
        is_condition = kind == "condition" or (
            len(rest) == CONDITION_FIELDS and rest[0].strip().upper() in CONDITION_LEVELS
            and kind == "unmapped")
        if is_condition:
            padded = [part.strip() for part in rest[:CONDITION_FIELDS]]
            padded += [""] * (CONDITION_FIELDS - len(padded))
            yield Observation(when, item, Condition(padded[0].upper(), *padded[1:]), number)
            index += 1 + CONDITION_FIELDS
            continue
        width = detail if kind == "fields" else 1
        if len(rest) < width:
            report.bad(number, f"{item}: expected {width} value field(s)")
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
    unmapped_items: Counter = field(default_factory=Counter)  # item -> observations
    unmapped_values: Counter = field(default_factory=Counter)  # "item=value" -> count
    parse: ParseReport = field(default_factory=ParseReport)

    def tables(self) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
        return {
            "machine_state_events": (STATE_COLUMNS, self.machine_state_events),
            "machine_cycles": (CYCLE_COLUMNS, self.machine_cycles),
            "machine_telemetry": (("time", "gateway_id", "machine_id", *TELEMETRY_COLUMNS),
                                  self.machine_telemetry),
            "alarms": (ALARM_COLUMNS, self.alarms),
        }


class MachineView:
    """What the log has said about the machine so far, and the rows it implies."""

    def __init__(self, machine_id: int, mapping: ItemMapping, rows: ShdrRows,
                 gateway_id: str) -> None:
        self.machine_id = machine_id
        self.mapping = mapping
        self.rows = rows
        self.gateway_id = gateway_id
        self.values: dict[str, str | None] = dict.fromkeys(STATE_ROLES)
        # condition item -> native code -> (level, severity) of what is active
        self.active_conditions: dict[str, dict[str, tuple[str, str]]] = {}
        self.emitted: tuple[str, str | None] | None = None  # the last (state, program) sent
        self.part_count: int | None = None
        self.part_count_changed_at: datetime | None = None
        self.active_since: datetime | None = None
        self.pending_telemetry: dict[str, float] = {}
        self.pending_time: datetime | None = None

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
            if upper and upper not in self.mapping.execution_states:
                self.rows.unmapped_values[f"execution={text}"] += 1
        if role == "program":
            # An unavailable program is an unknown one, not a program named UNAVAILABLE.
            self.values[role] = None if upper in ("", UNAVAILABLE) else text
        else:
            self.values[role] = upper or None

    def emit_state(self, when: datetime) -> None:
        state = self.state()
        if state is None:
            return  # nothing known yet: no interval rather than a guessed one
        program = self.values["program"] if state != "OFF" else None
        if (state, program) != self.emitted:
            self.rows.machine_state_events.append(
                (when, self.gateway_id, self.machine_id, state, program))
            self.emitted = (state, program)

    # cycles --------------------------------------------------------------------------------
    def set_part_count(self, value: str, when: datetime) -> None:
        if value.strip().upper() in ("", UNAVAILABLE):
            return  # the counter is unknown for a while: it has not changed
        try:
            count = int(float(value))
        except ValueError:
            self.rows.unmapped_values[f"part_count={value.strip()}"] += 1
            return
        if self.part_count is not None and count > self.part_count:
            starts = [t for t in (self.part_count_changed_at, self.active_since) if t]
            self.rows.machine_cycles.append(
                (when, self.gateway_id, self.machine_id, max(starts), self.values["program"],
                 count, "GOOD"))
        # The first value is where the counter stood when logging began; a lower value is a
        # reset: neither ends a cycle.
        self.part_count = count
        self.part_count_changed_at = when

    # alarms --------------------------------------------------------------------------------
    def set_condition(self, item: str, condition: Condition, when: datetime) -> None:
        active = self.active_conditions.setdefault(item, {})
        code = condition.native_code or item
        if condition.level in self.mapping.condition_severity:
            severity = self.mapping.condition_severity[condition.level]
            if active.get(code) != (condition.level, severity):
                active[code] = (condition.level, severity)
                self.rows.alarms.append((when, self.gateway_id, self.machine_id, code, severity,
                                         condition.message or None, "RAISED"))
            return
        # NORMAL with a code clears that code; NORMAL without one, or UNAVAILABLE, clears
        # every code of the item (the controller no longer reports them).
        if condition.level == "NORMAL" and condition.native_code:
            cleared = [condition.native_code] if condition.native_code in active else []
        else:
            cleared = list(active)
        for cleared_code in cleared:
            _, severity = active.pop(cleared_code)
            self.rows.alarms.append((when, self.gateway_id, self.machine_id, cleared_code,
                                     severity, condition.message or None, "CLEARED"))
        if condition.level not in ("NORMAL", UNAVAILABLE):
            self.rows.unmapped_values[f"{item}={condition.level}"] += 1

    # telemetry -----------------------------------------------------------------------------
    def set_sample(self, rule: TelemetryRule, value: str, when: datetime) -> None:
        if value.strip().upper() in ("", UNAVAILABLE):
            return
        try:
            number = float(value) * rule.scale
        except ValueError:
            self.rows.unmapped_values[f"{rule.column}={value.strip()}"] += 1
            return
        if self.pending_time != when or rule.column in self.pending_telemetry:
            self.flush_telemetry()
            self.pending_time = when
        self.pending_telemetry[rule.column] = number

    def flush_telemetry(self) -> None:
        if self.pending_telemetry and self.pending_time is not None:
            self.rows.machine_telemetry.append(
                (self.pending_time, self.gateway_id, self.machine_id,
                 *(self.pending_telemetry.get(column) for column in TELEMETRY_COLUMNS)))
        self.pending_telemetry = {}

    def observe(self, observation: Observation) -> None:
        kind, detail = self.mapping.role_of(observation.item)
        value = observation.value
        if isinstance(value, Condition):
            self.set_condition(observation.item, value, observation.time)
        elif kind == "state" and isinstance(value, str):
            self.set_state_value(str(detail), value, observation.time)
        elif kind == "part_count" and isinstance(value, str):
            self.set_part_count(value, observation.time)
        elif kind == "telemetry" and isinstance(value, str):
            assert isinstance(detail, TelemetryRule)
            self.set_sample(detail, value, observation.time)
        else:
            self.rows.unmapped_items[observation.item] += 1


def map_observations(observations: Iterable[Observation], machine_id: int,
                     mapping: ItemMapping, rows: ShdrRows | None = None,
                     gateway_id: str = GATEWAY_ID) -> ShdrRows:
    """Bronze rows for one machine's observations. Everything at one timestamp is applied
    before the state is judged, so a fault and the stop it causes make one ALARM event."""
    rows = rows or ShdrRows()
    view = MachineView(machine_id, mapping, rows, gateway_id)
    current: datetime | None = None
    for observation in observations:
        if current is not None and observation.time != current:
            view.emit_state(current)
        current = observation.time
        view.observe(observation)
    if current is not None:
        view.emit_state(current)
    view.flush_telemetry()
    return rows


def open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        yield from handle


def read_shdr_file(path: Path | str, machine_id: int, mapping: ItemMapping | None = None
                   ) -> ShdrRows:
    path = Path(path)
    mapping = mapping or default_mapping()
    rows = ShdrRows()
    observations = parse_shdr(open_text(path), mapping, rows.parse)
    return map_observations(observations, machine_id, mapping, rows)


# -- loading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShdrResult:
    path: Path
    machine_id: int
    rows: dict[str, int]
    unmapped_items: Counter
    unmapped_values: Counter
    parse: ParseReport
    skipped: bool = False
    loaded_at: object = None
    seconds: float = 0.0


def ledger_key(file_digest: str, machine_id: int) -> str:
    """One load per file and machine: the same log may not load twice for one machine."""
    return hashlib.sha256(f"{FORMAT_NAME}|{machine_id}|{file_digest}".encode()).hexdigest()


def ingest_shdr(conn: psycopg.Connection, path: Path | str, machine_id: int,
                mapping: ItemMapping | None = None) -> ShdrResult:
    """Load one SHDR log for machine_id into Bronze in one transaction, exactly once."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    started = time.perf_counter()
    rows = read_shdr_file(path, machine_id, mapping)
    key = ledger_key(file_sha256(path), machine_id)
    with conn.transaction():
        earlier = claim_ledger(conn, key, FORMAT_NAME, f"{path.name} (machine {machine_id})",
                               None, path.stat().st_size)
        if earlier is not None:
            return ShdrResult(path, machine_id, {}, rows.unmapped_items, rows.unmapped_values,
                              rows.parse, skipped=True, loaded_at=earlier)
        counts = {}
        for table, (columns, table_rows) in rows.tables().items():
            counts[table] = copy_rows(conn, table, columns, table_rows) if table_rows else 0
        record_ledger_rows(conn, key, sum(counts.values()))
    return ShdrResult(path, machine_id, counts, rows.unmapped_items, rows.unmapped_values,
                      rows.parse, seconds=time.perf_counter() - started)


def describe(result: ShdrResult) -> list[str]:
    name = result.path.name
    if result.skipped:
        return [f"skipped {name}: already loaded for machine {result.machine_id} at "
                f"{result.loaded_at:%Y-%m-%d %H:%M:%S%z}"]
    loaded = ", ".join(f"{count:,} {table}" for table, count in result.rows.items())
    lines = [f"loaded {name} for machine {result.machine_id}: {loaded} "
             f"({result.seconds:.1f} s)"]
    if result.unmapped_items:
        items = ", ".join(f"{item} {count:,}"
                          for item, count in result.unmapped_items.most_common())
        lines.append(f"  unmapped data items (observations not loaded): {items}")
    if result.unmapped_values:
        values = ", ".join(f"{value} {count:,}"
                           for value, count in result.unmapped_values.most_common())
        lines.append(f"  unmapped values (not loaded): {values}")
    parse = result.parse
    if parse.assets or parse.commands:
        lines.append(f"  skipped: {parse.assets:,} asset(s), {parse.commands:,} protocol "
                     f"command line(s)")
    if parse.bad_line_count:
        lines.append(f"  unreadable lines: {parse.bad_line_count:,} "
                     f"({'; '.join(parse.bad_lines)})")
    return lines


# -- `setu ingest` dispatch ------------------------------------------------------------------

def is_shdr(path: Path) -> bool:
    return path.name.lower().endswith(SHDR_SUFFIXES)


def wants_shdr(files: Sequence[Path], format_name: str) -> bool:
    """Whether `setu ingest` should read FILES as SHDR (explicitly or by their suffix)."""
    if format_name == FORMAT_NAME:
        return True
    if format_name != "auto":
        return False
    shdr = [is_shdr(path) for path in files]
    if any(shdr) and not all(shdr):
        raise click.UsageError("SHDR and CSV/Parquet files in one call: load them separately")
    return all(shdr)


def check_file_format(files: Sequence[Path], format_name: str) -> None:
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


def ingest_shdr_files(files: Sequence[Path], machine_id: int | None, mapping_path: Path | None,
                      target: str | None) -> None:
    """`setu ingest --format mtconnect-shdr`: each file in its own transaction."""
    from rich.console import Console

    from setu.cli import ensure_database
    from setu.profile import connect

    console = Console(stderr=True)
    if machine_id is None:
        raise click.UsageError("--machine is required with --format mtconnect-shdr "
                               "(an SHDR log does not name its machine)")
    try:
        mapping = load_mapping(mapping_path)
    except MappingError as exc:
        raise click.UsageError(str(exc)) from None
    ensure_database(target)
    with connect(target) as conn:
        for path in files:
            try:
                result = ingest_shdr(conn, path, machine_id, mapping)
            except IngestError as exc:
                console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise SystemExit(2) from None
            for line in describe(result):
                click.echo(line)


def dispatch_ingest(files: Sequence[Path], format_name: str, machine_id: int | None,
                    mapping_path: Path | None, target: str | None) -> bool:
    """`setu ingest`'s --format: loads SHDR files here (returns True), or checks the options
    of a CSV/Parquet load and returns False for the CSV/Parquet loader to go on."""
    if wants_shdr(files, format_name):
        ingest_shdr_files(files, machine_id, mapping_path, target)
        return True
    if machine_id is not None or mapping_path is not None:
        raise click.UsageError("--machine and --mapping go with --format mtconnect-shdr "
                               "(or .shdr files)")
    check_file_format(files, format_name)
    return False
