"""dbt, run in-process through dbtRunner with the project's folder and profile."""

from __future__ import annotations

from collections.abc import Sequence

from setu.paths import PROJECT_DIR
from setu.profile import profiles_dir

# dbt's own command-line exit codes.
EXIT_SUCCESS, EXIT_FAILURE, EXIT_ERROR = 0, 1, 2

PROJECT_COMMANDS = {
    "build", "run", "test", "seed", "snapshot", "compile", "docs", "source", "run-operation",
    "list", "ls", "parse", "show", "debug", "clean", "retry", "clone", "deps",
}


def with_project_args(args: Sequence[str]) -> list[str]:
    argv = list(args)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in PROJECT_COMMANDS:
        if "--project-dir" not in argv:
            argv += ["--project-dir", str(PROJECT_DIR)]
        if "--profiles-dir" not in argv and command not in ("clean", "deps"):
            argv += ["--profiles-dir", str(profiles_dir())]
    return argv


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
    return exit_code(invoke(args))


def run_operation(macro: str, args: dict | None = None, quiet: bool = True) -> int:
    import json

    argv = ["run-operation", macro]
    if args:
        argv += ["--args", json.dumps(args)]
    if quiet:
        argv = ["--quiet", *argv]
    return run(argv)
