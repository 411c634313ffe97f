"""MTConnect data item mapping: which item names are the machine's state, program, part
count, telemetry and alarms, read from a YAML file (the built-in default or the user's). The
probe-built mapping (mtconnect_probe) answers the same questions from the device model."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

DEFAULT_MAPPING_PATH = Path(__file__).with_name("mtconnect_default_mapping.yaml")
CONDITION_FIELDS = 5  # LEVEL|nativeCode|nativeSeverity|qualifier|message
STATE_ROLES = ("availability", "execution", "controller_mode", "emergency_stop", "program")
TELEMETRY_COLUMNS = ("spindle_speed_rpm", "feed_rate_mm_min", "spindle_load_pct",
                     "spindle_temp_c", "motor_temp_c", "coolant_temp_c", "power_kw",
                     "energy_kwh")


class MappingError(ValueError):
    """A mapping file that does not say what SETU needs, phrased as what to fix."""


# -- roles -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TelemetryRule:
    column: str
    patterns: tuple[str, ...]
    scale: float
    offset: float = 0.0  # FAHRENHEIT and KELVIN to CELSIUS are affine

    def convert(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True)
class Role:
    """What one data item is: kind state | part_count | telemetry | condition | fields |
    unmapped; detail the state role, TelemetryRule or field count; source says why."""

    kind: str
    detail: object = None
    source: str = ""

    @property
    def fields(self) -> int:
        """Value fields the item takes on an SHDR line."""
        if self.kind == "condition":
            return CONDITION_FIELDS
        if self.kind == "fields":
            return int(self.detail)  # type: ignore[arg-type]
        return 1

    def target(self) -> str:
        if self.kind == "state":
            return f"machine_state_events ({self.detail})"
        if self.kind == "part_count":
            return "machine_cycles (part count)"
        if self.kind == "telemetry":
            rule = self.detail
            assert isinstance(rule, TelemetryRule)
            factor = f"x{rule.scale:g}" + (f" {rule.offset:+g}" if rule.offset else "")
            return f"machine_telemetry.{rule.column} ({factor})"
        if self.kind == "condition":
            return "alarms (condition)"
        return "not loaded"


class Roles(Protocol):
    """Answers what an item is; the YAML mapping and the probe-built mapping both do."""

    def role_of(self, item: str) -> Role: ...

    @property
    def values(self) -> ItemMapping: ...

    def digest(self) -> str: ...


@dataclass(frozen=True)
class ItemMapping:
    """The YAML mapping, checked; `role_of` answers what an SHDR item is by its name."""

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
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str = "default mapping"
    _cache: dict[str, Role] = field(default_factory=dict, compare=False)

    @property
    def values(self) -> ItemMapping:
        return self

    def role_of(self, item: str) -> Role:
        if item not in self._cache:
            # A multi-device adapter prefixes the device: "mill1:execution".
            self._cache[item] = self.named_role(item.rsplit(":", 1)[-1])
        return self._cache[item]

    def named_role(self, item: str) -> Role:
        """The role the YAML names give item; unmapped when no name matches."""
        source = f"{self.source}: name"
        for role in STATE_ROLES:
            if matches(item, self.roles.get(role, ())):
                return Role("state", role, source)
        if matches(item, self.roles.get("part_count", ())):
            return Role("part_count", None, source)
        for rule in self.telemetry:
            if matches(item, rule.patterns):
                return Role("telemetry", rule, source)
        if matches(item, self.conditions):
            return Role("condition", None, source)
        for pattern, count in self.field_counts.items():
            if matches(item, (pattern,)):
                return Role("fields", count, source)
        return Role("unmapped", None, f"{self.source}: no name matches")

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()
                              ).hexdigest()


def matches(item: str, patterns: Iterable[str]) -> bool:
    """Whether item matches one of the shell patterns, case-insensitively."""
    any_of = _any_of(tuple(patterns))
    return any_of is not None and any_of.match(item.lower()) is not None


@cache
def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """The patterns as one compiled expression: a log of many distinct items asks for each
    of them once, and fnmatch per pattern per item took most of a long line's time."""
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(pattern.lower()) for pattern in patterns))


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
        raw=raw,
        source=source,
    )


def read_mapping_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: unreadable mapping: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: expected a YAML mapping at the top level")
    return raw


def load_mapping(path: Path | None = None) -> ItemMapping:
    """The built-in default with the sections of the file at path (if any) in place of its
    own: a machine's file names only what differs. Telemetry columns merge one by one."""
    if path is None:
        return default_mapping()
    raw = read_mapping_file(path)
    merged = {**default_raw(), **raw}
    telemetry = raw.get("telemetry")
    if isinstance(telemetry, dict):
        merged["telemetry"] = {**default_raw()["telemetry"], **telemetry}
    return parse_mapping(merged, Path(path).name)


def default_raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())


@cache
def default_mapping() -> ItemMapping:
    return parse_mapping(default_raw(), DEFAULT_MAPPING_PATH.name)
