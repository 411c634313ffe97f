"""In-database jobs: run the pipeline every minute inside the database between dbt builds.

The job calls ``_etl.run_pipeline()``, which runs the SQL that the last dbt run compiled and
registered in ``_etl.models`` (never a hand-written copy), through the same batch functions
dbt's materialization calls. Schedulers, best first: TimescaleDB Community ``add_job``,
pg_cron, or ``setu run-jobs`` as a foreground scheduler when the server has neither.
"""

from __future__ import annotations

import json
import time

import click
import psycopg
import psycopg.sql
from rich.console import Console
from rich.table import Table

from setu.warehouse.capabilities import read_capabilities
from setu.warehouse.profile import connect

console = Console()
CRON_JOB_NAME = "setu-pipeline"
SCHEDULE_INTERVAL = "1 minute"
JOB_CONFIG = '{"setu": "pipeline"}'


def _registered_models(conn: psycopg.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("select to_regclass('_etl.models') is not null")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("select count(*) from _etl.models")
        return cur.fetchone()[0]


def _timescaledb_jobs(conn: psycopg.Connection) -> dict[str | None, int]:
    """The pipeline's TimescaleDB jobs by branch (None: a job for all models)."""
    with conn.cursor() as cur:
        cur.execute(
            "select config ->> 'branch', job_id from timescaledb_information.jobs"
            " where proc_schema = '_etl' and proc_name = 'run_pipeline_job'"
        )
        return dict(cur.fetchall())


def _pg_cron_ready(conn: psycopg.Connection) -> bool:
    with conn.cursor() as cur:
        cur.execute("select exists(select from pg_extension where extname = 'pg_cron')")
        return cur.fetchone()[0]


def registered_scheduler(conn: psycopg.Connection) -> str | None:
    """The in-database job `setu register-jobs` left, if any: 'pg_cron' or 'timescaledb'."""
    def ask(query: str, *params: object) -> bool:
        return bool(conn.execute(query, params).fetchone()[0])

    if ask("select exists(select from pg_extension where extname = 'pg_cron')") and ask(
            "select exists(select from cron.job where active and (jobname = %s"
            " or jobname like %s))", CRON_JOB_NAME, CRON_JOB_NAME + ":%"):
        return "pg_cron"
    if ask("select to_regclass('timescaledb_information.jobs') is not null") and ask(
            "select exists(select from timescaledb_information.jobs where proc_schema = '_etl'"
            " and proc_name = 'run_pipeline_job' and scheduled)"):
        return "timescaledb"
    return None


def branches(conn: psycopg.Connection) -> list[str]:
    """The independent branches of the model DAG, by their root model."""
    return [row[0] for row in conn.execute(
        "select distinct branch from _etl.pipeline_branches() order by branch")]


def branch_call(runner: str, branch: str) -> str:
    """The CALL one branch's job runs; the branch is a literal (job commands are text)."""
    literal = psycopg.sql.Literal(branch).as_string(None)
    return f"call _etl.run_pipeline('{runner} {branch}', 100, {literal})"


def register(conn: psycopg.Connection) -> str:
    """Schedule one job per independent branch of the DAG with the best scheduler the server
    offers, so the branches run in parallel; idempotent (jobs of gone branches are removed)."""
    caps = read_capabilities(conn)
    wanted = branches(conn)
    with conn.cursor() as cur:
        # One registration at a time: two at once would add each job twice.
        cur.execute("select pg_advisory_lock(hashtextextended('setu.register-jobs', 0))")
        try:
            if caps.community:
                existing = _timescaledb_jobs(conn)
                for branch, job_id in existing.items():
                    if branch not in wanted:
                        cur.execute("select delete_job(%s)", (job_id,))
                for branch in wanted:
                    config = json.dumps({"setu": "pipeline", "branch": branch})
                    if branch in existing:
                        # alter_job keeps the job's id and its statistics.
                        cur.execute(
                            "select alter_job(job_id => %s, schedule_interval => %s::interval,"
                            " scheduled => true, config => %s::jsonb)",
                            (existing[branch], SCHEDULE_INTERVAL, config))
                    else:
                        cur.execute(
                            "select add_job(proc => '_etl.run_pipeline_job'::regproc,"
                            " schedule_interval => %s::interval, config => %s::jsonb)",
                            (SCHEDULE_INTERVAL, config))
                return (f"TimescaleDB jobs for {len(wanted)} branch(es) "
                        f"({', '.join(wanted)}): run_pipeline every {SCHEDULE_INTERVAL}")
            if _pg_cron_ready(conn):
                cur.execute("select jobname from cron.job where jobname = %s or jobname like %s",
                            (CRON_JOB_NAME, CRON_JOB_NAME + ":%"))
                names = {f"{CRON_JOB_NAME}:{branch}": branch for branch in wanted}
                for (name,) in cur.fetchall():
                    if name not in names:
                        cur.execute("select cron.unschedule(%s)", (name,))
                for name, branch in names.items():
                    # cron.schedule() with a job name replaces the job of that name.
                    cur.execute("select cron.schedule(%s, '* * * * *', %s)",
                                (name, branch_call("pg_cron", branch)))
                return (f"pg_cron jobs for {len(wanted)} branch(es) ({', '.join(wanted)}):"
                        " _etl.run_pipeline every minute")
        finally:
            cur.execute("select pg_advisory_unlock(hashtextextended('setu.register-jobs', 0))")
    reason = ("TimescaleDB jobs need the Community edition (license is "
              f"{caps.license}) and pg_cron is not installed in this database")
    raise click.ClickException(
        f"no in-database scheduler: {reason}; run `setu run-jobs --every 60` instead"
    )


@click.command("register-jobs")
@click.option("--target", help="dbt target (default: the profile's)")
def register_jobs(target: str | None) -> None:
    """Schedule the pipeline inside the database every minute (idempotent)."""
    with connect(target, autocommit=True) as conn:
        if not _registered_models(conn):
            raise click.ClickException(
                "no models are registered in _etl.models yet: run `setu build` first"
            )
        console.print(register(conn), highlight=False)


def model_lag(conn: psycopg.Connection) -> list[tuple]:
    """Per model: rows processed, last run, and how long its oldest unprocessed row waits."""
    sql = """
        select
            m.model_name,
            w.source_name,
            w.last_processed_id,
            w.rows_processed,
            w.updated_at,
            lag.waiting
        from _etl.models as m
        inner join _etl.watermarks as w on m.model_name = w.model_name
        cross join lateral _etl.source_lag(w.source_name, w.last_processed_id) as lag (waiting)
        order by m.run_order, m.model_name, w.source_name
    """
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@click.command("jobs")
@click.option("--target", help="dbt target (default: the profile's)")
def list_jobs(target: str | None) -> None:
    """List the scheduled pipeline jobs with their last run, status and lag."""
    with connect(target, autocommit=True) as conn:
        caps = read_capabilities(conn)
        schedules = Table("scheduler", "job", "schedule", "active")
        with conn.cursor() as cur:
            if caps.community:
                for branch, job_id in sorted(_timescaledb_jobs(conn).items(), key=str):
                    cur.execute("select schedule_interval, scheduled"
                                " from timescaledb_information.jobs where job_id = %s", (job_id,))
                    interval, scheduled = cur.fetchone()
                    schedules.add_row("timescaledb", f"{job_id} ({branch or 'all'})",
                                      str(interval), str(scheduled))
            if _pg_cron_ready(conn):
                cur.execute("select jobid, jobname, schedule, active from cron.job"
                            " where jobname = %s or jobname like %s order by jobname",
                            (CRON_JOB_NAME, CRON_JOB_NAME + ":%"))
                for jobid, name, schedule, active in cur.fetchall():
                    schedules.add_row("pg_cron", f"{jobid} ({name})", schedule, str(active))
            console.print(schedules if schedules.row_count else
                          "no in-database job scheduled (see `setu register-jobs`)")
            cur.execute("select to_regclass('_etl.job_runs') is not null")
            if cur.fetchone()[0]:
                cur.execute("select run_id, runner, pid,"
                            " to_char(started_at, 'YYYY-MM-DD HH24:MI:SS'),"
                            " finished_at - started_at, status, batches, rows_processed,"
                            " array_to_string(skipped, ', '), left(error, 60)"
                            " from _etl.job_runs order by run_id desc limit 8")
                runs = Table("run", "runner", "pid", "started (UTC)", "took", "status",
                             "batches", "rows", "skipped (held elsewhere)", "error",
                             title="last pipeline runs")
                for row in cur.fetchall():
                    runs.add_row(*[("" if value is None else str(value)) for value in row])
                console.print(runs)
        if _registered_models(conn):
            lag = Table("model", "source", "watermark", "rows", "advanced at", "lag",
                        title="pipeline lag (age of the oldest unprocessed row)")
            for row in model_lag(conn):
                lag.add_row(*[("" if value is None else str(value)) for value in row])
            console.print(lag)


@click.command("run-jobs")
@click.option("--every", "every_seconds", type=click.IntRange(min=1), default=60,
              show_default=True, help="seconds between pipeline runs")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="stop after this many runs (default: until interrupted)")
@click.option("--target", help="dbt target (default: the profile's)")
def run_jobs(every_seconds: int, count: int | None, target: str | None) -> None:
    """Run the pipeline in the foreground on a fixed period (for servers without a scheduler)."""
    runs = 0
    with connect(target, autocommit=True) as conn:
        while count is None or runs < count:
            began = time.monotonic()
            conn.execute("call _etl.run_pipeline('setu run-jobs')")
            # Its own run: another runner's may have started or ended since (run_pipeline
            # logs each run with its backend's pid).
            row = conn.execute("select status, batches, rows_processed, error from _etl.job_runs"
                               " where pid = pg_backend_pid() order by run_id desc limit 1"
                               ).fetchone()
            runs += 1
            console.print(f"run {runs}: {row[0]}, {row[1]} batch(es), {row[2]} rows"
                          + (f", errors: {row[3]}" if row[3] else ""), highlight=False)
            if count is not None and runs >= count:
                break
            time.sleep(max(0.0, every_seconds - (time.monotonic() - began)))
