"""The `setu` command line: dbt pass-through exit codes and one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import free_port
from setu.cli import main
from setu.warehouse.cluster import Cluster
from setu.warehouse.paths import PROJECT_DIR

BIN = Path(sys.executable).parent


@pytest.fixture
def scratch() -> Iterator[Path]:
    """dbt's target/ and logs/ for these runs, away from the developer's."""
    folder = Path(tempfile.mkdtemp(prefix="setu-test-cli-", dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def dbt_exit_code(args: list[str]) -> int:
    """What the real dbt command line exits with for args."""
    return subprocess.run([str(BIN / "dbt"), *args], capture_output=True, cwd=PROJECT_DIR,
                          timeout=120).returncode


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{output}"
    assert lines[0].startswith("error: ")
    return lines[0]


def test_parse_passes_through_with_exit_code_0(cluster: Cluster, scratch: Path) -> None:
    result = CliRunner().invoke(
        main, ["parse", "--target-path", str(scratch / "target"), "--log-path", str(scratch)]
    )
    assert result.exit_code == 0, result.output
    assert (scratch / "target" / "manifest.json").exists()


@pytest.mark.parametrize("args", [
    ["parse", "--no-such-flag"],
    ["run", "--no-such-flag"],
    ["run", "--select"],
])
def test_invalid_dbt_flags_exit_as_dbt_does(cluster: Cluster, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert result.exit_code == dbt_exit_code(args)
    assert "error: dbt:" in result.output


def test_unknown_command_exits_as_dbt_does() -> None:
    from dbt.cli.main import cli as dbt_cli

    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code != 0
    # dbt's own command group, in-process: the unit tier starts no second interpreter.
    assert result.exit_code == CliRunner().invoke(dbt_cli, ["no-such-command"]).exit_code
    assert "No such command 'no-such-command'" in result.output


@pytest.mark.parametrize("args", [["doctor"], ["run"], ["build", "--select", "nothing"]])
def test_unknown_target_is_one_clear_line(
    cluster: Cluster, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETU_TARGET", "nope")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert "target 'nope' is not in profile 'setu'" in line
    assert "known targets: ci, lake, lake_thrift, local, prod, prod_replica" in line


def test_unknown_target_flag_is_one_clear_line(cluster: Cluster) -> None:
    result = CliRunner().invoke(main, ["run", "--target", "nope"])
    assert result.exit_code == 2
    assert "target 'nope' is not in profile 'setu'" in one_line_error(result.output)


def test_unreachable_database_is_one_clear_line(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETU_PG_HOST", "127.0.0.2")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert f"cannot connect to target 'local' at 127.0.0.2:{cluster.port}/setu" in line
    assert "Connection refused" in line
    assert "setu db start" not in line, "only the embedded database gets that hint"


def test_stopped_embedded_database_hints_at_setu_db_start(
    monkeypatch: pytest.MonkeyPatch, scratch: Path
) -> None:
    monkeypatch.setenv("SETU_HOME", str(scratch))
    monkeypatch.setenv("SETU_PG_PORT", str(free_port()))
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert "(start it with `setu db start`)" in line
    assert not (scratch / "pgdata").exists(), "doctor must not create a cluster"


def test_errors_from_the_real_command_line(cluster: Cluster) -> None:
    """The installed `setu` script: exit code 2, one line on stderr, nothing on stdout."""
    env = os.environ | {"SETU_TARGET": "nope", "COLUMNS": "40"}
    proc = subprocess.run([str(BIN / "setu"), "doctor"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    known = "known targets: ci, lake, lake_thrift, local, prod, prod_replica"
    assert known in one_line_error(proc.stderr)


def test_only_the_generated_local_target_is_embedded(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, scratch: Path
) -> None:
    from setu.warehouse.profile import load_target

    assert load_target("local").is_embedded
    # the ci target on the very address and port of the embedded cluster is not it
    ci = load_target("ci")
    assert (ci.host, ci.port) == ("127.0.0.1", cluster.port)
    assert not ci.is_embedded
    # nor is a `local` target in a profile of the user's own
    shutil.copyfile(PROJECT_DIR / "profiles.example.yml", scratch / "profiles.yml")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(scratch))
    assert not load_target("local").is_embedded


def test_ci_target_on_a_server_of_ones_own_starts_no_cluster(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, scratch: Path
) -> None:
    """SETU_TARGET=ci with SETU_PG_PORT naming a running server (here the test cluster, seen
    from a checkout with no embedded cluster of its own): `setu run` uses that server."""
    home = scratch / "home"
    monkeypatch.setenv("SETU_HOME", str(home))
    monkeypatch.setenv("SETU_PG_USER", "setu")
    result = CliRunner().invoke(main, [
        "run", "--target", "ci", "--select", "no_such_model", "--target-path",
        str(scratch / "target"), "--log-path", str(scratch)], env={"DBT_TARGET": None})
    assert result.exit_code == 0, result.output
    assert "port" not in result.output or "in use" not in result.output
    assert not (home / "pgdata").exists(), "an embedded cluster was created for the ci target"


def leaf_commands(command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    import click

    if isinstance(command, click.Group):
        return [leaf for name, sub in command.commands.items()
                for leaf in leaf_commands(sub, (*path, name))]
    return [(path, command)]


def test_every_verb_takes_target() -> None:
    missing = [" ".join(path) for path, command in leaf_commands(main)
               if path[0] != "db" and not command.context_settings.get("ignore_unknown_options")
               and not any("--target" in param.opts for param in command.params)]
    assert missing == []


@pytest.mark.parametrize("verb", ["bronze", "seed-state", "jobs"])
def test_target_flag_of_setus_own_verbs_is_used(cluster: Cluster, verb: str) -> None:
    result = CliRunner().invoke(main, [verb, "--target", "nope"],
                                env={"SETU_TARGET": None, "DBT_TARGET": None})
    assert result.exit_code == 2, result.output
    assert "target 'nope' is not in profile 'setu'" in one_line_error(result.output)


def test_a_second_setu_run_waits_for_the_first(cluster: Cluster, scratch: Path) -> None:
    """Two `setu build`/`run` at once collided on dbt's `__dbt_backup` relations (issue #16):
    the second waits for the warehouse lock, says so, and then succeeds."""
    import psycopg

    key = "select pg_advisory_lock(hashtextextended('setu.dbt-warehouse', 0))"
    with psycopg.connect(cluster.url, autocommit=True) as holder:
        holder.execute(key)  # as a first `setu build` in progress holds it
        proc = subprocess.Popen(
            [str(BIN / "setu"), "run", "--select", "+dim_site", "--target-path",
             str(scratch / "target"), "--log-path", str(scratch / "logs")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            waiting = 0
            for _ in range(240):
                waiting = holder.execute(
                    "select count(*) from pg_locks where locktype = 'advisory'"
                    " and not granted").fetchone()[0]
                if waiting or proc.poll() is not None:
                    break
                subprocess.run(["sleep", "0.5"], check=True)
            assert waiting == 1, "the second run did not wait for the warehouse lock"
            assert proc.poll() is None
        finally:
            holder.execute("select pg_advisory_unlock_all()")
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    assert "waiting: another setu build, run or seed is changing the warehouse" in stderr
