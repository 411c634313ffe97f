"""dbt, run in-process through dbtRunner with the project's folder and profile."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from setu.warehouse.paths import PROJECT_DIR
from setu.warehouse.profile import connect, profiles_dir

# dbt's own command-line exit codes.
EXIT_SUCCESS, EXIT_FAILURE, EXIT_ERROR = 0, 1, 2

PROJECT_COMMANDS = {
    "build", "run", "test", "seed", "snapshot", "compile", "docs", "source", "run-operation",
    "list", "ls", "parse", "show", "debug", "clean", "retry", "clone", "deps",
}


def with_project_args(args: Sequence[str]) -> list[str]:
    argv = list(args)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in PROJECT_COMMANDS:
        return argv
    extra = []
    if "--project-dir" not in argv:
        extra += ["--project-dir", str(PROJECT_DIR)]
    if "--profiles-dir" not in argv and command not in ("clean", "deps"):
        extra += ["--profiles-dir", str(profiles_dir())]
    # Before the user's first option (after `docs generate`, `run-operation MACRO`), not at the
    # end, where an option missing its value (`run --select`) would take them as its values.
    start = argv.index(command) + 1
    at = next((i for i in range(start, len(argv)) if argv[i].startswith("-")), len(argv))
    return argv[:at] + extra + argv[at:]


def invoke(args: Sequence[str]):
    """Run dbt with args; returns dbt's dbtRunnerResult."""
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke(with_project_args(args))


def exit_code(result) -> int:
    if result.success:
        return EXIT_SUCCESS
    return EXIT_ERROR if result.exception is not None else EXIT_FAILURE


def run(args: Sequence[str]) -> int:
    """Run dbt and return the exit code the dbt command line would have given."""
    from dbt.cli.exceptions import DbtUsageException

    result = invoke(args)
    if isinstance(result.exception, DbtUsageException):
        # dbt's command line prints its usage errors itself; dbtRunner only returns them.
        print(f"error: dbt: {result.exception}", file=sys.stderr)
    return exit_code(result)


# Commands that create or replace relations: dbt swaps a view or table in through a renamed
# `__dbt_backup` relation, so two of them at once collide on that name (or deadlock).
WAREHOUSE_CHANGING_COMMANDS = frozenset({"build", "run", "seed", "snapshot"})
# pg_advisory_lock key; the watermark models' per-model locks use 'setu.model:<name>'.
WAREHOUSE_LOCK_KEY = "setu.dbt-warehouse"


@contextmanager
def warehouse_lock(target: str | None = None) -> Iterator[None]:
    """Holds the warehouse's dbt lock on a connection of its own: one `setu build`/`run`/
    `seed` at a time, the next one waiting (and saying so) instead of failing. The
    in-database jobs take only their models' locks, so they go on meanwhile."""
    with connect(target, autocommit=True) as conn:
        key = "hashtextextended(%s, 0)"
        if not conn.execute(f"select pg_try_advisory_lock({key})",
                            (WAREHOUSE_LOCK_KEY,)).fetchone()[0]:
            print("waiting: another setu build, run or seed is changing the warehouse",
                  file=sys.stderr, flush=True)
            conn.execute(f"select pg_advisory_lock({key})", (WAREHOUSE_LOCK_KEY,))
        yield  # the session lock ends with the connection


def run_operation(macro: str, args: dict | None = None, quiet: bool = True) -> int:
    import json

    argv = ["run-operation", macro]
    if args:
        argv += ["--args", json.dumps(args)]
    if quiet:
        argv = ["--quiet", *argv]
    return run(argv)
