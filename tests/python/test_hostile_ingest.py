"""Hostile input (issue #16): every bad file is loaded whole, or refused whole in one line
naming the line or column with exit code 2; never a traceback, never a partial load, never
a hang, and the fast path accepts exactly what PostgreSQL accepts."""

from __future__ import annotations

import gzip
import os
import random
import re
import string
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from setu.cli import main
from setu.ingest import loader
from setu.ingest.connectors.mtconnect import read_shdr_file
from setu.ingest.loader import IngestError, _FastPathUnsupported, ingest_file, read_csv_batches

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
        connection.execute(
            "truncate bronze.alarms, bronze.machine_telemetry, "
            "bronze.platform_extension, bronze.machine_cycles, "
            "bronze.machine_state_events, _ingest.ledger"
        )
        yield connection


def setu(*args: object):
    """`setu ARGS` in-process: the exit code and what it printed (stdout and stderr)."""
    return CliRunner().invoke(main, [str(arg) for arg in args], env={"SETU_PG_DATABASE": DATABASE})


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


@pytest.mark.parametrize(
    ("lines", "marker_line"),
    [
        ([ALARM_1, "\\.\n", ALARM_2], 3),  # the file: it loaded 1 of 2 rows
        ([ALARM_1, ALARM_2, "\\.\r\n", ALARM_1], 4),
        ([ALARM_1, ALARM_2, "\\."], 4),  # the last line, without a newline
    ],
)
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


def test_server_path_refuses_a_load_of_fewer_rows_than_data_lines(conn, tmp_path, monkeypatch):
    """The second guard: were the marker line not caught by name, the count of data lines
    against COPY's count still refuses the file."""
    monkeypatch.setattr(loader, "END_OF_DATA_LINE", re.compile(rb"(?!)"))
    path = tmp_path / "alarms.csv"
    path.write_text(ALARM_HEADER + ALARM_1 + "\\.\n" + ALARM_2)
    with pytest.raises(
        IngestError,
        match=r"^alarms\.csv: 3 data lines, but PostgreSQL's COPY "
        r"loaded 1: nothing loaded",
    ):
        ingest_file(conn, path, fast=False)
    assert count(conn, "bronze.alarms") == 0 and count(conn, "_ingest.ledger") == 0


def test_a_quoted_backslash_dot_value_is_data(conn, tmp_path):
    path = tmp_path / "alarms.csv"
    path.write_text(ALARM_HEADER + '2026-12-05T10:40:00Z,8,"\\.",error,RAISED\n' + ALARM_2)
    for fast in (True, False):
        assert ingest_file(conn, path, fast=fast).rows == 2
        conn.execute("truncate _ingest.ledger")
    assert conn.execute("select distinct alarm_code from bronze.alarms order by 1").fetchall() == [
        ("A2",),
        ("\\.",),
    ]


# -- 3. damaged files: one line, exit 2 ----------------------------------------------------------


def gzip_cut_short(text: str) -> bytes:
    whole = gzip.compress(text.encode() * 50)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("alarms.csv.gz", b"time,machine_id\n"),  # not gzip at all
        ("alarms.csv.gz", gzip_cut_short(ALARM_HEADER + ALARM_1)),  # cut off mid-stream
    ],
)
def test_damaged_gzip_csv_is_one_line(conn, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert_one_line_refusal(setu("ingest", path), f"{name}: not a readable gzip file")
    assert count(conn, "bronze.alarms") == 0 and count(conn, "_ingest.ledger") == 0


def test_bad_byte_is_reported_on_its_own_line(conn, tmp_path):
    path = tmp_path / "alarms.csv"
    path.write_bytes(
        (ALARM_HEADER + "2026-12-05T10:40:00Z,8,A\xff1,error,RAISED\n").encode("latin-1")
    )
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
    path.write_text(
        "time,device_id,device_serial,value,unit\n"
        "2026-12-05T10:40:00Z,8,SN-1,1,mm\n"
        f"2026-12-05T10:41:00Z,8,{random_text(3000, 1)},1,mm\n"
    )
    with pytest.raises(IngestError) as caught:
        ingest_file(conn, path, fast=fast)
    message = str(caught.value)
    assert message.startswith("platform_extension.csv: line 3, column device_serial: "), message
    assert "\n" not in message
    assert count(conn, "bronze.platform_extension") == 0


# -- 3. SHDR logs: a counted reason per bad observation, never a crash --------------------------

SHDR_START = "2026-12-05T10:40:00Z|avail|AVAILABLE|execution|ACTIVE|PartCount|1\n"


def shdr(tmp_path: Path, text: str | bytes, name: str = "mill.shdr") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    "value", ["1e400", "-1e400", "99999999999999999999", "9.3e18", "9223372036854775808"]
)
def test_shdr_part_count_beyond_bigint_is_a_counted_skip(tmp_path, value):
    mapper = read_shdr_file(
        shdr(tmp_path, SHDR_START + f"2026-12-05T10:41:00Z|PartCount|{value}\n"), 8
    )
    assert mapper.acct.skipped["out of range"] == 1 and mapper.acct.balanced()
    assert mapper.rows.machine_cycles == []


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T03:00:00+05:00",
        "9999-12-31T23:59:59.999999-01:00",
        "9999-12-31T12:00:00Z",
    ],
)
def test_shdr_timestamps_at_the_ends_of_the_calendar_are_malformed_lines(tmp_path, stamp):
    text = f"{stamp}|avail|AVAILABLE\n" + SHDR_START + "2026-12-05T10:42:00Z|PartCount|2\n"
    mapper = read_shdr_file(shdr(tmp_path, text), 8)
    acct = mapper.acct
    assert (acct.lines["malformed"], acct.lines["data"]) == (1, 2)
    assert "line 1: timestamp out of range" in acct.bad_lines[0]
    assert len(mapper.rows.machine_cycles) == 1  # the lines after it still count


def test_shdr_bytes_that_are_not_utf8_are_counted_and_named(tmp_path):
    text = (
        SHDR_START + "2026-12-05T10:41:00Z|program|O1\xff\n2026-12-05T10:42:00Z|program|O2\n"
    ).encode("latin-1")
    mapper = read_shdr_file(shdr(tmp_path, text), 8)
    assert mapper.acct.not_utf8 == [2]
    report = "\n".join(mapper.acct.describe())
    assert "1 line(s) not UTF-8" in report and "(line 2)" in report


def test_a_long_shdr_line_parses_in_linear_time_and_is_not_echoed(tmp_path):
    """100,000 items on one line: the old parser sliced the rest of the line for each item
    (quadratic: 200,000 items took minutes), and messages repeated whole lines."""
    items = 100_000
    line = "2026-12-05T10:40:00Z|" + "|".join(f"x{n}|{n}" for n in range(items))
    path = shdr(
        tmp_path,
        f"* shdrVersion: {'v' * 5000}\n{line}\n{line[:-1]}|\n"
        f"2026-12-05T10:41:00Z|{'y' * 5000}|1|{'y' * 5000}|2\n",  # a 5,000-character name
    )
    started = time.perf_counter()
    mapper = read_shdr_file(path, 8)
    assert time.perf_counter() - started < 30
    assert mapper.acct.lines["data"] == 3 and mapper.acct.balanced()
    # the second line ends in an empty item name: one malformed observation
    assert mapper.acct.observations == 2 * items + 3
    assert mapper.acct.skipped["malformed"] == 1
    result = setu("mtconnect", "ingest", path, "--machine", 8, "--dry-run")
    assert result.exit_code == 0, result.output
    assert max(len(text) for text in result.output.splitlines()) < 400
    assert len(result.output.splitlines()) < 300


@pytest.mark.parametrize("content", [b"not gzip", gzip_cut_short(SHDR_START)])
@pytest.mark.parametrize("dry_run", [True, False])
def test_damaged_gzip_shdr_is_one_line(conn, tmp_path, content, dry_run):
    path = shdr(tmp_path, content, "mill.shdr.gz")
    result = setu("mtconnect", "ingest", path, "--machine", 8, *(["--dry-run"] if dry_run else []))
    assert_one_line_refusal(result, "mill.shdr.gz: not a readable gzip file")


def test_shdr_fifo_is_not_a_regular_file(conn, tmp_path):
    fifo = tmp_path / "mill.shdr"
    os.mkfifo(fifo)
    for extra in ([], ["--dry-run"]):
        result = setu("mtconnect", "ingest", fifo, "--machine", 8, *extra)
        assert_one_line_refusal(result, "not a regular file")


@pytest.mark.parametrize("command", [["ingest"], ["mtconnect", "ingest"]])
def test_machine_id_beyond_bigint_is_refused_before_reading(conn, tmp_path, command):
    path = shdr(tmp_path, SHDR_START)
    result = setu(*command, path, "--machine", "99999999999999999999")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--machine'" in result.output
    assert count(conn, "_ingest.ledger") == 0


def test_follow_agent_machine_id_beyond_bigint_is_refused(conn):
    result = setu("follow-agent", "http://127.0.0.1:9", "--machine", "-99999999999999999999")
    assert result.exit_code == 2 and "Invalid value for '--machine'" in result.output


# -- 3. a CSV through a column mapping (--columns) ------------------------------------------------

SERIAL_MAP = (
    "table: platform_extension\ntime: {column: t}\n"
    "columns: {device: device_id, serial: device_serial, v: value, u: unit}\n"
)


def mapped_csv(tmp_path: Path, body: bytes, name: str = "gauge.csv") -> tuple[Path, Path]:
    mapping = tmp_path / "gauge.yaml"
    mapping.write_text(SERIAL_MAP)
    path = tmp_path / name
    path.write_bytes(body)
    return path, mapping


def test_mapped_csv_value_too_long_to_index_names_line_and_column(conn, tmp_path):
    body = (
        "t,device,serial,v,u\n2026-12-05T10:40:00Z,8,SN-1,1,mm\n"
        f"2026-12-05T10:41:00Z,8,{random_text(3000, 2)},1,mm\n"
    ).encode()
    path, mapping = mapped_csv(tmp_path, body)
    result = setu("ingest", path, "--columns", mapping)
    assert_one_line_refusal(result, "gauge.csv: line 3, column device_serial: ")
    assert count(conn, "bronze.platform_extension") == 0 and count(conn, "_ingest.ledger") == 0


def test_mapped_csv_bad_byte_names_its_line(conn, tmp_path):
    body = (
        b"t,device,serial,v,u\n2026-12-05T10:40:00Z,8,SN-1,1,mm\n"
        b"2026-12-05T10:41:00Z,8,S\xff,1,mm\n"
    )
    path, mapping = mapped_csv(tmp_path, body)
    assert_one_line_refusal(
        setu("ingest", path, "--columns", mapping), "gauge.csv: line 3: not UTF-8"
    )
    assert count(conn, "bronze.platform_extension") == 0


@pytest.mark.parametrize("body", [b"t,device\n", gzip_cut_short("t,device,serial,v,u\n")])
def test_mapped_csv_damaged_gzip_is_one_line(conn, tmp_path, body):
    path, mapping = mapped_csv(tmp_path, body, "gauge.csv.gz")
    result = setu("ingest", path, "--columns", mapping)
    assert_one_line_refusal(result, "gauge.csv.gz: not a readable gzip file")


def release_fifo_reader(fifo: Path) -> threading.Thread:
    """A writer that opens the FIFO and closes it at once: a reader that opened the FIFO
    (the bug) sees an empty file instead of waiting for ever."""
    writer = threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True)
    writer.start()
    return writer


def test_mapped_csv_fifo_is_not_a_regular_file(conn, tmp_path):
    fifo, mapping = tmp_path / "gauge.csv", tmp_path / "gauge.yaml"
    mapping.write_text(SERIAL_MAP)
    os.mkfifo(fifo)
    writer = release_fifo_reader(fifo)
    result = setu("ingest", fifo, "--columns", mapping)
    assert_one_line_refusal(result, "not a regular file")
    if writer.is_alive():  # nobody opened it (right): let the writer go
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))


# -- 2. the fast path accepts exactly what PostgreSQL accepts ------------------------------------


@pytest.mark.parametrize(
    ("column", "text", "reason"),
    [
        ("value", "1e400", '"1e400" is out of range for type double precision'),
        ("value", "-1e400", "out of range for type double precision"),
        ("value", "1e-400", "out of range for type double precision"),  # underflow: PG refuses
        ("value", "2e-324", "out of range for type double precision"),
        ("device_id", "0x10", 'invalid input syntax for type bigint: "0x10"'),
        ("device_id", "0X1A", "invalid input syntax for type bigint"),
        ("time", "0000-01-01T00:00:00Z", "date/time field value out of range"),
        ("time", "2026-01-05T00Z", "invalid input syntax for type timestamp with time zone"),
        ("time", "2026-01-05T00:00:00+16:00", "time zone displacement out of range"),
    ],
)
def test_csv_values_postgresql_refuses_are_refused(conn, tmp_path, column, text, reason):
    values = {"time": "2026-01-05T00:00:00Z", "device_id": "8", "value": "1.5", column: text}
    path = tmp_path / "platform_extension.csv"
    path.write_text(
        "time,device_id,value,unit\n2026-01-05T00:00:00Z,8,1,mm\n"
        f"{values['time']},{values['device_id']},{values['value']},mm\n"
    )
    with pytest.raises(IngestError) as caught:
        ingest_file(conn, path)
    assert str(caught.value) == f"platform_extension.csv: line 3, column {column}: {reason}" or (
        str(caught.value).startswith(f"platform_extension.csv: line 3, column {column}: ")
        and reason in str(caught.value)
    ), str(caught.value)
    assert count(conn, "bronze.platform_extension") == 0 and count(conn, "_ingest.ledger") == 0


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("Infinity", float("inf")),
        ("-inf", float("-inf")),
        ("0e-400", 0.0),
        ("4e-320", 4e-320),
        ("0.000", 0.0),
        ("1.7976931348623157e308", 1.7976931348623157e308),
    ],
)
def test_csv_extreme_values_postgresql_takes_load(conn, tmp_path, text, stored):
    path = tmp_path / "platform_extension.csv"
    path.write_text(f"time,device_id,value,unit\n2026-01-05T00:00:00Z,8,{text},mm\n")
    assert ingest_file(conn, path).rows == 1
    assert conn.execute("select value from bronze.platform_extension").fetchone()[0] == stored


DEFERRED = "left to PostgreSQL"
REFUSED = "refused"


def fast_path_reading(tmp_path: Path, type_name: str, text: str) -> object:
    """The value the fast path would send for text, or DEFERRED (the server path decides)."""
    path = tmp_path / "value.csv"
    path.write_text(f"x\n{text}\n")
    try:
        batches = list(read_csv_batches(path, ["x"], [type_name], None, 16))
    except (pa.ArrowException, _FastPathUnsupported):
        return DEFERRED
    return batches[0].column(0)[0].as_py()


def postgresql_reading(conn: psycopg.Connection, type_name: str, text: str) -> object:
    try:
        with conn.transaction():
            return conn.execute(f"select %s::text::{type_name}", (text,)).fetchone()[0]
    except psycopg.DataError:
        return REFUSED


def same_reading(fast: object, server: object) -> bool:
    if isinstance(fast, float) and isinstance(server, float) and fast != fast:
        return server != server  # NaN
    return fast == server


FLOAT_TEXT = st.from_regex(
    r"[+-]?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
) | st.sampled_from(
    ["inf", "-Infinity", "NaN", "-nan", "0x10", "1e400", "1e-400", "2.5e-324", "1.8e308"]
)
INTEGER_TEXT = st.from_regex(r"[+-]?(0[xX])?[0-9a-fA-F]{1,20}", fullmatch=True)
TIMESTAMP_TEXT = st.from_regex(
    r"[0-9]{4}-[01][0-9]-[0-3][0-9][T ][0-2][0-9](:[0-6][0-9](:[0-6][0-9](\.[0-9]{1,8})?)?)?"
    r"(Z|z|[+-][0-2][0-9](:?[0-6][0-9])?)?",
    fullmatch=True,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.one_of(
        st.tuples(st.just("double precision"), FLOAT_TEXT),
        st.tuples(st.just("bigint"), INTEGER_TEXT),
        st.tuples(st.just("timestamp with time zone"), TIMESTAMP_TEXT),
    )
)
def test_fast_path_reads_a_value_only_as_postgresql_does(conn, tmp_path, case):
    """Property: whatever the fast path loads, PostgreSQL's own cast loads, to the same value;
    anything else the fast path leaves to the server path."""
    type_name, text = case
    conn.execute("set time zone 'UTC'")
    fast = fast_path_reading(tmp_path, type_name, text)
    if fast is DEFERRED or fast is None:
        return
    server = postgresql_reading(conn, type_name, text)
    assert server is not REFUSED, f"fast path took {text!r} as {fast!r}; PostgreSQL refuses it"
    assert same_reading(fast, server), (text, fast, server)


# -- 2. Parquet: a column of a type Bronze cannot hold is refused by name -------------------------


def parquet_file(tmp_path: Path, name: str, columns: dict[str, pa.Array]) -> Path:
    path = tmp_path / name
    times = pa.array(
        [datetime(2026, 1, 5, tzinfo=UTC)] * len(next(iter(columns.values()))),
        pa.timestamp("us", "UTC"),
    )
    pa_parquet.write_table(pa.table({"time": times, **columns}), path)
    return path


@pytest.mark.parametrize(
    ("column", "values", "type_text"),
    [
        ("machine_id", pa.array([True, False]), "bool"),
        ("part_count", pa.array([1.0, 2.5]), "double"),
        ("program_name", pa.array([b"O1", b"\xff"], pa.binary()), "binary"),
        ("program_name", pa.array([{"a": 1}, {"a": 2}]), "struct"),
        ("program_name", pa.array([[1], [2, 3]]), "list"),
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_parquet_column_of_a_type_bronze_cannot_hold_is_refused(
    conn, tmp_path, column, values, type_text, fast
):
    columns = {"machine_id": pa.array([1, 2]), column: values}
    path = parquet_file(tmp_path, "machine_cycles.parquet", columns)
    with pytest.raises(IngestError) as caught:
        ingest_file(conn, path, fast=fast)
    message = str(caught.value)
    assert message.startswith(f"machine_cycles.parquet: column {column}: a Parquet {type_text}")
    assert "\n" not in message
    assert count(conn, "bronze.machine_cycles") == 0 and count(conn, "_ingest.ledger") == 0


def test_parquet_text_into_a_number_is_judged_by_postgresql(conn, tmp_path):
    path = parquet_file(
        tmp_path,
        "machine_cycles.parquet",
        {"machine_id": pa.array(["1", "0x10"]), "part_count": pa.array([1, 2])},
    )
    with pytest.raises(
        IngestError,
        match=r"row 2, column machine_id: invalid input syntax "
        r'for type bigint: "0x10"',
    ):
        ingest_file(conn, path)


def test_agent_observation_with_an_unreadable_timestamp_is_counted_not_a_crash():
    from setu.ingest.connectors.mtconnect_agent import parse_streams

    events = "".join(
        f'<Execution dataItemId="exec" sequence="{sequence}" timestamp="{stamp}">{value}'
        "</Execution>"
        for sequence, stamp, value in [
            (1, "2026-12-05T10:40:00Z", "ACTIVE"),
            (2, "0001-01-01T00:00:00Z", "READY"),
            (3, "2026-12-05T10:41:00Z", "READY"),
        ]
    )
    page = parse_streams(
        '<MTConnectStreams><Header instanceId="1" firstSequence="1" nextSequence="4" '
        'lastSequence="3"/><Streams><DeviceStream name="mill"><ComponentStream '
        f'component="Controller"><Events>{events}</Events></ComponentStream></DeviceStream>'
        "</Streams></MTConnectStreams>"
    )
    assert [observation.line for observation in page.observations] == [1, 3]
    assert len(page.unreadable) == 1 and page.unreadable[0][0] == 2
    assert "timestamp out of range" in page.unreadable[0][1]


def test_shdr_part_count_keeps_every_digit_of_a_large_integer(tmp_path):
    big = 2**53 + 1  # a float would read it as 2**53
    text = SHDR_START + f"2026-12-05T10:41:00Z|PartCount|{big}\n"
    assert [row[5] for row in read_shdr_file(shdr(tmp_path, text), 8).rows.machine_cycles] == [big]
