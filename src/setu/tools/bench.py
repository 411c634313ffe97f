"""`setu bench`: every performance target of SETU in one run, each beside its baseline.

The suite runs in a database of its own (``setu_bench`` on the profile's server), fills it
with generated rows (server-side ``generate_series``, so generation is not what is timed),
and measures SETU's path and the baseline alternately in the same process, reporting
medians with the min–max spread. The results page is ``docs/benchmarks.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg
from rich.console import Console

from setu.warehouse import dbt
from setu.warehouse.paths import PROJECT_DIR
from setu.warehouse.profile import connect, load_target

console = Console()
BENCH_DATABASE = "setu_bench"


@dataclass(frozen=True)
class Scale:
    name: str
    transform_rows: int  # Bronze telemetry rows for the transform benchmark
    machines: int
    cost_small: int  # Silver rows before the increment, small table
    cost_large: int  # ... large table
    increment: int  # new rows per incremental run
    state_small: int  # cycle facts, few
    state_large: int  # cycle facts, many
    gold_machines: int
    gold_days: int
    silver_sample_machines: int  # machines with Silver rows for the "from Silver" answers
    read_samples: int
    repeats: int


SCALES = {
    "dry-run": Scale("dry-run", 5_000, 10, 2_000, 8_000, 500, 1_000, 4_000, 20, 3, 4, 20, 1),
    "small": Scale("small", 200_000, 100, 100_000, 1_000_000, 10_000, 10_000, 200_000,
                   1_000, 30, 50, 300, 3),
    "full": Scale("full", 1_000_000, 1_000, 100_000, 5_000_000, 10_000, 10_000, 1_000_000,
                  10_000, 30, 200, 1_000, 5),
}


@dataclass
class Measurement:
    benchmark: str
    setu: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    notes: str = ""


@dataclass
class Suite:
    scale: Scale
    results: list[Measurement] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def add(self, measurement: Measurement) -> None:
        self.results.append(measurement)
        verdict = {True: "[green]met[/]", False: "[red]not met[/]", None: ""}[measurement.met]
        console.print(f"  {measurement.benchmark}: SETU {measurement.setu} | baseline "
                      f"{measurement.baseline} | {measurement.ratio} {verdict}", highlight=False)


def spread(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def fmt_rate(samples: list[float]) -> str:
    median, low, high = spread(samples)
    return f"{median:,.0f} rows/s ({low:,.0f}–{high:,.0f})"


def fmt_seconds(samples: list[float]) -> str:
    median, low, high = spread(samples)
    return f"{median:.3f} s ({low:.3f}–{high:.3f})"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the benchmark database ----------------------------------------------------------------

@contextmanager
def bench_database() -> Iterator[None]:
    """Point dbt and `setu` at a fresh setu_bench database for the duration of the suite."""
    with connect(autocommit=True) as admin:
        admin.execute(f"drop database if exists {BENCH_DATABASE} with (force)")
        admin.execute(f"create database {BENCH_DATABASE}")
    with connect(autocommit=True, dbname=BENCH_DATABASE) as conn:
        available = conn.execute("select exists(select from pg_available_extensions"
                                 " where name = 'timescaledb')").fetchone()[0]
        if available:
            conn.execute("create extension if not exists timescaledb")
    saved = os.environ.get("SETU_PG_DATABASE")
    os.environ["SETU_PG_DATABASE"] = BENCH_DATABASE
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SETU_PG_DATABASE", None)
        else:
            os.environ["SETU_PG_DATABASE"] = saved


def bench_connect() -> psycopg.Connection:
    return connect(autocommit=True, dbname=BENCH_DATABASE)


def run_dbt(args: list[str]) -> None:
    code = dbt.run(["--quiet", *args])
    if code != dbt.EXIT_SUCCESS:
        raise click.ClickException(f"dbt {' '.join(args)} failed (exit {code})")


def reset_warehouse(conn: psycopg.Connection, machines: int) -> None:
    """Empty Bronze, master data for `machines` machines, and every model built empty."""
    for schema in ("bronze", "master", "silver", "gold", "webapp", "staging", "_etl", "_ingest"):
        conn.execute(f"drop schema if exists {schema} cascade")
    run_dbt(["run-operation", "setup_warehouse"])
    conn.execute("insert into master.sites values (1, 'BEN', 'Europe/Berlin')")
    conn.execute("insert into master.shifts values (1, 1, 'early', '06:00', '14:00'),"
                 " (1, 2, 'late', '14:00', '22:00'), (1, 3, 'night', '22:00', '06:00')")
    conn.execute("insert into master.machines select m, 'M' || m, 1"
                 " from generate_series(1, %s::int) as m", (machines,))
    run_dbt(["run"])


def add_telemetry(conn: psycopg.Connection, rows: int, machines: int, start_sample: int) -> int:
    """`rows` Bronze telemetry rows, 10 s apart per machine, continuing after start_sample."""
    samples = -(-rows // machines)
    conn.execute(
        """
        insert into bronze.machine_telemetry (
            time, ingested_at, machine_id, spindle_speed_rpm, feed_rate_mm_min,
            spindle_load_pct, spindle_temp_c, motor_temp_c, coolant_temp_c, power_kw, energy_kwh
        )
        select at, at, m, 8000 + s %% 500, 1200, 40 + s %% 30, 35 + s %% 20, 45 + s %% 15,
            22 + s %% 5, 5 + s %% 3, s * 0.014
        from generate_series(%(first)s::int, %(last)s::int) as s
        cross join generate_series(1, %(machines)s::int) as m
        cross join lateral (
            select timestamptz '2026-01-01 00:00:00+00' + s * interval '10 seconds' as at
        ) as t
        limit %(rows)s
        """,
        {"first": start_sample, "last": start_sample + samples - 1, "machines": machines,
         "rows": rows},
    )
    return start_sample + samples


def apply_model_batches(conn: psycopg.Connection, model: str) -> float:
    """Run one model's batches to the end through the _etl engine; returns seconds."""
    began = time.perf_counter()
    limits = conn.execute("select _etl.run_limits(%s)", (model,)).fetchone()[0]
    while True:
        has_work = conn.execute("select _etl.take_horizon(%s, %s)", (model, limits)).fetchone()[0]
        if not has_work:
            break
        conn.execute("select _etl.apply_batch(%s)", (model,))
    return time.perf_counter() - began


# -- the benchmarks ------------------------------------------------------------------------

def bench_ingest(suite: Suite) -> None:
    from setu.tools.bench_ingest import run_ingest_benchmark

    # Every ingest variant (17) loads these rows; each keeps its best of two runs.
    rows = {"dry-run": 20_000, "small": 300_000, "full": 1_000_000}[suite.scale.name]
    with bench_connect() as admin:
        reset_warehouse(admin, suite.scale.machines)
    with connect(dbname=BENCH_DATABASE) as conn:
        figures = run_ingest_benchmark(conn, rows=rows, repeats=min(2, suite.scale.repeats))
    setu_rate, ceiling = figures["setu_rows_per_second"], figures["ceiling_rows_per_second"]
    ratio = setu_rate / ceiling
    suite.add(Measurement(
        "Bronze ingest", f"{setu_rate:,.0f} rows/s", f"{ceiling:,.0f} rows/s (plain COPY, "
        "unindexed table)", f"{ratio:.2f}×", "≥ 250k rows/s, ≥ 0.7×",
        setu_rate >= 250_000 and ratio >= 0.7,
        f"{rows:,} telemetry rows; every variant measured: docs/benchmarks.md, Bronze ingest"))


def bench_transform(suite: Suite) -> None:
    scale = suite.scale
    silver_rates, bare_rates, pipeline_rates, refresh_rates = [], [], [], []
    with bench_connect() as conn:
        for _ in range(scale.repeats):
            reset_warehouse(conn, scale.machines)
            add_telemetry(conn, scale.transform_rows, scale.machines, 0)
            conn.execute("checkpoint")
            # The baseline: the same rows, a bare insert ... select into a table shaped and
            # indexed like the fact (a hypertable too when the fact is one).
            conn.execute("create table bench_bare (like silver.fct_telemetry including all)")
            if conn.execute("select exists(select from timescaledb_information.hypertables"
                            " where hypertable_name = 'fct_telemetry')"
                            if _has_timescaledb(conn) else "select false").fetchone()[0]:
                conn.execute("select create_hypertable('bench_bare', by_range('time'),"
                             " create_default_indexes => false)")
            began = time.perf_counter()
            conn.execute(
                "insert into bench_bare select id, machine_id, time, spindle_speed_rpm,"
                " feed_rate_mm_min, spindle_load_pct, spindle_temp_c, motor_temp_c,"
                " coolant_temp_c, power_kw, energy_kwh, 0 from bronze.machine_telemetry")
            bare_rates.append(scale.transform_rows / (time.perf_counter() - began))
            conn.execute("drop table bench_bare")

            seconds = apply_model_batches(conn, "fct_telemetry")
            silver_rates.append(scale.transform_rows / seconds)
            began = time.perf_counter()
            conn.execute("call _etl.run_pipeline('bench')")
            gold_seconds = time.perf_counter() - began
            pipeline_rates.append(scale.transform_rows / (seconds + gold_seconds))

            began = time.perf_counter()
            run_dbt(["run", "--full-refresh", "--select", "fct_telemetry+"])
            refresh_rates.append(scale.transform_rows / (time.perf_counter() - began))
    silver, bare = statistics.median(silver_rates), statistics.median(bare_rates)
    suite.add(Measurement(
        "Incremental Bronze→Silver (telemetry)", fmt_rate(silver_rates),
        f"{fmt_rate(bare_rates)} bare insert…select, same indexes", f"{silver / bare:.2f}×",
        "≥ 0.8× the bare insert", silver / bare >= 0.8,
        "validation (7 reasons incl. the duplicate probe), quarantine routing, watermark"))
    end_to_end = statistics.median(pipeline_rates)
    suite.add(Measurement(
        "Bronze→Gold end to end", fmt_rate(pipeline_rates),
        f"{fmt_rate(refresh_rates)} as dbt --full-refresh of the same models",
        f"{end_to_end / statistics.median(refresh_rates):.2f}×", "≥ 100k rows/s",
        end_to_end >= 100_000, "Silver batch + every Gold/serving model that reads telemetry"))


def _has_timescaledb(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists(select from pg_extension"
                        " where extname = 'timescaledb')").fetchone()[0]


def bench_cost_vs_size(suite: Suite) -> None:
    scale = suite.scale
    timings: dict[int, list[float]] = {}
    with bench_connect() as conn:
        for size in (scale.cost_small, scale.cost_large):
            reset_warehouse(conn, scale.machines)
            next_sample = add_telemetry(conn, size, scale.machines, 0)
            apply_model_batches(conn, "fct_telemetry")
            conn.execute("vacuum analyze silver.fct_telemetry")
            timings[size] = []
            for _ in range(scale.repeats):
                next_sample = add_telemetry(conn, scale.increment, scale.machines, next_sample)
                timings[size].append(apply_model_batches(conn, "fct_telemetry"))
    small, large = (statistics.median(timings[s]) for s in (scale.cost_small, scale.cost_large))
    suite.add(Measurement(
        f"Cost vs table size ({scale.increment:,} new rows)",
        f"{fmt_seconds(timings[scale.cost_large])} on {scale.cost_large:,} Silver rows",
        f"{fmt_seconds(timings[scale.cost_small])} on {scale.cost_small:,} Silver rows",
        f"{large / small:.2f}×", "≤ 1.3×", large / small <= 1.3))


def _timed_queries(conn: psycopg.Connection, query: str, params: list[tuple]) -> list[float]:
    timings = []
    with conn.cursor() as cur:
        for args in params:
            began = time.perf_counter()
            cur.execute(query, args, prepare=True)
            cur.fetchall()
            timings.append((time.perf_counter() - began) * 1000)
    return timings


def bench_state_lookup(suite: Suite) -> None:
    scale = suite.scale
    machines = scale.machines
    cache_p50, scan_p50 = {}, {}
    with bench_connect() as conn:
        reset_warehouse(conn, machines)
        rng = random.Random(7)
        for size in (scale.state_small, scale.state_large):
            conn.execute("truncate silver.fct_machine_cycles")
            conn.execute(
                """
                insert into silver.fct_machine_cycles (bronze_id, machine_id, cycle_start,
                    cycle_end, cycle_seconds, part_count, result, program_name)
                select n, 1 + n %% %(machines)s::int,
                    timestamptz '2026-01-01' + (n / %(machines)s::int) * interval '5 minutes',
                    timestamptz '2026-01-01' + (n / %(machines)s::int) * interval '5 minutes'
                        + interval '4 minutes',
                    240, n / %(machines)s::int, 'GOOD', 'P1'
                from generate_series(1, %(size)s::int) as n
                """, {"machines": machines, "size": size})
            conn.execute("analyze silver.fct_machine_cycles")
            run_dbt(["run-operation", "seed_cycle_state"])
            params = [(rng.randint(1, machines),) for _ in range(scale.read_samples)]
            cache = _timed_queries(conn, "select last_cycle_end, last_part_count from"
                                   " silver.latest_cycle_state where machine_id = %s", params)
            scan = _timed_queries(conn, "select max(cycle_end) from silver.fct_machine_cycles"
                                  " where machine_id = %s", params)
            cache_p50[size] = statistics.median(cache)
            scan_p50[size] = statistics.median(scan)
    growth_cache = cache_p50[scale.state_large] / cache_p50[scale.state_small]
    growth_scan = scan_p50[scale.state_large] / scan_p50[scale.state_small]
    suite.add(Measurement(
        "State lookup (latest cycle per machine)",
        f"p50 {cache_p50[scale.state_small]:.3f} → {cache_p50[scale.state_large]:.3f} ms "
        f"({scale.state_small:,} → {scale.state_large:,} cycles)",
        f"max() over the facts: p50 {scan_p50[scale.state_small]:.3f} → "
        f"{scan_p50[scale.state_large]:.3f} ms",
        f"growth {growth_cache:.2f}× vs {growth_scan:.1f}×", "O(1): flat", growth_cache <= 1.5))


GOLD_QUERIES = {
    "machine-day utilization": (
        "select * from gold.machine_utilization_daily where machine_id = %s and local_date = %s",
        """
        select state, sum(extract(epoch from least(valid_to, (%(day)s::date + 1)::timestamp
                at time zone 'Europe/Berlin') - greatest(valid_from, %(day)s::timestamp
                at time zone 'Europe/Berlin')))
        from silver.fct_state_intervals
        where machine_id = %(machine)s and valid_to is not null
            and valid_from < (%(day)s::date + 1)::timestamp at time zone 'Europe/Berlin'
            and valid_to > %(day)s::timestamp at time zone 'Europe/Berlin'
        group by state
        """,
    ),
    "a day's hourly energy": (
        "select bucket, kwh from gold.energy_hourly where machine_id = %s"
        " and bucket >= %s::timestamp at time zone 'Europe/Berlin'"
        " and bucket < (%s::date + 1)::timestamp at time zone 'Europe/Berlin' order by bucket",
        """
        select date_bin('1 hour', time, timestamptz '2000-01-01') as bucket,
            sum(greatest(delta, 0)) as kwh
        from (
            select time, energy_kwh - lag(energy_kwh) over (order by time) as delta
            from silver.fct_telemetry
            where machine_id = %(machine)s
                and time >= %(day)s::timestamp at time zone 'Europe/Berlin' - interval '1 hour'
                and time < (%(day)s::date + 1)::timestamp at time zone 'Europe/Berlin'
        ) as readings
        group by 1 order by 1
        """,
    ),
    "a week of alert counts": (
        "select local_date, severity_class, alert_count from gold.alerts_daily"
        " where machine_id = %s and local_date > %s::date - 7 and local_date <= %s::date",
        """
        select (time at time zone 'Europe/Berlin')::date, severity_class, count(*)
        from silver.fct_alarm_events
        where machine_id = %(machine)s and event = 'RAISED'
            and time >= (%(day)s::date - 6)::timestamp at time zone 'Europe/Berlin'
            and time < (%(day)s::date + 1)::timestamp at time zone 'Europe/Berlin'
        group by 1, 2
        """,
    ),
    "current status of a machine": (
        "select * from webapp.machine_status_current where machine_id = %s",
        """
        select
            (select state from silver.fct_state_intervals where machine_id = %(machine)s
             order by valid_from desc limit 1),
            (select power_kw from silver.fct_telemetry where machine_id = %(machine)s
             and power_kw is not null order by time desc limit 1),
            (select count(*) from (select distinct on (alarm_code) event
             from silver.fct_alarm_events where machine_id = %(machine)s
             order by alarm_code, time desc) as latest where event = 'RAISED')
        """,
    ),
}


def fill_gold_and_silver(conn: psycopg.Connection, scale: Scale) -> None:
    """Gold for the whole fleet; Silver at full density for a sample of machines (a single
    machine's query reads only that machine's rows, by index)."""
    days, machines, sample = scale.gold_days, scale.gold_machines, scale.silver_sample_machines
    reset_warehouse(conn, machines)
    conn.execute(
        """
        insert into gold.machine_utilization_daily
        select m, date '2026-01-01' + d, 3600, 7200, 50000 + m %% 1000, 3600, 600, 0,
            70.0, 1
        from generate_series(1, %(machines)s::int) as m
        cross join generate_series(0, %(days)s::int - 1) as d
        """, {"machines": machines, "days": days})
    conn.execute(
        """
        insert into gold.energy_hourly
        select m, timestamptz '2026-01-01' + h * interval '1 hour', 4.5, 1
        from generate_series(1, %(machines)s::int) as m
        cross join generate_series(0, %(days)s::int * 24 - 1) as h
        """, {"machines": machines, "days": days})
    conn.execute(
        """
        insert into gold.alerts_daily
        select m, date '2026-01-01' + d, c, 1 + (m + d) %% 4, 1
        from generate_series(1, %(machines)s::int) as m
        cross join generate_series(0, %(days)s::int - 1) as d
        cross join unnest(array['error', 'warning']) as c
        """, {"machines": machines, "days": days})
    conn.execute(
        "insert into webapp.machine_status_current (machine_id, state, state_since,"
        " open_alarm_count, refreshed_at) select m, 'RUNNING', now(), 0, now()"
        " from generate_series(1, %s::int) as m on conflict do nothing", (machines,))
    conn.execute(
        """
        insert into silver.fct_state_intervals (bronze_id, machine_id, state, program_name,
            valid_from, valid_to)
        select row_number() over (), m, (array['RUNNING', 'IDLE', 'SETUP'])[1 + i %% 3], 'P1',
            timestamptz '2026-01-01' + i * interval '72 minutes',
            timestamptz '2026-01-01' + (i + 1) * interval '72 minutes'
        from generate_series(1, %(sample)s::int) as m
        cross join generate_series(0, %(days)s::int * 20 - 1) as i
        """, {"sample": sample, "days": days})
    conn.execute(
        """
        insert into silver.fct_telemetry (bronze_id, machine_id, time, power_kw, energy_kwh)
        select row_number() over (), m, timestamptz '2026-01-01' + s * interval '10 seconds',
            5, s * 0.014
        from generate_series(1, %(sample)s::int) as m
        cross join generate_series(0, 3 * 8640 - 1) as s
        """, {"sample": sample})
    conn.execute(
        """
        insert into silver.fct_alarm_events (bronze_id, machine_id, time, alarm_code, severity,
            severity_class, event)
        select row_number() over (), m, timestamptz '2026-01-01' + i * interval '1 hour',
            'A' || i %% 7, 'Error', 'error', (array['RAISED', 'CLEARED'])[1 + i %% 2]
        from generate_series(1, %(sample)s::int) as m
        cross join generate_series(0, %(days)s::int * 24 - 1) as i
        """, {"sample": sample, "days": days})
    conn.execute("vacuum analyze")


def bench_gold_reads(suite: Suite) -> None:
    scale = suite.scale
    rng = random.Random(11)
    with bench_connect() as conn:
        fill_gold_and_silver(conn, scale)
        for name, (gold_sql, silver_sql) in GOLD_QUERIES.items():
            picks = [(rng.randint(1, scale.silver_sample_machines),
                      f"2026-01-{rng.randint(2, 3):02d}") for _ in range(scale.read_samples)]
            arity = gold_sql.count("%s")
            gold_params = [(m, *([d] * (arity - 1))) for m, d in picks]
            silver_params = [{"machine": m, "day": d} for m, d in picks]
            gold_ms, silver_ms = [], []
            for gold_args, silver_args in zip(gold_params, silver_params, strict=True):
                gold_ms += _timed_queries(conn, gold_sql, [gold_args])
                silver_ms += _timed_queries(conn, silver_sql, [silver_args])
            p50, p99 = statistics.median(gold_ms), percentile(gold_ms, 0.99)
            silver_p50 = statistics.median(silver_ms)
            speedup = silver_p50 / p50
            suite.add(Measurement(
                f"Gold read: {name}", f"p50 {p50:.3f} ms, p99 {p99:.3f} ms",
                f"from Silver: p50 {silver_p50:.3f} ms", f"{speedup:,.0f}×",
                "p50 < 1 ms, p99 < 5 ms, ≥ 100×", p50 < 1 and p99 < 5 and speedup >= 100,
                f"{scale.gold_machines:,} machines × {scale.gold_days} days of Gold"))
        # the same reads while gateways write and the pipeline runs round after round
        stop = threading.Event()

        def pipeline_rounds() -> None:
            with connect(dbname=BENCH_DATABASE, autocommit=True) as job:
                while not stop.is_set():
                    job.execute("call _etl.run_pipeline('bench')")

        loaded_ms: list[float] = []
        runner = threading.Thread(target=pipeline_rounds, daemon=True)
        with LatencyWriters(4, scale.gold_machines):
            runner.start()
            for gold_sql, _ in GOLD_QUERIES.values():
                arity = gold_sql.count("%s")
                params = [(rng.randint(1, scale.gold_machines),
                           *([f"2026-01-{rng.randint(2, 3):02d}"] * (arity - 1)))
                          for _ in range(scale.read_samples)]
                loaded_ms += _timed_queries(conn, gold_sql, params)
            stop.set()
            runner.join(timeout=300)
        p50, p99 = statistics.median(loaded_ms), percentile(loaded_ms, 0.99)
        suite.add(Measurement(
            "Gold per-machine reads under ingest + pipeline", f"p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            "—", "—", "p99 < 5 ms", p99 < 5,
            f"the four reads above, {len(loaded_ms)} samples; 4 writers and back-to-back"
            " pipeline rounds running"))


def bench_noop_build(suite: Suite) -> None:
    """Wall time of `setu build` with nothing new, as a scheduled job would run it."""
    with bench_connect() as conn:
        reset_warehouse(conn, suite.scale.machines)
        add_telemetry(conn, suite.scale.increment, suite.scale.machines, 0)
    run_dbt(["build"])
    timings = []
    setu = Path(sys.executable).with_name("setu")
    for _ in range(max(1, suite.scale.repeats - 1)):
        began = time.perf_counter()
        result = subprocess.run([str(setu), "build", "--quiet"], capture_output=True, text=True,
                                cwd=PROJECT_DIR, env=os.environ.copy())
        timings.append(time.perf_counter() - began)
        if result.returncode != 0:
            raise click.ClickException(f"no-op build failed: {result.stdout[-2000:]}")
    median = statistics.median(timings)
    suite.add(Measurement("No-op `setu build`", fmt_seconds(timings), "—", "—", "≤ 15 s wall",
                          median <= 15, "dbt start-up, parse, 12 incremental models, all tests"))


# -- writers under builds -------------------------------------------------------------------

class LatencyWriters:
    """Gateways: threads committing 1-15 telemetry rows per transaction, each held open
    0-200 ms before its commit; records the time each transaction spent in the database
    (insert + commit, the hold excluded), which is what a horizon that waits would add."""

    def __init__(self, count: int, machines: int) -> None:
        self.count, self.machines = count, machines
        self.stop = threading.Event()
        self.latencies_ms: list[float] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, args=(i,), daemon=True)
                        for i in range(count)]

    def write(self, index: int) -> None:
        rng = random.Random(index)
        with connect(dbname=BENCH_DATABASE) as conn:
            while not self.stop.is_set():
                rows = rng.randint(1, 15)
                began = time.perf_counter()
                conn.execute(
                    "insert into bronze.machine_telemetry (time, machine_id, power_kw,"
                    " energy_kwh) select now() - n * interval '1 ms', %s, 5, 1"
                    " from generate_series(1, %s) as n", (rng.randint(1, self.machines), rows))
                inserted = time.perf_counter()
                time.sleep(rng.uniform(0, 0.2))
                held = time.perf_counter()
                conn.commit()
                done = time.perf_counter()
                with self.lock:
                    self.latencies_ms.append(((inserted - began) + (done - held)) * 1000)

    def __enter__(self) -> LatencyWriters:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _sweep_loop(stop: threading.Event, old_share_lock: bool) -> None:
    """A runner taking horizons and batches of fct_telemetry back to back, as a build or
    a job does; old_share_lock adds the former horizon, LOCK ... IN SHARE MODE."""
    with connect(dbname=BENCH_DATABASE, autocommit=True) as conn:
        while not stop.is_set():
            if old_share_lock:
                with conn.transaction():
                    conn.execute("lock table bronze.machine_telemetry in share mode")
                    conn.execute("select max(id) from bronze.machine_telemetry")
            apply_model_batches(conn, "fct_telemetry")


def bench_writer_latency(suite: Suite) -> None:
    seconds = {"dry-run": 2, "small": 8, "full": 15}[suite.scale.name]
    with bench_connect() as conn:
        reset_warehouse(conn, suite.scale.machines)
    phases = [("idle", False, False, False), ("builds", True, False, False),
              ("builds + long tx", True, False, True),
              ("old SHARE lock, builds", True, True, False),
              ("old SHARE lock, builds + long tx", True, True, True)]
    figures: dict[str, tuple[float, float, int]] = {}
    for name, sweeping, old_lock, long_tx in phases:
        stop = threading.Event()
        runner = threading.Thread(target=_sweep_loop, args=(stop, old_lock), daemon=True)
        with contextlib.ExitStack() as stack:
            if long_tx:
                # one large `setu ingest` file: a transaction open for the whole phase
                holder = stack.enter_context(connect(dbname=BENCH_DATABASE))
                holder.execute("insert into bronze.machine_telemetry (time, machine_id)"
                               " values (now(), 1)")
            writers = stack.enter_context(LatencyWriters(4, suite.scale.machines))
            if sweeping:
                runner.start()
            time.sleep(seconds)
            if long_tx:
                holder.commit()
        stop.set()
        if sweeping:
            runner.join(timeout=120)
        samples = writers.latencies_ms
        figures[name] = (statistics.median(samples), percentile(samples, 0.99), len(samples))
    idle_p99 = figures["idle"][1]
    for name, (p50, p99, count) in figures.items():
        if name == "idle":
            continue
        new_engine = not name.startswith("old")
        suite.add(Measurement(
            f"Writer latency, {name}", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            f"no build: p50 {figures['idle'][0]:.1f} ms, p99 {idle_p99:.1f} ms",
            f"{p99 / idle_p99:.1f}× p99", "writers never wait for a horizon" if new_engine
            else "— (the former horizon, for comparison)",
            p99 <= 3 * idle_p99 + 20 if new_engine else None,
            f"4 writers, 1–15 rows per transaction held 0–200 ms, {count} transactions in "
            f"{seconds} s; insert + commit time, the hold excluded"))


# -- the pipeline by branches ------------------------------------------------------------------

def add_other_sources(conn: psycopg.Connection, rows: int, machines: int) -> None:
    """Cycles, state changes and alarms beside the telemetry, for the branch benchmark."""
    conn.execute(
        """
        insert into bronze.machine_cycles (time, ingested_at, machine_id, cycle_start,
            program_name, part_count, result, std_cycle_seconds, std_load_unload_seconds,
            down_threshold_seconds)
        select at + interval '4 minutes', at + interval '4 minutes', m, at, 'P1', s, 'GOOD',
            200, 30, 300
        from generate_series(1, %(samples)s::int) as s
        cross join generate_series(1, %(machines)s::int) as m
        cross join lateral (
            select timestamptz '2026-01-01' + s * interval '5 minutes' as at) as t
        """, {"samples": -(-rows // machines), "machines": machines})
    conn.execute(
        """
        insert into bronze.machine_state_events (time, ingested_at, machine_id, state,
            program_name)
        select at, at, m, (array['RUNNING', 'IDLE', 'SETUP'])[1 + s %% 3], 'P1'
        from generate_series(1, %(samples)s::int) as s
        cross join generate_series(1, %(machines)s::int) as m
        cross join lateral (
            select timestamptz '2026-01-01' + s * interval '17 minutes' as at) as t
        """, {"samples": -(-rows // machines), "machines": machines})
    conn.execute(
        """
        insert into bronze.alarms (time, ingested_at, machine_id, alarm_code, severity,
            message, event)
        select at, at, m, 'A' || s %% 7, 'Error', 'spindle',
            (array['RAISED', 'CLEARED'])[1 + s %% 2]
        from generate_series(1, %(samples)s::int) as s
        cross join generate_series(1, %(machines)s::int) as m
        cross join lateral (
            select timestamptz '2026-01-01' + s * interval '23 minutes' as at) as t
        """, {"samples": -(-rows // machines), "machines": machines})


def bench_branches(suite: Suite) -> None:
    scale = suite.scale
    serial, parallel = [], []
    for _ in range(scale.repeats):
        for mode in ("serial", "parallel"):
            with bench_connect() as conn:
                reset_warehouse(conn, scale.machines)
                add_telemetry(conn, scale.transform_rows // 2, scale.machines, 0)
                add_other_sources(conn, scale.transform_rows // 4, scale.machines)
                conn.execute("checkpoint")
                branches = [row[0] for row in conn.execute(
                    "select distinct branch from _etl.pipeline_branches()")]
                began = time.perf_counter()
                if mode == "serial":
                    conn.execute("call _etl.run_pipeline('bench', 100000)")
                else:
                    def run(branch: str) -> None:
                        with connect(dbname=BENCH_DATABASE, autocommit=True) as job:
                            job.execute("call _etl.run_pipeline('bench', 100000, %s)",
                                        (branch,))
                    workers = [threading.Thread(target=run, args=(b,)) for b in branches]
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()
                    # a model shared by two branches may have been left for the next round
                    conn.execute("call _etl.run_pipeline('bench', 100000)")
                (serial if mode == "serial" else parallel).append(time.perf_counter() - began)
    speedup = statistics.median(serial) / statistics.median(parallel)
    suite.add(Measurement(
        "Pipeline round, one job per DAG branch", fmt_seconds(parallel),
        f"{fmt_seconds(serial)} one job, models in turn", f"{speedup:.2f}×", "faster than one job",
        speedup > 1.0, f"{len(branches)} branches; {scale.transform_rows // 2:,} telemetry rows"
        f" + cycles, states, alarms; {os.cpu_count()} cores shared"))


# -- fleet dashboards --------------------------------------------------------------------------

FLEET_QUERIES = {
    "utilization": (
        "select local_date, avg(utilization_pct), sum(running_seconds)"
        " from gold.machine_utilization_daily"
        " where local_date > %(day)s::date - %(days)s and local_date <= %(day)s::date"
        " group by 1",
        """
        select (valid_from at time zone 'Europe/Berlin')::date, state,
            sum(extract(epoch from valid_to - valid_from))
        from silver.fct_state_intervals
        where valid_from >= (%(day)s::date - %(days)s + 1)::timestamp at time zone 'Europe/Berlin'
            and valid_from < (%(day)s::date + 1)::timestamp at time zone 'Europe/Berlin'
        group by 1, 2
        """,
    ),
    "alerts": (
        "select local_date, severity_class, sum(alert_count) from gold.alerts_daily"
        " where local_date > %(day)s::date - %(days)s and local_date <= %(day)s::date"
        " group by 1, 2",
        """
        select (time at time zone 'Europe/Berlin')::date, severity_class, count(*)
        from silver.fct_alarm_events
        where event = 'RAISED'
            and time >= (%(day)s::date - %(days)s + 1)::timestamp at time zone 'Europe/Berlin'
            and time < (%(day)s::date + 1)::timestamp at time zone 'Europe/Berlin'
        group by 1, 2
        """,
    ),
    "energy": (
        "select local_date, sum(kwh_total) from gold.energy_daily"
        " where local_date > %(day)s::date - %(days)s and local_date <= %(day)s::date"
        " group by 1",
        None,
    ),
    "OEE (availability × quality)": (
        """
        select u.local_date,
            sum(u.running_seconds) / nullif(sum(u.running_seconds + u.idle_seconds
                + u.setup_seconds + u.alarm_seconds), 0)
            * sum(p.good_parts)::float / nullif(sum(p.good_parts + p.scrap_parts), 0)
        from gold.machine_utilization_daily as u
        inner join gold.program_history_daily as p
            on u.machine_id = p.machine_id and u.local_date = p.local_date
        where u.local_date > %(day)s::date - %(days)s and u.local_date <= %(day)s::date
        group by 1
        """,
        None,
    ),
}


def bench_fleet_reads(suite: Suite) -> None:
    # the dashboards' target is a plant of 10,000 machines, whatever the scale
    scale = suite.scale if suite.scale.name == "dry-run" else dataclasses.replace(
        suite.scale, gold_machines=10_000)
    machines, days = scale.gold_machines, scale.gold_days
    with bench_connect() as conn:
        fill_gold_and_silver(conn, scale)
        conn.execute(
            """
            insert into gold.energy_daily
            select m, date '2026-01-01' + d, 108.0,
                timestamptz '2026-01-01 10:00+00' + d * interval '1 day', 4.5, 1
            from generate_series(1, %(machines)s::int) as m
            cross join generate_series(0, %(days)s::int - 1) as d
            """, {"machines": machines, "days": days})
        conn.execute(
            """
            insert into gold.program_history_daily
            select m, date '2026-01-01' + d, 'P1', 200, 190, 10, 48000, 1
            from generate_series(1, %(machines)s::int) as m
            cross join generate_series(0, %(days)s::int - 1) as d
            """, {"machines": machines, "days": days})
        # Silver for the whole fleet over the benchmark's week, for the "from Silver" answers
        conn.execute("truncate silver.fct_state_intervals, silver.fct_alarm_events")
        conn.execute(
            """
            insert into silver.fct_state_intervals (bronze_id, machine_id, state, program_name,
                valid_from, valid_to)
            select row_number() over (), m, (array['RUNNING', 'IDLE', 'SETUP'])[1 + i %% 3],
                'P1', timestamptz '2026-01-01' + i * interval '72 minutes',
                timestamptz '2026-01-01' + (i + 1) * interval '72 minutes'
            from generate_series(1, %(machines)s::int) as m
            cross join generate_series(0, 8 * 20 - 1) as i
            """, {"machines": machines})
        conn.execute(
            """
            insert into silver.fct_alarm_events (bronze_id, machine_id, time, alarm_code,
                severity, severity_class, event)
            select row_number() over (), m, timestamptz '2026-01-01' + i * interval '1 hour',
                'A' || i %% 7, 'Error', 'error', (array['RAISED', 'CLEARED'])[1 + i %% 2]
            from generate_series(1, %(machines)s::int) as m
            cross join generate_series(0, 8 * 24 - 1) as i
            """, {"machines": machines})
        conn.execute("vacuum analyze")
        samples = max(20, scale.read_samples // 10)
        for name, (gold_sql, silver_sql) in FLEET_QUERIES.items():
            for span, span_days in (("a day", 1), ("a week", 7)):
                params = [{"day": "2026-01-07", "days": span_days}] * samples
                gold_ms = _timed_queries(conn, gold_sql, params)
                silver_ms = (_timed_queries(conn, silver_sql, params[:max(3, samples // 10)])
                             if silver_sql else [])
                p50, p99 = statistics.median(gold_ms), percentile(gold_ms, 0.99)
                if silver_ms:
                    silver_p50 = statistics.median(silver_ms)
                    speedup = silver_p50 / p50
                    baseline, ratio = f"from Silver: p50 {silver_p50:.1f} ms", f"{speedup:,.0f}×"
                    met = p99 < 50 and speedup >= 100
                else:
                    baseline, ratio, met = "— (not computed from Silver here)", "—", p99 < 50
                suite.add(Measurement(
                    f"Fleet panel: {name}, {span}", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                    baseline, ratio, "p99 < 50 ms, ≥ 100×", met,
                    f"all {machines:,} machines, {days} days of Gold"))


BENCHMARKS: list[tuple[str, Callable[[Suite], None]]] = [
    ("Bronze ingest", bench_ingest),
    ("incremental transform", bench_transform),
    ("cost vs table size", bench_cost_vs_size),
    ("state lookup", bench_state_lookup),
    ("Gold reads", bench_gold_reads),
    ("fleet reads", bench_fleet_reads),
    ("writer latency", bench_writer_latency),
    ("branches", bench_branches),
    ("no-op build", bench_noop_build),
]


def write_report(suite: Suite, path: Path) -> None:
    target = load_target()
    with bench_connect() as conn:
        pg = conn.execute("select current_setting('server_version')").fetchone()[0]
        ts = conn.execute("select extversion from pg_extension"
                          " where extname = 'timescaledb'").fetchone()
    load_1m, load_5m, load_15m = os.getloadavg()
    rows = "\n".join(
        f"| {m.benchmark} | {m.setu} | {m.baseline} | {m.ratio} | {m.target} | "
        f"{ {True: 'met', False: '**not met**', None: '—'}[m.met] } | {m.notes} |"
        for m in suite.results)
    section = f"""## `setu bench --scale {suite.scale.name}`

Run {suite.started:%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores,
Python {platform.python_version()}), PostgreSQL {pg}, TimescaleDB
{ts[0] if ts else 'none'}, target `{target.name}`; load average at the end
{load_1m:.1f} / {load_5m:.1f} / {load_15m:.1f} (1/5/15 min). Medians of {suite.scale.repeats} runs
with the min–max spread; SETU and its baseline measured alternately in the same process.

| benchmark | SETU | baseline in the same run | ratio | target | verdict | notes |
| --- | --- | --- | --- | --- | --- | --- |
{rows}
"""
    marker_start = f"<!-- setu bench {suite.scale.name} start -->"
    marker_end = f"<!-- setu bench {suite.scale.name} end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{marker_start}\n{section}{marker_end}"
    if marker_start in text:
        before, rest = text.split(marker_start, 1)
        after = rest.split(marker_end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


@click.command("bench")
@click.option("--scale", type=click.Choice(["small", "full"]), default="small",
              show_default=True, help="small: minutes on 2 cores; full: 10,000 machines")
@click.option("--dry-run", is_flag=True,
              help="tiny sizes, one repeat, no results page: proves the suite still runs")
@click.option("--only", multiple=True, type=click.Choice([name for name, _ in BENCHMARKS]),
              help="run only these benchmarks (repeatable)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=PROJECT_DIR / "docs" / "benchmarks.md", show_default=True)
def bench(scale: str, dry_run: bool, only: tuple[str, ...], output: Path) -> None:
    """Run SETU's benchmarks side by side with their baselines and write the results page."""
    from setu.warehouse.preflight import ensure_database

    ensure_database()
    suite = Suite(SCALES["dry-run" if dry_run else scale])
    with bench_database():
        for name, benchmark in BENCHMARKS:
            if only and name not in only:
                continue
            console.rule(name)
            began = time.perf_counter()
            benchmark(suite)
            console.print(f"  ({time.perf_counter() - began:.0f} s)", highlight=False)
        if not dry_run:
            write_report(suite, output)
            console.print(f"results written to {output}", highlight=False)
