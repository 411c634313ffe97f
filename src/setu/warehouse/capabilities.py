"""What this server offers, and which SETU features are on or off because of it.

The same facts drive the dbt macros (macros/capabilities/get_capabilities.sql); this module
asks the server directly so that `setu doctor` works before any dbt run.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

CAPABILITIES_SQL = """
select
    current_setting('server_version') as pg_version,
    (select extversion from pg_extension where extname = 'timescaledb') as timescaledb_version,
    (select default_version from pg_available_extensions where name = 'timescaledb')
        as timescaledb_available,
    current_setting('timescaledb.license', true) as timescaledb_license,
    (select extversion from pg_extension where extname = 'pg_cron') as pg_cron_version,
    exists(select from pg_available_extensions where name = 'pg_cron') as pg_cron_available,
    current_setting('shared_preload_libraries') as preload,
    current_setting('wal_level') as wal_level
"""


@dataclass(frozen=True)
class Capabilities:
    pg_version: str
    timescaledb_version: str | None
    timescaledb_available: str | None
    timescaledb_license: str | None
    pg_cron_version: str | None
    pg_cron_available: bool
    preload: str
    wal_level: str

    @property
    def timescaledb(self) -> bool:
        return self.timescaledb_version is not None

    @property
    def community(self) -> bool:
        return self.timescaledb and self.timescaledb_license == "timescale"

    @property
    def license(self) -> str:
        return self.timescaledb_license if self.timescaledb else "none"

    def features(self) -> list[tuple[str, bool, str]]:
        """(feature, on?, why) for every SETU feature that depends on the server."""
        ts, community = self.timescaledb, self.community
        no_ts = "TimescaleDB is not installed in this database"
        apache = "needs the TimescaleDB Community edition (license is apache)"
        cron_preloaded = "pg_cron" in self.preload
        return [
            ("hypertables on time", ts, "TimescaleDB present" if ts else no_ts),
            ("drop_chunks retention (setu maintain)", ts,
             "TimescaleDB present" if ts else "batched deletes instead: " + no_ts),
            ("continuous aggregates", community,
             "Community edition" if community else
             ("incremental tables instead: " + (apache if ts else no_ts))),
            ("compression / columnstore", community,
             "Community edition" if community else (apache if ts else no_ts)),
            ("retention and refresh policies", community,
             "Community edition" if community else
             ("`setu maintain` instead: " + (apache if ts else no_ts))),
            ("in-database jobs (add_job)", community,
             "Community edition" if community else (apache if ts else no_ts)),
            ("in-database jobs (pg_cron)", cron_preloaded,
             "pg_cron preloaded" if cron_preloaded else
             "pg_cron is not in shared_preload_libraries"),
            ("logical replication to read replicas", self.wal_level == "logical",
             f"wal_level = {self.wal_level}"),
        ]


def read_capabilities(conn: psycopg.Connection) -> Capabilities:
    with conn.cursor() as cur:
        cur.execute(CAPABILITIES_SQL)
        row = cur.fetchone()
        names = [column.name for column in cur.description]
    return Capabilities(**dict(zip(names, row, strict=True)))
