"""One small warehouse for the analyst-experience tests (docs, `setu validate`, analyses).

A few simulated machines for a few hours, built with `dbt build` into a database of its own
in the session's test cluster, so other tests' resets never touch it, and built once per
pytest process whichever of those test modules runs first. dbt writes its artifacts
(manifest, catalog, docs site) to a temporary target path, never to the checkout's target/.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import psycopg

from conftest import own_database
from setu.tools.simulate import SimulationConfig, simulate_into_database
from setu.warehouse.cluster import Cluster

DATABASE = "setu_test_analyst"
# A Monday, well inside standard time at every simulated site.
START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
DURATION = timedelta(hours=8)
MACHINES = 3
SEED = 7


@dataclass(frozen=True)
class Build:
    database: str
    url: str
    target_path: Path

    @property
    def day(self) -> str:
        """A site-local day the build covers."""
        return START.date().isoformat()


_builds: dict[int, Build] = {}
_docs: set[int] = set()


@contextmanager
def on_database(name: str) -> Iterator[None]:
    """Point dbt and `setu` (through the generated profile) at another database."""
    with patch.dict(os.environ, SETU_PG_DATABASE=name):
        yield


def small_build(cluster: Cluster, dbt_run: Callable[[list[str]], int]) -> Build:
    """The built warehouse; the first call builds it (about 15 s)."""
    if cluster.port in _builds:
        return _builds[cluster.port]
    target_path = Path(tempfile.mkdtemp(prefix="setu-analyst-target-"))
    target = ["--target-path", str(target_path)]
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse", *target]) == 0
        config = SimulationConfig(machines=MACHINES, start=START, duration=DURATION, seed=SEED,
                                  stoppages=True)
        with psycopg.connect(url) as conn:
            result = simulate_into_database(conn, config)
        assert not result.skipped and result.rows["machine_telemetry"] > 0
        # Models and their data tests; dbt unit tests are other test modules' business (and
        # those on incremental models need their relation to exist before a first build).
        assert dbt_run(["build", "--exclude-resource-type", "unit_test", *target]) == 0, \
            "dbt build of the analyst test warehouse"
    build = Build(DATABASE, url, target_path)
    _builds[cluster.port] = build
    return build


def docs_site(cluster: Cluster, dbt_run: Callable[[list[str]], int]) -> Path:
    """The target path holding manifest.json, catalog.json and the docs site (index.html)."""
    build = small_build(cluster, dbt_run)
    if cluster.port not in _docs:
        with on_database(build.database):
            code = dbt_run(["--quiet", "docs", "generate", "--target-path",
                            str(build.target_path)])
        assert code == 0, "dbt docs generate"
        _docs.add(cluster.port)
    return build.target_path
