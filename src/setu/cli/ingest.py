"""`setu ingest`: files into Bronze. CSV and Parquet in Bronze's own columns go through the
loader, a CSV in its own columns through a column mapping, MTConnect SHDR logs through their
connector; this command only chooses between them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import psycopg
from rich.markup import escape

from setu.ingest.connectors.mtconnect import MACHINE_ID
from setu.ingest.loader import (
    BRONZE_TABLES,
    PROGRESS_MIN_BYTES,
    IngestError,
    IngestResult,
    file_format,
    ingest_file,
)


def _ingest_with_progress(conn: psycopg.Connection, path: Path, table: str | None,
                          console: Any) -> IngestResult:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    show = console.is_terminal and path.stat().st_size >= PROGRESS_MIN_BYTES
    amount = DownloadColumn() if file_format(path) == "csv" else "{task.completed:,} rows"
    with Progress("[progress.description]{task.description}", BarColumn(), amount,
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not show) as progress:
        task = progress.add_task(path.name, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return ingest_file(conn, path, table, on_progress=report)


def _ingest_with_column_mapping(files: Sequence[Path], columns_path: Path | None,
                                dry_run: bool, target: str | None) -> None:
    from rich.console import Console

    from setu.ingest.csv_mapping import describe, ingest_mapped, load_mapping
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    console = Console(stderr=True)
    if columns_path is None:
        console.print("[bold red]error:[/] --dry-run checks a --columns mapping: add "
                      "--columns MAP.yaml", highlight=False)
        raise SystemExit(2)
    try:
        mapping = load_mapping(columns_path)
    except IngestError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    ensure_database(target)
    with connect(target) as conn:
        for path in files:
            try:
                summary, skipped = ingest_mapped(conn, path, mapping, dry_run=dry_run)
            except IngestError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
                raise SystemExit(2) from None
            for line in describe(summary, dry_run, skipped):
                click.echo(line)


@click.command("ingest")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", type=click.Choice(BRONZE_TABLES),
              help="Bronze table to load into (default: from each file's name).")
@click.option("--target", help="dbt target to load into (default: the profile's target).")
@click.option("--format", "format_name", default="auto", show_default=True,
              type=click.Choice(["auto", "csv", "parquet", "mtconnect-shdr"]),
              help="File format (auto: from the suffix; .shdr is an MTConnect SHDR log).")
@click.option("--machine", "machine_id", type=MACHINE_ID,
              help="machine_id of an MTConnect SHDR log's rows (the log does not name it).")
@click.option("--mapping", "mapping_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="MTConnect data item mapping YAML (default: built in; see "
                   "docs/connectors/mtconnect.md).")
@click.option("--columns", "columns_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV column mapping YAML: renames, unit factors, constant columns, time "
                   "from a column or a start and sampling period (docs/ingest.md).")
@click.option("--dry-run", is_flag=True,
              help="With --columns: check the files and show what would load; write nothing.")
def ingest(files: tuple[Path, ...], table: str | None, target: str | None, format_name: str,
           machine_id: int | None, mapping_path: Path | None, columns_path: Path | None,
           dry_run: bool) -> None:
    """Load CSV or Parquet FILES into Bronze, each in one transaction, each exactly once.

    The header (or Parquet schema) names Bronze columns: any subset, `time` required, `id`
    never (it is generated), `ingested_at` optional (default: now). The table comes from the
    file name (machine_telemetry.csv, alarms-2026-01-01.parquet, ...) or --table. A file
    already in the ledger (same sha256) is skipped. A malformed file is rolled back whole and
    reported as FILE: line N: column C: reason. Timestamps without a zone are UTC.

    MTConnect SHDR logs (--format mtconnect-shdr --machine M) become state events, cycles,
    telemetry and alarms (docs/connectors/mtconnect.md).

    A CSV in its own columns loads with --columns MAP.yaml (rename, unit factor, constant
    columns such as machine_id, time from a column or a start plus sampling period);
    --dry-run shows what would load.
    """
    from rich.console import Console

    from setu.ingest.connectors.mtconnect import dispatch_ingest
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    if dispatch_ingest(files, format_name, machine_id, mapping_path, target):
        return
    if columns_path is not None or dry_run:
        _ingest_with_column_mapping(files, columns_path, dry_run, target)
        return

    console = Console(stderr=True)
    ensure_database(target)
    loaded = skipped = 0
    with connect(target) as conn:
        for path in files:
            try:
                result = _ingest_with_progress(conn, path, table, console)
            except IngestError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
                if loaded or skipped:
                    console.print(f"({loaded} file(s) loaded and {skipped} skipped before "
                                  f"this one stay as they are)", highlight=False)
                raise SystemExit(2) from None
            if result.skipped:
                skipped += 1
                click.echo(f"skipped {path.name}: already loaded into bronze.{result.table} "
                           f"at {result.loaded_at:%Y-%m-%d %H:%M:%S%z} (sha256 "
                           f"{result.sha256[:12]})")
            else:
                loaded += 1
                rate = result.rows / result.seconds if result.seconds else 0.0
                click.echo(f"loaded {result.rows:,} rows into bronze.{result.table} from "
                           f"{path.name} ({result.seconds:.1f} s, {rate:,.0f} rows/s)")
