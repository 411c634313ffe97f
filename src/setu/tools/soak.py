"""`setu soak`: the warehouse under a steady stream for a bounded time, then reconciled.

The simulated fleet streams into Bronze on the wall clock (its simulated clock is the wall
clock, so `ingested_at` is the real arrival time and `_etl.source_lag()` the real lag),
sized so that it sends the target rate. Meanwhile the in-database pipeline runs on its
schedule (the job `setu register-jobs` registered, or a thread here calling
`_etl.run_pipeline()`), a `dbt build` runs in the middle, and a sampler reads each Silver
model's lag every few seconds. At the end the soak waits for the pipeline to drain and
reconciles every Bronze id written during the stream to exactly one Silver fact or
quarantine row. Figures are printed, returned, and written to docs/soak.md.

Where the time goes is measured too: the stream's client (simulator and COPY), the
pipeline's busy share, PostgreSQL's CPU (when the server is the embedded cluster) and the
machine's. See docs/soak.md.

Beside the stream, `--side-ingest-rows N --side-ingest-every S` runs `setu ingest` of a CSV
file of N telemetry rows (a gateway's backlog: the last hour) every S seconds, as a separate
process, to measure what large loads do to the stream writers' commit latency (p50/p99 of
each tick's COPY + COMMIT and of the COMMIT alone) and to the pipeline's lag: the age of the
oldest unprocessed Bronze row, the Bronze ids Silver has not taken in, and the Silver
batches Gold has not taken in. The side rows are reconciled like the stream's.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import psycopg

from setu.ops.jobs import registered_scheduler
from setu.ops.reconcile import Reconciled, reconcile
from setu.tools.fleet_model import (
    CYCLE_START,
    INGESTED_AT,
    SECOND,
    TABLE_COLUMNS,
    TABLES,
    TELEMETRY_PERIOD,
    TIME,
    DeviceModel,
    MachineModel,
    device_count,
)
from setu.tools.simulate import (
    BadInputRates,
    Fleet,
    SimulationConfig,
    format_duration,
    parse_duration,
    to_datetime,
    upsert_master_data,
)
from setu.warehouse.paths import PROJECT_DIR, state_dir

DEFAULT_REPORT = PROJECT_DIR / "docs" / "soak.md"
REPORT_START = "<!-- soak-figures:start (written by `setu soak`; edit outside the markers) -->"
REPORT_END = "<!-- soak-figures:end -->"
CALIBRATION_MACHINES = 1_000
PIPELINE_RUNNER = "setu soak"


@dataclass(frozen=True)
class SoakConfig:
    rate: float = 10_000.0  # target events/s into Bronze
    duration_seconds: float = 600.0  # of streaming
    pipeline_every: float = 60.0  # seconds between pipeline runs (thread scheduler)
    sample_every: float = 5.0  # seconds between lag samples
    build_at: float | None = 0.5  # a `dbt build` at this share of the stream; None: none
    build_args: tuple[str, ...] = ("build",)  # the `setu` command run then
    scheduler: str = "auto"  # auto | registered | thread
    machines: int | None = None  # None: sized from a calibration run for the target rate
    seed: int = 1
    clean: bool = False  # no bad input (default: every contract class at 0.5%)
    warmup_seconds: float = 3600.0  # simulated history before the stream; not sent
    tick_seconds: float = 1.0  # one COPY per table and a commit per tick
    lookahead_seconds: float = 10.0  # simulated time generated ahead of the clock
    drain_timeout: float | None = None  # default: max(900 s, 10 pipeline periods)
    max_lag_seconds: float = 120.0  # the bound the run is judged by
    tolerance: float = 0.2  # of the target rate
    target: str | None = None  # dbt target
    report: Path | None = DEFAULT_REPORT
    command: str = ""  # how the run was started, for the report
    side_ingest_rows: int = 0  # rows per `setu ingest` file beside the stream; 0: none
    side_ingest_every: float = 30.0  # seconds between side ingests, start to start

    @property
    def rates(self) -> BadInputRates:
        return BadInputRates.clean() if self.clean else BadInputRates()


@dataclass
class SoakResult:
    config: SoakConfig
    started_at: datetime
    machines: int
    devices: int
    warmup_rows: int = 0
    setup_seconds: float = 0.0
    stream_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    max_write_delay: float = 0.0  # longest a due row waited for its COPY
    lag_samples: list[tuple[float, float, str]] = field(default_factory=list)
    batch_starts: set[tuple[datetime, str]] = field(default_factory=set)
    model_seconds: Counter = field(default_factory=Counter)
    scheduler: str = ""
    pipeline_runs: int = 0
    pipeline_failed: int = 0
    pipeline_mean_seconds: float = 0.0
    pipeline_max_seconds: float = 0.0
    pipeline_busy_seconds: float = 0.0
    pipeline_rows: int = 0
    build_exit: int | None = None
    build_seconds: float = 0.0
    build_started: float = 0.0
    build_log: Path | None = None
    build_process: subprocess.Popen | None = field(default=None, repr=False)
    drained: bool = False
    drain_seconds: float = 0.0
    reconciliation: dict[str, Reconciled] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    commit_seconds: list[float] = field(default_factory=list)  # the stream's COMMITs
    tick_write_seconds: list[float] = field(default_factory=list)  # its COPYs + COMMIT
    # (seconds into the stream, rows, seconds the `setu ingest` took, its exit code)
    side_ingests: list[tuple[float, int, float, int]] = field(default_factory=list)
    # (seconds into the stream, Bronze ids behind Silver, Silver batches behind Gold)
    backlog_samples: list[tuple[float, int, int]] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(self.rows.values())

    @property
    def side_rows(self) -> int:
        """Rows the side ingests loaded (a file loads all its rows or none)."""
        return sum(rows for _, rows, _, code in self.side_ingests if code == 0)

    @property
    def events_per_second(self) -> float:
        return self.rows_written / self.stream_seconds if self.stream_seconds else 0.0

    @property
    def max_lag(self) -> tuple[float, str]:
        if not self.lag_samples:
            return 0.0, ""
        _, lag, model = max(self.lag_samples, key=lambda sample: sample[1])
        return lag, model

    @property
    def reconciled(self) -> int:
        return sum(counts.once for counts in self.reconciliation.values())

    @property
    def bronze_rows(self) -> int:
        return sum(counts.rows for counts in self.reconciliation.values())

    def unaccounted(self, kind: str) -> int:
        return sum(getattr(counts, kind) for counts in self.reconciliation.values())

    def checks(self) -> list[tuple[str, bool, str]]:
        target = self.config.rate
        held = self.events_per_second
        lag, model = self.max_lag
        return [
            ("rate held", abs(held - target) <= self.config.tolerance * target,
             f"{held:,.0f} events/s for a target of {target:,.0f} "
             f"(±{self.config.tolerance:.0%})"),
            ("lag bounded", self.drained and lag < self.config.max_lag_seconds,
             f"max {lag:.0f} s ({model or 'no backlog'}), limit "
             f"{self.config.max_lag_seconds:.0f} s" + ("" if self.drained else
                                                      "; the pipeline did not drain")),
            ("every Bronze id reconciled", self.bronze_rows == self.reconciled
             and self.bronze_rows == self.rows_written + self.side_rows,
             f"{self.reconciled:,} of {self.bronze_rows:,} Bronze ids in exactly one Silver "
             f"fact or quarantine row ({self.rows_written:,} written"
             + (f" + {self.side_rows:,} by side ingest" if self.side_ingests else "")
             + "; lost "
             f"{self.unaccounted('missing'):,}, in two places "
             f"{self.unaccounted('several'):,}, not processed yet "
             f"{self.unaccounted('unprocessed'):,})"),
            ("dbt build", self.build_exit in (None, 0), self.build_outcome),
        ] + ([("side ingest", all(code == 0 for _, _, _, code in self.side_ingests),
               f"{len(self.side_ingests)} files, exit codes "
               f"{sorted({code for _, _, _, code in self.side_ingests})}")]
             if self.side_ingests else [])

    @property
    def build_outcome(self) -> str:
        if self.build_exit is None:
            return "not run"
        if self.build_exit < 0:
            return f"stopped after {self.build_seconds:.0f} s (it had not finished)"
        return f"exit {self.build_exit} in {self.build_seconds:.0f} s"

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks())


# -- the fleet ---------------------------------------------------------------------------

@dataclass
class PreparedFleet:
    fleet: Fleet
    simulation: SimulationConfig
    stream_start_us: int  # on the simulated clock: the end of the warm-up
    warmup_rows: int  # generated during the warm-up: history, never sent


def _skip_telemetry_until(machine: MachineModel, until_us: int) -> None:
    """Makes machine generate no telemetry sample before until_us.

    A machine generates the telemetry of each state period when the period starts; during
    the warm-up those samples are history that is never sent, and generating them is most of
    the warm-up's cost. Samples from until_us on are generated as usual."""
    generate = machine._samples

    def samples(until: int, mode: str) -> None:
        limit = min(until, machine.end, until_us)
        if machine.next_sample < limit:
            missed = -(-(limit - machine.next_sample) // TELEMETRY_PERIOD)
            machine.next_sample += missed * TELEMETRY_PERIOD
        generate(until, mode)

    machine._samples = samples  # an instance attribute: the script calls self._samples


def prepare_fleet(config: SoakConfig, machines: int, start: datetime,
                  say: Callable[[str], None] | None = None) -> PreparedFleet:
    """The fleet simulated from start, warmed up for warmup_seconds so that the stream meets
    machines in production (a fresh machine spends its first 10-45 minutes in setup, and a
    fifth of them start switched off); devices have no such start and begin with the
    stream. The warm-up's rows are generated and dropped."""
    warmup = int(config.warmup_seconds * SECOND)
    simulation = SimulationConfig(
        machines=machines, seed=config.seed, rates=config.rates, start=start,
        duration=timedelta(seconds=config.warmup_seconds + config.duration_seconds
                           + config.lookahead_seconds + 60), stoppages=True)
    fleet = Fleet(simulation)
    stream_start_us = simulation.start_us + warmup
    for position, (source, transport) in enumerate(fleet.sources):
        if isinstance(source, MachineModel):
            _skip_telemetry_until(source, stream_start_us)
        elif isinstance(source, DeviceModel):
            fleet.sources[position] = (DeviceModel(source.device, config.seed, stream_start_us,
                                                   source.end), transport)
    dropped = 0
    at = simulation.start_us
    while at < stream_start_us:  # in steps: the dropped rows never pile up in memory
        at = min(at + 10 * 60 * SECOND, stream_start_us)
        dropped += sum(len(rows) for rows in fleet.rows_until(at).values())
        if say:
            say(f"  warm-up: {(at - simulation.start_us) / SECOND / 60:.0f} of "
                f"{config.warmup_seconds / 60:.0f} simulated minutes")
    return PreparedFleet(fleet, simulation, stream_start_us, dropped)


def calibrate(config: SoakConfig, start: datetime) -> tuple[int, float]:
    """Machines needed for the target rate, from a sample fleet prepared the same way and
    run over the same window (sources are independent: the rate scales with the fleet);
    and the events/s per machine."""
    sample = prepare_fleet(config, CALIBRATION_MACHINES, start)
    until = sample.stream_start_us + int(config.duration_seconds * SECOND)
    rows = sum(len(batch) for batch in sample.fleet.rows_until(until).values())
    per_machine = rows / config.duration_seconds / CALIBRATION_MACHINES
    return max(1, math.ceil(config.rate / per_machine)), per_machine


# -- the stream ----------------------------------------------------------------------------

def _arrival(row: tuple) -> datetime:
    return row[INGESTED_AT]


def _shifted(table: str, rows: list[tuple], offset: timedelta) -> list[tuple]:
    """rows with every timestamp moved by offset (the model does not depend on the time of
    day, so a run simulated from another start is the same run, later)."""
    if not offset:
        return rows
    if table != "machine_cycles":
        return [(row[TIME] + offset, row[INGESTED_AT] + offset, *row[2:]) for row in rows]
    return [(row[TIME] + offset, row[INGESTED_AT] + offset, *row[2:CYCLE_START],
             None if row[CYCLE_START] is None else row[CYCLE_START] + offset,
             *row[CYCLE_START + 1:]) for row in rows]


class Streamer:
    """Writes each simulated row when its arrival time comes on the wall clock."""

    def __init__(self, conn: psycopg.Connection, fleet: Fleet, start_us: int,
                 offset: timedelta, config: SoakConfig) -> None:
        self.conn = conn
        self.fleet = fleet
        self.start_us = start_us  # where the stream starts on the simulated clock
        self.offset = offset  # wall clock minus simulated clock: added to every timestamp
        self.config = config
        self.buffers: dict[str, list[tuple]] = {table: [] for table in TABLES}
        self.positions = dict.fromkeys(TABLES, 0)
        self.generated_until = start_us
        self.written: Counter = Counter()
        self.generate_seconds = 0.0
        self.write_seconds = 0.0
        self.max_write_delay = 0.0
        self.commit_seconds: list[float] = []
        self.tick_write_seconds: list[float] = []

    def _generate(self, until_us: int) -> None:
        began = time.perf_counter()
        for table, rows in self.fleet.rows_until(until_us).items():
            buffer, position = self.buffers[table], self.positions[table]
            if position:
                del buffer[:position]
                self.positions[table] = 0
            buffer.extend(rows)  # arrivals after everything buffered: stays sorted
        self.generated_until = until_us
        self.generate_seconds += time.perf_counter() - began

    def _write_due(self, now_us: int) -> int:
        from setu.ingest.loader import copy_rows

        began = time.perf_counter()
        cutoff = to_datetime(now_us)
        total = 0
        for table in TABLES:  # the order dbt's on-run-start locks them in: no deadlock
            buffer, position = self.buffers[table], self.positions[table]
            end = bisect.bisect_right(buffer, cutoff, lo=position, key=_arrival)
            if end > position:
                rows = _shifted(table, buffer[position:end], self.offset)
                copy_rows(self.conn, table, TABLE_COLUMNS[table], rows)
                self.positions[table] = end
                self.written[table] += end - position
                total += end - position
        committing = time.perf_counter()
        self.conn.commit()
        done = time.perf_counter()
        self.write_seconds += done - began
        if total:
            self.commit_seconds.append(done - committing)
            self.tick_write_seconds.append(done - began)
        return total

    def run(self, began: float, stop: threading.Event,
            on_tick: Callable[[float, int], None]) -> float:
        """Stream until duration_seconds of wall clock after `began`; returns the seconds
        until the last row due was committed."""
        config = self.config
        lookahead = int(config.lookahead_seconds * SECOND)
        ticks = 0
        while not stop.is_set():
            elapsed = time.monotonic() - began
            if elapsed >= config.duration_seconds:
                break
            now_us = self.start_us + int(elapsed * SECOND)
            self._write_due(now_us)
            self.max_write_delay = max(self.max_write_delay, time.monotonic() - began - elapsed)
            if self.generated_until < now_us + lookahead // 2:
                self._generate(now_us + lookahead)
            on_tick(elapsed, sum(self.written.values()))
            ticks += 1
            pause = began + ticks * config.tick_seconds - time.monotonic()
            if pause > 0:
                stop.wait(pause)
            else:  # behind: skip the missed ticks, write what is due now
                ticks = math.ceil((time.monotonic() - began) / config.tick_seconds)
        end_us = self.start_us + int(config.duration_seconds * SECOND)
        if self.generated_until < end_us:
            self._generate(end_us)
        self._write_due(end_us)
        return time.monotonic() - began


# -- background work -----------------------------------------------------------------------

class Worker(threading.Thread):
    """A thread whose exception is kept for the main thread."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _connect(config: SoakConfig) -> psycopg.Connection:
    from setu.warehouse.profile import connect

    return connect(config.target, autocommit=True)


def pipeline_loop(config: SoakConfig, stop: threading.Event) -> None:
    """`setu run-jobs`, in a thread: a run every pipeline_every seconds, start to start (at
    once when a run took longer than that)."""
    with _connect(config) as conn:
        next_at = time.monotonic() + config.pipeline_every
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            conn.execute("call _etl.run_pipeline(%s)", (PIPELINE_RUNNER,))
            next_at = max(next_at + config.pipeline_every, time.monotonic())


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.5: the median, 0.99: p99); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


SIDE_INGEST_COLUMNS = ("time", "machine_id", "spindle_load_pct", "spindle_temp_c", "power_kw")


def write_side_file(path: Path, rows: int, machine_ids: list[int], now: datetime,
                    number: int) -> None:
    """A gateway's backlog as `setu ingest` takes it: rows telemetry samples spread over the
    hour before now, round-robin over machine_ids. The sub-second part of each time comes
    from the file's number, so no file repeats another's rows (the ingest ledger would skip
    a file it has loaded)."""
    step = 3600.0 / rows
    start = now - timedelta(hours=1)
    with path.open("w") as out:
        out.write(",".join(SIDE_INGEST_COLUMNS) + "\n")
        for n in range(rows):
            at = start + timedelta(seconds=int(n * step), microseconds=1000 + number % 999_000)
            machine = machine_ids[n % len(machine_ids)]
            out.write(f"{at.isoformat()},{machine},{40 + n % 50},{35 + n % 30},"
                      f"{2.5 + (n % 40) / 10}\n")


def side_ingest_loop(config: SoakConfig, result: SoakResult, began: float,
                     stop: threading.Event, machine_ids: list[int], folder: Path) -> None:
    """`setu ingest` of a side file every side_ingest_every seconds (start to start), each in
    a process of its own, until stop; an ingest in flight when stop comes is finished."""
    folder.mkdir(parents=True, exist_ok=True)
    number = 0
    next_at = began + config.side_ingest_every / 2
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        number += 1
        path = folder / f"machine_telemetry-soak-{result.started_at:%Y%m%dT%H%M%S}-{number}.csv"
        write_side_file(path, config.side_ingest_rows, machine_ids, datetime.now(UTC), number)
        argv = [sys.executable, "-m", "setu", "ingest", str(path)]
        if config.target:
            argv += ["--target", config.target]
        started = time.monotonic()
        done = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True,
                              check=False)
        result.side_ingests.append((started - began, config.side_ingest_rows,
                                    time.monotonic() - started, done.returncode))
        path.unlink(missing_ok=True)
        next_at = max(next_at + config.side_ingest_every, time.monotonic())


# Bronze ids the Silver models have not taken in (the identity's last value minus the
# watermark), and Silver batches (etl_batch_id) the Gold and serving models have not.
BACKLOG_SQL = """
    select
        coalesce(max(_etl.source_last_id(s.source_name, s.id_column) - w.last_processed_id)
            filter (where s.source_name like 'bronze.%'), 0),
        coalesce(max(_etl.source_last_id(s.source_name, s.id_column) - w.last_processed_id)
            filter (where s.source_name like 'silver.%'), 0)
    from _etl.models as m
    cross join lateral unnest(m.sources, m.id_columns) as s (source_name, id_column)
    inner join _etl.watermarks as w
        on m.model_name = w.model_name and s.source_name = w.source_name
"""


LAG_SQL = """
    select w.model_name, extract(epoch from _etl.source_lag(w.source_name, w.last_processed_id))
    from _etl.watermarks as w
    inner join _etl.models as m on w.model_name = m.model_name
    where w.source_name like 'bronze.%'
"""


def read_lag(conn: psycopg.Connection) -> tuple[float, str, bool]:
    """The largest lag over the Silver models (age of the oldest unprocessed Bronze row),
    its model, and whether any row waits at all."""
    lags = [(float(seconds), model) for model, seconds in conn.execute(LAG_SQL)
            if seconds is not None]
    if not lags:
        return 0.0, "", False
    lag, model = max(lags)
    return max(lag, 0.0), model, True


# When each model's latest batch started (apply_batch sets updated_at to its transaction's
# start): polled every second, these give each model's share of the pipeline's time.
BATCH_STARTS_SQL = "select model_name, max(updated_at) from _etl.watermarks group by model_name"


def sample_loop(config: SoakConfig, began: float, stop: threading.Event,
                samples: list[tuple[float, float, str]],
                batch_starts: set[tuple[datetime, str]],
                backlog: list[tuple[float, int, int]] | None = None) -> None:
    with _connect(config) as conn:
        next_lag = 0.0
        while not stop.is_set():
            batch_starts.update((at, model) for model, at in conn.execute(BATCH_STARTS_SQL))
            if time.monotonic() >= next_lag:
                next_lag = time.monotonic() + config.sample_every
                lag, model, _ = read_lag(conn)
                samples.append((time.monotonic() - began, lag, model))
                if backlog is not None:
                    bronze, silver = conn.execute(BACKLOG_SQL).fetchone()
                    backlog.append((time.monotonic() - began, int(bronze), int(silver)))
            stop.wait(min(1.0, config.sample_every))


def run_build(config: SoakConfig, result: SoakResult, began: float,
              stop: threading.Event) -> None:
    """`setu build` in a process of its own (dbt's parsing would take the simulator's GIL)."""
    assert config.build_at is not None
    if stop.wait(max(0.0, began + config.build_at * config.duration_seconds - time.monotonic())):
        return
    log_path = state_dir() / "log" / f"soak-dbt-build-{result.started_at:%Y%m%dT%H%M%S}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "setu", *config.build_args]
    if config.target:
        argv += ["--target", config.target]
    result.build_started = time.monotonic() - began
    result.build_log = log_path
    with log_path.open("w") as log:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR)
        result.build_process = process
        code = process.wait()
    result.build_seconds = time.monotonic() - started
    result.build_exit = code


# -- scheduler -----------------------------------------------------------------------------

def choose_scheduler(conn: psycopg.Connection, config: SoakConfig) -> str:
    registered = registered_scheduler(conn)
    if config.scheduler == "registered":
        if registered is None:
            raise click.ClickException("no pipeline job is registered: run "
                                       "`setu register-jobs` or use --scheduler thread")
        return registered
    if config.scheduler == "auto" and registered and config.pipeline_every == 60:
        return registered  # both run every minute
    return "thread"


# -- measuring -----------------------------------------------------------------------------

def _proc_stat(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from `state` on


def postgres_cpu_seconds() -> float | None:
    """CPU seconds of the embedded cluster so far: the postmaster with its exited children,
    plus its live backends. None when the target server is not the embedded cluster."""
    from setu.warehouse.cluster import Cluster

    try:
        pid = (Cluster.default().datadir / "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(entry.name)
        if fields is None:
            continue
        if entry.name == pid:  # utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
        elif fields[1] == pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / ticks, sum(values) / ticks


def machine_info(conn: psycopg.Connection) -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pg_version = conn.execute("show server_version").fetchone()[0]
    ts_version = conn.execute("select extversion from pg_extension where extname = 'timescaledb'"
                              ).fetchone()
    load = os.getloadavg()
    return {
        "host": platform.node(),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": pg_version,
        "timescaledb": ts_version[0] if ts_version else "not installed",
        "load average at start": f"{load[0]:.2f} (1 min), {load[1]:.2f} (5 min)",
    }


def pipeline_runs(conn: psycopg.Connection, since: datetime
                  ) -> list[tuple[datetime, datetime, str, int]]:
    """Finished pipeline runs started since: (started_at, finished_at, status, rows)."""
    return conn.execute(
        "select started_at, finished_at, status, rows_processed from _etl.job_runs"
        " where started_at >= %s and finished_at is not null order by started_at", (since,),
    ).fetchall()


def model_seconds(runs: list[tuple[datetime, datetime, str, int]],
                  batch_starts: set[tuple[datetime, str]]) -> Counter:
    """Seconds of pipeline runs per model: a model's batch lasts until the next batch of the
    run starts (or the run ends). Time before a run's first batch is 'start of run'."""
    seconds: Counter = Counter()
    starts = sorted(batch_starts)
    for started_at, finished_at, _, _ in runs:
        inside = [(at, model) for at, model in starts if started_at <= at <= finished_at]
        if not inside:
            continue
        seconds["start of run"] += (inside[0][0] - started_at).total_seconds()
        ends = [at for at, _ in inside[1:]] + [finished_at]
        for (at, model), end in zip(inside, ends, strict=True):
            seconds[model] += (end - at).total_seconds()
    return seconds


# -- reconciliation ------------------------------------------------------------------------

def max_ids(conn: psycopg.Connection) -> dict[str, int]:
    return {table: conn.execute(f"select coalesce(max(id), 0) from bronze.{table}").fetchone()[0]
            for table in TABLES}


def wait_for_drain(conn: psycopg.Connection, timeout: float) -> tuple[bool, float]:
    """Waits until no Silver model has an unprocessed Bronze row; (drained, seconds)."""
    began = time.monotonic()
    while True:
        _, _, waiting = read_lag(conn)
        if not waiting:
            return True, time.monotonic() - began
        if time.monotonic() - began > timeout:
            return False, time.monotonic() - began
        time.sleep(1.0)


# -- the run -------------------------------------------------------------------------------

def ensure_models(conn: psycopg.Connection, config: SoakConfig, say: Callable[[str], None]
                  ) -> None:
    """The pipeline runs what dbt registered: `setu run` once first when nothing is (not
    build: on an empty database dbt's unit tests of incremental models find no relation)."""
    registered = conn.execute("select to_regclass('_etl.models') is not null").fetchone()[0] \
        and conn.execute("select count(*) from _etl.models").fetchone()[0]
    if registered:
        return
    say("no models registered in _etl.models yet: running `setu run` first")
    argv = [sys.executable, "-m", "setu", "run"]
    if config.target:
        argv += ["--target", config.target]
    done = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-15:])
        raise click.ClickException(f"`setu run` failed before the soak:\n{tail}")


def run_soak(config: SoakConfig, say: Callable[[str], None] = print,
             on_tick: Callable[[float, int, float], None] | None = None) -> SoakResult:
    """The whole soak; see the module's docstring. say() gets one line per phase."""
    setup_began = time.monotonic()
    started_at = datetime.now(UTC).replace(microsecond=0)
    with _connect(config) as conn:
        ensure_models(conn, config, say)
        scheduler = choose_scheduler(conn, config)
    simulated_start = datetime.now(UTC).replace(microsecond=0)
    if config.machines is None:
        machines, per_machine = calibrate(config, simulated_start)
        say(f"fleet: {machines:,} machines for {config.rate:,.0f} events/s "
            f"({per_machine:.4f} events/s per machine, calibrated on "
            f"{CALIBRATION_MACHINES:,})")
    else:
        machines = config.machines
    # Millions of long-lived objects: the cyclic collector would rescan them all, again
    # and again (minutes at 100k machines). Rows hold no cycles; it is back on at the end.
    gc.disable()
    try:
        say(f"simulating {machines:,} machines and {device_count(machines):,} devices, "
            f"warming up {format_duration(timedelta(seconds=config.warmup_seconds))}; "
            f"pipeline: {scheduler} every {config.pipeline_every:g} s")
        prepared = prepare_fleet(config, machines, simulated_start, say)
        with _connect(config) as conn, conn.transaction():
            upsert_master_data(conn, prepared.simulation, prepared.fleet.devices)
        result = SoakResult(config, started_at, machines, len(prepared.fleet.devices),
                            prepared.warmup_rows, scheduler=scheduler)
        gc.collect()
        gc.freeze()
        return _stream_and_reconcile(config, prepared, result, setup_began, say, on_tick)
    finally:
        gc.unfreeze()
        gc.enable()


def _stream_and_reconcile(config: SoakConfig, prepared: PreparedFleet, result: SoakResult,
                          setup_began: float, say: Callable[[str], None],
                          on_tick: Callable[[float, int, float], None] | None) -> SoakResult:
    fleet, stream_start_us = prepared.fleet, prepared.stream_start_us
    result.setup_seconds = time.monotonic() - setup_began

    with _connect(config) as admin:
        result.machine = machine_info(admin)
        before = max_ids(admin)
        cpu_before = (time.thread_time(), resource.getrusage(resource.RUSAGE_SELF),
                      postgres_cpu_seconds(), machine_cpu_seconds(), _children_cpu())
        since = datetime.now(UTC)
        stop, stream_done = threading.Event(), threading.Event()
        began = time.monotonic()
        workers = [Worker("lag sampler",
                          lambda: sample_loop(config, began, stream_done, result.lag_samples,
                                              result.batch_starts, result.backlog_samples))]
        side_stop = threading.Event()
        if config.side_ingest_rows:
            machine_ids = [row[0] for row in admin.execute(
                "select machine_id from master.machines order by machine_id limit 1000")]
            folder = state_dir() / "soak-side-ingest"
            workers.append(Worker("side ingest", lambda: side_ingest_loop(
                config, result, began, side_stop, machine_ids, folder)))
        if result.scheduler == "thread":
            workers.append(Worker("pipeline", lambda: pipeline_loop(config, stop)))
        if config.build_at is not None:
            workers.append(Worker("dbt build", lambda: run_build(config, result, began, stop)))
        for worker in workers:
            worker.start()
        say(f"streaming for {format_duration(timedelta(seconds=config.duration_seconds))}")
        last_lag = [0.0]

        def tick(elapsed: float, written: int) -> None:
            if result.lag_samples:
                last_lag[0] = result.lag_samples[-1][1]
            if on_tick:
                on_tick(elapsed, written, last_lag[0])

        with connect_stream(config) as stream_conn:
            # Set-up took a while: the simulated run is moved to start now.
            offset = datetime.now(UTC) - to_datetime(stream_start_us)
            streamer = Streamer(stream_conn, fleet, stream_start_us, offset, config)
            try:
                result.stream_seconds = streamer.run(began, stop, tick)
            except BaseException:
                stop.set()
                side_stop.set()
                stream_done.set()
                raise
        stream_cpu = time.thread_time() - cpu_before[0]
        result.rows = dict(streamer.written)
        result.max_write_delay = streamer.max_write_delay
        result.commit_seconds = streamer.commit_seconds
        result.tick_write_seconds = streamer.tick_write_seconds
        side_stop.set()  # an ingest in flight finishes: its ids are below `after`
        for worker in workers:
            if worker.name == "side ingest":
                worker.join()
        after = max_ids(admin)
        say(f"stream done: {result.rows_written:,} rows in {result.stream_seconds:.1f} s; "
            "waiting for the dbt build and the pipeline to drain")
        timeout = config.drain_timeout or max(900.0, 10 * config.pipeline_every)
        deadline = time.monotonic() + timeout
        build = next((worker for worker in workers if worker.name == "dbt build"), None)
        if build is not None:
            build.join(timeout)
            if build.is_alive() and result.build_process is not None:
                say(f"the dbt build still runs {timeout:.0f} s after the stream: stopped")
                result.build_process.terminate()
                build.join()
        result.drained, _ = wait_for_drain(admin, max(0.0, deadline - time.monotonic()))
        result.drain_seconds = time.monotonic() - (deadline - timeout)
        stream_done.set()
        stop.set()
        for worker in workers:
            worker.join()
        errors = [f"{worker.name}: {worker.error}" for worker in workers if worker.error]
        if errors:
            raise click.ClickException("; ".join(errors))
        elapsed = time.monotonic() - began
        usage = resource.getrusage(resource.RUSAGE_SELF)
        pg_cpu = postgres_cpu_seconds()
        busy, total = machine_cpu_seconds()
        result.cpu = {
            "wall": elapsed,
            "stream thread": stream_cpu,
            "generate": streamer.generate_seconds,
            "copy": streamer.write_seconds,
            "soak process": (usage.ru_utime + usage.ru_stime)
            - (cpu_before[1].ru_utime + cpu_before[1].ru_stime),
            "dbt build": _children_cpu() - cpu_before[4],
            "machine busy": busy - cpu_before[3][0],
            "machine total": total - cpu_before[3][1],
        }
        if pg_cpu is not None and cpu_before[2] is not None:
            result.cpu["postgresql"] = pg_cpu - cpu_before[2]
        runs = pipeline_runs(admin, since)
        durations = [(finished - started).total_seconds() for started, finished, _, _ in runs]
        result.pipeline_runs = len(runs)
        result.pipeline_failed = sum(1 for run in runs if run[2] == "failed")
        result.pipeline_busy_seconds = sum(durations)
        result.pipeline_mean_seconds = sum(durations) / len(runs) if runs else 0.0
        result.pipeline_max_seconds = max(durations, default=0.0)
        result.pipeline_rows = sum(run[3] for run in runs)
        result.model_seconds = model_seconds(runs, result.batch_starts)
        result.machine["load average at end"] = "{:.2f} (1 min), {:.2f} (5 min)".format(
            *os.getloadavg()[:2])
        say("reconciling every Bronze id written during the stream")
        result.reconciliation = reconcile(admin, before, after)
    return result


def connect_stream(config: SoakConfig) -> psycopg.Connection:
    from setu.warehouse.profile import connect

    conn = connect(config.target)
    conn.execute("set time zone 'UTC'")
    conn.commit()
    return conn


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- reporting -----------------------------------------------------------------------------

def _lag_timeline(result: SoakResult, width: float) -> list[tuple[float, float]]:
    """The largest sampled lag per `width` seconds of the run."""
    buckets: dict[int, float] = {}
    for at, lag, _ in result.lag_samples:
        bucket = int(at // width)
        buckets[bucket] = max(buckets.get(bucket, 0.0), lag)
    return [(bucket * width, lag) for bucket, lag in sorted(buckets.items())]


def _cores(result: SoakResult, key: str) -> str:
    wall = result.cpu.get("wall") or 1.0
    return f"{result.cpu[key] / wall:.2f}" if key in result.cpu else "n/a"


def _model_shares(result: SoakResult) -> str:
    total = sum(result.model_seconds.values())
    if not total:
        return "n/a"
    return ", ".join(f"{model} {seconds:.0f} s ({seconds / total:.0%})"
                     for model, seconds in result.model_seconds.most_common()
                     if seconds >= 0.005 * total)


def _latency(result: SoakResult) -> str:
    commits, ticks = result.commit_seconds, result.tick_write_seconds
    if not commits:
        return "n/a"
    return (f"COMMIT p50 {percentile(commits, 0.5) * 1000:.0f} ms, p99 "
            f"{percentile(commits, 0.99) * 1000:.0f} ms; a tick's COPY + COMMIT p50 "
            f"{percentile(ticks, 0.5) * 1000:.0f} ms, p99 {percentile(ticks, 0.99) * 1000:.0f} ms,"
            f" max {max(ticks) * 1000:.0f} ms ({len(ticks):,} ticks)")


def _backlog(result: SoakResult) -> str:
    lags = [lag for _, lag, _ in result.lag_samples]
    bronze = [float(behind) for _, behind, _ in result.backlog_samples]
    silver = [float(behind) for _, _, behind in result.backlog_samples]
    if not lags:
        return "n/a"
    text = f"age lag p50 {percentile(lags, 0.5):.0f} s, max {max(lags):.0f} s"
    if bronze:
        text += (f"; Bronze ids behind Silver p50 {percentile(bronze, 0.5):,.0f}, max "
                 f"{max(bronze):,.0f}; Silver batches behind Gold p50 "
                 f"{percentile(silver, 0.5):,.0f}, max {max(silver):,.0f}")
    return text


def _side_ingest(result: SoakResult) -> str:
    config = result.config
    if not config.side_ingest_rows:
        return "none"
    runs = result.side_ingests
    if not runs:
        return f"{config.side_ingest_rows:,} rows every {config.side_ingest_every:g} s: none ran"
    seconds = [took for _, _, took, _ in runs]
    return (f"`setu ingest` of {config.side_ingest_rows:,} telemetry rows every "
            f"{config.side_ingest_every:g} s: {len(runs)} files, {result.side_rows:,} rows, "
            f"{sum(seconds) / len(seconds):.1f} s per file (max {max(seconds):.1f} s, "
            f"{config.side_ingest_rows / (sum(seconds) / len(seconds)):,.0f} rows/s with the "
            "process start)")


def figure_rows(result: SoakResult) -> list[tuple[str, str]]:
    config = result.config
    lag, model = result.max_lag
    cpu = result.cpu
    wall = cpu.get("wall") or 1.0
    machine_share = (cpu.get("machine busy", 0.0) / cpu["machine total"]
                     if cpu.get("machine total") else 0.0)
    pg = (f"PostgreSQL {cpu['postgresql']:.0f} CPU s ({_cores(result, 'postgresql')} cores); "
          if "postgresql" in cpu
          else "PostgreSQL not measured (remote server); ")
    rates = "no bad input" if config.clean else "every bad-input class at 0.5%"
    rows_in = result.rows_written + result.side_rows  # the stream's and the side files'
    rows = [
        ("date", f"{result.started_at:%Y-%m-%d %H:%M} UTC"),
        ("target rate", f"{config.rate:,.0f} events/s for "
                        f"{format_duration(timedelta(seconds=config.duration_seconds))}"),
        ("events/s held", f"{result.events_per_second:,.0f} ({result.rows_written:,} rows "
                          f"in {result.stream_seconds:.1f} s; longest wait for a COPY "
                          f"{result.max_write_delay:.1f} s)"),
        ("max lag", f"{lag:.0f} s ({model or 'nothing waiting'}), sampled every "
                    f"{config.sample_every:g} s; limit {config.max_lag_seconds:.0f} s"),
        ("rows reconciled", f"{result.reconciled:,} of {result.bronze_rows:,} Bronze ids in "
                            f"exactly one Silver fact or quarantine row"),
        ("writer latency", _latency(result)),
        ("pipeline backlog", _backlog(result)),
        ("side ingest", _side_ingest(result)),
        ("drain", (f"{result.drain_seconds:.0f} s after the stream stopped"
                   if result.drained else f"not drained {result.drain_seconds:.0f} s after the "
                   "stream stopped") + (" (the dbt build finished first)"
                                        if result.build_exit is not None else "")),
        ("fleet", f"{result.machines:,} machines, {result.devices:,} devices, seed "
                  f"{config.seed}, {rates}"),
        ("pipeline", f"{result.scheduler} every {config.pipeline_every:g} s: "
                     f"{result.pipeline_runs} runs ({result.pipeline_failed} failed), "
                     f"mean {result.pipeline_mean_seconds:.1f} s, max "
                     f"{result.pipeline_max_seconds:.1f} s, busy "
                     f"{result.pipeline_busy_seconds / wall:.0%} of the time, "
                     f"{result.pipeline_rows:,} rows"),
        ("pipeline time by model", _model_shares(result)),
        ("pipeline throughput", f"{rows_in / result.pipeline_busy_seconds:,.0f} "
                                "Bronze rows per second of run time"
                                if result.pipeline_busy_seconds else "n/a"),
        ("dbt build", "not run" if config.build_at is None else
                      "not started" if result.build_exit is None else
                      f"`setu {' '.join(config.build_args)}` at {result.build_started:.0f} s of "
                      f"the stream: {result.build_outcome}"),
        ("CPU", f"over {wall:.0f} s: machine {machine_share:.0%} busy; soak process "
                f"{cpu.get('soak process', 0):.0f} CPU s ({_cores(result, 'soak process')} "
                f"cores; its stream thread {cpu.get('stream thread', 0):.0f} CPU s, spending "
                f"{cpu.get('generate', 0):.0f} s generating rows and {cpu.get('copy', 0):.0f} s "
                f"in COPY); {pg}"
                + ("dbt build and side ingests" if result.side_ingests else "dbt build")
                + f" {cpu.get('dbt build', 0):.0f} CPU s"),
        ("set-up", f"{result.setup_seconds:.0f} s: calibration, fleet, master data, and a "
                   f"warm-up of {format_duration(timedelta(seconds=config.warmup_seconds))} "
                   f"simulated ({result.warmup_rows:,} rows generated, not sent)"),
    ]
    rows += [(key, value) for key, value in result.machine.items()]
    if config.command:
        rows.append(("command", f"`{config.command}`"))
    return rows


def render_report(result: SoakResult) -> str:
    lines = [REPORT_START, "", f"### Soak of {result.started_at:%Y-%m-%d %H:%M} UTC: "
             f"{'PASS' if result.passed else 'FAIL'}", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {key} | {value.replace('|', '/')} |" for key, value in figure_rows(result)]
    lines += ["", "| check | result | detail |", "| --- | --- | --- |"]
    lines += [f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |"
              for name, ok, detail in result.checks()]
    width = 60.0 if result.config.duration_seconds >= 300 else 10.0
    timeline = _lag_timeline(result, width)
    if timeline:
        lines += ["", f"Largest sampled lag per {width:g} s of the run (s): " + ", ".join(
            f"{at:.0f}–{at + width:.0f}: {lag:.0f}" for at, lag in timeline)]
    lines += ["", REPORT_END]
    return "\n".join(lines) + "\n"


def write_report(path: Path, result: SoakResult) -> None:
    """Replace the figures section of path (between the markers), or append one."""
    section = render_report(result)
    text = path.read_text() if path.exists() else "# Soak test\n\n"
    pattern = re.compile(re.escape(REPORT_START) + r".*?" + re.escape(REPORT_END) + r"\n?",
                         re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n## Figures\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- command line --------------------------------------------------------------------------

@click.command("soak")
@click.option("--rate", default=10_000.0, show_default=True,
              type=click.FloatRange(min=1), help="Target events/s into Bronze.")
@click.option("--duration", "duration_text", default="10m", show_default=True,
              help="How long the stream runs: 10m, 30s, 1h, ...")
@click.option("--pipeline-every", default=60.0, show_default=True,
              type=click.FloatRange(min=1), help="Seconds between pipeline runs.")
@click.option("--sample-every", default=5.0, show_default=True,
              type=click.FloatRange(min=0.5), help="Seconds between lag samples.")
@click.option("--build-at", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Run `dbt build` at this share of the stream.")
@click.option("--no-build", is_flag=True, help="No `dbt build` during the stream.")
@click.option("--scheduler", type=click.Choice(["auto", "registered", "thread"]),
              default="auto", show_default=True,
              help="registered: the job of `setu register-jobs`; thread: a thread here; "
                   "auto: the registered job when there is one and --pipeline-every is 60.")
@click.option("--warmup", "warmup_text", default="1h", show_default=True,
              help="Simulated history before the stream (not sent), so that the stream meets "
                   "machines in production rather than all in their first setup.")
@click.option("--machines", type=click.IntRange(min=1),
              help="Fleet size (default: calibrated for --rate).")
@click.option("--seed", default=1, show_default=True, help="Simulator seed.")
@click.option("--clean", is_flag=True, help="No bad input (default: every class at 0.5%).")
@click.option("--drain-timeout", type=click.FloatRange(min=0),
              help="Seconds to wait after the stream for the dbt build and the pipeline to "
                   "finish (default: 900, or 10 pipeline periods when longer).")
@click.option("--max-lag", "max_lag", default=120.0, show_default=True,
              type=click.FloatRange(min=1), help="Lag limit in seconds the run is judged by.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_REPORT, show_default=True,
              help="Markdown file whose figures section is replaced.")
@click.option("--no-report", is_flag=True, help="Do not write the figures anywhere.")
@click.option("--side-ingest-rows", type=click.IntRange(min=0), default=0, show_default=True,
              help="Beside the stream, `setu ingest` a CSV file of this many telemetry rows "
                   "(a gateway's backlog of the last hour) every --side-ingest-every seconds; "
                   "0: none.")
@click.option("--side-ingest-every", type=click.FloatRange(min=1), default=30.0,
              show_default=True, help="Seconds between side ingests, start to start.")
@click.option("--target", help="dbt target (default: the profile's).")
def soak(rate: float, duration_text: str, pipeline_every: float, sample_every: float,
         build_at: float, no_build: bool, scheduler: str, warmup_text: str,
         machines: int | None, seed: int, clean: bool, drain_timeout: float | None,
         max_lag: float, report: Path, no_report: bool, side_ingest_rows: int,
         side_ingest_every: float, target: str | None) -> None:
    """Stream a simulated fleet into Bronze at --rate for --duration while the pipeline runs,
    then check the rate held, the lag stayed bounded and every Bronze id reconciled.

    The fleet is sized so that its simulated clock is the wall clock (ingested_at is real);
    `dbt build` runs in the middle; each Silver model's lag (age of its oldest unprocessed
    Bronze row) is sampled every --sample-every seconds. Writes the figures to --report
    (docs/soak.md). Exit code 0 when every check passed, 1 otherwise. Uses the profile's
    database: run it on a cluster of its own (SETU_HOME=... SETU_PG_PORT=... setu db start).
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from setu.warehouse.preflight import ensure_database

    console = Console(stderr=True, highlight=False)
    config = SoakConfig(
        rate=rate, duration_seconds=parse_duration(duration_text).total_seconds(),
        pipeline_every=pipeline_every, sample_every=sample_every,
        build_at=None if no_build else build_at, scheduler=scheduler, machines=machines,
        warmup_seconds=parse_duration(warmup_text).total_seconds() if warmup_text != "0"
        else 0.0,
        seed=seed, clean=clean, max_lag_seconds=max_lag, target=target,
        drain_timeout=drain_timeout,
        report=None if no_report else report,
        side_ingest_rows=side_ingest_rows, side_ingest_every=side_ingest_every,
        command=f"setu soak --rate {rate:g} --duration {duration_text} --pipeline-every "
                f"{pipeline_every:g}" + (" --no-build" if no_build else "")
                + (f" --scheduler {scheduler}" if scheduler != "auto" else "")
                + (" --clean" if clean else "")
                + (f" --drain-timeout {drain_timeout:g}" if drain_timeout else "")
                + (f" --side-ingest-rows {side_ingest_rows} --side-ingest-every "
                   f"{side_ingest_every:g}" if side_ingest_rows else ""))
    ensure_database(target)
    progress = Progress(TextColumn("streaming"), BarColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[status]}"), console=console, transient=True,
                        disable=not console.is_terminal)
    task = progress.add_task("stream", total=config.duration_seconds, status="setting up")
    last_line = [0.0]

    def on_tick(elapsed: float, written: int, lag: float) -> None:
        status = (f"{written:,} rows, {written / max(elapsed, 1e-9):,.0f}/s, "
                  f"lag {lag:.0f} s")
        progress.update(task, completed=elapsed, status=status)
        if not console.is_terminal and elapsed - last_line[0] >= 60:
            last_line[0] = elapsed
            console.print(f"  {elapsed:4.0f} s: {status}")

    def say(line: str) -> None:
        progress.console.print(line)

    with progress:
        result = run_soak(config, say, on_tick)
    print_result(result)
    if config.report is not None:
        write_report(config.report, result)
        click.echo(f"figures written to {config.report}")
    raise SystemExit(0 if result.passed else 1)


def print_result(result: SoakResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("figure", "value", title="soak", show_lines=False)
    for key, value in figure_rows(result):
        table.add_row(key, value)
    checks = Table("check", "result", "detail")
    for name, ok, detail in result.checks():
        checks.add_row(name, "[green]pass[/]" if ok else "[red]FAIL[/]", detail)
    reconciliation = Table("Bronze table", "rows", "exactly once", "lost", "more than once",
                           "not processed yet", title="reconciliation")
    for table_name, counts in result.reconciliation.items():
        reconciliation.add_row(table_name, *(f"{value:,}" for value in counts))
    console = Console(width=None if sys.stdout.isatty() else 120)
    for item in (table, reconciliation, checks):
        console.print(item)
