"""`setu report`: one HTML page (and a PNG) with the dashboard panels of a day, from Gold."""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from analyst_build import Build, on_database, small_build
from setu.cli import main
from setu.ops import report as report_module
from setu.warehouse.paths import PROJECT_DIR


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


def test_the_report_runs_every_dashboard_analysis() -> None:
    dashboard = {path.stem for path in (PROJECT_DIR / "analyses" / "cnc_dashboard").glob("*.sql")}
    assert set(report_module.ANALYSES) == dashboard


def test_a_dashboard_change_shows_in_the_report(build: Build, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The panels are the analyses' rows: change what an analysis returns, the page follows."""
    compile_dashboard = report_module.compile_dashboard

    def changed(target):
        queries = compile_dashboard(target)
        queries["utilization"] = (f"select changed.*, 12.3 as shown_pct"
                                  f" from ({queries['utilization']}) as changed")
        return queries

    monkeypatch.setattr(report_module, "compile_dashboard", changed)
    monkeypatch.setattr(report_module, "utilization_panel", lambda data: "".join(
        f"<p>{row['machine_code']}: {row['shown_pct']} %</p>" for row in data.utilization))
    out = tmp_path / "changed.html"
    assert report(build, "--day", build.day, "--out", str(out)).exit_code == 0
    page = out.read_text()
    assert page.count(": 12.3 %</p>") == 3  # the small build's machines


def test_timeline_slots_are_the_analysis_dominant_states(build: Build, tmp_path: Path) -> None:
    """Each slot's colour is the state with the most seconds in it, all its stretches
    together, computed here from the state intervals."""
    out = tmp_path / "timeline.html"
    assert report(build, "--day", build.day, "--machine", "1", "--out", str(out)).exit_code == 0
    panel = out.read_text().split("<h2>Operational timeline", 1)[1].split("</section>", 1)[0]
    shown = re.findall(r"<title>(\d\d:\d\d) ([A-Z]+|no data)</title>", panel)
    with psycopg.connect(build.url) as conn:
        zone, = conn.execute("select s.timezone from master.machines as m inner join"
                             " master.sites as s using (site_id) where m.machine_id = 1"
                             ).fetchone()
        intervals = conn.execute(
            "select state, valid_from, coalesce(valid_to, now()) from silver.fct_state_intervals"
            " where machine_id = 1").fetchall()
    start = datetime.combine(date.fromisoformat(build.day), time(), ZoneInfo(zone))
    expected = []
    for slot in range(48):
        begin = start + timedelta(minutes=30 * slot)
        end = begin + timedelta(minutes=30)
        seconds: dict[str, float] = {}
        for state, valid_from, valid_to in intervals:
            overlap = (min(valid_to, end) - max(valid_from, begin)).total_seconds()
            if overlap > 0:
                seconds[state] = seconds.get(state, 0) + overlap
        dominant = min(seconds, key=lambda s: (-seconds[s], s)) if seconds else "no data"
        expected.append((f"{begin:%H:%M}", dominant))
    assert shown == expected
