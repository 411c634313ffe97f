"""`setu report`: one HTML page (and a PNG) with the dashboard panels of a day, from Gold."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from analyst_build import Build, on_database, small_build
from setu.cli import main


@pytest.fixture(scope="module")
def build(cluster, dbt_run) -> Build:
    return small_build(cluster, dbt_run)


def report(build: Build, *args: str):
    with on_database(build.database):
        return CliRunner().invoke(main, ["report", *args], catch_exceptions=False)


def test_fleet_report_has_every_panel_with_gold_numbers(build: Build, tmp_path: Path) -> None:
    out = tmp_path / "fleet.html"
    result = report(build, "--day", build.day, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for title in ("Utilization", "Operational timeline", "Temperature box plots", "OEE",
                  "Program history", "Energy per hour", "Alerts"):
        assert f"<h2>{title}" in page
    assert page.count("<svg") >= 4 and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    with psycopg.connect(build.url) as conn:
        utilization = conn.execute(
            "select utilization_pct from gold.machine_utilization_daily"
            " where local_date = %s and utilization_pct is not null", (build.day,)).fetchall()
        total = conn.execute(
            "select sum(kwh_total) from gold.energy_daily"
            " where local_date = %s", (build.day,)).fetchone()[0]
    for (pct,) in utilization:
        assert f"{pct:.1f} %" in page
    shown = re.search(r"day total ([0-9.]+) kWh", page)
    assert shown and float(shown[1]) == pytest.approx(total, abs=0.006)
    # 48 half-hour slots per machine on a day without a clock change.
    slots = re.findall(r"<title>\d\d:\d\d (?:[A-Z]+|no data)</title>", page)
    assert slots and len(slots) % 48 == 0


def test_oee_panel_shows_gold_factors_and_stoppages(build: Build, tmp_path: Path) -> None:
    out = tmp_path / "oee.html"
    assert report(build, "--day", build.day, "--out", str(out)).exit_code == 0
    page = out.read_text()
    panel = page.split("<h2>OEE", 1)[1].split("</section>", 1)[0]
    with psycopg.connect(build.url) as conn:
        factors = conn.execute(
            "select availability, performance, quality, oee from gold.oee_daily"
            " where local_date = %s", (build.day,)).fetchall()
        stops = conn.execute(
            "select reason_code, sum(down_seconds) from gold.downtime_daily"
            " where local_date = %s group by 1", (build.day,)).fetchall()
    assert factors and stops
    for row in factors:
        for value in row:
            assert ("n/a" if value is None else f"{100 * value:.1f} %") in panel
    for reason, seconds in stops:
        assert f"<td>{reason}</td>" in panel and f"<td>{seconds / 3600:.2f}</td>" in panel


def test_one_machine_and_default_path(build: Build, cluster) -> None:
    result = report(build, "--machine", "2")
    assert result.exit_code == 0, result.output
    path = Path(result.output.split("report: ", 1)[1].splitlines()[0])
    assert path.name == f"setu-report-{build.day}-m2.html"
    assert Path(cluster.home) in path.parents  # the state folder, git-ignored
    page = path.read_text()
    assert "(#2)" in page and "(#1)" not in page


def test_day_without_data_is_one_line(build: Build) -> None:
    result = report(build, "--day", "2020-01-01")
    assert result.exit_code == 1
    assert result.output.strip() == "error: no Gold rows for 2020-01-01"


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="headless Chromium (Debian package `chromium`) is not installed")
def test_png(build: Build, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    result = report(build, "--out", str(tmp_path / "r.html"), "--png", str(png))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
