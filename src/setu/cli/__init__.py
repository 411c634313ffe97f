"""`setu`: the single command line of the SETU warehouse."""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from setu.warehouse import dbt
from setu.warehouse.cluster import Cluster, DatabaseError
from setu.warehouse.preflight import ensure_database
from setu.warehouse.profile import ProfileError, adapter_type, connect, load_target

console = Console()
# Errors go to stderr on one line, whatever the terminal's width.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)
DBT_PASSTHROUGH = dict(ignore_unknown_options=True, allow_extra_args=True,
                       help_option_names=[])


class SetuGroup(click.Group):
    """Turns SETU's own errors into one clear line and exit code 2, like dbt's."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (DatabaseError, ProfileError) as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(2)


@click.group(cls=SetuGroup)
def main() -> None:
    """SETU: a dbt + TimescaleDB telemetry warehouse for machine shops.

    Start with `setu db start` (a private PostgreSQL for this checkout), then `setu demo`
    to build the whole warehouse on a simulated fleet. dbt commands (build, run, test,
    seed, docs, ...) pass straight through to dbt with this project's profile.
    """


# -- embedded database -------------------------------------------------------------------

@main.group()
def db() -> None:
    """The embedded PostgreSQL cluster (git-ignored folder, loopback, its own port)."""


@db.command("start")
def db_start() -> None:
    """Start the cluster (creating it on first use); a no-op when it already runs."""
    cluster = Cluster.default()
    started = cluster.start()
    word = "started" if started else "already running"
    console.print(f"embedded database {word}: {cluster.url}", highlight=False)


@db.command("stop")
def db_stop() -> None:
    """Stop the cluster cleanly."""
    stopped = Cluster.default().stop()
    console.print("embedded database stopped" if stopped else "embedded database was not running")


@db.command("status")
def db_status() -> None:
    """Show whether the cluster exists and runs; exit 1 when it is not running."""
    cluster = Cluster.default()
    for key, value in cluster.status().items():
        console.print(f"{key:>15}: {value}", highlight=False)
    sys.exit(0 if cluster.running() else 1)


@db.command("url")
def db_url() -> None:
    """Print the cluster's connection URL."""
    click.echo(Cluster.default().url)




# -- diagnostics -------------------------------------------------------------------------

@main.command()
@click.option("--target", help="dbt target to inspect (default: the profile's target)")
def doctor(target: str | None) -> None:
    """Report PostgreSQL and TimescaleDB versions, license, and which features are on."""
    from setu.warehouse.capabilities import read_capabilities
    from setu.warehouse.profile import connect

    settings = load_target(target)
    with connect(target) as conn:
        caps = read_capabilities(conn)
    console.print(f"target      : {settings.name} ({settings.host}:{settings.port}/"
                  f"{settings.dbname})", highlight=False)
    console.print(f"PostgreSQL  : {caps.pg_version}", highlight=False)
    ts_text = caps.timescaledb_version or (
        f"not installed (available: {caps.timescaledb_available})"
        if caps.timescaledb_available else "not installed")
    console.print(f"TimescaleDB : {ts_text}", highlight=False)
    console.print(f"license     : {caps.license}", highlight=False)
    table = Table("feature", "state", "why")
    for feature, enabled, why in caps.features():
        table.add_row(feature, "[green]on[/]" if enabled else "[yellow]off[/]", why)
    console.print(table)


# -- dbt, in-process ---------------------------------------------------------------------

def _dbt_command(name: str, doc: str) -> None:
    @main.command(name, context_settings=DBT_PASSTHROUGH, help=doc, add_help_option=False)
    @click.pass_context
    def command(ctx: click.Context) -> None:
        args = [name, *ctx.args]
        target = _target_arg(ctx.args)
        # The lake target (Spark) has no database of ours to start or to check.
        if ("--help" not in args and "-h" not in args and name not in ("parse", "list", "ls")
                and adapter_type(target) == "postgres"):
            ensure_database(target)
            if name != "debug" and args[:2] != ["docs", "serve"]:
                # An unreachable database is one clear line now, not dbt's multi-line
                # error after it has parsed the whole project.
                connect(target).close()
            if name in dbt.WAREHOUSE_CHANGING_COMMANDS:
                with dbt.warehouse_lock(target):
                    sys.exit(dbt.run(args))
        sys.exit(dbt.run(args))


def _target_arg(args: list[str]) -> str | None:
    for flag in ("--target", "-t"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return None


for _name, _doc in {
    "build": "dbt build: seeds, models, snapshots and tests in DAG order.",
    "run": "dbt run: build the models.",
    "test": "dbt test: run the data and unit tests.",
    "seed": "dbt seed: load the CSV seeds.",
    "docs": "dbt docs generate | serve.",
    "compile": "dbt compile: render the SQL into target/.",
    "source": "dbt source freshness.",
    "run-operation": "dbt run-operation MACRO [--args YAML].",
    "show": "dbt show: preview a model's rows.",
    "list": "dbt list: the project's resources.",
    "parse": "dbt parse: check the project parses.",
    "debug": "dbt debug: check the profile and connection.",
}.items():
    _dbt_command(_name, _doc)


# -- commands that live in their own modules ----------------------------------------------
# Each module defines one click command (or group) for its verb; registering them here keeps
# `setu --help` the single list of everything SETU does.
from setu.ops.maintain import maintain  # noqa: E402

main.add_command(maintain)

from setu.cli.ingest import ingest  # noqa: E402
from setu.tools.simulate import simulate  # noqa: E402

main.add_command(ingest)
main.add_command(simulate)

from setu.ingest.connectors.mtconnect_agent import follow_agent_command, mtconnect  # noqa: E402

main.add_command(mtconnect)
main.add_command(follow_agent_command)

from setu.ops.replica import replica  # noqa: E402

main.add_command(replica)

from setu.ops.roles import roles  # noqa: E402

main.add_command(roles)

from setu.ingest.connectors.provision import provision  # noqa: E402
from setu.tools.soak import soak  # noqa: E402

main.add_command(provision)
main.add_command(soak)

from setu.ops.recompute import recompute  # noqa: E402
from setu.ops.validate import validate  # noqa: E402

main.add_command(validate)
main.add_command(recompute)

from setu.ops.report import report  # noqa: E402

main.add_command(report)

from setu.ingest.connectors.edge_sync import sync_edge  # noqa: E402
from setu.ops.bronze import create_bronze  # noqa: E402
from setu.ops.export import export_command  # noqa: E402
from setu.ops.jobs import list_jobs, register_jobs, run_jobs  # noqa: E402
from setu.ops.state import seed_state  # noqa: E402
from setu.tools.bench import bench  # noqa: E402
from setu.tools.demo import demo  # noqa: E402

for _command in (demo, bench, create_bronze, seed_state, register_jobs, list_jobs, run_jobs,
                 sync_edge, export_command):
    main.add_command(_command)



# -- --target on every verb ----------------------------------------------------------------
# One option for every command that has none of its own, here rather than in each module: it
# selects the target for `setu`'s connections (load_target reads SETU_TARGET) and for the dbt
# it runs in-process (dbt reads DBT_TARGET). The dbt pass-through commands take dbt's own
# --target; `setu db` is the embedded cluster whatever the target.
def _select_target(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        os.environ["SETU_TARGET"] = os.environ["DBT_TARGET"] = value


def _add_target_option(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            _add_target_option(subcommand)
    elif not any("--target" in param.opts for param in command.params):
        command.params.append(click.Option(
            ["--target"], expose_value=False, is_eager=True, callback=_select_target,
            help="dbt target (default: the profile's target)"))


for _command in main.commands.values():
    if _command.name != "db" and not _command.context_settings.get("ignore_unknown_options"):
        _add_target_option(_command)


if __name__ == "__main__":
    main()
