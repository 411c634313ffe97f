"""Hostile input through every file entry point, then the warehouse built on what got in.

Each case is one awkward cell (tests/python/hostile_values.py) in an otherwise good row of a
Bronze table, sent through `setu ingest` (CSV, gzip CSV, Parquet), the COPY API and the
MTConnect SHDR connector. The verdict a case must get is PostgreSQL's own: the same CSV line
COPYed by PostgreSQL itself into the Bronze table (in a transaction rolled back) either
loads, and then `setu ingest` must load the file whole with the same stored value, or fails,
and then `setu ingest` must reject the file whole, naming the line. Then dbt builds the
warehouse twice and every Bronze id must sit in exactly one place (its Silver fact or the
quarantine), with no NaN or infinity in Silver, Gold or the webapp, and nothing exploded.
The module prints a `fuzz summary` line: cases tried, how each ended, rows lost (zero).
"""

from __future__ import annotations

import gzip
import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import own_database
from hostile_values import BY_TYPE, GOOD
from setu.cli.ingest import ingest
from setu.ingest.connectors.mtconnect import Accounting, map_observations, parse_shdr
from setu.ingest.connectors.mtconnect_mapping import default_mapping
from setu.ingest.loader import IngestError, copy_rows, ingest_file
from setu.ops.reconcile import reconcile
from setu.warehouse import contract

DATABASE = "setu_test_fuzz"
MACHINE = 8
DEVICE = 5
SHDR_MACHINE = 9
BASE = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
SUMMARY: Counter = Counter()


def _contract_type(type_name: str) -> str:
    return "timestamptz" if type_name.startswith("timestamp") else type_name


def table_cases() -> list[tuple[str, str, str]]:
    """(table, column, hostile text) for every column of every Bronze table, time included."""
    cases = []
    for name, table in contract.bronze_tables().items():
        for column, type_name in (("time", "timestamptz"), *table.columns):
            for value in BY_TYPE[_contract_type(type_name)]:
                cases.append((name, column, value))
    return cases


def csv_field(value: str) -> str:
    """A CSV cell as an export writes it: empty is NULL, quoted when it has to be."""
    if value == "" or not any(ch in value for ch in ',"\n\r'):
        return value
    return '"' + value.replace('"', '""') + '"'


def csv_line(columns: list[str], values: dict[str, str]) -> str:
    return ",".join(csv_field(values[column]) for column in columns) + "\n"


def encode(text: str) -> bytes:
    """UTF-8, with lone surrogates standing for the raw (non-UTF-8) bytes they escape."""
    return text.encode("utf-8", "surrogateescape")


def good_row(index: int, minute: int) -> dict[str, str]:
    """A good row, distinct per case so that Silver's duplicate probe keeps them apart."""
    when = BASE + timedelta(seconds=index * 7 + minute)
    return {**GOOD, "time": when.isoformat(), "part_count": str(index * 3 + minute),
            "value": str(index + minute / 10)}


@pytest.fixture(scope="module")
def db(cluster, dbt_run) -> Iterator[str]:
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into master.sites values (1, 'FUZZ', 'Europe/Berlin')")
            conn.execute("insert into master.machines values (%s, 'M8', 1), (%s, 'M9', 1)",
                         (MACHINE, SHDR_MACHINE))
            conn.execute("insert into master.device_calibrations values (%s, 40.0)",
                         (DEVICE,))
        yield url


@pytest.fixture
def conn(db: str):
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("set time zone 'UTC'")
        yield connection


def postgres_verdict(conn: psycopg.Connection, table: str, columns: list[str], line: bytes,
                     column: str) -> str | None:
    """The stored text of `column` when PostgreSQL's own COPY takes the CSV line into
    bronze.<table>, else None. Rolled back: nothing is kept."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            with cur.copy(f"copy bronze.{table} ({', '.join(columns)}) "
                          "from stdin (format csv)") as copy:
                copy.write(line)
            return cur.execute(f"select {column}::text from bronze.{table} "
                               "order by id desc limit 1").fetchone()[0]
    except psycopg.Error:
        return None


def loaded_value(conn: psycopg.Connection, table: str, column: str, row_id: int) -> str | None:
    return conn.execute(f"select {column}::text from bronze.{table} where id = %s",
                        (row_id,)).fetchone()[0]


def max_id(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"select coalesce(max(id), 0) from bronze.{table}").fetchone()[0]


@pytest.fixture(scope="module")
def csv_outcomes(db: str, tmp_path_factory) -> Counter:
    """Every table case as a CSV file (good line, hostile line, good line) through ingest."""
    folder = tmp_path_factory.mktemp("fuzz-csv")
    outcomes: Counter = Counter()
    problems = []
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("set time zone 'UTC'")
        for index, (table, column, value) in enumerate(table_cases()):
            columns = ["time", *(name for name, _ in contract.bronze_tables()[table].columns)]
            hostile = {**good_row(index, 1), column: value}
            body = [csv_line(columns, good_row(index, 0)), csv_line(columns, hostile),
                    csv_line(columns, good_row(index, 2))]
            expected = postgres_verdict(conn, table, columns, encode(body[1]), column)
            # every third case gzipped: the same verdict must hold through gzip
            gzipped = index % 3 == 0
            path = folder / f"{table}-{index}.csv{'.gz' if gzipped else ''}"
            content = encode(",".join(columns) + "\n" + "".join(body))
            path.write_bytes(gzip.compress(content) if gzipped else content)
            before = max_id(conn, table)
            where = f"{table}.{column}={value[:30]!r}"
            try:
                result = ingest_file(conn, path, table)
            except IngestError as exc:
                message = str(exc)
                if expected is not None:
                    problems.append(f"{where}: PostgreSQL takes it, ingest refused: {message}")
                elif "line 3" not in message:
                    problems.append(f"{where}: refused without naming line 3: {message}")
                elif max_id(conn, table) != before:
                    problems.append(f"{where}: refused but rows stayed")
                elif len(message) > 400 or "\n" in message.strip():
                    problems.append(f"{where}: not one short line: {message[:500]!r}")
                outcomes["rejected whole, naming the line"] += 1
                continue
            if expected is None:
                problems.append(f"{where}: PostgreSQL refuses it, ingest loaded "
                                f"{result.rows} rows ({result.method})")
                continue
            ids = [row[0] for row in conn.execute(
                f"select id from bronze.{table} where id > %s order by id", (before,))]
            if result.rows != 3 or len(ids) != 3:
                problems.append(f"{where}: loaded {result.rows} rows, {len(ids)} in Bronze")
                continue
            stored = loaded_value(conn, table, column, ids[1])
            if stored != expected:
                problems.append(f"{where}: stored {str(stored)[:40]!r}, PostgreSQL "
                                f"{expected[:40]!r} ({result.method})")
            outcomes["loaded whole, as PostgreSQL stores it"] += 1
    SUMMARY.update({f"csv: {key}": count for key, count in outcomes.items()})
    SUMMARY["csv: cases"] += len(table_cases())
    assert not problems, f"{len(problems)} of {len(table_cases())} cases:\n" + "\n".join(
        problems)
    return outcomes


def test_every_csv_case_gets_postgresqls_verdict(csv_outcomes: Counter) -> None:
    assert csv_outcomes["loaded whole, as PostgreSQL stores it"] > 0
    assert csv_outcomes["rejected whole, naming the line"] > 0
    assert sum(csv_outcomes.values()) == len(table_cases())


def test_an_end_of_data_marker_line_never_ends_a_file_early(db: str, tmp_path: Path) -> None:
    path = tmp_path / "alarms-eod.csv"
    path.write_text("time,machine_id,alarm_code,severity,event\n"
                    "2026-12-05T10:40:00Z,8,A1,error,RAISED\n\\.\n"
                    "2026-12-05T10:41:00Z,8,A2,error,RAISED\n")
    with psycopg.connect(db, autocommit=True) as conn:
        before = max_id(conn, "alarms")
        with pytest.raises(IngestError, match="line 3"):
            ingest_file(conn, path)
        assert max_id(conn, "alarms") == before
        assert conn.execute("select count(*) from _ingest.ledger where source_name = %s",
                            (path.name,)).fetchone()[0] == 0
    SUMMARY["csv: end-of-data marker refused"] += 1


# -- Parquet: typed hostile values, and types that are not the column's ---------------------

def parquet_hostile_table(table: str) -> pa.Table:
    """Rows of bronze.<table> with the typed extremes a Parquet writer can hold."""
    spec = contract.bronze_tables()[table]
    floats = [math.nan, math.inf, -math.inf, 1.7976931348623157e308, 5e-324, -0.0]
    times = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
             datetime(1970, 1, 1, tzinfo=UTC), BASE, BASE + timedelta(minutes=1), BASE]
    texts = ["", "x" * 257, "\u00e9" * 300, "'; drop table bronze.alarms; --", "a\nb",
             "\U0001f469\u200d\U0001f527"]
    ints = [2**63 - 1, -(2**63), 0, MACHINE, MACHINE, MACHINE]
    arrays = {"time": pa.array(times, pa.timestamp("us", tz="UTC"))}
    for column, type_name in spec.columns:
        if column == spec.entity_column:
            arrays[column] = pa.array([*ints[:3], *ints[3:]], pa.int64())
        elif type_name == "bigint":
            arrays[column] = pa.array(ints, pa.int64())
        elif type_name == "double precision":
            arrays[column] = pa.array(floats, pa.float64())
        elif type_name.startswith("timestamp"):
            arrays[column] = pa.array(times, pa.timestamp("us", tz="UTC"))
        else:
            arrays[column] = pa.array(texts, pa.string())
    return pa.table(arrays)


@pytest.mark.parametrize("table", contract.bronze_table_names())
def test_parquet_extremes_load_as_written(db: str, tmp_path: Path, table: str) -> None:
    data = parquet_hostile_table(table)
    path = tmp_path / f"{table}-extremes.parquet"
    pa_parquet.write_table(data, path)
    with psycopg.connect(db, autocommit=True) as conn:
        before = max_id(conn, table)
        result = ingest_file(conn, path, table)
        assert result.rows == data.num_rows
        columns = data.column_names
        stored = conn.execute(
            f"select {', '.join(columns)} from bronze.{table} where id > %s order by id",
            (before,)).fetchall()
    expected = data.to_pylist()
    for got, want in zip(stored, expected, strict=True):
        for column, value in zip(columns, got, strict=True):
            wanted = want[column]
            if isinstance(wanted, float) and math.isnan(wanted):
                assert math.isnan(value), (column, value)
            else:
                assert value == wanted, (column, value, wanted)
    SUMMARY["parquet: typed extremes loaded"] += data.num_rows


WRONG_TYPES = {
    "boolean": pa.array([True, False], pa.bool_()),
    "double": pa.array([1.5, 2.0], pa.float64()),
    "binary": pa.array([b"\x00\x01", b"\xff"], pa.binary()),
    "list": pa.array([[1, 2], [3]], pa.list_(pa.int64())),
    "struct": pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())])),
}


@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
def test_parquet_of_the_wrong_type_is_refused_naming_the_column(db: str, tmp_path: Path,
                                                                kind: str) -> None:
    data = pa.table({"time": pa.array([BASE, BASE], pa.timestamp("us", tz="UTC")),
                     "machine_id": WRONG_TYPES[kind],
                     "alarm_code": ["A1", "A2"], "severity": ["error"] * 2,
                     "event": ["RAISED"] * 2})
    path = tmp_path / f"alarms-wrong-{kind}.parquet"
    pa_parquet.write_table(data, path)
    with psycopg.connect(db, autocommit=True) as conn:
        before = max_id(conn, "alarms")
        with pytest.raises(IngestError, match="machine_id") as refused:
            ingest_file(conn, path)
        assert "\n" not in str(refused.value).strip()
        assert max_id(conn, "alarms") == before
    SUMMARY["parquet: wrong types refused naming the column"] += 1


# -- the COPY API: Python values a gateway library might hand over --------------------------

def test_copy_api_takes_python_extremes(db: str) -> None:
    rows = [
        (BASE + timedelta(minutes=50), MACHINE, math.nan, math.inf, -math.inf, 1e308, 5e-324,
         -0.0, 0.0, 1e-300),
        (datetime(1, 1, 1, tzinfo=UTC), MACHINE, *[1.0] * 8),
        (datetime(9999, 12, 31, tzinfo=UTC), MACHINE, *[2.0] * 8),
    ]
    columns = ["time", "machine_id",
               *(c for c, _ in contract.bronze_tables()["machine_telemetry"].columns[1:])]
    with psycopg.connect(db) as conn:
        before = max_id(conn, "machine_telemetry")
        assert copy_rows(conn, "machine_telemetry", columns, rows) == len(rows)
        conn.commit()
        assert max_id(conn, "machine_telemetry") - before >= len(rows)
        with pytest.raises((psycopg.Error, OverflowError)):
            copy_rows(conn, "machine_telemetry", columns[:2], [(BASE, 2**63)])
        conn.rollback()
    SUMMARY["copy api: extremes loaded"] += len(rows)


# -- MTConnect SHDR: lines as adapters and broken clocks write them -------------------------

SHDR_ITEMS = ("avail", "execution", "mode", "program", "PartCount", "S1speed", "S1load",
              "Wattage", "Stemp", "system", "unmapped_item")
SHDR_VALUES = ("UNAVAILABLE", "ACTIVE", "READY", "0", "12", "-1", "1e400", "NaN", "inf",
               "99999999999999999999", "O1001", "", "x" * 300, "\ufffd", "FAULT")
SHDR_TIMES = ("2026-12-05T10:00:00Z", "2026-12-05T10:00:01.5Z", "0001-01-01T00:00:00Z",
              "9999-12-31T23:59:59Z", "2026-12-05", "garbage", "")


@st.composite
def shdr_lines(draw) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(("data", "data", "data", "protocol", "blank", "junk")))
        if kind == "protocol":
            lines.append(draw(st.sampled_from(("* PONG 10000", "* shdrVersion: 2"))))
        elif kind == "blank":
            lines.append("")
        elif kind == "junk":
            lines.append(draw(st.text(max_size=40).filter(lambda s: "\n" not in s
                                                          and "\r" not in s)))
        else:
            fields = [draw(st.sampled_from(SHDR_TIMES))]
            for _ in range(draw(st.integers(1, 4))):
                fields += [draw(st.sampled_from(SHDR_ITEMS)), draw(st.sampled_from(SHDR_VALUES))]
            lines.append("|".join(fields))
    return lines


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shdr_lines())
def test_shdr_accounts_for_every_line_whatever_it_holds(lines: list[str]) -> None:
    acct = Accounting()
    mapping = default_mapping()
    mapper = map_observations(parse_shdr(lines, mapping, acct), SHDR_MACHINE, mapping,
                              acct=acct)
    mapper.finish()
    assert sum(acct.lines.values()) == len(lines)
    assert acct.balanced(), acct.describe()


def test_a_hostile_shdr_file_loads_or_refuses_in_one_line(db: str, tmp_path: Path) -> None:
    lines = ["* shdrVersion: 2"]
    for index, value in enumerate(v for v in SHDR_VALUES):
        when = (BASE + timedelta(hours=2, seconds=index)).isoformat().replace("+00:00", "Z")
        lines.append(f"{when}|avail|AVAILABLE|execution|ACTIVE|program|O1|PartCount|{value}"
                     f"|S1speed|{value}|Wattage|{value}")
    lines += [f"{moment}|S1speed|100" for moment in SHDR_TIMES]
    path = tmp_path / "hostile.shdr"
    path.write_bytes(encode("\n".join(lines) + "\n") + b"2026-12-05T11:00:00Z|program|\xff\n")
    result = CliRunner().invoke(
        ingest, [str(path), "--format", "mtconnect-shdr", "--machine", str(SHDR_MACHINE)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output, result.exception)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    SUMMARY["shdr: hostile file lines"] += len(lines) + 1


# -- sync-edge: a gateway's SQLite file with hostile cells --------------------------------

GATEWAY = "gw-fuzz"
GATEWAY_GOOD = {
    "MachineRunningStatus_MVP": {"IOTID": "8", "RunningProgramNo": "O1", "Status": "Running",
                                 "OperatorID": "OP1", "Target": 40},
    "MachineWiseCycleDetails_MVP": {"IOTID": "8", "CycleStart": "2026-12-05 09:00:00",
                                    "CycleEnd": "2026-12-05 09:01:00", "ProgramNo": "O1",
                                    "StdLoadUnload": 5.0, "DownThreshold": 60.0,
                                    "StdCycleTime": 50.0},
    "MachineWiseAlarmDetails_MVP": {"IOTID": "8", "AlarmNo": "A1", "AlarmDesc": "door",
                                    "AlarmTS": "2026-12-05 09:00:00"},
    "MachineWiseEnergyDetails_MVP": {"IOTID": "8", "Category": "CONSP", "ServoEnergy": 1.0,
                                     "SpindleEnergy": 2.0, "TotalEnergy": 3.0},
    "MachineWiseParameterDetails_MVP": {"IOTID": "8", "ParameterID": "SpindleSpeed",
                                        "ParameterValue": "8000"},
}
# SQLite keeps any value in any column: every cell gets text, numbers and raw bytes.
GATEWAY_HOSTILE = (
    None, "", " ", "99999999999999999999", "-1", "1e400", "NaN", "0001-01-01 00:00:00",
    "9999-12-31 23:59:59", "2026-02-30 00:00:00", "garbage", "x" * 5000, "Run\x00ning",
    "\u202eRTL", 1e308, float("inf"), -(2**63), 2**62, b"\xff\xfe",
)


def hostile_gateway_file(path: Path) -> tuple[Path, int]:
    """Every cell of every gateway table hostile in turn, in rows otherwise good."""
    from test_edge_sync import TEMPLATE_DDL

    db = sqlite3.connect(path)
    db.executescript(TEMPLATE_DDL)
    rows = 0
    for table, good in GATEWAY_GOOD.items():
        for column in good:
            for index, value in enumerate(GATEWAY_HOSTILE):
                moment = BASE + timedelta(minutes=rows)
                cells = {**good, column: value,
                         "UpdatedTS": moment.strftime("%Y-%m-%d %H:%M:%S")}
                if isinstance(value, bytes):  # raw bytes stored as TEXT: not UTF-8
                    cells[column] = None
                names = ", ".join(cells)
                db.execute(f"insert into {table} ({names}) values "
                           f"({', '.join('?' * len(cells))})", list(cells.values()))
                if isinstance(value, bytes):
                    db.execute(f"update {table} set {column} = cast(? as text) "
                               "where rowid = last_insert_rowid()", (value,))
                rows += 1
                del index
    db.commit()
    db.close()
    return path, rows


def test_a_hostile_gateway_file_syncs_every_row_once(db: str, tmp_path: Path) -> None:
    from setu.ingest.connectors.edge_sync import sync_edge

    path, rows = hostile_gateway_file(tmp_path / "gw-fuzz.db")
    arguments = [str(path), "--gateway", GATEWAY, "--timezone", "Europe/Berlin",
                 "--iotid-is-machine-id"]
    first = CliRunner().invoke(sync_edge, arguments)
    assert first.exception is None or isinstance(first.exception, SystemExit), (
        first.output, first.exception)
    assert first.exit_code == 0, first.output
    with sqlite3.connect(path) as gateway:
        unsynced = sum(gateway.execute(f"select count(*) from {table} where SyncedStatus <> 1"
                                       ).fetchone()[0] for table in GATEWAY_GOOD)
    assert unsynced == 0, "a hostile row blocks the rows behind it"
    again = CliRunner().invoke(sync_edge, arguments)
    assert again.exit_code == 0 and "0 new row(s)" in again.output, again.output
    with psycopg.connect(db, autocommit=True) as conn:
        set_aside = dict(conn.execute(
            "select reason, count(distinct (source_table, source_rowid))"
            " from _ingest.edge_unmapped where gateway_id = %s group by reason",
            (GATEWAY,)).fetchall())
    SUMMARY["sync-edge: hostile rows synced"] += rows
    SUMMARY.update({f"sync-edge set aside: {reason}": n for reason, n in set_aside.items()})


# -- provision: hostile announcements, each in the registry or the error ledger -------------

def test_hostile_announcements_each_land_in_one_place(db: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from setu.cli import main
    from setu.ingest.connectors.provision import DeviceSecret

    secret = "f" * 48
    monkeypatch.setenv("SETU_DEVICE_SECRET", secret)
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")
    lines = []
    for index, value in enumerate(BY_TYPE["text"]):
        serial = f"FZ-{index}-{value}"
        for field in ("device_serial", "firmware", "time"):
            body = {"device_serial": serial, "time": stamp, "firmware": "1.0"}
            body[field] = value if field != "device_serial" else serial
            try:
                body["signature"] = DeviceSecret(secret).sign(body["device_serial"],
                                                              body["time"])
            except UnicodeEncodeError:  # a lone surrogate cannot be signed, nor sent
                body["signature"] = "0" * 64
            lines.append(json.dumps(body, ensure_ascii=field == "time"))
    lines += ["not json", "[1, 2]", '{"device_serial": null}', "\u0000"]
    path = tmp_path / "announcements.jsonl"
    path.write_bytes(encode("".join(f"{line}\n" for line in lines)) + b"\xff\xfe\n")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("truncate _ingest.device_registry, _ingest.error_ledger")
        result = CliRunner().invoke(main, ["provision", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.output, result.exception)
        assert result.exit_code in (0, 1), result.output
        registered = conn.execute("select count(*) from _ingest.device_registry").fetchone()[0]
        refused = conn.execute("select count(*) from _ingest.error_ledger"
                               " where source = 'provision'").fetchone()[0]
    # a serial announced again with the same time is a replay; every line is in one place
    assert registered + refused == len(lines) + 1, result.output
    SUMMARY["provision: hostile lines"] += len(lines) + 1
    SUMMARY["provision: registered"] += registered
    SUMMARY["provision: refused with a reason"] += refused


# -- then the warehouse: nothing lost, nothing poisoned, nothing stuck ----------------------

FLOAT_CHECK_SCHEMAS = ("silver", "gold", "webapp")


def non_finite_cells(conn: psycopg.Connection) -> list[str]:
    """NaN and infinities anywhere but the quarantine, which keeps rejected rows as sent."""
    found = []
    columns = conn.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema = any(%s) and c.table_name <> 'quarantine'"
        " and c.data_type in ('double precision', 'real',"
        " 'numeric') and t.table_type = 'BASE TABLE'",
        (list(FLOAT_CHECK_SCHEMAS),)).fetchall()
    for schema, table, column in columns:
        bad = conn.execute(
            f'select count(*) from {schema}.{table} where "{column}" in '
            "('NaN', 'Infinity', '-Infinity')").fetchone()[0]
        if bad:
            found.append(f"{schema}.{table}.{column}: {bad}")
    return found


@pytest.fixture(scope="module")
def built(db: str, dbt_run, csv_outcomes) -> str:
    assert dbt_run(["--quiet", "build", "--exclude", "resource_type:test"]) == 0
    return db


def test_every_bronze_id_lands_once_and_nothing_is_poisoned(built: str, dbt_run) -> None:
    with psycopg.connect(built, autocommit=True) as conn:
        counts = reconcile(conn)
        for table, counted in counts.items():
            assert counted.rows == counted.once, (table, counted)
            assert counted.missing == counted.several == counted.unprocessed == 0
        assert non_finite_cells(conn) == []
        widest = conn.execute("select coalesce(max(length(program_name)), 0) "
                              "from silver.dim_program").fetchone()[0]
        assert widest <= 256
        days = conn.execute("select coalesce(max(n), 0) from (select count(*) as n from "
                            "gold.machine_utilization_daily group by machine_id) as per_machine"
                            ).fetchone()[0]
        assert days <= 6 * 366, "one machine's days of utilization: an ancient time exploded"
        quarantined = dict(conn.execute(
            "select reason, count(*) from silver.quarantine group by reason").fetchall())
    # the pipeline is not stuck: the next run succeeds too
    assert dbt_run(["--quiet", "build", "--exclude", "resource_type:test"]) == 0
    SUMMARY.update({"bronze rows": sum(c.rows for c in counts.values()),
                    "bronze rows in exactly one place": sum(c.once for c in counts.values()),
                    "bronze rows lost": sum(c.missing for c in counts.values())})
    SUMMARY.update({f"quarantined: {reason}": n for reason, n in quarantined.items()})
    print("fuzz summary " + json.dumps(dict(sorted(SUMMARY.items()))))
