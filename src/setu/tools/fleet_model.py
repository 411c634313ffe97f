"""The simulated fleet: master data, and the clean event streams of machines and devices.

Every machine and device draws from its own random.Random seeded by (seed, its id), so a
source's events do not depend on the fleet size, the bad-input rates or how the run is cut
into windows: the same seed gives the same rows. Times are integer microseconds since the
Unix epoch (UTC) until they are written. simulate.py adds transport (arrival times, late
events) and bad input on top of these streams.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time as clock_time

from setu.warehouse import contract
from setu.warehouse.paths import PROJECT_DIR

SECOND = 1_000_000  # microseconds
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
TELEMETRY_PERIOD = 10 * SECOND
DEVICE_PERIOD = 30 * SECOND
DEFAULT_TICKS_PER_MM = 20.0  # contract: the default for devices without a calibration

# Bronze columns the simulator writes, in row order (`id` is the database's), from the
# contract's one home: the common columns, then each table's own.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: (*contract.COMMON_COLUMNS, *table.column_names)
    for name, table in contract.bronze_tables().items()
}
TABLES = tuple(TABLE_COLUMNS)
STATE_EVENTS, CYCLES, TELEMETRY, ALARMS, PLATFORM, DOWNTIME = (
    TABLES.index(name) for name in (
        "machine_state_events", "machine_cycles", "machine_telemetry", "alarms",
        "platform_extension", "downtime_events"))
# Row positions shared by every table, and the timestamp columns that need conversion.
TIME, INGESTED_AT, GATEWAY, ENTITY = 0, 1, 2, 3
CYCLE_START = TABLE_COLUMNS["machine_cycles"].index("cycle_start")
DOWN_START = TABLE_COLUMNS["downtime_events"].index("down_start")
MEASURES = slice(4, 12)  # the eight telemetry measures


# -- master data: the demo's seeds (seeds/_seeds.yml) ----------------------------------------

def _seed(name: str) -> list[dict[str, str]]:
    """The rows of seeds/<name>.csv, the demo fleet's reference data (dbt loads the same
    files into schema seeds)."""
    with (PROJECT_DIR / "seeds" / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _flag(text: str) -> bool:
    return {"true": True, "false": False}[text.strip().lower()]


@dataclass(frozen=True)
class Shift:
    shift_id: int
    name: str
    start_local: clock_time
    end_local: clock_time  # end <= start: the shift crosses midnight


@dataclass(frozen=True)
class Site:
    site_id: int
    site_code: str
    timezone: str
    shifts: tuple[Shift, ...]
    ambient_c: float


def _sites() -> tuple[Site, ...]:
    shifts = _seed("demo_shifts")
    return tuple(
        Site(int(site["site_id"]), site["site_code"], site["timezone"], tuple(
            Shift(int(shift["shift_id"]), shift["shift_name"],
                  clock_time.fromisoformat(shift["start_local"]),
                  clock_time.fromisoformat(shift["end_local"]))
            for shift in shifts if shift["site_id"] == site["site_id"]),
            ambient_c=float(site["ambient_c"]))
        for site in _seed("demo_sites"))


SITES = _sites()


@dataclass(frozen=True)
class AlarmCode:
    code: str
    description: str
    severity: str  # emergency, error, warning, info or notice
    stops_machine: bool


ALARM_CODES = tuple(
    AlarmCode(row["alarm_code"], row["description"], row["severity"],
              _flag(row["stops_machine"]))
    for row in _seed("demo_alarm_codes"))
STOPPING_ALARMS = tuple(code for code in ALARM_CODES if code.stops_machine)
MINOR_ALARMS = tuple(code for code in ALARM_CODES if not code.stops_machine)
MAINTENANCE_ALARM = next(code for code in ALARM_CODES if code.code == "PM-001")
EMERGENCY_STOP = next(code for code in ALARM_CODES if code.code == "EMG-001")


@dataclass(frozen=True)
class DowntimeReason:
    code: str
    description: str
    planned: bool  # planned stops leave OEE's planned production time


DOWNTIME_REASONS = tuple(
    DowntimeReason(row["reason_code"], row["description"], _flag(row["planned"]))
    for row in _seed("demo_downtime_reasons"))
# Sent by some operators' terminals, but missing from master.downtime_reasons: accepted,
# counted as unplanned (contract).
UNKNOWN_DOWNTIME_REASON = "MISC-99"


def severity_spellings(severity: str) -> tuple[str, ...]:
    """Controllers send severities in any case."""
    return (severity.upper(), severity.capitalize(), severity)


def machine_site(machine_id: int) -> Site:
    return SITES[(machine_id - 1) % len(SITES)]


def machine_code(machine_id: int) -> str:
    return f"{machine_site(machine_id).site_code}-CNC-{machine_id:03d}"


def device_count(machines: int) -> int:
    """Enough devices that every platform-extension kind appears, one per ~4 machines."""
    return max(len(DEVICE_KINDS), math.ceil(machines / 4))


# -- machines --------------------------------------------------------------------------------

PART_NAMES = ("FLANGE", "SHAFT", "HOUSING", "BRACKET", "VALVE-BODY", "GEAR", "PLATE", "HUB",
              "COVER", "SPACER", "PUMP-LID", "NOZZLE")


@dataclass(frozen=True)
class Program:
    name: str
    std_cycle_seconds: float
    std_load_unload_seconds: float
    down_threshold_seconds: float
    spindle_rpm: float
    feed_mm_min: float
    load_pct: float
    cutting_kw: float


def _programs(rng: random.Random, count: int) -> tuple[Program, ...]:
    programs = []
    for _ in range(count):
        std_load_unload = float(rng.choice((20, 30, 45, 60, 90, 120)))
        programs.append(Program(
            name=f"O{rng.randrange(1000, 10000)}-{rng.choice(PART_NAMES)}",
            std_cycle_seconds=float(round(rng.choice((45, 60, 90, 120, 180, 240, 300, 420,
                                                      600, 900)) * rng.uniform(0.9, 1.1))),
            std_load_unload_seconds=std_load_unload,
            down_threshold_seconds=std_load_unload + rng.choice((240, 300, 420, 600, 900)),
            spindle_rpm=float(rng.randrange(1500, 14000, 50)),
            feed_mm_min=float(rng.randrange(200, 4000, 10)),
            load_pct=rng.uniform(25.0, 80.0),
            cutting_kw=rng.uniform(4.0, 22.0),
        ))
    return tuple(programs)


def _seconds(value: float) -> int:
    """Seconds as microseconds at the controllers' millisecond resolution."""
    return int(value * 1000) * 1000


# An event: (time, sequence number within its source, table index, row).
Event = tuple[int, int, int, list]


class Source:
    """A machine or device: a clean, time-ordered event stream, produced window by window."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.cursor = start
        self.pending: list[Event] = []
        self._sequence = 0
        # Lazy: the script runs only as far as advance() asks.
        self._steps = self._script()

    def _emit(self, table: int, row: list) -> None:
        # Events are cut at the end of the run: a cycle still running then has no row yet.
        if row[TIME] < self.end:
            self._sequence += 1
            self.pending.append((row[TIME], self._sequence, table, row))

    def _script(self) -> Iterator[int]:
        raise NotImplementedError

    def advance(self, until: int) -> list[Event]:
        """Every event with time < until not yet returned, in (time, sequence) order."""
        while self.cursor < until:
            try:
                self.cursor = next(self._steps)
            except StopIteration:
                self.cursor = self.end
        # Every event emitted later has time >= cursor >= until, so these are final.
        ready = [event for event in self.pending if event[0] < until]
        if ready:
            self.pending = [event for event in self.pending if event[0] >= until]
            ready.sort()
        return ready


class MachineModel(Source):
    """One CNC machine: OFF, IDLE, SETUP, RUNNING, ALARM, MAINTENANCE; cycles and telemetry."""

    def __init__(self, machine_id: int, seed: int, start: int, end: int,
                 stoppages: bool = False) -> None:
        self.machine_id = machine_id
        self.stoppages = stoppages
        self.rng = random.Random(f"setu-sim/{seed}/machine/{machine_id}")
        rng = self.rng
        self.site = machine_site(machine_id)
        self.gateway_id = f"gw-{self.site.site_code.lower()}-{(machine_id - 1) // 8 + 1:02d}"
        self.programs = _programs(rng, rng.randint(3, 6))
        self.program: Program | None = None
        self.state: str | None = None
        self.part_count = rng.randrange(0, 50_000)
        self.energy_kwh = round(rng.uniform(1_000.0, 80_000.0), 3)
        ambient = self.site.ambient_c + rng.uniform(-1.5, 1.5)
        self.ambient = ambient
        self.spindle_temp = ambient + 4.0
        self.motor_temp = ambient + 6.0
        self.coolant_temp = ambient + 1.0
        self.next_sample = start + rng.randrange(0, TELEMETRY_PERIOD, 1000)
        # Its own stream: stoppage classification does not move the other streams' draws.
        self.downtime_rng = random.Random(f"setu-sim/{seed}/downtime/{machine_id}")
        super().__init__(start, end)

    # -- emitters ----------------------------------------------------------------------------

    def _set_state(self, at: int, state: str) -> None:
        if state == self.state:
            return  # state events only on change
        self.state = state
        r = self.rng.random()
        text = state.lower() if r < 0.08 else state.capitalize() if r < 0.14 else state
        program = None if state == "OFF" or self.program is None else self.program.name
        self._emit(STATE_EVENTS, [at, None, self.gateway_id, self.machine_id, text, program])

    def _alarm(self, raised: int, cleared: int, code: AlarmCode) -> None:
        severity = self.rng.choice(severity_spellings(code.severity))
        for at, event in ((raised, "RAISED"), (cleared, "CLEARED")):
            self._emit(ALARMS, [at, None, self.gateway_id, self.machine_id, code.code, severity,
                                code.description, event])

    def _stoppage(self, start: int, end: int, *reasons: str) -> None:
        """A classified stoppage, sent when it ends; now and then with a code that master
        does not know."""
        if not self.stoppages:
            return
        rng = self.downtime_rng
        reason = UNKNOWN_DOWNTIME_REASON if rng.random() < 0.05 else rng.choice(reasons)
        program = None if self.program is None else self.program.name
        self._emit(DOWNTIME, [end, None, self.gateway_id, self.machine_id, start, reason,
                              program])

    def _samples(self, until: int, mode: str) -> None:
        """Telemetry every 10 s up to `until`, shaped by what the machine is doing."""
        rng, r = self.rng, self.rng.random
        program = self.program
        ambient = self.ambient
        end = min(until, self.end)
        while self.next_sample < end:
            at = self.next_sample + int(r() * 200) * 1000  # gateway jitter
            self.next_sample += TELEMETRY_PERIOD
            rpm = feed = load = 0.0
            if mode == "cutting" and program is not None:
                rpm = program.spindle_rpm * (0.98 + 0.04 * r())
                feed = program.feed_mm_min * (0.95 + 0.1 * r())
                load = program.load_pct * (0.88 + 0.24 * r())
                if r() < 0.01:
                    load *= 1.6  # a hard spot in the material
                power = 2.0 + program.cutting_kw * load / program.load_pct + (r() - 0.5)
                targets = (35.0 + 0.35 * load, 40.0 + 0.4 * load, 24.0 + 0.08 * load)
            elif mode == "off":
                power = 0.0
                targets = (ambient, ambient, ambient - 0.5)
            elif mode == "maintenance":
                power = 0.2 + 0.2 * r()
                targets = (ambient, ambient, ambient - 0.5)
            else:  # standby: idle, setup, alarm, load/unload
                power = 1.2 + 0.6 * r()
                if mode == "setup" and r() < 0.15:  # jogging the spindle to touch off tools
                    rpm = 500.0 + 1000.0 * r()
                    load = 3.0 + 7.0 * r()
                    power += 1.5
                targets = (ambient + 9.0, ambient + 13.0, ambient + 2.0)
            # First-order lags: spindle, motor and coolant warm and cool at their own pace.
            self.spindle_temp += (targets[0] - self.spindle_temp) * 0.0165 + (r() - 0.5) * 0.3
            self.motor_temp += (targets[1] - self.motor_temp) * 0.011 + (r() - 0.5) * 0.3
            self.coolant_temp += (targets[2] - self.coolant_temp) * 0.0055 + (r() - 0.5) * 0.1
            power = max(power, 0.0)
            if r() < 1 / 40_000:
                self.energy_kwh = 0.0  # meter replaced or rolled over
            self.energy_kwh += power * 10 / 3600
            row = [at, None, self.gateway_id, self.machine_id, round(rpm, 1), round(feed, 1),
                   round(max(load, 0.0), 1), round(self.spindle_temp, 2),
                   round(self.motor_temp, 2), round(self.coolant_temp, 2), round(power, 3),
                   round(self.energy_kwh, 3)]
            if r() < 0.001:
                row[rng.randrange(4, 12)] = None  # one sensor missed a sample
            self._emit(TELEMETRY, row)

    # -- behaviour ------------------------------------------------------------------------------

    def _script(self) -> Iterator[int]:
        rng, r = self.rng, self.rng.random
        at = self.start
        if r() < 0.2:
            at = self._off(at, rng.uniform(0.5, 6.0) * HOUR)
        self._set_state(at, "IDLE")
        yield at
        while at < self.end:
            if self.program is None or r() < 0.7:
                at = self._setup(at)
                yield at
            at = yield from self._production_run(at)
            choice = r()
            if choice < 0.06:
                at = self._maintenance(at)
            elif choice < 0.16:
                at = self._off(at, rng.uniform(1.0, 8.0) * HOUR)
            self._set_state(at, "IDLE")
            idle_until = at + _seconds(rng.uniform(120, 1200))
            self._samples(idle_until, "standby")
            if 0.06 <= choice < 0.16:
                # Switched off for want of orders, then waiting for one: the off time is
                # outside OEE's planned time already, so the wait is the stoppage booked.
                self._stoppage(at, idle_until, "NO-ORDER")
            at = idle_until
            yield at

    def _off(self, at: int, duration: float) -> int:
        self._set_state(at, "OFF")
        until = at + int(duration)
        self._samples(until, "off")
        return until

    def _setup(self, at: int) -> int:
        choices = [p for p in self.programs if p is not self.program] or list(self.programs)
        self.program = self.rng.choice(choices)
        self._set_state(at, "SETUP")
        until = at + _seconds(self.rng.uniform(600, 2700))
        if self.rng.random() < 0.05:  # an emergency stop while touching off tools
            raised = at + int((until - at) * self.rng.uniform(0.2, 0.8))
            self._samples(raised, "setup")
            self._set_state(raised, "ALARM")
            cleared = raised + _seconds(self.rng.uniform(30, 300))
            self._alarm(raised, cleared, EMERGENCY_STOP)
            self._samples(cleared, "standby")
            self._set_state(cleared, "SETUP")
            until += cleared - raised
        self._samples(until, "setup")
        return until

    def _maintenance(self, at: int) -> int:
        self._set_state(at, "MAINTENANCE")
        until = at + _seconds(self.rng.uniform(1800, 7200))
        self._alarm(at, until, MAINTENANCE_ALARM)
        self._samples(until, "maintenance")
        self._stoppage(at, until, "PM")
        return until

    def _production_run(self, at: int) -> Iterator[int]:
        """Cycles of the current program; returns the time the run ends."""
        rng, r = self.rng, self.rng.random
        program = self.program
        assert program is not None
        cycles = max(3, int(rng.uniform(1800, 4 * 3600)
                            / (program.std_cycle_seconds + program.std_load_unload_seconds)))
        for number in range(cycles):
            if at >= self.end:
                return at
            self._set_state(at, "RUNNING")
            factor = rng.uniform(0.96, 1.10) if r() > 0.03 else rng.uniform(1.1, 1.4)
            cycle_end = at + _seconds(program.std_cycle_seconds * factor)
            if r() < 0.004:
                at = self._stopping_alarm(at, cycle_end)
                yield at
                continue
            if r() < 0.03:
                raised = at + int((cycle_end - at) * r())
                self._alarm(raised, raised + _seconds(rng.uniform(20, 900)),
                            rng.choice(MINOR_ALARMS))
            self._samples(cycle_end, "cutting")
            if r() < 0.003:
                self.part_count = 0  # the operator reset the counter
            self.part_count += 1
            scrap_rate = 0.12 if number == 0 else 0.025  # first part after setup is riskier
            self._emit(CYCLES, [
                cycle_end, None, self.gateway_id, self.machine_id, at, program.name,
                self.part_count, "SCRAP" if r() < scrap_rate else "GOOD",
                program.std_cycle_seconds, program.std_load_unload_seconds,
                program.down_threshold_seconds,
            ])
            if number == cycles - 1:
                at = cycle_end
                break
            at = cycle_end + self._gap(program, cycle_end)
            self._samples(at, "standby")
            yield at
        return at

    def _gap(self, program: Program, cycle_end: int) -> int:
        """Load/unload time: mostly within the standard, some over it, a few past the
        down threshold (the operator is away: the machine reports IDLE)."""
        rng, r = self.rng, self.rng.random
        std = program.std_load_unload_seconds
        threshold = program.down_threshold_seconds
        choice = r()
        if choice < 0.78:
            return _seconds(std * rng.uniform(0.4, 1.0))
        if choice < 0.94:
            return _seconds(std + (threshold - std) * rng.uniform(0.02, 1.0))
        self._set_state(cycle_end, "IDLE")
        gap = _seconds(threshold * rng.uniform(1.05, 3.0))
        self._stoppage(cycle_end, cycle_end + gap, "BREAK", "WAIT-MAT")
        return gap

    def _stopping_alarm(self, at: int, cycle_end: int) -> int:
        """An alarm that stops the machine mid-cycle: the cycle is aborted (no cycle row)."""
        rng = self.rng
        raised = at + int((cycle_end - at) * rng.uniform(0.1, 0.9))
        self._samples(raised, "cutting")
        cleared = raised + _seconds(rng.uniform(120, 1800))
        self._set_state(raised, "ALARM")
        self._alarm(raised, cleared, rng.choice(STOPPING_ALARMS))
        self._samples(cleared, "standby")
        self._set_state(cleared, "IDLE")
        restart = cleared + _seconds(rng.uniform(60, 300))
        self._samples(restart, "standby")
        self._stoppage(raised, restart, "BREAKDOWN", "TOOL")
        return restart


# -- platform-extension devices ------------------------------------------------------------------

LEGACY_FIRMWARE = "1.4.2"
NEW_FIRMWARE = "2.1.0"
# How each device identifies itself and reports: legacy firmware sends ticks with a numeric
# device_id; new firmware sends mm, with device_id and serial or, on devices that never had
# a numeric id, the serial alone. A rollout device switches firmware during the run.
DEVICE_KINDS = ("rollout", "legacy", "new", "serial_only", "legacy_uncalibrated")
FIRST_DEVICE_ID = 5001


@dataclass(frozen=True)
class Device:
    index: int  # 0-based
    kind: str
    site: Site
    ticks_per_mm: float
    calibrated: bool

    @property
    def device_id(self) -> int:
        return FIRST_DEVICE_ID + self.index

    @property
    def serial(self) -> str:
        return f"PX-{self.site.site_code}-{self.device_id:05d}"


def make_device(index: int, seed: int) -> Device:
    rng = random.Random(f"setu-sim/{seed}/device-setup/{index}")
    kind = DEVICE_KINDS[index % len(DEVICE_KINDS)]
    calibrated = kind in ("rollout", "legacy", "new")
    ticks = rng.choice((25.6, 40.0, 50.0, 80.0, 100.0)) if calibrated else DEFAULT_TICKS_PER_MM
    return Device(index, kind, SITES[index % len(SITES)], ticks, calibrated)


class DeviceModel(Source):
    """A platform extension: a signed position (negative LEFT, positive RIGHT, 0 CENTER)."""

    def __init__(self, device: Device, seed: int, start: int, end: int) -> None:
        self.device = device
        self.rng = random.Random(f"setu-sim/{seed}/device/{device.index}")
        self.gateway_id = f"gw-{device.site.site_code.lower()}-px"
        self.side = self.rng.choice((-1, 1))
        self.magnitude_mm = self.rng.uniform(20.0, 250.0)
        self.upgrade_at = (start + int((end - start) * self.rng.uniform(0.15, 0.85))
                           if device.kind == "rollout" else None)
        super().__init__(start, end)

    def _script(self) -> Iterator[int]:
        rng, r = self.rng, self.rng.random
        device = self.device
        at = self.start + rng.randrange(0, DEVICE_PERIOD, 1000)
        while at < self.end:
            if r() < 0.04:  # the platform moves to the other side, or to the centre
                self.side = rng.choice([side for side in (-1, 0, 1) if side != self.side])
            if self.side:
                self.magnitude_mm = min(300.0, max(5.0, self.magnitude_mm + (r() - 0.5) * 6))
            position_mm = self.side * self.magnitude_mm
            legacy = device.kind in ("legacy", "legacy_uncalibrated") or (
                device.kind == "rollout" and at < self.upgrade_at)
            if legacy:
                row = [at, None, self.gateway_id, device.device_id, None,
                       float(round(position_mm * device.ticks_per_mm)), "ticks", LEGACY_FIRMWARE]
            else:
                device_id = None if device.kind == "serial_only" else device.device_id
                row = [at, None, self.gateway_id, device_id, device.serial,
                       round(position_mm, 2), "mm", NEW_FIRMWARE]
            self._emit(PLATFORM, row)
            at += DEVICE_PERIOD + int(r() * 500) * 1000
            yield at
