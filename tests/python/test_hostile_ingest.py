"""Hostile input (issue #16): every bad file is loaded whole, or refused whole in one line
naming the line or column with exit code 2; never a traceback, never a partial load, never
a hang, and the fast path accepts exactly what PostgreSQL accepts."""

from __future__ import annotations

import gzip
import os
import random
import string
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
from click.testing import CliRunner

from setu.cli import main
from setu.ingest.connectors.mtconnect import read_shdr_file
from setu.ingest.loader import IngestError, ingest_file

DATABASE = "setu_test_hostile_ingest"
ALARM_HEADER = "time,machine_id,alarm_code,severity,event\n"
ALARM_1 = "2026-12-05T10:40:00Z,8,A1,error,RAISED\n"
ALARM_2 = "2026-12-05T10:41:00Z,8,A2,error,RAISED\n"


@pytest.fixture(scope="module")
def db(cluster, dbt_run) -> str:
    cluster.psql(f"drop database if exists {DATABASE} with (force)", db="postgres")
    url = cluster.create_database(DATABASE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", DATABASE)
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
    return url


@pytest.fixture
def conn(db: str):
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("truncate bronze.alarms, bronze.machine_telemetry, "
                           "bronze.platform_extension, bronze.machine_cycles, "
                           "bronze.machine_state_events, _ingest.ledger")
        yield connection


def setu(*args: object):
    """`setu ARGS` in-process: the exit code and what it printed (stdout and stderr)."""
    return CliRunner().invoke(main, [str(arg) for arg in args],
                              env={"SETU_PG_DATABASE": DATABASE})


def assert_one_line_refusal(result, *expected: str) -> str:
    """Exit code 2, no traceback, one `error:` line holding every expected part."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output
    for part in expected:
        assert part in errors[0], (part, errors[0])
    return errors[0]


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"select count(*) from {table}").fetchone()[0]


# -- 1. a `\.` line must not end a CSV silently ------------------------------------------------

@pytest.mark.parametrize(("lines", "marker_line"), [
    ([ALARM_1, "\\.\n", ALARM_2], 3),  # the file: it loaded 1 of 2 rows
    ([ALARM_1, ALARM_2, "\\.\r\n", ALARM_1], 4),
    ([ALARM_1, ALARM_2, "\\."], 4),  # the last line, without a newline
])
def test_end_of_data_marker_line_refuses_the_file(conn, tmp_path, lines, marker_line):
    path = tmp_path / "alarms.csv"
    path.write_text(ALARM_HEADER + "".join(lines), newline="")
    result = setu("ingest", path)
    assert_one_line_refusal(result, f"alarms.csv: line {marker_line}:", "\\.")
    assert count(conn, "bronze.alarms") == 0
    assert count(conn, "_ingest.ledger") == 0  # so a fixed file is not skipped as loaded


def test_end_of_data_marker_in_a_gzip_csv_and_on_the_server_path(conn, tmp_path):
    path = tmp_path / "alarms.csv.gz"
    path.write_bytes(gzip.compress((ALARM_HEADER + ALARM_1 + "\\.\n" + ALARM_2).encode()))
    for fast in (True, False):
        with pytest.raises(IngestError, match=r"^alarms\.csv\.gz: line 3: "):
            ingest_file(conn, path, fast=fast)
    assert count(conn, "bronze.alarms") == 0


def test_a_quoted_backslash_dot_value_is_data(conn, tmp_path):
    path = tmp_path / "alarms.csv"
    path.write_text(ALARM_HEADER + '2026-12-05T10:40:00Z,8,"\\.",error,RAISED\n' + ALARM_2)
    for fast in (True, False):
        assert ingest_file(conn, path, fast=fast).rows == 2
        conn.execute("truncate _ingest.ledger")
    assert conn.execute("select distinct alarm_code from bronze.alarms order by 1"
                        ).fetchall() == [("A2",), ("\\.",)]


# -- 3. damaged files: one line, exit 2 ----------------------------------------------------------

def gzip_cut_short(text: str) -> bytes:
    whole = gzip.compress(text.encode() * 50)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(("name", "content"), [
    ("alarms.csv.gz", b"time,machine_id\n"),  # not gzip at all
    ("alarms.csv.gz", gzip_cut_short(ALARM_HEADER + ALARM_1)),  # cut off mid-stream
])
def test_damaged_gzip_csv_is_one_line(conn, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert_one_line_refusal(setu("ingest", path), f"{name}: not a readable gzip file")
    assert count(conn, "bronze.alarms") == 0 and count(conn, "_ingest.ledger") == 0


def test_bad_byte_is_reported_on_its_own_line(conn, tmp_path):
    path = tmp_path / "alarms.csv"
    path.write_bytes((ALARM_HEADER + "2026-12-05T10:40:00Z,8,A\xff1,error,RAISED\n")
                     .encode("latin-1"))
    line = assert_one_line_refusal(setu("ingest", path), "alarms.csv: line 2")
    assert "header" not in line
    path.write_bytes(b"time,machine_\xffid\n" + ALARM_1.encode())
    assert_one_line_refusal(setu("ingest", path), "alarms.csv: line 1: not UTF-8 (byte 0xff")


def test_a_fifo_is_not_a_regular_file(conn, tmp_path):
    fifo = tmp_path / "alarms.csv"
    os.mkfifo(fifo)
    assert_one_line_refusal(setu("ingest", fifo), "not a regular file")


def random_text(length: int, seed: int) -> str:
    """Incompressible text: PostgreSQL compresses a repetitive value below the index limit."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


@pytest.mark.parametrize("fast", [True, False])
def test_a_value_too_long_to_index_names_line_and_column(conn, tmp_path, fast):
    path = tmp_path / "platform_extension.csv"
    path.write_text("time,device_id,device_serial,value,unit\n"
                    "2026-12-05T10:40:00Z,8,SN-1,1,mm\n"
                    f"2026-12-05T10:41:00Z,8,{random_text(3000, 1)},1,mm\n")
    with pytest.raises(IngestError) as caught:
        ingest_file(conn, path, fast=fast)
    message = str(caught.value)
    assert message.startswith("platform_extension.csv: line 3, column device_serial: "), message
    assert "\n" not in message
    assert count(conn, "bronze.platform_extension") == 0
