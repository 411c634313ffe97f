"""The embedded PostgreSQL cluster: a private, throwaway server for the demo and the tests.

The cluster lives in a git-ignored folder, listens on loopback and on its own socket folder,
and trusts only those two (it is a development database; production targets come from the
dbt profile). ``initdb`` refuses to run as root, so as root the server runs as the
unprivileged ``postgres`` user that Debian's server package creates.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from setu.warehouse.paths import fallback_state_dir, state_dir

DEFAULT_PORT = 55432
SUPERUSER = "setu"
DATABASE = "setu"
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
SERVER_USER = "postgres"

# Tuned for the 2-core / 24 GB machines SETU is developed and benchmarked on
# (see docs/embedded-database.md for the reasoning behind each value).
TUNING_DEMO = {
    "shared_buffers": "6GB",
    "effective_cache_size": "16GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "on",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "max_worker_processes": "16",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "1",
    "max_connections": "100",
    "jit": "off",
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
}
# Test clusters are many, short-lived and disposable: small memory, no fsync.
TUNING_TEST = TUNING_DEMO | {
    "shared_buffers": "256MB",
    "effective_cache_size": "2GB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "2GB",
    "fsync": "off",
    "full_page_writes": "off",
}


class DatabaseError(RuntimeError):
    """A problem with the embedded cluster, phrased as what to do about it."""


def pg_bin(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise DatabaseError(
            f"PostgreSQL 15 server program {name!r} not found: run `bash scripts/setup.sh` first"
        )
    return found


def extension_available(name: str) -> bool:
    try:
        sharedir = subprocess.run(
            [pg_bin("pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (DatabaseError, subprocess.CalledProcessError):
        return False
    return (Path(sharedir) / "extension" / f"{name}.control").exists()


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _reachable_by(user: str, path: Path) -> bool:
    """Whether an unprivileged user can traverse every parent folder of path."""
    info = pwd.getpwnam(user)
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        st = parent.stat()
        if st.st_uid == info.pw_uid:
            mode_ok = st.st_mode & 0o100
        elif st.st_gid == info.pw_gid:
            mode_ok = st.st_mode & 0o010
        else:
            mode_ok = st.st_mode & 0o001
        if not mode_ok:
            return False
    return True


@dataclass
class Cluster:
    home: Path
    port: int = DEFAULT_PORT
    tuning: str = "demo"

    @classmethod
    def default(cls) -> Cluster:
        home = state_dir()
        if _running_as_root() and not _reachable_by(SERVER_USER, home.parent):
            home = fallback_state_dir(home)
        return cls(home=home, port=int(os.environ.get("SETU_PG_PORT", DEFAULT_PORT)))

    @property
    def datadir(self) -> Path:
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    # -- running programs as the server's user -------------------------------------------

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if _running_as_root():
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DatabaseError(f"{Path(argv[0]).name} failed: {result.stderr.strip()}")
        return result

    def _prepare_folders(self) -> None:
        for folder in (self.home, self.socket_dir, self.log_file.parent):
            folder.mkdir(parents=True, exist_ok=True)
        if _running_as_root():
            info = pwd.getpwnam(SERVER_USER)
            for folder in (self.home, self.socket_dir, self.log_file.parent):
                os.chown(folder, info.pw_uid, info.pw_gid)

    # -- lifecycle -------------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialized():
            return
        self._prepare_folders()
        self._run([
            pg_bin("initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
            "--auth-local=trust", "--auth-host=trust", "-E", "UTF8", "--locale=C.UTF-8",
        ])
        self._write_settings()

    def _write_settings(self) -> None:
        tuning = TUNING_TEST if self.tuning == "test" else TUNING_DEMO
        preload = [name for name in ("timescaledb", "pg_cron") if extension_available(name)]
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'" + ",".join(preload) + "'",
            "timescaledb.telemetry_level": "off" if "timescaledb" in preload else None,
            "timescaledb.max_background_workers": "8" if "timescaledb" in preload else None,
            "cron.database_name": f"'{DATABASE}'" if "pg_cron" in preload else None,
            "logging_collector": "off",
            "log_min_messages": "warning",
            **{key: f"'{value}'" for key, value in tuning.items()},
        }
        lines = [f"{key} = {value}" for key, value in settings.items() if value is not None]
        conf = self.datadir / "postgresql.auto.conf"
        body = "# Written by `setu db`: embedded cluster settings.\n" + "\n".join(lines) + "\n"
        self._write_server_file(conf, body)
        hba = (
            "# Embedded development cluster: loopback and its private socket only.\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "local replication all trust\n"
            "host replication all 127.0.0.1/32 trust\n"
        )
        self._write_server_file(self.datadir / "pg_hba.conf", hba)

    def _write_server_file(self, path: Path, body: str) -> None:
        """Write a file inside the data folder, which only the server's user may touch."""
        subprocess.run(self._as_server_user(["tee", str(path)]), input=body, text=True,
                       capture_output=True, check=True)

    def server_pid(self) -> int | None:
        """The postmaster's pid when a server of this cluster is alive, else None."""
        pid_file = self.datadir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        # A recycled pid belongs to some other program: the pid file is stale.
        return pid if cmdline and cmdline[0].endswith(b"postgres") else None

    def running(self) -> bool:
        return self.server_pid() is not None

    def _port_taken(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def _clear_stale_files(self) -> None:
        for stale in (self.datadir / "postmaster.pid",
                      self.socket_dir / f".s.PGSQL.{self.port}.lock",
                      self.socket_dir / f".s.PGSQL.{self.port}"):
            stale.unlink(missing_ok=True)

    def start(self) -> bool:
        """Start the server; returns False when it was already running (a no-op)."""
        self.init()
        if self.running():
            return False
        self._clear_stale_files()
        if self._port_taken():
            raise DatabaseError(
                f"port {self.port} on 127.0.0.1 is in use by another program: stop it, or "
                f"choose another port with SETU_PG_PORT=<port>"
            )
        deadline = time.monotonic() + 30
        while True:
            result = self._run([
                pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_file),
                "-w", "-t", "60", "start",
            ], check=False)
            if result.returncode == 0:
                break
            # After kill -9 of the postmaster its backends take a moment to notice and exit;
            # until they do, the old shared memory block is still in use.
            if time.monotonic() > deadline:
                tail = self.log_tail()
                raise DatabaseError(f"server did not start: {result.stderr.strip()}\n{tail}")
            self._clear_stale_files()
            time.sleep(0.5)
        self._ensure_database()
        return True

    def _ensure_database(self, name: str = DATABASE, extensions: bool = True) -> None:
        """Create the database with every extension this server offers SETU."""
        exists = self.psql(f"select 1 from pg_database where datname = '{name}'", db="postgres")
        if exists.strip() != "1":
            self.psql(f"create database {name}", db="postgres")
        if not extensions:
            return
        for extension in ("timescaledb", "pg_cron"):
            # pg_cron lives only in cron.database_name, the main database.
            if extension_available(extension) and (extension != "pg_cron" or name == DATABASE):
                self.psql(f"create extension if not exists {extension}", db=name)

    def create_database(self, name: str, extensions: bool = True) -> str:
        """A further database in this cluster (tests use one without TimescaleDB)."""
        self._ensure_database(name, extensions=extensions)
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def psql(self, sql: str, db: str = DATABASE) -> str:
        result = subprocess.run(
            [pg_bin("psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
             "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise DatabaseError(result.stderr.strip())
        return result.stdout

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server cleanly; returns False when it was not running."""
        if not self.running():
            self._clear_stale_files() if self.initialized() else None
            return False
        self._run([pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])
        return True

    def kill(self) -> None:
        """kill -9 the postmaster (crash tests)."""
        pid = self.server_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except (FileNotFoundError, PermissionError):
            return ""

    def status(self) -> dict[str, object]:
        return {
            "data directory": str(self.datadir),
            "initialized": self.initialized(),
            "running": self.running(),
            "pid": self.server_pid(),
            "port": self.port,
            "url": self.url,
        }
