"""`setu doctor` against the real server: versions, license and the features they switch."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner

from setu.cli import main
from setu.warehouse.capabilities import read_capabilities
from setu.warehouse.cluster import Cluster


def test_capabilities_of_the_embedded_server(conn: psycopg.Connection) -> None:
    caps = read_capabilities(conn)
    assert caps.pg_version.startswith("15.")
    assert caps.timescaledb_version is not None
    assert caps.timescaledb_version.startswith("2.19.")
    assert caps.license == "apache"
    assert caps.timescaledb and not caps.community
    assert "timescaledb" in caps.preload and "pg_cron" in caps.preload
    assert caps.wal_level == "logical"
    features = {name: enabled for name, enabled, _ in caps.features()}
    assert features["hypertables on time"]
    assert not features["continuous aggregates"], "Community-only under the Apache license"
    assert not features["compression / columnstore"]
    assert features["in-database jobs (pg_cron)"]


def test_setu_doctor_reports_timescaledb_and_license(cluster: Cluster) -> None:
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in result.output.splitlines() if ":" in line and "│" not in line}
    assert lines["target"].startswith(f"local (127.0.0.1:{cluster.port}/setu)")
    assert lines["PostgreSQL"].startswith("15.")
    assert lines["TimescaleDB"].startswith("2.19.")
    assert lines["license"] == "apache"
    assert "continuous aggregates" in result.output


def test_setu_doctor_without_timescaledb(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database without the extension: doctor still answers, and says what is off."""
    cluster.create_database("setu_doctor_plain", extensions=False)
    monkeypatch.setenv("SETU_PG_DATABASE", "setu_doctor_plain")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "TimescaleDB : not installed (available: 2.19." in result.output
    assert "license     : none" in result.output
