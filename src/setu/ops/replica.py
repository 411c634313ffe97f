"""`setu replica`: read replicas that receive the gold, master and webapp schemas.

Logical replication, PostgreSQL 15's own: on the primary a publication ``setu_replica`` holds
every table of those schemas (``for tables in schema``); each replica holds a subscription to
it. Only plain tables replicate (a hypertable's rows live in its chunks, outside the
published schemas), which is why SETU's gold, master and webapp relations are plain tables.

- ``init``: creates or reconciles the publication and the tables' replica identities through
  the dbt macro ``create_replica_publication`` (the SQL lives in the macro only); copies the
  definitions of published tables the subscriber lacks (``pg_dump --schema-only | psql``);
  creates the subscription, or refreshes it so that new tables are picked up.
- ``status``: the publication's tables with row counts on the primary and, given a
  subscriber, the subscription's state and its row counts beside them.

DDL does not replicate: a new Gold table reaches the replicas on the next ``init``. See
docs/replicas.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import click
import psycopg
from psycopg import sql
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from setu.warehouse import dbt
from setu.warehouse.cluster import DatabaseError, pg_bin
from setu.warehouse.profile import ProfileError, Target, connect, load_target

PUBLICATION = "setu_replica"
SUBSCRIPTION = "setu_replica"
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)
# pg_subscription_rel.srsubstate
SYNC_STATES = {"i": "initializing", "d": "copying data", "f": "copy finished",
               "s": "synchronized", "r": "ready"}


class ReplicaError(RuntimeError):
    """A replica set-up problem, phrased as what to do about it."""


class ReplicaGroup(click.Group):
    """Prints SETU's errors as one line with exit code 2, like the main command."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ReplicaError, DatabaseError, ProfileError) as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err_console.print(f"[bold red]error:[/] {escape(reason)}")
            sys.exit(2)


@dataclass(frozen=True, order=True)
class TableName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def dump_pattern(self) -> str:
        """An exact pg_dump -t pattern (double quotes make every character literal)."""
        return ".".join('"' + part.replace('"', '""') + '"' for part in (self.schema, self.name))


# -- connections ---------------------------------------------------------------------------

def _reason(exc: psycopg.OperationalError) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0].rsplit(" failed: ", 1)[-1] if lines else "no answer"


def describe_url(url: str) -> str:
    """host:port/dbname of a connection string or URL, without its password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ReplicaError(f"--subscriber-url is not a valid connection string: {exc}") from exc
    return (f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
            f"/{params.get('dbname', params.get('user', ''))}")


def connect_subscriber(url: str) -> psycopg.Connection:
    where = describe_url(url)
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ReplicaError(f"cannot connect to the subscriber at {where}: {_reason(exc)}") from exc


def _scalar(conn: psycopg.Connection, query: str | sql.Composable, params: Sequence = ()
            ) -> object:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def check_wal_level(primary: psycopg.Connection, target: Target) -> None:
    level = _scalar(primary, "select current_setting('wal_level')")
    if level != "logical":
        raise ReplicaError(
            f"wal_level on the primary (target {target.name!r}) is {level!r}: logical "
            f"replication needs wal_level = logical (set it in postgresql.conf, restart the "
            f"server)"
        )


def check_distinct_servers(primary: psycopg.Connection, subscriber: psycopg.Connection) -> None:
    """A subscription on the primary's own server would wait forever for its slot."""
    query = "select system_identifier from pg_control_system()"
    try:
        same = _scalar(primary, query) == _scalar(subscriber, query)
    except psycopg.Error:
        return  # not allowed to read it: let PostgreSQL's own checks speak
    if same:
        raise ReplicaError("the subscriber is on the primary's own server: a replica needs a "
                           "server of its own")


# -- the primary: publication -------------------------------------------------------------

def ensure_publication(publication: str, target: str | None) -> None:
    """Create or reconcile the publication with the dbt macro (the SQL lives only there);
    prints the macro's "setu: ..." lines, one per change."""
    from dbt.cli.main import dbtRunner

    def show(event) -> None:
        if event.info.name == "JinjaLogInfo" and event.info.msg.startswith("setu: "):
            console.print(event.info.msg)

    argv = ["--quiet", "run-operation", "create_replica_publication",
            "--args", json.dumps({"publication": publication})]
    if target:
        argv += ["--target", target]
    result = dbtRunner(callbacks=[show]).invoke(dbt.with_project_args(argv))
    if dbt.exit_code(result) != dbt.EXIT_SUCCESS:
        raise ReplicaError(f"could not create or reconcile publication {publication!r} on the "
                           f"primary (dbt's message above)")


def published_schemas(primary: psycopg.Connection, publication: str) -> list[str] | None:
    """The publication's schemas, or None when it does not exist."""
    row = primary.execute(
        "select array(select n.nspname::text from pg_publication_namespace as pn"
        " inner join pg_namespace as n on pn.pnnspid = n.oid"
        " where pn.pnpubid = p.oid order by 1)"
        " from pg_publication as p where p.pubname = %s", (publication,)).fetchone()
    return None if row is None else list(row[0])


def published_tables(primary: psycopg.Connection, publication: str) -> list[TableName]:
    """The tables whose rows the publication sends (hypertables excluded: chunks hold them)."""
    rows = primary.execute(
        "select schemaname::text, tablename::text from pg_publication_tables"
        " where pubname = %s order by 1, 2", (publication,)).fetchall()
    tables = [TableName(*row) for row in rows]
    hypertables = _hypertables(primary)
    return [table for table in tables if table not in hypertables]


def _hypertables(conn: psycopg.Connection) -> set[TableName]:
    if not _scalar(conn, "select exists(select from pg_extension where extname = 'timescaledb')"):
        return set()
    rows = conn.execute("select hypertable_schema::text, hypertable_name::text"
                        " from timescaledb_information.hypertables").fetchall()
    return {TableName(*row) for row in rows}


# -- the subscriber: table definitions -----------------------------------------------------

def existing_tables(conn: psycopg.Connection, schemas: Iterable[str]) -> set[TableName]:
    rows = conn.execute(
        "select n.nspname::text, c.relname::text from pg_class as c"
        " inner join pg_namespace as n on c.relnamespace = n.oid"
        " where c.relkind in ('r', 'p') and n.nspname = any(%s)", (list(schemas),)).fetchall()
    return {TableName(*row) for row in rows}


_TOC_ENTRY = re.compile(r"(?m)^--\n-- (?=(?:Data for )?Name: )")
_DUMP_END = re.compile(r"(?m)^--\n-- PostgreSQL database dump complete\n")


def strip_timescaledb(dump: str) -> str:
    """Drops every pg_dump entry that refers to TimescaleDB (e.g. a hypertable's
    ts_insert_blocker trigger): the subscriber needs none of it and may lack the extension.
    The header and the trailer (psql's \\restrict / \\unrestrict) are kept."""
    end = _DUMP_END.search(dump)
    body, trailer = (dump[:end.start()], dump[end.start():]) if end else (dump, "")
    head, *entries = _TOC_ENTRY.split(body)
    kept = [entry for entry in entries if "timescaledb" not in entry.lower()]
    return head + "".join("--\n-- " + entry for entry in kept) + trailer


def dump_table_definitions(target: Target, tables: Sequence[TableName]) -> str:
    """pg_dump --schema-only of the tables: columns, indexes, constraints, comments and
    replica identity; no owners, grants, tablespaces or access methods."""
    argv = [pg_bin("pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
            "--no-tablespaces", "--no-table-access-method", "--no-publications",
            "--no-subscriptions", "--no-security-labels", "--strict-names",
            "--dbname", target.conninfo(password=None, application_name="setu replica")]
    for table in tables:
        argv += ["--table", table.dump_pattern]
    env = {"PGPASSWORD": target.password} if target.password else {}
    result = subprocess.run(argv, capture_output=True, text=True, env=_environ(env))
    if result.returncode != 0:
        raise ReplicaError(f"pg_dump of the primary failed: {_first_line(result.stderr)}")
    return strip_timescaledb(result.stdout)


def apply_definitions(subscriber_url: str, script: str) -> None:
    """Runs the dump on the subscriber with psql, in one transaction."""
    result = subprocess.run(
        [pg_bin("psql"), "--no-psqlrc", "--quiet", "--single-transaction",
         "--set", "ON_ERROR_STOP=1", "--dbname", subscriber_url, "--file", "-"],
        input=script, capture_output=True, text=True, env=_environ({}),
    )
    if result.returncode != 0:
        raise ReplicaError("creating the tables on the subscriber failed: "
                           + _first_line(result.stderr))


def _environ(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PGCONNECT_TIMEOUT": "10", **extra}


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def copy_table_definitions(target: Target, subscriber: psycopg.Connection, subscriber_url: str,
                           schemas: Sequence[str], tables: Sequence[TableName]
                           ) -> list[TableName]:
    """Creates the schemas and the published tables the subscriber lacks; returns those."""
    for schema in schemas:
        subscriber.execute(sql.SQL("create schema if not exists {}").format(
            sql.Identifier(schema)))
    missing = sorted(set(tables) - existing_tables(subscriber, schemas))
    if missing:
        apply_definitions(subscriber_url, dump_table_definitions(target, missing))
    return missing


# -- the subscriber: subscription ----------------------------------------------------------

@dataclass(frozen=True)
class Subscription:
    name: str
    enabled: bool
    slot: str | None
    publications: list[str]


def find_subscription(conn: psycopg.Connection, name: str) -> Subscription | None:
    row = conn.execute(
        "select subname::text, subenabled, subslotname::text, subpublications::text[]"
        " from pg_subscription where subname = %s"
        " and subdbid = (select oid from pg_database where datname = current_database())",
        (name,)).fetchone()
    return None if row is None else Subscription(row[0], row[1], row[2], list(row[3]))


def ensure_subscription(primary: psycopg.Connection, subscriber: psycopg.Connection,
                        conninfo: str, publication: str, slot: str) -> str:
    """Creates the subscription, or refreshes it (new tables are copied); returns what it did.
    """
    existing = find_subscription(subscriber, SUBSCRIPTION)
    name = sql.Identifier(SUBSCRIPTION)
    if existing is not None:
        if not existing.enabled:
            raise ReplicaError(
                f"subscription {SUBSCRIPTION!r} on the subscriber is disabled: "
                f"`alter subscription {SUBSCRIPTION} enable` there, then run this again")
        if publication not in existing.publications:
            subscriber.execute(sql.SQL("alter subscription {} set publication {}").format(
                name, sql.Identifier(publication)))
            return f"subscription {SUBSCRIPTION} now subscribes to {publication}"
        subscriber.execute(sql.SQL("alter subscription {} refresh publication").format(name))
        note = f" (its slot is {existing.slot!r}, not {slot!r})" if existing.slot != slot else ""
        return f"subscription {SUBSCRIPTION} refreshed{note}"
    active = primary.execute("select active from pg_replication_slots where slot_name = %s",
                             (slot,)).fetchone()
    if active is not None:
        whose = "an active" if active[0] else "an inactive"
        raise ReplicaError(
            f"{whose} replication slot {slot!r} already exists on the primary (another "
            f"replica's?): give this replica a slot of its own with --slot NAME, or drop the "
            f"stale one there with select pg_drop_replication_slot('{slot}')")
    subscriber.execute(
        sql.SQL("create subscription {} connection {} publication {}"
                " with (slot_name = {})").format(
            name, sql.Literal(conninfo), sql.Identifier(publication), sql.Literal(slot)))
    return f"subscription {SUBSCRIPTION} created (slot {slot} on the primary)"


def drop_replica(subscriber: psycopg.Connection, tables: Iterable[TableName]) -> list[TableName]:
    """Drops the subscription (and with it its slot on the primary) and the subscriber's
    copies of the tables; returns the tables dropped."""
    if find_subscription(subscriber, SUBSCRIPTION) is not None:
        subscriber.execute(sql.SQL("drop subscription {}").format(sql.Identifier(SUBSCRIPTION)))
    tables = list(tables)
    present = sorted(set(tables) & existing_tables(subscriber, {t.schema for t in tables}))
    if present:
        subscriber.execute(sql.SQL("drop table {}").format(
            sql.SQL(", ").join(table.ident for table in present)))
    return present


def sync_states(subscriber: psycopg.Connection) -> dict[TableName, str]:
    """pg_subscription_rel's state of each of the subscription's tables."""
    rows = subscriber.execute(
        "select n.nspname::text, c.relname::text, r.srsubstate::text"
        " from pg_subscription_rel as r"
        " inner join pg_subscription as s on r.srsubid = s.oid"
        " inner join pg_class as c on r.srrelid = c.oid"
        " inner join pg_namespace as n on c.relnamespace = n.oid"
        " where s.subname = %s", (SUBSCRIPTION,)).fetchall()
    return {TableName(schema, table): state for schema, table, state in rows}


def wait_until_synchronized(subscriber: psycopg.Connection, timeout: float) -> bool:
    """Shows the initial copy's progress until every table is ready; False on timeout."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("initial copy"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("tables ready"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("copy", total=None)
        while True:
            states = sync_states(subscriber)
            ready = sum(state == "r" for state in states.values())
            progress.update(task, total=len(states), completed=ready)
            if ready == len(states):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def subscription_conninfo(target: Target, override: str | None) -> str:
    """How the subscriber reaches the primary: the profile's target unless overridden."""
    if override:
        return override
    # The subscription names itself in pg_stat_replication (application_name = its name).
    return target.conninfo(application_name=None)


# -- commands -----------------------------------------------------------------------------

@click.group(cls=ReplicaGroup)
def replica() -> None:
    """Read replicas of the gold, master and webapp schemas (logical replication).

    The primary is the dbt profile's target; a replica is any PostgreSQL 15+ database you
    can reach as a superuser (TimescaleDB is not needed there). See docs/replicas.md.
    """


@replica.command("init")
@click.option("--subscriber-url", required=True, metavar="URL",
              help="the replica's database, e.g. postgresql://postgres@replica:5432/setu")
@click.option("--slot", default=SUBSCRIPTION, show_default=True, metavar="NAME",
              help="replication slot on the primary; each replica needs its own")
@click.option("--primary-conninfo", metavar="CONNINFO",
              help="how the replica reaches the primary (default: the dbt target's host, "
                   "port, user, password and database)")
@click.option("--target", help="dbt target of the primary (default: the profile's target)")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="wait for the initial copy of the tables")
@click.option("--timeout", type=click.FloatRange(min=0), default=1800, show_default=True,
              help="seconds to wait for the initial copy")
@click.option("--resync", is_flag=True,
              help="first drop the subscription and the replica's copies of the published "
                   "tables, then copy everything afresh (after a changed table definition, or "
                   "when the replica stopped on an error)")
def init(subscriber_url: str, slot: str, primary_conninfo: str | None, target: str | None,
         wait: bool, timeout: float, resync: bool) -> None:
    """Set up a replica, or bring one up to date with the primary's tables.

    On the primary: the publication setu_replica (tables in schema gold, master, webapp)
    and a replica identity for each table. On the subscriber: the schemas, the definitions
    of the tables it lacks, and the subscription setu_replica (created, or refreshed so that
    new tables are copied). Safe to run again, e.g. after new Gold models were built.
    """
    settings = load_target(target)
    with connect(target, autocommit=True) as primary, \
            connect_subscriber(subscriber_url) as subscriber:
        check_wal_level(primary, settings)
        check_distinct_servers(primary, subscriber)
        ensure_publication(PUBLICATION, target)
        schemas = published_schemas(primary, PUBLICATION) or []
        tables = published_tables(primary, PUBLICATION)
        console.print(f"setu replica: publication {PUBLICATION} on {settings.name}: "
                      f"{len(tables)} tables in schema {', '.join(schemas)}")
        where = describe_url(subscriber_url)
        if resync:
            dropped = drop_replica(subscriber, tables)
            console.print(f"setu replica: {where}: subscription {SUBSCRIPTION} and "
                          f"{len(dropped)} table copies dropped")
        created = copy_table_definitions(settings, subscriber, subscriber_url, schemas, tables)
        console.print(f"setu replica: {where}: table definitions copied: {len(created)}"
                      + (f" ({', '.join(map(str, created))})" if created else ""))
        conninfo = subscription_conninfo(settings, primary_conninfo)
        outcome = ensure_subscription(primary, subscriber, conninfo, PUBLICATION, slot)
        console.print(f"setu replica: {where}: {outcome}")
        if wait and not wait_until_synchronized(subscriber, timeout):
            console.print(f"setu replica: the initial copy goes on after {timeout:g} s; follow it "
                          f"with `setu replica status --subscriber-url ...`")


def _count(conn: psycopg.Connection, table: TableName) -> int:
    return int(_scalar(conn, sql.SQL("select count(*) from {}").format(table.ident)) or 0)


@replica.command("status")
@click.option("--subscriber-url", metavar="URL", help="also show this replica's side")
@click.option("--target", help="dbt target of the primary (default: the profile's target)")
def status(subscriber_url: str | None, target: str | None) -> None:
    """The publication's tables and row counts on the primary and, with --subscriber-url,
    the subscription's state and the replica's row counts beside them. Counts are exact
    (count(*)) and taken one after the other, so a busy primary may be a little ahead."""
    settings = load_target(target)
    with connect(target, autocommit=True) as primary:
        level = _scalar(primary, "select current_setting('wal_level')")
        schemas = published_schemas(primary, PUBLICATION)
        if schemas is None:
            console.print(f"publication {PUBLICATION} does not exist on target {settings.name!r}:"
                          f" run `setu replica init --subscriber-url URL`")
            sys.exit(1)
        tables = published_tables(primary, PUBLICATION)
        console.print(f"primary     : {settings.name} ({settings.host}:{settings.port}/"
                      f"{settings.dbname}), wal_level {level}")
        console.print(f"publication : {PUBLICATION}, tables in schema {', '.join(schemas)}")
        for name, active, lag in primary.execute(
                "select slot_name::text, active,"
                " pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))"
                " from pg_replication_slots where plugin = 'pgoutput'"
                " and database = current_database() order by 1").fetchall():
            console.print(f"slot        : {name} ({'active' if active else 'inactive'}, "
                          f"{lag} behind)")
        primary_counts = {table: _count(primary, table) for table in tables}
    if subscriber_url is None:
        grid = Table("table", "primary rows")
        for table, count in primary_counts.items():
            grid.add_row(str(table), f"{count:,}")
        console.print(grid)
        return
    with connect_subscriber(subscriber_url) as subscriber:
        show_subscriber(subscriber, subscriber_url, primary_counts)


def show_subscriber(subscriber: psycopg.Connection, url: str,
                    primary_counts: dict[TableName, int]) -> None:
    where = describe_url(url)
    subscription = find_subscription(subscriber, SUBSCRIPTION)
    if subscription is None:
        console.print(f"subscriber  : {where}: no subscription {SUBSCRIPTION}")
    else:
        worker = subscriber.execute(
            "select pid, received_lsn::text, latest_end_lsn::text,"
            " date_trunc('second', last_msg_receipt_time)::text"
            " from pg_stat_subscription where subname = %s and relid is null",
            (SUBSCRIPTION,)).fetchone()
        if subscription.enabled and worker and worker[0]:
            state = (f"streaming (pid {worker[0]}, received {worker[1]}, "
                     f"confirmed {worker[2]}, last message {worker[3]})")
        else:
            state = "enabled, no worker running" if subscription.enabled else "disabled"
        console.print(f"subscriber  : {where}, subscription {SUBSCRIPTION} "
                      f"(slot {subscription.slot}): {state}")
        errors = subscriber.execute(
            "select apply_error_count, sync_error_count from pg_stat_subscription_stats"
            " where subname = %s", (SUBSCRIPTION,)).fetchone()
        if errors and any(errors):
            console.print(f"errors      : [yellow]{errors[0]} apply, {errors[1]} initial copy[/] "
                          f"since the subscription's statistics were reset; the subscriber's "
                          f"server log has them (a duplicate key after a --full-refresh, a "
                          f"changed table: `setu replica init --resync`)")
    states = sync_states(subscriber) if subscription else {}
    present = existing_tables(subscriber, {table.schema for table in primary_counts})
    grid = Table("table", "primary rows", "replica rows", "sync state")
    for table, count in primary_counts.items():
        if table in present:
            replica_count = _count(subscriber, table)
            shown = f"{replica_count:,}"
            if replica_count != count:
                shown = f"[yellow]{shown}[/]"
        else:
            shown = "[red]missing[/]"
        state = states.get(table)
        grid.add_row(str(table), f"{count:,}", shown,
                     SYNC_STATES.get(state, state) if state else "not subscribed")
    console.print(grid)
    missing = [str(table) for table in primary_counts if table not in present]
    if missing:
        console.print(f"[yellow]the replica lacks {', '.join(missing)}[/]: replication stops at "
                      f"the first change to them; `setu replica init --subscriber-url ...` "
                      f"copies their definitions and resumes it")
