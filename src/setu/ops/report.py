"""`setu report`: the CNC dashboard panels of one site-local day on one self-contained page.

The panels are those of the dashboards (exposures machine_dashboard, energy_dashboard,
alerts_dashboard and oee_dashboard): utilization, the 30-minute operational timeline,
temperature box plots, OEE with the day's stoppages by reason, program history, hourly
energy with the peak hour and the day's total, and the alerts. Their rows are the
dashboards' own queries, analyses/cnc_dashboard/, compiled by dbt with bind parameters and
run for the day: this module holds no SQL. They are drawn as inline SVG in one HTML file: no
plotting library, nothing fetched when the page opens. `--png` also takes a screenshot of it
with headless Chromium (Debian package `chromium`).
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import click
import psycopg
from psycopg.rows import dict_row

from setu.warehouse.paths import state_dir

STATES = ["RUNNING", "IDLE", "SETUP", "ALARM", "MAINTENANCE", "OFF"]
STATE_COLORS = {"RUNNING": "#2e9e4f", "IDLE": "#e8b339", "SETUP": "#3a7bd5",
                "ALARM": "#d64541", "MAINTENANCE": "#8e5cc4", "OFF": "#9aa0a6", None: "#eceff1"}
SENSORS = [("spindle_temp_c", "spindle"), ("motor_temp_c", "motor"),
           ("coolant_temp_c", "coolant")]
SEVERITY_CLASSES = ["emergency", "error", "warning", "other"]
SEVERITY_COLORS = {"emergency": "#b71c1c", "error": "#e53935", "warning": "#fb8c00",
                   "other": "#78909c"}
BOX_PLOT_MACHINES = 4  # box plots for at most this many machines (pass --machine for others)
ALERT_LIST_ROWS = 25


class ReportError(RuntimeError):
    """Nothing to report (no Gold data for the day or machine)."""


# -- data: the dashboard analyses, compiled by dbt ---------------------------------------------

DASHBOARD = Path("analyses") / "cnc_dashboard"
# The analyses the report runs, each feeding a panel.
ANALYSES = ("utilization", "operational_timeline_30m", "temperature_box_plot", "oee",
            "downtime_by_reason", "program_history", "energy_hourly", "alert_summary",
            "alert_list")


@dataclass
class ReportData:
    day: date
    machines: list[dict]
    utilization: list[dict]
    timeline: list[dict]
    boxes: list[dict]
    programs: list[dict]
    energy: list[dict]
    alert_counts: list[dict]
    alerts: list[dict]
    oee: list[dict] = field(default_factory=list)
    downtime: list[dict] = field(default_factory=list)
    generated_at: datetime = field(default_factory=datetime.now)


def compile_dashboard(target: str | None) -> dict[str, str]:
    """Each dashboard analysis as dbt compiles it with its parameters as named bind parameters
    (macro dashboard_parameters), so the report shows exactly what the dashboards query."""
    from setu.warehouse import dbt

    target_path = state_dir() / "report-target"
    args = ["--quiet", "compile", "--select", f"path:{DASHBOARD}",
            "--vars", json.dumps({"dashboard_bind_parameters": True}),
            "--target-path", str(target_path)]
    result = dbt.invoke(args + (["--target", target] if target else []))
    if not result.success:
        raise ReportError(f"dbt could not compile {DASHBOARD}/: "
                          f"{result.exception or 'see logs/dbt.log'}")
    compiled = target_path / "compiled" / "setu" / DASHBOARD  # setu: the dbt project's name
    return {name: (compiled / f"{name}.sql").read_text() for name in ANALYSES}


class Dashboard:
    """Runs the compiled analyses for one day, one machine or all, and the days of history."""

    def __init__(self, conn: psycopg.Connection, queries: dict[str, str]) -> None:
        self.conn = conn
        self.queries = queries

    def rows(self, name: str, day: date | None, machine: int | None,
             history_days: int = 1) -> list[dict]:
        parameters = {"dashboard_day": day, "dashboard_machine_id": machine,
                      "history_days": history_days}
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(self.queries[name], parameters)
            return cursor.fetchall()


def latest_day(dashboard: Dashboard) -> date | None:
    """The dashboards' default day: the latest in gold.machine_utilization_daily."""
    rows = dashboard.rows("utilization", None, None)
    return rows[0]["local_date"] if rows else None


def load(dashboard: Dashboard, day: date, machine: int | None) -> ReportData:
    dashboard.conn.execute("set time zone 'UTC'")
    timeline = dashboard.rows("operational_timeline_30m", day, machine)
    if not timeline:
        raise ReportError(f"no machine {machine} in silver.dim_machine" if machine is not None
                          else "silver.dim_machine is empty: build the warehouse first")
    machines = list({row["machine_id"]: {"machine_id": row["machine_id"],
                                         "machine_code": row["machine_code"]}
                     for row in timeline}.values())
    boxed = {row["machine_id"] for row in machines[:BOX_PLOT_MACHINES]}
    data = ReportData(
        day=day,
        machines=machines,
        utilization=dashboard.rows("utilization", day, machine),
        timeline=timeline,
        boxes=[row for row in dashboard.rows("temperature_box_plot", day, machine)
               if row["machine_id"] in boxed],
        programs=dashboard.rows("program_history", day, machine),
        energy=dashboard.rows("energy_hourly", day, machine),
        alert_counts=[row for row in dashboard.rows("alert_summary", day, machine)
                      if row["total_count"]],
        alerts=dashboard.rows("alert_list", day, machine)[:ALERT_LIST_ROWS],
        oee=dashboard.rows("oee", day, machine),
        downtime=dashboard.rows("downtime_by_reason", day, machine),
    )
    if not data.utilization and not data.energy and not data.programs:
        raise ReportError(f"no Gold rows for {day}"
                          + (f" and machine {machine}" if machine is not None else ""))
    return data


# -- SVG ---------------------------------------------------------------------------------------

def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def svg(width: int, height: int, body: Iterable[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">'
            + "".join(body) + "</svg>")


def text(x: float, y: float, value: object, anchor: str = "start", size: int = 11,
         color: str = "#37474f", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{color}" font-weight="{weight}">{esc(value)}</text>')


def rect(x: float, y: float, width: float, height: float, color: str, title: str = "") -> str:
    tip = f"<title>{esc(title)}</title>" if title else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
            f'height="{max(height, 0):.1f}" fill="{color}">{tip}</rect>')


def line(x1: float, y1: float, x2: float, y2: float, color: str = "#90a4ae",
         width: float = 1) -> str:
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}" stroke-width="{width}"/>')


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    parts = []
    for name, color in items:
        parts += [rect(x, y - 9, 10, 10, color), text(x + 14, y, name.lower())]
        x += 24 + 7 * len(name)
    return parts


def machine_label(machines: dict[int, dict], machine_id: int) -> str:
    code = machines.get(machine_id, {}).get("machine_code")
    return f"{code} (#{machine_id})" if code else f"#{machine_id}"


def utilization_panel(data: ReportData) -> str:
    machines = {row["machine_id"]: row for row in data.machines}
    rows = data.utilization
    if not rows:
        return "<p>No closed state intervals that day.</p>"
    left, width, bar, gap = 150, 560, 16, 8
    height = 30 + len(rows) * (bar + gap) + 20
    body = legend([(state, STATE_COLORS[state]) for state in STATES], left, 14)
    for index, row in enumerate(rows):
        y = 26 + index * (bar + gap)
        hours = {state: float(row[f"{state.lower()}_hours"] or 0) for state in STATES}
        total = sum(hours.values()) or 1.0
        body.append(text(left - 8, y + 12, machine_label(machines, row["machine_id"]), "end"))
        x = left
        for state in STATES:
            span = width * hours[state] / total
            body.append(rect(x, y, span, bar, STATE_COLORS[state],
                             f"{state}: {hours[state]:.2f} h"))
            x += span
        pct = row["utilization_pct"]
        body.append(text(left + width + 8, y + 12, "n/a" if pct is None else f"{pct:.1f} %",
                         weight="bold"))
    return svg(left + width + 80, height, body, "utilization per machine")


def timeline_panel(data: ReportData) -> str:
    machines = {row["machine_id"]: row for row in data.machines}
    slots: dict[int, list[dict]] = defaultdict(list)
    for row in data.timeline:
        slots[row["machine_id"]].append(row)
    left, slot_width, bar, gap = 150, 12, 16, 6
    most = max((len(items) for items in slots.values()), default=48)
    height = 40 + len(slots) * (bar + gap) + 10
    body = legend([(state, STATE_COLORS[state]) for state in STATES], left, 14)
    for hour in range(0, most // 2 + 1, 3):
        x = left + hour * 2 * slot_width
        body += [line(x, 22, x, height - 8, "#cfd8dc"), text(x, height, f"{hour:02d}h", "middle",
                                                             size=9)]
    for index, (machine_id, items) in enumerate(sorted(slots.items())):
        y = 26 + index * (bar + gap)
        body.append(text(left - 8, y + 12, machine_label(machines, machine_id), "end"))
        for position, slot in enumerate(items):
            state = slot["dominant_state"]
            body.append(rect(left + position * slot_width, y, slot_width - 1, bar,
                             STATE_COLORS.get(state, STATE_COLORS[None]),
                             f"{slot['slot_start_local']:%H:%M} {state or 'no data'}"))
    return svg(left + most * slot_width + 20, height + 4, body, "30-minute operational timeline")


def box_panel(data: ReportData) -> str:
    machines = {row["machine_id"]: row for row in data.machines}
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for row in data.boxes:
        groups[(row["machine_id"], row["sensor"])].append(row)
    if not groups:
        return "<p>No temperature samples that day.</p>"
    low = min(row["min_c"] for row in data.boxes)
    high = max(row["max_c"] for row in data.boxes)
    span = (high - low) or 1.0
    panels = []
    for machine_id in sorted({key[0] for key in groups}):
        for sensor, label in SENSORS:
            rows = groups.get((machine_id, sensor), [])
            if not rows:
                continue
            left, plot_height, box_width = 50, 120, 5
            width = left + len(rows) * (box_width + 2) + 20

            def scale(value: float) -> float:
                return 16 + plot_height * (1 - (value - low) / span)  # noqa: B023

            body = [text(left, 11, f"{machine_label(machines, machine_id)}: {label} °C",
                         weight="bold"),
                    text(left - 6, scale(high) + 4, f"{high:.0f}", "end", 9),
                    text(left - 6, scale(low) + 4, f"{low:.0f}", "end", 9),
                    line(left - 2, scale(high), left - 2, scale(low))]
            for index, row in enumerate(rows):
                x = left + index * (box_width + 2)
                middle = x + box_width / 2
                tip = (f"{row['bucket']:%H:%M} UTC: min {row['min_c']:.1f}, median "
                       f"{row['median_c']:.1f}, max {row['max_c']:.1f} ({row['sample_count']}"
                       " samples)")
                body += [line(middle, scale(row["max_c"]), middle, scale(row["min_c"]),
                              "#607d8b"),
                         rect(x, scale(row["p75_c"]), box_width,
                              scale(row["p25_c"]) - scale(row["p75_c"]), "#80cbc4", tip),
                         line(x, scale(row["median_c"]), x + box_width, scale(row["median_c"]),
                              "#004d40", 1.5)]
            panels.append(svg(width, plot_height + 24, body, f"{label} temperature box plot"))
    return "".join(f'<div class="box">{panel}</div>' for panel in panels)


def energy_panel(data: ReportData) -> str:
    if not data.energy:
        return "<p>No energy readings that day.</p>"
    per_hour: dict[datetime, float] = defaultdict(float)
    day_totals = {}
    for row in data.energy:
        per_hour[row["bucket"]] += float(row["kwh"])
        day_totals[row["machine_id"]] = float(row["day_kwh_total"])
    hours = sorted(per_hour)
    peak = max(hours, key=lambda hour: (per_hour[hour], -hour.timestamp()))
    top = max(per_hour.values()) or 1.0
    left, bar, plot_height = 50, 22, 140
    body = [text(left - 6, 20, f"{top:.1f}", "end", 9), text(left - 6, 20 + plot_height, "0",
                                                             "end", 9)]
    for index, hour in enumerate(hours):
        x = left + index * (bar + 4)
        height = plot_height * per_hour[hour] / top
        color = "#ef6c00" if hour == peak else "#42a5f5"
        body += [rect(x, 16 + plot_height - height, bar, height, color,
                      f"{hour:%H:%M} UTC: {per_hour[hour]:.2f} kWh"),
                 text(x + bar / 2, 32 + plot_height, f"{hour:%H}", "middle", 9)]
    total = sum(day_totals.values())
    body.append(text(left, 50 + plot_height, f"day total {total:.2f} kWh; peak hour "
                     f"{peak:%H:%M} UTC ({per_hour[peak]:.2f} kWh); hours in UTC", size=11))
    return svg(left + len(hours) * (bar + 4) + 320, plot_height + 60, body, "energy per hour")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{esc(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def alerts_panel(data: ReportData) -> str:
    machines = {row["machine_id"]: row for row in data.machines}
    summary = table(["machine", *SEVERITY_CLASSES, "total"], (
        [machine_label(machines, row["machine_id"]),
         *[row[f"{cls}_count"] for cls in SEVERITY_CLASSES], row["total_count"]]
        for row in data.alert_counts))
    if not data.alert_counts:
        summary = "<p>No alarms raised that day.</p>"
    listing = table(["raised (UTC)", "cleared (UTC)", "machine", "class", "code",
                     "description", "message"], (
        [f"{row['raised_at']:%H:%M:%S}",
         "open" if row["cleared_at"] is None else f"{row['cleared_at']:%Y-%m-%d %H:%M:%S}",
         machine_label(machines, row["machine_id"]), row["severity_class"], row["alarm_code"],
         row["alarm_description"] or "", row["message"] or ""]
        for row in data.alerts)) if data.alerts else ""
    return summary + listing


def programs_panel(data: ReportData) -> str:
    if not data.programs:
        return "<p>No cycles that day.</p>"
    machines = {row["machine_id"]: row for row in data.machines}
    return table(["machine", "program", "cycles", "good", "scrap", "scrap %", "mean cycle s"], (
        [machine_label(machines, row["machine_id"]), row["program_name"], row["cycles"],
         row["good_parts"], row["scrap_parts"], row["scrap_rate_pct"],
         row["mean_cycle_seconds"]] for row in data.programs))


OEE_FACTORS = [("availability", "#2e9e4f"), ("performance", "#3a7bd5"),
               ("quality", "#8e5cc4"), ("oee", "#263238")]


def oee_panel(data: ReportData) -> str:
    """Per machine the three OEE factors and OEE as bars (0-100 %, longer bars clipped),
    then the day's stoppages by reason."""
    machines = {row["machine_id"]: row for row in data.machines}
    if not data.oee:
        return "<p>No OEE rows that day (no closed state intervals).</p>"
    left, width, bar, gap = 150, 130, 14, 10
    height = 30 + len(data.oee) * (bar + gap) + 10
    body = [text(left + index * (width + 20), 14, factor.upper() if factor == "oee"
                 else factor, weight="bold")
            for index, (factor, _) in enumerate(OEE_FACTORS)]
    for row_index, row in enumerate(data.oee):
        y = 24 + row_index * (bar + gap)
        body.append(text(left - 8, y + 11, machine_label(machines, row["machine_id"]), "end"))
        for index, (factor, color) in enumerate(OEE_FACTORS):
            x = left + index * (width + 20)
            pct = row[f"{factor}_pct"]
            body.append(rect(x, y, width, bar, "#eceff1"))
            if pct is not None:
                body.append(rect(x, y, width * min(float(pct) / 100, 1.0), bar, color,
                                 f"{factor}: {pct:.1f} %"))
            body.append(text(x + width - 4, y + 11, "n/a" if pct is None else f"{pct:.1f} %",
                             "end", 10, "#ffffff" if pct is not None and pct > 60 else "#37474f"))
    chart = svg(left + len(OEE_FACTORS) * (width + 20), height, body,
                "OEE and its factors per machine")
    if not data.downtime:
        return chart + "<p>No classified stoppages that day.</p>"
    reasons = table(["reason", "description", "planned", "stops", "machines", "hours",
                     "mean stop min"], (
        [row["reason_code"], row["reason_description"] or "(not in master)",
         "yes" if row["planned"] else "no", row["events"], row["machines"],
         f"{row['down_hours']:.2f}", row["mean_stop_minutes"]] for row in data.downtime))
    return chart + reasons


STYLE = """
body { font-family: system-ui, sans-serif; color: #263238; margin: 24px; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.meta { color: #607d8b; font-size: 12px; }
section { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 12px 16px;
  margin-bottom: 16px; overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid #eceff1; padding: 3px 10px; text-align: left; }
th { background: #f5f7f8; } .box { display: inline-block; margin: 0 12px 8px 0; }
"""


def render(data: ReportData, machine: int | None) -> str:
    scope = (f"machine {machine_label({r['machine_id']: r for r in data.machines}, machine)}"
             if machine is not None else f"{len(data.machines)} machines")
    shown = {row["machine_id"] for row in data.boxes}
    box_note = ("" if machine is not None or len(data.machines) <= BOX_PLOT_MACHINES
                else f"<p class='meta'>First {len(shown)} machines; pass --machine for "
                     "another.</p>")
    sections = [
        ("Utilization (time per state, share running of all but OFF)", utilization_panel(data)),
        ("Operational timeline (30-minute slots, dominant state, local time)",
         timeline_panel(data)),
        ("Temperature box plots (15-minute UTC buckets: min, p25, median, p75, max)",
         box_note + box_panel(data)),
        ("OEE (availability × performance × quality) and stoppages by reason",
         oee_panel(data)),
        ("Program history", programs_panel(data)),
        ("Energy per hour", energy_panel(data)),
        ("Alerts (RAISED)", alerts_panel(data)),
    ]
    body = "".join(f"<section><h2>{esc(title)}</h2>{content}</section>"
                   for title, content in sections)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>SETU report {data.day}</title><style>{STYLE}</style></head><body>"
            f"<h1>SETU shop-floor report: {data.day}</h1>"
            f"<p class='meta'>{esc(scope)}; site-local day; generated "
            f"{data.generated_at:%Y-%m-%d %H:%M} by the dashboards' queries "
            f"({DASHBOARD}/) over Gold.</p>"
            f"{body}</body></html>")


def screenshot(page: Path, png: Path) -> None:
    """A full-page PNG of the report with headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise ReportError("--png needs headless Chromium (Debian package `chromium`)")
    with tempfile.TemporaryDirectory(prefix="setu-report-") as profile:
        completed = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--window-size=1300,2400", f"--screenshot={png}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    if completed.returncode != 0 or not png.exists():
        raise ReportError(f"chromium could not take the screenshot: {completed.stderr[-300:]}")


@click.command("report")
@click.option("--day", "day_text", metavar="YYYY-MM-DD",
              help="site-local day (default: the latest day in gold.machine_utilization_daily)")
@click.option("--machine", type=int, help="one machine_id (default: every machine)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default: .setu/reports/setu-report-DAY[-mM].html)")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path),
              help="also write a PNG screenshot of the page (needs headless Chromium)")
@click.option("--target", help="dbt target to read (default: the profile's target)")
def report(day_text: str | None, machine: int | None, out: Path | None, png: Path | None,
           target: str | None) -> None:
    """Render the dashboard panels of one day from Gold to one HTML page (and PNG).

    Utilization, the 30-minute operational timeline, temperature box plots, OEE and
    stoppages by reason, program history, hourly energy with its peak hour, and the alerts,
    as on the dashboards.
    """
    from setu.warehouse.profile import connect

    try:
        day = date.fromisoformat(day_text) if day_text else None
    except ValueError:
        raise click.BadParameter(f"{day_text!r}: use YYYY-MM-DD", param_hint="--day") from None
    try:
        queries = compile_dashboard(target)
        with connect(target, autocommit=True) as conn:
            dashboard = Dashboard(conn, queries)
            day = day or latest_day(dashboard)
            if day is None:
                raise ReportError("gold.machine_utilization_daily is empty: build first")
            data = load(dashboard, day, machine)
        suffix = f"-m{machine}" if machine is not None else ""
        out = out or state_dir() / "reports" / f"setu-report-{day}{suffix}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(data, machine))
        click.echo(f"report: {out}")
        if png is not None:
            png.parent.mkdir(parents=True, exist_ok=True)
            screenshot(out, png)
            click.echo(f"png: {png}")
    except (ReportError, psycopg.errors.UndefinedTable) as exc:
        click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        sys.exit(1)
