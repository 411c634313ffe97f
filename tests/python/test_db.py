"""The embedded cluster's lifecycle: start, stop, crash recovery, a taken port, `setu db`.

These tests stop and kill their server, so they use a cluster of their own rather than the
session's shared one.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import free_port
from setu.cli import main
from setu.warehouse.cluster import Cluster, DatabaseError


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="setu-test-db-", dir="/var/tmp"))
    home.chmod(0o755)
    cluster = Cluster(home=home, port=free_port(), tuning="test")
    yield cluster
    cluster.destroy()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def stopped(own_cluster: Cluster) -> Cluster:
    own_cluster.init()
    own_cluster.stop()
    assert not own_cluster.running()
    return own_cluster


@pytest.fixture
def cli_env(own_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Points `setu db` (Cluster.default) at this module's cluster."""
    env = {"SETU_HOME": str(own_cluster.home), "SETU_PG_PORT": str(own_cluster.port)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Cluster.default().home == own_cluster.home
    return env


def wait_until_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_start_twice_is_a_no_op(stopped: Cluster) -> None:
    assert stopped.start() is True
    first_pid = stopped.server_pid()
    assert first_pid is not None
    assert stopped.start() is False
    assert stopped.server_pid() == first_pid
    assert stopped.psql("select 1").strip() == "1"


def test_stop(stopped: Cluster) -> None:
    stopped.start()
    assert stopped.stop() is True
    assert not stopped.running()
    assert not (stopped.datadir / "postmaster.pid").exists()
    assert stopped.stop() is False


def test_timescaledb_is_created_in_the_main_database(stopped: Cluster) -> None:
    stopped.start()
    version = stopped.psql("select extversion from pg_extension where extname = 'timescaledb'")
    assert version.strip().startswith("2.19.")


def test_restart_after_kill_9_recovers_from_a_stale_pid_file(stopped: Cluster) -> None:
    stopped.start()
    stopped.psql("create table if not exists crash_probe (id int)")
    stopped.psql("insert into crash_probe values (1)")
    pid = stopped.server_pid()
    assert pid is not None
    stopped.kill()
    wait_until_gone(pid)
    assert (stopped.datadir / "postmaster.pid").exists(), "kill -9 should leave a stale pid file"
    assert not stopped.running()

    assert stopped.start() is True
    assert stopped.server_pid() not in (None, pid)
    assert stopped.psql("select count(*) from crash_probe").strip() == "1"


def test_a_pid_file_naming_another_program_is_stale(stopped: Cluster) -> None:
    """After a reboot the old postmaster's pid may belong to anything: not a running server."""
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            (stopped.datadir / "postmaster.pid").write_text(f"{other.pid}\n{stopped.datadir}\n")
            assert not stopped.running()
            assert stopped.start() is True
            assert stopped.server_pid() != other.pid
        finally:
            other.kill()


def test_a_taken_port_is_a_clear_error(stopped: Cluster) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stopped.port))
        squatter.listen()
        with pytest.raises(DatabaseError, match=rf"port {stopped.port} .* in use.*SETU_PG_PORT"):
            stopped.start()
    assert not stopped.running()
    assert stopped.start() is True


def test_setu_db_status_exit_codes(stopped: Cluster, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["db", "status"])
    assert result.exit_code == 1, result.output
    assert "running: False" in result.output

    result = runner.invoke(main, ["db", "start"])
    assert result.exit_code == 0, result.output
    assert "embedded database started" in result.output
    result = runner.invoke(main, ["db", "start"])
    assert result.exit_code == 0, result.output
    assert "already running" in result.output

    result = runner.invoke(main, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "running: True" in result.output
    assert f"port: {stopped.port}" in result.output

    result = runner.invoke(main, ["db", "stop"])
    assert result.exit_code == 0, result.output
    assert "embedded database stopped" in result.output
    assert runner.invoke(main, ["db", "status"]).exit_code == 1


def test_setu_db_status_of_an_uninitialized_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(tempfile.mkdtemp(prefix="setu-test-empty-", dir="/var/tmp"))
    try:
        monkeypatch.setenv("SETU_HOME", str(home))
        monkeypatch.setenv("SETU_PG_PORT", str(free_port()))
        result = CliRunner().invoke(main, ["db", "status"])
        assert result.exit_code == 1, result.output
        assert "initialized: False" in result.output
        assert not (home / "pgdata").exists(), "status must not create a cluster"
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as `postgres` only under root")
def test_server_runs_as_the_postgres_user_when_root(stopped: Cluster) -> None:
    stopped.start()
    pid = stopped.server_pid()
    owner = Path(f"/proc/{pid}").stat().st_uid
    assert pwd.getpwuid(owner).pw_name == "postgres"
