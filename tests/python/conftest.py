"""Shared fixtures: every test session runs against its own throwaway PostgreSQL cluster.

Tiers (`pytest -m unit`, `-m integration`, `-m dbt`), given to each test from what it uses,
so no test file has to remember its own: `unit` needs no database (parsers, encoders,
mappings, profile rendering, reference computations: seconds); `integration` needs the
cluster; `dbt` builds the warehouse with dbt (a test whose module runs dbt: minutes).

The cluster lives under /var/tmp (reachable by the unprivileged server user when the tests
run as root), on a free loopback port; SETU_HOME and SETU_PG_PORT point `setu`, dbt's
generated profile and psycopg at it, so nothing touches the developer's embedded database.
"""

from __future__ import annotations

import inspect
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import psycopg
import pytest

from setu.warehouse.cluster import Cluster


def _module_tier(module) -> tuple[bool, bool]:
    """(starts clusters of its own, builds with dbt), read from the module's source."""
    source = inspect.getsource(module)
    return "Cluster(" in source, "dbt_run" in source or '"build"' in source


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers: dict[str, tuple[bool, bool]] = {}
    for item in items:
        module = item.module
        if module.__name__ not in tiers:
            tiers[module.__name__] = _module_tier(module)
        own_clusters, builds = tiers[module.__name__]
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dbt if builds else pytest.mark.integration)
        elif own_clusters:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="setu-test-", dir="/var/tmp"))
    home.chmod(0o755)
    test_cluster = Cluster(home=home, port=free_port(), tuning="test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_HOME", str(home))
        patch.setenv("SETU_PG_PORT", str(test_cluster.port))
        patch.delenv("SETU_TARGET", raising=False)
        test_cluster.start()
        yield test_cluster
        test_cluster.destroy()


@contextmanager
def own_database(cluster: Cluster, name: str, **env: str) -> Iterator[str]:
    """A new, empty database of a test module's own in the session cluster (dropped first if
    an earlier run left it), with `setu` and dbt pointed at it (and env set) inside the
    block; yields its URL. The database outlives the block, the environment does not."""
    cluster.psql(f"drop database if exists {name} with (force)", db="postgres")
    url = cluster.create_database(name)
    with patch.dict(os.environ, SETU_PG_DATABASE=name, **env):
        yield url


@pytest.fixture(scope="session")
def db_url(cluster: Cluster) -> str:
    return cluster.url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test cluster's `setu` database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def dbt_run(cluster: Cluster):
    """Run dbt in-process against the test cluster; returns dbt's exit code."""
    from setu.warehouse import dbt

    return dbt.run
