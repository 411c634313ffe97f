"""The short soak: 30 s of a simulated fleet at 1,000 events/s, the pipeline every 10 s and dbt
in the middle; the rate holds, the lag stays bounded and every Bronze id is reconciled."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conftest import own_database
from setu.tools.soak import (
    REPORT_END,
    REPORT_START,
    SoakConfig,
    SoakResult,
    figure_rows,
    percentile,
    run_soak,
    write_report,
    write_side_file,
)

DATABASE = "setu_test_soak"


@pytest.fixture(scope="module")
def soak_db(cluster, dbt_run) -> Iterator[str]:
    """A database of this module's own with every model built (registered for the jobs)."""
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run"]) == 0
        yield url


@pytest.mark.slow
def test_short_soak_holds_the_rate_bounds_the_lag_and_reconciles(soak_db, tmp_path):
    config = SoakConfig(
        rate=1_000, duration_seconds=30, pipeline_every=10, sample_every=2,
        warmup_seconds=15 * 60, max_lag_seconds=30, scheduler="thread",
        # dbt on the busiest model while the job and the stream run (a full build takes
        # longer than this test may)
        build_at=0.4, build_args=("run", "--select", "fct_telemetry"),
        report=tmp_path / "soak.md")
    lines: list[str] = []

    result = run_soak(config, say=lines.append)

    checks = {name: (ok, detail) for name, ok, detail in result.checks()}
    assert all(ok for ok, _ in checks.values()), checks
    assert abs(result.events_per_second - config.rate) <= 0.2 * config.rate
    assert result.drained and result.max_lag[0] < 30
    assert result.rows_written == result.bronze_rows == result.reconciled > 20_000
    for table, counts in result.reconciliation.items():
        assert counts.rows == counts.once, (table, counts)
        assert counts.missing == counts.several == counts.unprocessed == 0, (table, counts)
    # The warm-up: machines in production, so every kind of event flows, not only telemetry.
    for table in ("machine_telemetry", "machine_cycles", "machine_state_events",
                  "platform_extension"):
        assert result.rows.get(table, 0) > 0, table
    assert result.pipeline_runs >= 2 and result.pipeline_failed == 0
    assert result.build_exit == 0

    write_report(config.report, result)
    write_report(config.report, result)  # the figures section is replaced, not repeated
    text = config.report.read_text()
    assert text.count(REPORT_START) == text.count(REPORT_END) == 1
    assert "events/s held" in text and "rows reconciled" in text


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([0.25], 0.99) == 0.25
    assert percentile([], 0.5) == 0.0


def test_side_file_is_what_setu_ingest_takes(tmp_path):
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    path = tmp_path / "machine_telemetry-1.csv"
    write_side_file(path, 500, [11, 12, 13], now, number=7)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 500
    times = [datetime.fromisoformat(row["time"]) for row in rows]
    assert min(times) >= now - timedelta(hours=1) and max(times) < now
    assert {row["machine_id"] for row in rows} == {"11", "12", "13"}
    # no (machine, time) twice: nothing of the file is a duplicate of itself
    assert len({(row["machine_id"], row["time"]) for row in rows}) == 500
    other = tmp_path / "machine_telemetry-2.csv"
    write_side_file(other, 500, [11, 12, 13], now, number=8)
    assert path.read_text() != other.read_text()


def test_report_gives_latency_backlog_and_side_ingest():
    config = SoakConfig(rate=100, duration_seconds=10, side_ingest_rows=1000,
                        side_ingest_every=5, report=None)
    result = SoakResult(config, datetime(2026, 12, 6, 10, 0, tzinfo=UTC), 10, 2)
    result.rows = {"machine_telemetry": 1000}
    result.stream_seconds = 10.0
    result.commit_seconds = [0.001 * n for n in range(1, 101)]  # 1 .. 100 ms
    result.tick_write_seconds = [0.002 * n for n in range(1, 101)]  # 2 .. 200 ms
    result.lag_samples = [(1.0, 4.0, "fct_telemetry"), (2.0, 8.0, "fct_telemetry"),
                          (3.0, 6.0, "fct_telemetry")]
    result.backlog_samples = [(1.0, 300, 2), (2.0, 900, 5), (3.0, 600, 3)]
    result.side_ingests = [(5.0, 1000, 2.0, 0), (10.0, 1000, 4.0, 0)]
    figures = dict(figure_rows(result))
    assert figures["writer latency"].startswith(
        "COMMIT p50 50 ms, p99 99 ms; a tick's COPY + COMMIT p50 100 ms, p99 198 ms")
    assert figures["pipeline backlog"] == (
        "age lag p50 6 s, max 8 s; Bronze ids behind Silver p50 600, max 900;"
        " Silver batches behind Gold p50 3, max 5")
    assert figures["side ingest"].startswith(
        "`setu ingest` of 1,000 telemetry rows every 5 s: 2 files, 2,000 rows, 3.0 s per file")
    # the side rows are reconciled with the stream's
    checks = {name: detail for name, _, detail in result.checks()}
    assert "(1,000 written + 2,000 by side ingest;" in checks["every Bronze id reconciled"]


@pytest.mark.slow
def test_short_soak_with_side_ingest_reconciles_both(soak_db, tmp_path):
    config = SoakConfig(
        rate=500, duration_seconds=30, pipeline_every=10, sample_every=2,
        warmup_seconds=15 * 60, max_lag_seconds=60, scheduler="thread", build_at=None,
        side_ingest_rows=20_000, side_ingest_every=10, report=tmp_path / "soak.md")

    result = run_soak(config, say=lambda line: None)

    checks = {name: (ok, detail) for name, ok, detail in result.checks()}
    assert all(ok for ok, _ in checks.values()), checks
    assert len(result.side_ingests) >= 2
    assert result.side_rows == 20_000 * len(result.side_ingests)
    assert result.bronze_rows == result.reconciled == result.rows_written + result.side_rows
    for table, counts in result.reconciliation.items():
        assert counts.missing == counts.several == counts.unprocessed == 0, (table, counts)
    assert len(result.commit_seconds) >= 20 and result.backlog_samples
