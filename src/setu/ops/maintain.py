"""`setu maintain`: retention where no TimescaleDB policy does it.

Which relations and how long to keep them comes from the dbt project itself: the macro
``setu_retention_targets`` (run through ``dbt run-operation``) lists every enabled model with
config ``retention_policy`` and the Bronze tables (var ``setu_bronze_retention``). Then, per
relation, the best the server offers:

- a retention policy job exists (Community edition): nothing to do, the job runs it;
- TimescaleDB (e.g. the Apache edition) and a hypertable or continuous aggregate:
  ``drop_chunks(relation => ..., older_than => ...)``, whole chunks, instant;
- otherwise (plain PostgreSQL, or a table that is not a hypertable): deletes of at most
  ``--batch-size`` rows each, one transaction per batch, with a progress bar.

An integer ``drop_after`` (integer time column) counts back from the newest row.

Never a row some model has not processed yet: a relation that models read (the Bronze tables,
a Silver fact read by Gold) keeps every chunk holding a row above a reader's watermark
(``_etl.drop_processed_chunks``), and batched deletes skip such rows; what is held back is
reported. A Bronze table is held back whole until a model has registered as its reader. On
the Community edition the Bronze tables' retention is the guarded job
``_etl.guarded_retention_job`` (registered by dbt's on-run-start in place of the policy).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from setu.warehouse.capabilities import read_capabilities
from setu.warehouse.profile import connect

console = Console(soft_wrap=True)
TARGETS_MARKER = "setu-retention-targets: "


class MaintainError(RuntimeError):
    """The retention targets could not be read from the dbt project."""


@dataclass(frozen=True)
class RetentionTarget:
    schema: str
    identifier: str
    time_column: str | None
    drop_after: str
    kind: str  # "interval" or "bigint"
    origin: str

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.identifier}"

    @property
    def qualified(self) -> str:
        """The relation as regclass text ("schema"."table")."""
        return sql.Identifier(self.schema, self.identifier).as_string(None)


def retention_targets(project_dir: Path | None = None, target: str | None = None
                      ) -> list[RetentionTarget]:
    """Ask the dbt project (run-operation setu_retention_targets) what to keep how long."""
    from dbt.cli.main import dbtRunner

    from setu.warehouse.dbt import with_project_args

    lines: list[str] = []

    def capture(event) -> None:
        if event.info.name == "JinjaLogInfo" and event.info.msg.startswith(TARGETS_MARKER):
            lines.append(event.info.msg[len(TARGETS_MARKER):])

    args = ["--quiet", "run-operation", "setu_retention_targets"]
    if project_dir is not None:
        args += ["--project-dir", str(project_dir)]
    if target:
        args += ["--target", target]
    result = dbtRunner(callbacks=[capture]).invoke(with_project_args(args))
    if not result.success or not lines:
        reason = result.exception or "the macro printed no targets"
        raise MaintainError(f"could not read retention settings from the dbt project: {reason}")
    return [RetentionTarget(**item) for item in json.loads(lines[-1])]


def _scalar(conn: psycopg.Connection, query: str | sql.Composable, params: tuple = ()) -> object:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


JOB_SQL = """
select j.job_id
from timescaledb_information.jobs as j
where j.proc_name = 'policy_retention'
    and (j.hypertable_schema, j.hypertable_name) in (
        select %(schema)s::name, %(name)s::name
        union all
        select materialization_hypertable_schema, materialization_hypertable_name
        from timescaledb_information.continuous_aggregates
        where view_schema = %(schema)s and view_name = %(name)s
    )
limit 1
"""

# The job that replaces the Bronze tables' retention policy on the Community edition.
GUARDED_JOB_SQL = """
select j.job_id
from timescaledb_information.jobs as j
where j.proc_schema = '_etl' and j.proc_name = 'guarded_retention_job'
    and j.config ->> 'relation' = %(qualified)s::regclass::text
limit 1
"""

BRONZE_ORIGIN = "var setu_bronze_retention"

TIMESCALE_KIND_SQL = """
select 'hypertable' from timescaledb_information.hypertables
where hypertable_schema = %(schema)s and hypertable_name = %(name)s
union all
select 'continuous aggregate' from timescaledb_information.continuous_aggregates
where view_schema = %(schema)s and view_name = %(name)s
"""


def _cutoff_sql(item: RetentionTarget) -> sql.Composable:
    """The newest value that is dropped: now() - interval, or newest row - N (integers)."""
    if item.kind == "interval":
        return sql.SQL("now() - {}::interval").format(sql.Literal(item.drop_after))
    return sql.SQL("(select max({col}) from {rel}) - {n}").format(
        col=sql.Identifier(item.time_column or ""),
        rel=sql.Identifier(item.schema, item.identifier),
        n=sql.Literal(int(item.drop_after)),
    )


def drop_old_chunks(conn: psycopg.Connection, item: RetentionTarget, dry_run: bool) -> str:
    if item.kind == "interval":
        older_than = sql.SQL("{}::interval").format(sql.Literal(item.drop_after))
    else:
        older_than = _cutoff_sql(item)
    function = "show_chunks" if dry_run else "drop_chunks"
    count = _scalar(conn, sql.SQL(
        "select count(*) from {function}(relation => {rel}::regclass, older_than => {older})"
    ).format(function=sql.Identifier(function), rel=sql.Literal(item.qualified),
             older=older_than))
    verb = "would be dropped" if dry_run else "dropped"
    return f"drop_chunks older than {item.drop_after}: {count} chunks {verb}"


def unprocessed_predicate(conn: psycopg.Connection, item: RetentionTarget) -> str | None:
    """SQL true for the rows of item that a model reading it has not processed yet (from
    _etl.unprocessed_predicate, the watermarks); None when no model reads it. "true" for a
    Bronze table no model has registered as its reader yet (not built, or no `_etl`)."""
    bronze = item.origin == BRONZE_ORIGIN
    if not _scalar(conn, "select to_regprocedure("
                         "'_etl.unprocessed_predicate(regclass, boolean)') is not null"):
        return "true" if bronze else None
    return _scalar(conn, "select _etl.unprocessed_predicate(%s::regclass, %s)",
                   (item.qualified, bronze))


HELD_HINT = "not processed by every model that reads it yet (run `setu build` or the jobs first)"


def drop_processed_chunks(conn: psycopg.Connection, item: RetentionTarget, dry_run: bool) -> str:
    """drop_chunks through _etl.drop_processed_chunks: no chunk with an unprocessed row."""
    old, dropped, held_rows, held_from = conn.execute(
        "select * from _etl.drop_processed_chunks(%s::regclass, %s, %s, %s)",
        (item.qualified, item.drop_after, item.origin == BRONZE_ORIGIN, dry_run),
    ).fetchone()
    verb = "would be dropped" if dry_run else "dropped"
    outcome = f"drop_chunks older than {item.drop_after}: {dropped} chunks {verb}"
    if held_rows:
        outcome += (f"; {old - dropped} chunks held back: {held_rows} rows from {held_from} on"
                    f" are {HELD_HINT}")
    return outcome


def delete_in_batches(conn: psycopg.Connection, item: RetentionTarget, batch_size: int,
                      dry_run: bool, unprocessed: str | None = None) -> str:
    if not item.time_column:
        return "skipped: no time_column_name in its config, so old rows cannot be told apart"
    relation = sql.Identifier(item.schema, item.identifier)
    column = sql.Identifier(item.time_column)
    cutoff = _scalar(conn, sql.SQL("select {}").format(_cutoff_sql(item)))
    if cutoff is None:
        return "nothing to delete (empty)"
    # The predicate is built by _etl.unprocessed_predicate from quoted identifiers and ids.
    kept = sql.SQL(" and not ({})").format(sql.SQL(unprocessed)) if unprocessed else sql.SQL("")
    held = ""
    if unprocessed:
        held_rows = _scalar(conn, sql.SQL("select count(*) from {rel} where {col} < %s"
                                          " and ({})").format(sql.SQL(unprocessed),
                                                              rel=relation, col=column),
                            (cutoff,))
        if held_rows:
            held = f"; {held_rows} rows held back: {HELD_HINT}"
    total = _scalar(conn, sql.SQL("select count(*) from {rel} where {col} < %s{kept}").format(
        rel=relation, col=column, kept=kept), (cutoff,))
    if dry_run or not total:
        verb = "would be deleted" if dry_run else "deleted"
        return f"rows older than {item.drop_after} ({cutoff}): {total} {verb}{held}"
    delete = sql.SQL(
        "delete from {rel} where ctid = any(array("
        "select ctid from {rel} where {col} < %s{kept} limit %s))"
    ).format(rel=relation, col=column, kept=kept)
    deleted = 0
    with Progress(TextColumn(f"{item.label}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("delete", total=total)
        while True:
            # autocommit: every batch is its own short transaction.
            batch = conn.execute(delete, (cutoff, batch_size)).rowcount
            deleted += batch
            progress.update(task, completed=min(deleted, total))
            if batch < batch_size:
                break
    return (f"rows older than {item.drop_after}: {deleted} deleted in batches of "
            f"{batch_size}{held}")


def maintain_one(conn: psycopg.Connection, item: RetentionTarget, timescaledb: bool,
                 community: bool, batch_size: int, dry_run: bool) -> str:
    names = {"schema": item.schema, "name": item.identifier}
    if _scalar(conn, "select to_regclass(%s)", (item.qualified,)) is None:
        return "skipped: not built yet"
    kind = _scalar(conn, TIMESCALE_KIND_SQL, names) if timescaledb else None
    if community and kind:
        job_id = _scalar(conn, GUARDED_JOB_SQL, {"qualified": item.qualified})
        if job_id is not None:
            return f"skipped: guarded retention job {job_id} runs it"
        job_id = _scalar(conn, JOB_SQL, names)
        if job_id is not None:
            return f"skipped: retention policy job {job_id} runs it"
    unprocessed = unprocessed_predicate(conn, item)
    if unprocessed == "true":
        return ("held back whole: no model has registered as its reader yet, so none of"
                " its rows is known to be processed (run `setu build` first)")
    if kind == "hypertable" and unprocessed is not None:
        return drop_processed_chunks(conn, item, dry_run)
    if kind:
        return drop_old_chunks(conn, item, dry_run)
    return delete_in_batches(conn, item, batch_size, dry_run, unprocessed)


@click.command()
@click.option("--target", help="dbt target (default: the profile's target)")
@click.option("--project-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="dbt project to read retention settings from (default: this checkout)")
@click.option("--batch-size", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="rows per delete transaction on plain PostgreSQL")
@click.option("--dry-run", is_flag=True, help="report what would be dropped, change nothing")
def maintain(target: str | None, project_dir: Path | None, batch_size: int,
             dry_run: bool) -> None:
    """Apply retention (config retention_policy, var setu_bronze_retention) where no
    TimescaleDB policy does: drop_chunks on hypertables (Apache edition), batched deletes
    on plain PostgreSQL. Relations with a retention policy job are left to the job.
    Run it daily, e.g. from cron or pg_cron.
    """
    try:
        targets = retention_targets(project_dir, target)
    except MaintainError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    failed = 0
    with connect(target, autocommit=True) as conn:
        caps = read_capabilities(conn)
        how = ("TimescaleDB " + caps.timescaledb_version + f" ({caps.license})"
               if caps.timescaledb else "plain PostgreSQL")
        console.print(f"setu maintain: {len(targets)} relations with retention on {how}",
                      highlight=False)
        for item in targets:
            try:
                outcome = maintain_one(conn, item, caps.timescaledb, caps.community,
                                       batch_size, dry_run)
            except psycopg.Error as exc:
                failed += 1
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                outcome = f"[red]failed:[/] {reason}"
            console.print(f"setu: {item.label}: {outcome}", highlight=False)
    sys.exit(1 if failed else 0)
