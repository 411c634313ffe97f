"""`setu simulate`: a deterministic CNC fleet, written to Bronze through the ingest API.

The clean event streams come from _sim_model.py. This module adds what the network and the
controllers do to them on the way in: an arrival time (`ingested_at`, set explicitly, never
now()), late events (up to an hour), and every bad-input class of the contract at its own
rate. Rows are written in arrival order, so ids follow arrival as they would in production.
The run is recorded in the ingest ledger by the sha256 of its parameters, so repeating it
is a no-op. See docs/simulator.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import click

from setu.tools.fleet_model import (
    ALARM_CODES,
    ALARMS,
    CYCLE_START,
    CYCLES,
    DOWN_START,
    DOWNTIME,
    DOWNTIME_REASONS,
    ENTITY,
    INGESTED_AT,
    MEASURES,
    PLATFORM,
    SECOND,
    SITES,
    STATE_EVENTS,
    TABLE_COLUMNS,
    TABLES,
    TELEMETRY,
    TIME,
    DeviceModel,
    MachineModel,
    Source,
    device_count,
    machine_code,
    machine_site,
    make_device,
)
from setu.warehouse import contract

SIMULATOR_VERSION = 1  # part of the ledger key: bump when the same seed gives other rows
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TIME_MARGIN = 5 * 60 * SECOND  # contract: future_time is > 5 minutes after arrival
LATE_DELAY_SECONDS = (60.0, 3500.0)  # within the 1-hour late-arrival window
RESEND_DELAY_SECONDS = (1.0, 30.0)
UNKNOWN_MACHINE_BASE = 900_000

# -- bad input -------------------------------------------------------------------------------

MACHINE_TABLES = frozenset({STATE_EVENTS, CYCLES, TELEMETRY, ALARMS, DOWNTIME})
ALL_TABLES = frozenset(range(len(TABLES)))
# The contract's reasons and the tables each can occur in (unknown_machine does not apply
# to platform extension rows: devices are created on first sight).
BAD_INPUT_CLASSES: dict[str, frozenset[int]] = {
    "unknown_machine": MACHINE_TABLES,
    "future_time": ALL_TABLES,
    "missing_value": ALL_TABLES,
    "out_of_range": frozenset({TELEMETRY}),
    "invalid_code": frozenset({STATE_EVENTS, CYCLES, ALARMS, PLATFORM}),
    "bad_interval": frozenset({CYCLES, DOWNTIME}),
    "duplicate": ALL_TABLES,
}
DEFAULT_RATE = 0.005


@dataclass(frozen=True)
class BadInputRates:
    """Per class, the share of generated events (of the tables it applies to) that get it.

    The classes are exclusive: an event gets at most one. A duplicate is an extra row, a
    re-send of a valid event. `late` is independent: the share of events that arrive up to
    an hour after later events of the same source.
    """

    unknown_machine: float = DEFAULT_RATE
    future_time: float = DEFAULT_RATE
    missing_value: float = DEFAULT_RATE
    out_of_range: float = DEFAULT_RATE
    invalid_code: float = DEFAULT_RATE
    bad_interval: float = DEFAULT_RATE
    duplicate: float = DEFAULT_RATE
    late: float = DEFAULT_RATE

    @classmethod
    def clean(cls) -> BadInputRates:
        return cls(**{item.name: 0.0 for item in fields(cls)})

    def __post_init__(self) -> None:
        for item in fields(self):
            rate = getattr(self, item.name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate {item.name} must be between 0 and 1, got {rate}")
        for table in ALL_TABLES:
            total = sum(rate for _, rate in self.classes_for(table))
            if total > 1.0:
                raise ValueError(f"bad-input rates for {TABLES[table]} add up to {total:.3f} "
                                 f"(more than 1)")

    def classes_for(self, table: int) -> list[tuple[str, float]]:
        return [(name, getattr(self, name)) for name, tables in BAD_INPUT_CLASSES.items()
                if table in tables and getattr(self, name) > 0]


INVALID_CODES = {
    STATE_EVENTS: (4, ("RUNING", "WARMUP", "STOPPED", "E-STOP", "PAUSED", "Unknown")),
    CYCLES: (7, ("OK", "NOK", "REWORK", "FAIL")),
    ALARMS: (7, ("ACK", "RESET", "RAISE", "ACTIVE")),
    PLATFORM: (6, ("inch", "cm", "deg", "um")),
}
# Required columns per table (contract, validation details); telemetry: all measures.
REQUIRED_COLUMNS = {
    STATE_EVENTS: ((4,),),
    CYCLES: ((4,), (6,), (7,)),
    TELEMETRY: (tuple(range(MEASURES.start, MEASURES.stop)),),
    ALARMS: ((4,), (5,), (7,)),
    PLATFORM: ((5,), (6,), (3, 4)),
    DOWNTIME: ((4,), (5,)),
}
# The column that must not be after `time` (else bad_interval).
INTERVAL_START = {CYCLES: CYCLE_START, DOWNTIME: DOWN_START}
# Sensor fault readings outside the contract's ranges: (column position, values).
OUT_OF_RANGE_VALUES = (
    (7, (3276.7, -99.9)),  # spindle_temp_c
    (8, (999.9,)),  # motor_temp_c
    (9, (-273.2,)),  # coolant_temp_c
    (4, (99_999.0, -500.0)),  # spindle_speed_rpm
    (5, (-12.5,)),  # feed_rate_mm_min
    (10, (-1.5,)),  # power_kw
    (6, (1200.0, -5.0)),  # spindle_load_pct
)


class Transport:
    """What happens to one source's events between the controller and Bronze."""

    def __init__(self, seed: int, source_key: str, rates: BadInputRates) -> None:
        self.rng = self.event_rng = random.Random(f"setu-sim/{seed}/transport/{source_key}")
        # Stoppages draw from their own stream, so the other tables' bad input stays put.
        self.downtime_rng = random.Random(f"setu-sim/{seed}/transport/{source_key}/downtime")
        self.rates = rates
        self.classes = {table: rates.classes_for(table) for table in ALL_TABLES}
        self.injected: dict[tuple[str, str], int] = {}

    def deliver(self, table: int, row: list) -> list[tuple[int, int, list]]:
        """The rows that reach Bronze for one event: (arrival, resend flag, row)."""
        self.rng = self.downtime_rng if table == DOWNTIME else self.event_rng
        rng, r = self.rng, self.rng.random
        chosen = None
        draw = r()
        for name, rate in self.classes[table]:
            if draw < rate:
                chosen = name
                break
            draw -= rate
        if chosen != "future_time" and r() < self.rates.late:
            arrival = row[TIME] + int(rng.uniform(*LATE_DELAY_SECONDS) * SECOND)
            self._count("late", table)
        else:
            arrival = row[TIME] + int(rng.uniform(0.05, 2.5) * SECOND)
        row[INGESTED_AT] = arrival
        if chosen is None:
            return [(arrival, 0, row)]
        self._count(chosen, table)
        if chosen == "duplicate":
            resent = arrival + int(rng.uniform(*RESEND_DELAY_SECONDS) * SECOND)
            return [(arrival, 0, row), (resent, 1, [row[TIME], resent, *row[2:]])]
        getattr(self, f"_{chosen}")(table, row)
        return [(arrival, 0, row)]

    def _count(self, name: str, table: int) -> None:
        key = (TABLES[table], name)
        self.injected[key] = self.injected.get(key, 0) + 1

    def _unknown_machine(self, table: int, row: list) -> None:
        rng = self.rng
        row[ENTITY] = None if rng.random() < 0.3 else UNKNOWN_MACHINE_BASE + rng.randrange(1000)

    def _future_time(self, table: int, row: list) -> None:
        # A controller clock running ahead: every timestamp it sets moves together.
        skew = row[INGESTED_AT] + FUTURE_TIME_MARGIN + int(
            self.rng.uniform(30, 6 * 3600) * SECOND) - row[TIME]
        row[TIME] += skew
        if table in INTERVAL_START:
            row[INTERVAL_START[table]] += skew

    def _missing_value(self, table: int, row: list) -> None:
        for position in self.rng.choice(REQUIRED_COLUMNS[table]):
            row[position] = None

    def _out_of_range(self, table: int, row: list) -> None:
        position, values = self.rng.choice(OUT_OF_RANGE_VALUES)
        row[position] = self.rng.choice(values)

    def _invalid_code(self, table: int, row: list) -> None:
        position, codes = INVALID_CODES[table]
        row[position] = self.rng.choice(codes)

    def _bad_interval(self, table: int, row: list) -> None:
        row[INTERVAL_START[table]] = row[TIME] + int(self.rng.uniform(1, 600) * SECOND)


# -- the simulation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulationConfig:
    machines: int
    start: datetime
    duration: timedelta
    seed: int = 1
    rates: BadInputRates = field(default_factory=BadInputRates)
    devices: int | None = None  # default: one per ~4 machines, at least one of each kind
    # Classified stoppages (bronze.downtime_events, contract v2). `setu simulate` and
    # `setu demo` send them; off by default, so a library caller's seed gives the rows it
    # gave before v2. Off, every other row is exactly as before: stoppages draw from random
    # streams of their own.
    stoppages: bool = False

    def __post_init__(self) -> None:
        if self.machines < 1:
            raise ValueError("--machines must be at least 1")
        if self.duration <= timedelta(0):
            raise ValueError("--duration must be positive")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    @property
    def device_total(self) -> int:
        return self.devices if self.devices is not None else device_count(self.machines)

    @property
    def start_us(self) -> int:
        return to_microseconds(self.start)

    @property
    def end_us(self) -> int:
        return self.start_us + int(self.duration / timedelta(microseconds=1))

    def ledger_key(self) -> str:
        """sha256 of everything that determines the rows: a repeat run is recognised."""
        identity = {
            "simulator": SIMULATOR_VERSION, "machines": self.machines,
            "devices": self.device_total, "start": self.start.astimezone(UTC).isoformat(),
            "duration_seconds": self.duration.total_seconds(), "seed": self.seed,
            "rates": asdict(self.rates),
        }
        if self.stoppages:  # runs without them keep their ledger key
            identity["stoppages"] = True
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        return (f"simulate --machines {self.machines} --start {self.start.isoformat()} "
                f"--duration {format_duration(self.duration)} --seed {self.seed}")


def to_microseconds(moment: datetime) -> int:
    return (moment - UNIX_EPOCH) // timedelta(microseconds=1)


def to_datetime(microseconds: int) -> datetime:
    return UNIX_EPOCH + timedelta(microseconds=microseconds)


# A row waiting to be written: (arrival, table, source rank, sequence, resend flag, row).
Pending = tuple[int, int, int, int, int, list]


class Fleet:
    """All sources with their transports; hands out rows in arrival order, window by window."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        start, end = config.start_us, config.end_us
        self.sources: list[tuple[Source, Transport]] = []
        for machine_id in range(1, config.machines + 1):
            self.sources.append((MachineModel(machine_id, config.seed, start, end,
                                              config.stoppages),
                                 Transport(config.seed, f"machine/{machine_id}", config.rates)))
        self.devices = [make_device(index, config.seed) for index in range(config.device_total)]
        for device in self.devices:
            self.sources.append((DeviceModel(device, config.seed, start, end),
                                 Transport(config.seed, f"device/{device.index}", config.rates)))
        self.pending: list[Pending] = []
        self.frontier = start

    def rows_until(self, until: int) -> dict[str, list[tuple]]:
        """Rows that arrived before `until` (every row once `until` reaches the end), per
        table, in arrival order, with timestamps as datetimes."""
        end = self.config.end_us
        horizon = min(until, end)
        if horizon > self.frontier:
            for rank, (source, transport) in enumerate(self.sources):
                for _, sequence, table, row in source.advance(horizon):
                    for arrival, resend, delivered in transport.deliver(table, row):
                        self.pending.append((arrival, table, rank, sequence, resend, delivered))
            self.frontier = horizon
        # Every event generated later has time >= frontier, so it also arrives later.
        cut = self.pending if until >= end else [p for p in self.pending if p[0] < horizon]
        self.pending = [] if until >= end else [p for p in self.pending if p[0] >= horizon]
        # (arrival, table, source, sequence, resend) is unique: the row itself never compares.
        cut.sort()
        batches: dict[str, list[tuple]] = {}
        for _, table, _, _, _, row in cut:
            row[TIME] = to_datetime(row[TIME])
            row[INGESTED_AT] = to_datetime(row[INGESTED_AT])
            start_column = INTERVAL_START.get(table)
            if start_column is not None and row[start_column] is not None:
                row[start_column] = to_datetime(row[start_column])
            batches.setdefault(TABLES[table], []).append(tuple(row))
        return batches

    def injected(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for _, transport in self.sources:
            for key, count in transport.injected.items():
                totals[key] = totals.get(key, 0) + count
        return totals


def generate(config: SimulationConfig, window: timedelta = timedelta(hours=1)
             ) -> dict[str, list[tuple]]:
    """Every row of a simulation in memory, per table in insertion order (tests, CSV)."""
    fleet = Fleet(config)
    rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
    step = int(window / timedelta(microseconds=1))
    until = config.start_us
    while until < config.end_us:
        until += step
        for table, batch in fleet.rows_until(until).items():
            rows[table].extend(batch)
    return rows


# -- writers -----------------------------------------------------------------------------------

class RowWriter(Protocol):
    def write(self, rows: dict[str, list[tuple]]) -> None: ...


@dataclass
class DatabaseWriter:
    conn: Any  # psycopg.Connection
    written: dict[str, int] = field(default_factory=dict)

    def write(self, rows: dict[str, list[tuple]]) -> None:
        from setu.ingest.loader import copy_rows

        for table in TABLES:  # a fixed order: the same ids for the same seed
            if rows.get(table):
                count = copy_rows(self.conn, table, TABLE_COLUMNS[table], rows[table])
                self.written[table] = self.written.get(table, 0) + count


@dataclass
class CsvWriter:
    """One CSV per table, named so that `setu ingest` finds the table."""

    folder: Path
    suffix: str
    written: dict[str, int] = field(default_factory=dict)

    def path(self, table: str) -> Path:
        return self.folder / f"{table}-{self.suffix}.csv"

    def write(self, rows: dict[str, list[tuple]]) -> None:
        import csv

        self.folder.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            if not rows.get(table):
                continue
            path = self.path(table)
            new = table not in self.written
            with path.open("w" if new else "a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(TABLE_COLUMNS[table])
                for row in rows[table]:
                    writer.writerow([value.isoformat() if isinstance(value, datetime) else value
                                     for value in row])
            self.written[table] = self.written.get(table, 0) + len(rows[table])


def upsert_master_data(conn: Any, config: SimulationConfig, devices: list) -> None:
    """Sites, shifts, machines 1..N, alarm codes, downtime reasons (the demo's seeds) and
    device calibrations; idempotent. A row an operator already keeps under the same key is
    left as it is: master data is theirs, the demo only fills what is missing."""
    from psycopg import sql

    rows = {
        "sites": [(site.site_id, site.site_code, site.timezone) for site in SITES],
        "shifts": [(site.site_id, shift.shift_id, shift.name, shift.start_local,
                    shift.end_local) for site in SITES for shift in site.shifts],
        "machines": [(machine_id, machine_code(machine_id), machine_site(machine_id).site_id)
                     for machine_id in range(1, config.machines + 1)],
        "alarm_codes": [(code.code, code.description) for code in ALARM_CODES],
        "downtime_reasons": [(reason.code, reason.description, reason.planned)
                             for reason in DOWNTIME_REASONS],
        "device_calibrations": [(device.device_id, device.ticks_per_mm) for device in devices
                                if device.calibrated],
    }
    columns = contract.master_columns()
    with conn.cursor() as cursor:
        for table, values in rows.items():
            cursor.executemany(sql.SQL(
                "insert into {table} ({columns}) values ({values}) on conflict do nothing"
            ).format(table=sql.Identifier("master", table),
                     columns=sql.SQL(", ").join(map(sql.Identifier, columns[table])),
                     values=sql.SQL(", ").join(sql.Placeholder() * len(columns[table]))),
                values)


# -- running ------------------------------------------------------------------------------------

@dataclass
class RunResult:
    rows: dict[str, int]
    injected: dict[tuple[str, str], int]
    skipped: bool = False
    loaded_at: Any = None
    seconds: float = 0.0
    interrupted: bool = False


def run_batch(config: SimulationConfig, writer: RowWriter,
              on_progress: Callable[[int, int], None] | None = None,
              window: timedelta = timedelta(hours=1)) -> Fleet:
    """Generate and write the whole run as fast as possible, window by window."""
    fleet = Fleet(config)
    step = int(window / timedelta(microseconds=1))
    start, end = config.start_us, config.end_us
    until = start
    while until < end:
        until = min(until + step, end)
        writer.write(fleet.rows_until(until))
        if on_progress:
            on_progress(until - start, end - start)
    return fleet


def run_stream(config: SimulationConfig, writer: RowWriter, commit: Callable[[], None],
               rows_per_second: float | None,
               on_progress: Callable[[int, int], None] | None = None,
               tick_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> Fleet:
    """Write rows as they arrive, paced on the wall clock, committing every tick.

    Without rows_per_second the simulated clock runs at real time; with it, it runs as fast
    as needed to write that many rows per second. Stops at the end of --duration; rows
    still in flight then (late events) are written at once.
    """
    fleet = Fleet(config)
    start, end = config.start_us, config.end_us
    step = 10 * SECOND  # simulated time per step when pacing by rows
    began = clock()
    simulated = start
    written = 0
    while simulated < end:
        elapsed = clock() - began
        batch: dict[str, list[tuple]] = {}
        if rows_per_second is None:
            target = min(end, start + int(elapsed * SECOND))
            if target > simulated:
                batch = fleet.rows_until(target)
                simulated = target
        else:
            while written < rows_per_second * elapsed and simulated < end:
                simulated = min(simulated + step, end)
                for table, rows in fleet.rows_until(simulated).items():
                    batch.setdefault(table, []).extend(rows)
                    written += len(rows)
        if simulated >= end:
            for table, rows in fleet.rows_until(end).items():
                batch.setdefault(table, []).extend(rows)
        if batch:
            writer.write(batch)
        commit()
        if on_progress:
            on_progress(simulated - start, end - start)
        if simulated < end:
            sleep(max(0.0, tick_seconds - (clock() - began - elapsed)))
    return fleet


def simulate_into_database(conn: Any, config: SimulationConfig, *, stream: bool = False,
                           rows_per_second: float | None = None,
                           on_progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Master data, then Bronze rows, recorded in the ledger; a repeated run is a no-op.

    Batch mode writes everything in one transaction; stream mode commits every tick.
    """
    from setu.ingest.loader import claim_ledger, record_ledger_rows

    started = time.perf_counter()
    key = config.ledger_key()
    writer = DatabaseWriter(conn)
    with conn.transaction():
        earlier = claim_ledger(conn, key, "simulation", config.describe(), None, None)
        if earlier is not None:
            return RunResult({}, {}, skipped=True, loaded_at=earlier)
        upsert_master_data(conn, config, [make_device(index, config.seed)
                                          for index in range(config.device_total)])
        if not stream:
            fleet = run_batch(config, writer, on_progress)
            record_ledger_rows(conn, key, sum(writer.written.values()))
    if stream:
        committed: dict[str, int] = {}

        def commit() -> None:
            # The ledger shows how far an interrupted stream got.
            record_ledger_rows(conn, key, sum(writer.written.values()))
            conn.commit()
            committed.update(writer.written)

        try:
            fleet = run_stream(config, writer, commit, rows_per_second, on_progress)
        except KeyboardInterrupt:
            conn.rollback()
            return RunResult(committed, {}, interrupted=True,
                             seconds=time.perf_counter() - started)
    return RunResult(dict(writer.written), fleet.injected(),
                     seconds=time.perf_counter() - started)


# -- command line ----------------------------------------------------------------------------------

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """'1d', '6h', '90m', '1d12h', '45s', '2w'."""
    compact = text.strip().lower().replace(" ", "")
    parts = DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise click.BadParameter(f"{text!r}: use a number with w, d, h, m or s, e.g. 1d or 6h")
    return timedelta(seconds=sum(float(number) * DURATION_UNITS[unit]
                                 for number, unit in parts))


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    text = ""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text or "0s"


def parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: use ISO 8601, e.g. 2026-01-05T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def default_start(duration: timedelta, stream: bool) -> datetime:
    """Stream: now. Batch: the run ends at the start of the current UTC hour."""
    now = datetime.now(UTC).replace(microsecond=0)
    if stream:
        return now
    return now.replace(minute=0, second=0) - duration


RATE_OPTIONS = {
    "unknown_machine": "machine_id null or not in master.machines",
    "future_time": "time more than 5 minutes after ingested_at (a clock running ahead)",
    "missing_value": "a required column null",
    "out_of_range": "a telemetry measure outside its physical range",
    "invalid_code": "state, result, event or unit not in its list",
    "bad_interval": "cycle_start or down_start after the row's time (the end)",
    "duplicate": "a re-send of an earlier row (same source, time and values)",
    "late": "arrives up to an hour after later events of the same source",
}


def _rate_options(function: Callable) -> Callable:
    for name, meaning in reversed(RATE_OPTIONS.items()):
        function = click.option(
            f"--{name.replace('_', '-')}-rate", name, type=click.FloatRange(0.0, 1.0),
            default=None, help=f"Share of events: {meaning} (default {DEFAULT_RATE}).",
        )(function)
    return function


@click.command("simulate")
@click.option("--machines", default=10, show_default=True, type=click.IntRange(min=1),
              help="Fleet size: machine_id 1..N, split over two sites.")
@click.option("--start", "start_text", metavar="TIMESTAMP",
              help="Start of the simulated period, ISO 8601 (default: batch runs end at the "
                   "current UTC hour; --stream starts now). Give it for reproducible runs.")
@click.option("--duration", "duration_text", default="1d", show_default=True,
              help="Simulated period: 1d, 6h, 90m, 1d12h, ...")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Same seed and options, same rows (including ingested_at and ids).")
@click.option("--devices", type=click.IntRange(min=1),
              help="Platform-extension devices (default: one per ~4 machines, at least 5).")
@click.option("--stream", is_flag=True,
              help="Write rows as they arrive on the wall clock, committing every second.")
@click.option("--rate", "rows_per_second", type=click.FloatRange(min=0, min_open=True),
              help="With --stream: rows per second (the simulated clock speeds up to match); "
                   "without it the stream runs at real time.")
@_rate_options
@click.option("--stoppages/--no-stoppages", default=True, show_default=True,
              help="Send classified stoppages (bronze.downtime_events).")
@click.option("--clean", is_flag=True,
              help="Set every bad-input and late rate to 0 (explicit --*-rate options win).")
@click.option("--csv-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one CSV per Bronze table here (for `setu ingest`) instead of the "
                   "database; master data is not written.")
@click.option("--target", help="dbt target to write to (default: the profile's target).")
def simulate(machines: int, start_text: str | None, duration_text: str, seed: int,
             devices: int | None, stream: bool, rows_per_second: float | None, clean: bool,
             csv_dir: Path | None, target: str | None, stoppages: bool,
             **rates: float | None) -> None:
    """Simulate a CNC fleet into Bronze: states, cycles, telemetry, alarms, stoppages, devices.

    Upserts master data (two sites, their shifts, machines 1..N, alarm codes, downtime
    reasons, device calibrations), then writes the Bronze rows in arrival order with
    explicit ingested_at, with bad input of every contract class at the given rates (0.5%
    each by default; --clean for none). A run with the same parameters as one already
    loaded is skipped.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if rows_per_second is not None and not stream:
        raise click.UsageError("--rate paces a stream: use it with --stream")
    duration = parse_duration(duration_text)
    start = parse_start(start_text) if start_text else default_start(duration, stream)
    base = BadInputRates.clean() if clean else BadInputRates()
    try:
        config = SimulationConfig(
            machines=machines, start=start, duration=duration, seed=seed, devices=devices,
            stoppages=stoppages,
            rates=BadInputRates(**{name: getattr(base, name) if value is None else value
                                   for name, value in rates.items()}))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console.print(f"{config.describe()}: {config.device_total} devices, "
                  f"{start:%Y-%m-%d %H:%M:%S%z} to "
                  f"{to_datetime(config.end_us):%Y-%m-%d %H:%M:%S%z}", highlight=False,
                  soft_wrap=True)
    with _progress(console, stream) as report:
        if csv_dir is not None:
            writer = CsvWriter(csv_dir, suffix=f"seed{seed}-{start:%Y%m%dT%H%M%S}")
            began = time.perf_counter()
            fleet = run_batch(config, writer, report)
            result = RunResult(dict(writer.written), fleet.injected(),
                               seconds=time.perf_counter() - began)
        else:
            result = _simulate_database(config, target, stream, rows_per_second, report)
    if result.skipped:
        click.echo(f"skipped: this simulation was already loaded at "
                   f"{result.loaded_at:%Y-%m-%d %H:%M:%S%z} (same parameters, same rows)")
        return
    _print_summary(result, csv_dir)
    if result.interrupted:
        click.echo("interrupted: the rows above were committed; the ledger holds this run, so "
                   "rerun with another --seed or --start")
        raise SystemExit(130)


def _simulate_database(config: SimulationConfig, target: str | None, stream: bool,
                       rows_per_second: float | None,
                       report: Callable[[int, int], None]) -> RunResult:
    from setu.ingest.loader import IngestError
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    ensure_database(target)
    with connect(target) as conn:
        try:
            return simulate_into_database(conn, config, stream=stream,
                                          rows_per_second=rows_per_second, on_progress=report)
        except IngestError as exc:
            raise click.ClickException(str(exc)) from None


@contextmanager
def _progress(console: Any, stream: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over simulated time, on terminals only."""
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = ["[progress.description]{task.description}", BarColumn(),
               "{task.percentage:>3.0f}% of simulated time", TimeElapsedColumn()]
    if not stream:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task("streaming" if stream else "simulating", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_summary(result: RunResult, csv_dir: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    where = f" to {csv_dir}" if csv_dir else ""
    table = Table("table", "rows", "bad input and late events injected",
                  title=f"written in {result.seconds:.1f} s{where}")
    for name in TABLES:
        injected = ", ".join(f"{cls} {result.injected[(name, cls)]:,}" for cls in RATE_OPTIONS
                             if result.injected.get((name, cls)))
        table.add_row(name, f"{result.rows.get(name, 0):,}", injected or "-")
    Console().print(table)
    total = sum(result.rows.values())
    click.echo(f"{total:,} rows in {result.seconds:.1f} s "
               f"({total / result.seconds if result.seconds else 0:,.0f} rows/s)")
