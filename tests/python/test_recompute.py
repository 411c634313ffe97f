"""`setu recompute master.TABLE`: after a master change, incremental equals full refresh.

The contract: Silver and Gold read master data as it stands when a batch is computed. A new
row of master.device_calibrations therefore leaves the value_mm of readings computed before
it as they were, while a full refresh computes them with the new calibration; the command
rebuilds what reads the table (found in dbt's lineage) so the two agree again."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from setu.cli import main

DATABASE = "setu_test_recompute"
DEFAULT_TICKS_PER_MM = 20.0  # the contract's default for a device without a calibration
DEVICES = (8301, 8302, 8303)
# The facts write their rejects into silver.quarantine, which is no parent of theirs in dbt.
SELECTION = ["--select", "+dim_device", "quarantine"]


@pytest.fixture(scope="module")
def db(cluster, dbt_run, tmp_path_factory) -> Iterator[str]:
    cluster.psql(f"drop database if exists {DATABASE} with (force)", db="postgres")
    url = cluster.create_database(DATABASE)
    scratch = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", DATABASE)
        patch.setenv("DBT_TARGET_PATH", str(scratch / "target"))
        patch.setenv("DBT_LOG_PATH", str(scratch / "logs"))
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into master.device_calibrations values (8301, 25.0)")
            insert_readings(conn, "2026-03-02 06:00+00")
        assert dbt_run(["--quiet", "run", *SELECTION]) == 0
        yield url


def insert_readings(conn: psycopg.Connection, start: str) -> None:
    conn.execute(
        "insert into bronze.platform_extension (time, ingested_at, device_id, value, unit,"
        " firmware) select t, t, d, 100 + s, case when s %% 3 = 0 then 'mm' else 'ticks' end,"
        " 'fw1' from generate_series(0, 29) as s cross join unnest(%s::bigint[]) as d"
        " cross join lateral (select %s::timestamptz + s * interval '1 minute' as t) as x",
        (list(DEVICES), start),
    )


def expected_value_mm(conn: psycopg.Connection) -> dict[int, float]:
    """bronze id -> value_mm, from Bronze and the calibrations as they stand now."""
    calibration = dict(
        conn.execute("select device_id, ticks_per_mm from master.device_calibrations")
    )
    return {
        bronze_id: value / calibration.get(device, DEFAULT_TICKS_PER_MM)
        if unit == "ticks"
        else value
        for bronze_id, device, value, unit in conn.execute(
            "select id, device_id, value, unit from bronze.platform_extension"
        )
    }


def silver(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """The two models' rows without their batch numbers (which a rebuild renumbers)."""
    return {
        "fct_platform_extension": conn.execute(
            "select bronze_id, device_id, device_serial, time, value, value_mm, side, unit,"
            " firmware, device_created_from from silver.fct_platform_extension order by 1"
        ).fetchall(),
        "dim_device": conn.execute("select * from silver.dim_device order by device_id").fetchall(),
    }


def value_mm(conn: psycopg.Connection) -> dict[int, float]:
    return dict(conn.execute("select bronze_id, value_mm from silver.fct_platform_extension"))


def test_recompute_makes_incremental_equal_full_refresh(db: str, dbt_run) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        assert value_mm(conn) == pytest.approx(expected_value_mm(conn))
        # A calibration corrected, one added; new readings arrive; an incremental run.
        conn.execute(
            "update master.device_calibrations set ticks_per_mm = 40.0 where device_id = 8301"
        )
        conn.execute("insert into master.device_calibrations values (8302, 50.0)")
        insert_readings(conn, "2026-03-03 06:00+00")
        assert dbt_run(["--quiet", "run", *SELECTION]) == 0
        expected = expected_value_mm(conn)
        # The contract: rows computed before the change keep the calibration they had.
        stale = {
            bronze_id
            for bronze_id, mm in value_mm(conn).items()
            if mm != pytest.approx(expected[bronze_id])
        }
        assert len(stale) == 2 * 20  # the earlier ticks readings of 8301 and 8302

        listed = CliRunner().invoke(main, ["recompute", "master.device_calibrations", "--no-run"])
        assert listed.exit_code == 0, listed.output
        assert "silver.fct_platform_extension, silver.dim_device" in listed.output
        assert "run --full-refresh --select fct_platform_extension dim_device" in listed.output
        assert len(
            [
                bronze_id
                for bronze_id, mm in value_mm(conn).items()
                if mm != pytest.approx(expected[bronze_id])
            ]
        ) == len(stale)

        result = CliRunner().invoke(main, ["recompute", "master.device_calibrations"])
        assert result.exit_code == 0, result.output
        assert value_mm(conn) == pytest.approx(expected)
        recomputed = silver(conn)

        assert dbt_run(["--quiet", "run", "--full-refresh", *SELECTION]) == 0
        assert silver(conn) == recomputed


def test_an_unknown_table_is_one_line(db: str) -> None:
    result = CliRunner().invoke(main, ["recompute", "master.no_such_table"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "not a master table" in lines[0] and "master.device_calibrations" in lines[0]
