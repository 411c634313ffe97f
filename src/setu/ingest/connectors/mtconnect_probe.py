"""The MTConnect device model (a probe document: `Devices.xml` or an agent's `/probe`) as the
mapping of a machine's data items to Bronze.

Each DataItem has a category (SAMPLE, EVENT, CONDITION), a type (EXECUTION, PART_COUNT,
ROTARY_VELOCITY, LOAD, ...), maybe a subType (ACTUAL, COMMANDED, ...), units and the
nativeUnits the adapter sends, and sits in a component (Controller/Path, Axes/Rotary, ...).
SETU takes the machine's state items from the device and its first Path, the spindle
measures from its main spindle (the first Rotary with a rotary velocity) and converts the
values to its own units. The YAML mapping, when given with --mapping, overrides by name.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from setu.ingest.connectors.mtconnect_mapping import (
    ItemMapping,
    MappingError,
    Role,
    TelemetryRule,
)


class ProbeError(MappingError):
    """A probe document SETU cannot use, phrased as what is wrong with it."""


SPINDLE_COMPONENTS = ("Rotary", "Spindle")
# SETU's units per telemetry column, and the MTConnect units each may come in:
# unit -> (scale, offset) to SETU's unit.
COLUMN_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "spindle_speed_rpm": {"REVOLUTION/MINUTE": (1, 0), "REVOLUTION/SECOND": (60, 0),
                          "RADIAN/SECOND": (60 / (2 * math.pi), 0),
                          "DEGREE/SECOND": (60 / 360, 0)},
    "feed_rate_mm_min": {"MILLIMETER/MINUTE": (1, 0), "MILLIMETER/SECOND": (60, 0),
                         "INCH/MINUTE": (25.4, 0), "INCH/SECOND": (25.4 * 60, 0),
                         "FOOT/MINUTE": (304.8, 0)},
    "spindle_load_pct": {"PERCENT": (1, 0)},
    "spindle_temp_c": {"CELSIUS": (1, 0), "FAHRENHEIT": (5 / 9, -32 * 5 / 9),
                       "KELVIN": (1, -273.15)},
    "power_kw": {"KILOWATT": (1, 0), "WATT": (0.001, 0)},
    "energy_kwh": {"KILOWATT_HOUR": (1, 0), "WATT_HOUR": (0.001, 0),
                   "WATT_SECOND": (1 / 3_600_000, 0), "JOULE": (1 / 3_600_000, 0)},
}
COLUMN_UNITS["motor_temp_c"] = COLUMN_UNITS["coolant_temp_c"] = COLUMN_UNITS["spindle_temp_c"]
STATE_TYPES = {"AVAILABILITY": "availability", "EXECUTION": "execution",
               "CONTROLLER_MODE": "controller_mode", "EMERGENCY_STOP": "emergency_stop",
               "PROGRAM": "program"}
# Types that live on a path: only the first path's count for the machine.
PATH_TYPES = ("EXECUTION", "PROGRAM", "PART_COUNT", "PATH_FEEDRATE", "CONTROLLER_MODE")
ACTUAL = (None, "ACTUAL")


def local(tag: str) -> str:
    """The element name without its namespace (urn:mtconnect.org:MTConnectDevices:2.0)."""
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class DataItem:
    id: str
    name: str | None
    category: str
    type: str
    sub_type: str | None
    units: str | None
    native_units: str | None
    native_scale: float | None
    representation: str | None
    component: str  # the component's element name: Controller, Path, Rotary, ...
    component_name: str
    component_id: str

    def where(self) -> str:
        sub = f" {self.sub_type}" if self.sub_type else ""
        return f"{self.type}{sub} of {self.component} {self.component_name}"


@dataclass(frozen=True)
class Device:
    name: str
    uuid: str | None
    instance_id: str | None
    items: tuple[DataItem, ...]
    digest: str
    source: str


def parse_probe(text: str | bytes, source: str, device: str | None = None) -> Device:
    """The chosen Device of an MTConnectDevices document (the only one, or by name/uuid)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ProbeError(f"{source}: not an XML document: {exc}") from None
    if local(root.tag) != "MTConnectDevices":
        raise ProbeError(f"{source}: expected an MTConnectDevices document, found "
                         f"{local(root.tag)}")
    header = next((e for e in root if local(e.tag) == "Header"), None)
    devices_element = next((e for e in root if local(e.tag) == "Devices"), None)
    devices = [e for e in (devices_element if devices_element is not None else [])
               if local(e.tag) == "Device"]  # an Agent device describes the agent itself
    if device is not None:
        chosen = [e for e in devices if device in (e.get("name"), e.get("uuid"), e.get("id"))]
    else:
        chosen = devices
    names = ", ".join(str(e.get("name")) for e in devices) or "none"
    if not chosen:
        raise ProbeError(f"{source}: no device {device!r} (devices: {names})" if device
                         else f"{source}: no Device in the document")
    if len(chosen) > 1:
        raise ProbeError(f"{source}: {len(chosen)} devices ({names}): choose one with --device")
    element = chosen[0]
    items: list[DataItem] = []
    _collect(element, "Device", element.get("name") or "", element.get("id") or "", items)
    return Device(element.get("name") or element.get("id") or "device", element.get("uuid"),
                  header.get("instanceId") if header is not None else None, tuple(items),
                  hashlib.sha256(ET.tostring(element)).hexdigest(), source)


def _collect(element: ET.Element, kind: str, name: str, ident: str,
             items: list[DataItem]) -> None:
    for child in element:
        tag = local(child.tag)
        if tag == "DataItems":
            for item in child:
                if local(item.tag) != "DataItem":
                    continue
                scale = item.get("nativeScale")
                items.append(DataItem(
                    id=item.get("id") or "", name=item.get("name"),
                    category=(item.get("category") or "").upper(),
                    type=(item.get("type") or "").upper(),
                    sub_type=(item.get("subType") or "").upper() or None,
                    units=item.get("units"), native_units=item.get("nativeUnits"),
                    native_scale=float(scale) if scale else None,
                    representation=(item.get("representation") or "").upper() or None,
                    component=kind, component_name=name, component_id=ident))
        elif tag == "Components":
            for component in child:
                _collect(component, local(component.tag),
                         component.get("name") or component.get("id") or "",
                         component.get("id") or "", items)


def read_probe_file(path: Path, device: str | None = None) -> Device:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ProbeError(f"{path}: unreadable probe document: {exc.strerror}") from None
    return parse_probe(text, Path(path).name, device)


class ProbeMapping:
    """Roles from the device model; the override (a user's YAML file) wins by name, and the
    value tables (execution states, severities) come from the YAML mapping.

    values_in: "native" for SHDR (adapters send nativeUnits), "units" for an agent's
    streams (the agent has converted to units)."""

    def __init__(self, device: Device, mapping: ItemMapping,
                 override: ItemMapping | None = None, values_in: str = "native") -> None:
        self.device = device
        self.mapping = mapping
        self.override = override
        self.values_in = values_in
        self.name = f"probe {device.source} device {device.name}"
        self.by_key: dict[str, DataItem] = {}
        for item in device.items:
            self.by_key.setdefault(item.id, item)
            if item.name:
                self.by_key.setdefault(item.name, item)
        self.assigned = self._assign()

    @property
    def values(self) -> ItemMapping:
        return self.mapping

    def digest(self) -> str:
        override = self.override.digest() if self.override else ""
        return hashlib.sha256(f"{self.device.digest}|{self.mapping.digest()}|{override}|"
                              f"{self.values_in}".encode()).hexdigest()

    def role_of(self, item: str) -> Role:
        key = item.rsplit(":", 1)[-1]
        if self.override is not None:
            named = self.override.named_role(key)
            if named.kind != "unmapped":
                return Role(named.kind, named.detail, f"{self.override.source} (override)")
        data_item = self.by_key.get(key)
        if data_item is None:
            return Role("unmapped", None, "not in the device model")
        return self.assigned[data_item.id]

    # -- the choice ------------------------------------------------------------------------
    def _assign(self) -> dict[str, Role]:
        items = self.device.items
        paths = [i.component_id for i in items if i.component == "Path"]
        first_path = paths[0] if paths else None
        spindles = [i.component_id for i in items if i.component in SPINDLE_COMPONENTS
                    and i.type in ("ROTARY_VELOCITY", "SPINDLE_SPEED")]
        main_spindle = spindles[0] if spindles else None
        taken: dict[str, str] = {}  # role key -> the item id that has it
        roles: dict[str, Role] = {}
        for item in items:
            roles[item.id] = self._role(item, first_path, main_spindle, taken)
        return roles

    def _role(self, item: DataItem, first_path: str | None, main_spindle: str | None,
              taken: dict[str, str]) -> Role:
        where = f"probe: {item.where()}"
        if item.category == "CONDITION":
            return Role("condition", None, where)
        if item.representation == "TIME_SERIES":
            return Role("fields", 3, f"{where}, time series (not loaded)")
        if item.type == "MESSAGE":
            return Role("fields", 2, f"{where} (not loaded)")
        if item.type == "ALARM":
            return Role("fields", 5, f"{where} (not loaded)")
        if item.type in PATH_TYPES and item.component == "Path" and \
                item.component_id != first_path:
            return Role("unmapped", None, f"{where}: not the first path")
        key, kind, detail = None, None, None
        if item.type in STATE_TYPES and item.sub_type in (None, "MAIN", "ACTIVE"):
            key = kind = "state"
            detail = STATE_TYPES[item.type]
            key = f"state:{detail}"
        elif item.type == "PART_COUNT" and item.sub_type in (None, "ALL", "GOOD"):
            key, kind = "part_count", "part_count"
        else:
            column = self._column(item, main_spindle)
            if column is None:
                return Role("unmapped", None, f"{where}: no Bronze column")
            if isinstance(column, Role):
                return column
            key, kind, detail = column.column, "telemetry", column
        if key in taken:
            return Role("unmapped", None, f"{where}: {taken[key]} has that role already")
        taken[key] = item.name or item.id
        return Role(kind, detail, where)

    def _column(self, item: DataItem, main_spindle: str | None) -> TelemetryRule | Role | None:
        on_spindle = item.component_id == main_spindle
        column = None
        if item.type in ("ROTARY_VELOCITY", "SPINDLE_SPEED") and item.sub_type in ACTUAL:
            column = "spindle_speed_rpm" if on_spindle else None
        elif item.type == "LOAD" and on_spindle:
            column = "spindle_load_pct"
        elif item.type == "TEMPERATURE":
            column = ("spindle_temp_c" if on_spindle else
                      "motor_temp_c" if item.component == "Motor" else
                      "coolant_temp_c" if item.component == "Coolant" else None)
        elif item.type == "PATH_FEEDRATE" and item.sub_type in ACTUAL:
            column = "feed_rate_mm_min"
        elif item.type == "WATTAGE":
            column = "power_kw"
        elif item.type == "ELECTRICAL_ENERGY":
            column = "energy_kwh"
        if column is None:
            return None
        unit = (item.native_units or item.units) if self.values_in == "native" else item.units
        unit = (unit or "").upper()
        factors = COLUMN_UNITS[column]
        if unit not in factors:
            return Role("unmapped", None, f"probe: {item.where()}: unit {unit or 'none'} does "
                                          f"not convert to {column}")
        scale, offset = factors[unit]
        if self.values_in == "native" and item.native_units and item.native_scale:
            scale /= item.native_scale
        return TelemetryRule(column, (item.name or item.id,), scale, offset)
