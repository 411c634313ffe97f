"""The benchmark suite still runs end to end (tiny sizes; no timing is asserted here)."""

from __future__ import annotations

from click.testing import CliRunner

from setu.cli import main


def test_bench_dry_run_runs_every_benchmark(cluster, tmp_path):
    output = tmp_path / "benchmarks.md"
    result = CliRunner().invoke(main, ["bench", "--dry-run", "--output", str(output)])
    assert result.exit_code == 0, result.output
    for benchmark in ("Bronze ingest", "Incremental Bronze→Silver", "Cost vs table size",
                      "State lookup", "Gold read: machine-day utilization",
                      "No-op `setu build`", "Fleet panel: utilization, a week",
                      "Fleet panel: OEE", "Gold per-machine reads under ingest + pipeline",
                      "Writer latency, builds + long tx", "Writer latency, old SHARE lock",
                      "Pipeline round, one job per DAG branch"):
        assert benchmark in result.output
    assert not output.exists(), "a dry run must not write the results page"
