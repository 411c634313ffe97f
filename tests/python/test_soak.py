"""The short soak: 30 s of a simulated fleet at 1,000 events/s, the pipeline every 10 s and dbt
in the middle; the rate holds, the lag stays bounded and every Bronze id is reconciled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import own_database
from setu.tools.soak import REPORT_END, REPORT_START, SoakConfig, run_soak, write_report

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
