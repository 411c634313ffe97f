"""dbt, run in-process through dbtRunner with the project's folder and profile."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from setu.warehouse.paths import PROJECT_DIR
from setu.warehouse.profile import profiles_dir

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


def run_operation(macro: str, args: dict | None = None, quiet: bool = True) -> int:
    import json

    argv = ["run-operation", macro]
    if args:
        argv += ["--args", json.dumps(args)]
    if quiet:
        argv = ["--quiet", *argv]
    return run(argv)
