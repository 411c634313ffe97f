"""`setu ingest` and the COPY API: good files in, bad files out whole, each file once."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.cli.ingest import ingest
from setu.ingest.loader import (
    IngestError,
    copy_rows,
    ingest_file,
    table_for_file,
)
from setu.tools.fleet_model import TABLE_COLUMNS, TABLES
from setu.tools.simulate import BadInputRates, CsvWriter, SimulationConfig, generate, run_batch
from setu.warehouse.cluster import DatabaseError

DATABASE = "setu_test_ingest"
START = datetime(2026, 1, 5, tzinfo=UTC)
TELEMETRY = TABLE_COLUMNS["machine_telemetry"]


@pytest.fixture(scope="module")
def db(cluster, dbt_run) -> str:
    """A database of this module's own, with the Bronze DDL applied through dbt."""
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
    return url


@pytest.fixture
def conn(db: str):
    """A connection to an empty Bronze and ledger."""
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute(f"truncate {', '.join('bronze.' + t for t in TABLES)}, "
                           f"_ingest.ledger")
        connection.execute("set time zone 'UTC'")
        yield connection


def table_rows(conn: psycopg.Connection, table: str, columns=None) -> list[tuple]:
    selected = ", ".join(columns or TABLE_COLUMNS[table])
    return conn.execute(f"select {selected} from bronze.{table} order by id").fetchall()


def ledger(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select source_name, table_name, row_count from _ingest.ledger "
                        "order by loaded_at, source_name").fetchall()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# Two machines for two hours with every kind of bad input: realistic, awkward rows.
SIMULATION = SimulationConfig(
    machines=2, start=START, duration=timedelta(hours=3), seed=1, stoppages=True,
    rates=BadInputRates(**{name: 0.02 for name in BadInputRates.__dataclass_fields__}))


@pytest.fixture(scope="module")
def simulated() -> dict[str, list[tuple]]:
    rows = generate(SIMULATION)
    assert all(rows.values()), "every table has rows"
    return rows


# -- good files ------------------------------------------------------------------------------

def test_simulator_csv_files_load_exactly(conn, simulated, tmp_path):
    writer = CsvWriter(tmp_path, suffix="run1")
    run_batch(SIMULATION, writer)
    for table in TABLES:
        result = ingest_file(conn, writer.path(table))
        assert result.table == table and not result.skipped
        assert result.method == "arrow-binary"  # ISO timestamps with offsets: the fast path
        assert result.rows == len(simulated[table])
        assert table_rows(conn, table) == simulated[table], table
    assert [row[2] for row in ledger(conn)] == [len(simulated[t]) for t in TABLES]


def test_parquet_file_loads_exactly(conn, simulated, tmp_path):
    rows = simulated["machine_cycles"]
    columns = TABLE_COLUMNS["machine_cycles"]
    arrays = {column: [row[i] for row in rows] for i, column in enumerate(columns)}
    path = tmp_path / "machine_cycles-2026-01-05.parquet"
    pa_parquet.write_table(pa.table(arrays), path, row_group_size=50)
    result = ingest_file(conn, path)
    assert (result.table, result.rows, result.method) == ("machine_cycles", len(rows),
                                                          "arrow-binary")
    assert table_rows(conn, "machine_cycles") == rows


def test_fast_and_server_paths_agree(conn, simulated, tmp_path):
    path = write_csv(tmp_path / "machine_telemetry.csv", list(TELEMETRY),
                     [[v.isoformat() if isinstance(v, datetime) else v for v in row]
                      for row in simulated["machine_telemetry"]])
    assert ingest_file(conn, path).method == "arrow-binary"
    fast = table_rows(conn, "machine_telemetry")
    conn.execute("truncate bronze.machine_telemetry, _ingest.ledger")
    assert ingest_file(conn, path, fast=False).method == "server-csv"
    assert table_rows(conn, "machine_telemetry") == fast == simulated["machine_telemetry"]


def test_subset_of_columns_naive_times_are_utc_and_ingested_at_defaults(conn, tmp_path):
    path = write_csv(tmp_path / "alarms.csv", ["time", "machine_id", "alarm_code", "event",
                                               "message"],
                     [["2026-01-05 10:00:00", 1, "SP-750", "RAISED", "Spindle, overheat"],
                      ["2026-01-05T11:30:00+05:30", 1, "SP-750", "CLEARED", ""]])
    before = datetime.now(UTC)
    result = ingest_file(conn, path)
    assert result.rows == 2
    rows = table_rows(conn, "alarms", ["time", "ingested_at", "severity", "message"])
    assert rows[0][0] == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert rows[1][0] == datetime(2026, 1, 5, 6, tzinfo=UTC)
    assert all(row[1] >= before - timedelta(seconds=5) for row in rows)  # default now()
    assert rows[0][2] is None and rows[0][3] == "Spindle, overheat"
    assert rows[1][3] is None  # unquoted empty field: null, as PostgreSQL's CSV


def test_quoted_empty_string_stays_a_string_on_both_paths(conn, tmp_path):
    path = tmp_path / "machine_state_events.csv"
    path.write_text('time,machine_id,state,program_name\n'
                    '2026-01-05T00:00:00Z,1,IDLE,""\n2026-01-05T00:01:00Z,1,RUNNING,\n')
    assert ingest_file(conn, path).method == "arrow-binary"
    assert [row[0] for row in table_rows(conn, "machine_state_events",
                                         ["program_name"])] == ["", None]


@pytest.mark.parametrize("fast", [True, False])
def test_spreadsheet_byte_order_mark(conn, tmp_path, fast):
    path = tmp_path / "machine_state_events.csv"
    path.write_bytes("\ufefftime,machine_id,state\n2026-01-05T00:00:00Z,3,IDLE\n".encode())
    assert ingest_file(conn, path, fast=fast).rows == 1
    assert table_rows(conn, "machine_state_events", ["machine_id", "state"]) == [(3, "IDLE")]


def test_gzip_csv(conn, simulated, tmp_path):
    rows = simulated["platform_extension"]
    plain = write_csv(tmp_path / "plain.csv", list(TABLE_COLUMNS["platform_extension"]),
                      [[v.isoformat() if isinstance(v, datetime) else v for v in row]
                       for row in rows])
    packed = tmp_path / "platform_extension-day1.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert ingest_file(conn, packed).rows == len(rows)
    assert table_rows(conn, "platform_extension") == rows


def test_table_from_file_name():
    assert table_for_file(Path("machine_telemetry.csv")) == "machine_telemetry"
    assert table_for_file(Path("x/machine_telemetry-2026-01-01.parquet")) == "machine_telemetry"
    assert table_for_file(Path("ALARMS_part2.csv.gz")) == "alarms"
    assert table_for_file(Path("bronze.machine_cycles.csv")) == "machine_cycles"
    with pytest.raises(IngestError, match="cannot tell the Bronze table"):
        table_for_file(Path("machine_telemetryx.csv"))
    with pytest.raises(IngestError, match="unsupported file type"):
        ingest_file(None, Path(__file__))  # type: ignore[arg-type]


# -- malformed files: one clear line, nothing left behind ---------------------------------------

GOOD_LINE = "2026-01-05T00:00:00Z,1,20.5"


@pytest.mark.parametrize(("content", "expected"), [
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\n2026-01-05T00:00:10Z,1,hot\n",
     'machine_telemetry.csv: line 3, column spindle_temp_c: invalid input syntax for type '
     'double precision: "hot"'),
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\n{GOOD_LINE}\n2026-01-05T25:00:00Z,1,1\n",
     "machine_telemetry.csv: line 4, column time: date/time field value out of range"),
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\nsoon,1,1\n",
     "machine_telemetry.csv: line 3, column time: invalid input syntax for type timestamp"),
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\n2026-01-05T00:00:10Z,one,1\n",
     "machine_telemetry.csv: line 3, column machine_id: invalid input syntax for type bigint"),
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\n,1,1\n",
     "machine_telemetry.csv: line 3, column time: null value in column \"time\""),
    (f"time,machine_id,spindle_temp_c\n{GOOD_LINE}\n{GOOD_LINE},7\n",
     "machine_telemetry.csv: line 3: extra data after last expected column"),
    (f"time,machine_id,spindle_tmp\n{GOOD_LINE}\n",
     "machine_telemetry.csv: line 1, column spindle_tmp: unknown column of "
     "bronze.machine_telemetry"),
    (f"id,time,machine_id\n1,{GOOD_LINE[:-5]}\n",
     "machine_telemetry.csv: line 1, column id: generated by the database"),
    (f"time,machine_id,time\n{GOOD_LINE}\n",
     "machine_telemetry.csv: line 1, column time: appears twice"),
])
def test_malformed_csv_names_line_and_column_and_loads_nothing(conn, tmp_path, content,
                                                               expected):
    path = tmp_path / "machine_telemetry.csv"
    path.write_text(content)
    with pytest.raises(IngestError) as caught:
        ingest_file(conn, path)
    message = str(caught.value)
    assert message.lower().startswith(expected.lower()), message
    assert "\n" not in message
    assert table_rows(conn, "machine_telemetry") == []
    assert ledger(conn) == []


def test_malformed_parquet_names_row_and_column(conn, tmp_path):
    path = tmp_path / "machine_telemetry-bad.parquet"
    pa_parquet.write_table(pa.table({
        "time": pa.array([START, START + timedelta(seconds=10)], pa.timestamp("us", "UTC")),
        "machine_id": [1, 1],
        "spindle_temp_c": ["20.5", "hot"],
    }), path)
    with pytest.raises(IngestError, match=r"^machine_telemetry-bad\.parquet: row 2, column "
                                          r"spindle_temp_c: invalid input syntax"):
        ingest_file(conn, path)
    assert table_rows(conn, "machine_telemetry") == [] and ledger(conn) == []


def test_bad_last_line_of_a_large_file_leaves_nothing(conn, tmp_path):
    """The fast path sends many batches before it meets the bad line: all are rolled back."""
    path = tmp_path / "machine_telemetry-big.csv"
    with path.open("w") as handle:
        handle.write("time,machine_id,spindle_speed_rpm,power_kw\n")
        moment = START
        for number in range(150_000):
            handle.write(f"{moment.isoformat()},{number % 50 + 1},{number % 9000}.5,3.25\n")
            moment += timedelta(milliseconds=200)
        handle.write(f"{moment.isoformat()},1,fast,3\n")
    with pytest.raises(IngestError, match=r"line 150002, column spindle_speed_rpm"):
        ingest_file(conn, path)
    assert conn.execute("select count(*) from bronze.machine_telemetry").fetchone()[0] == 0
    assert ledger(conn) == []


# -- the ledger -----------------------------------------------------------------------------------

def test_same_file_twice_is_loaded_once(conn, tmp_path):
    path = write_csv(tmp_path / "machine_cycles.csv",
                     ["time", "machine_id", "cycle_start", "part_count", "result"],
                     [["2026-01-05T00:05:00Z", 1, "2026-01-05T00:03:00Z", 10, "GOOD"]])
    first = ingest_file(conn, path)
    second = ingest_file(conn, path)
    renamed = tmp_path / "machine_cycles-copy.csv"
    renamed.write_bytes(path.read_bytes())
    third = ingest_file(conn, renamed)
    assert (first.skipped, second.skipped, third.skipped) == (False, True, True)
    assert second.sha256 == first.sha256 and second.loaded_at is not None
    assert len(table_rows(conn, "machine_cycles")) == 1
    assert ledger(conn) == [("machine_cycles.csv", "machine_cycles", 1)]


def test_a_failed_file_can_be_fixed_and_loaded(conn, tmp_path):
    path = tmp_path / "alarms.csv"
    path.write_text("time,machine_id,event\n2026-01-05T00:00:00Z,x,RAISED\n")
    with pytest.raises(IngestError):
        ingest_file(conn, path)
    path.write_text("time,machine_id,event\n2026-01-05T00:00:00Z,1,RAISED\n")
    assert ingest_file(conn, path).rows == 1


def test_cli_loads_skips_and_fails_in_one_line(conn, tmp_path):
    good = write_csv(tmp_path / "machine_state_events.csv", ["time", "machine_id", "state"],
                     [["2026-01-05T00:00:00Z", 1, "IDLE"], ["2026-01-05T00:10:00Z", 1, "Running"]])
    bad = tmp_path / "alarms-bad.csv"
    bad.write_text("time,machine_id,event\n2026-01-05T00:00:00Z,1,RAISED\nnot a time,1,X\n")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SETU_PG_DATABASE", DATABASE)
        loaded = runner.invoke(ingest, [str(good)])
        again = runner.invoke(ingest, [str(good), str(bad)])
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 2 rows into bronze.machine_state_events" in loaded.output
    assert again.exit_code == 2
    assert "skipped machine_state_events.csv: already loaded" in again.output
    assert "error: alarms-bad.csv: line 3, column time: invalid input syntax" in again.output
    assert len(table_rows(conn, "machine_state_events")) == 2
    assert table_rows(conn, "alarms") == []


# -- the row API ---------------------------------------------------------------------------------

def test_copy_rows_binary_and_text_write_the_same(conn, simulated):
    rows = simulated["machine_telemetry"][:500]
    assert copy_rows(conn, "machine_telemetry", TELEMETRY, rows) == 500
    assert copy_rows(conn, "machine_telemetry", TELEMETRY, rows, binary=False,
                     batch_rows=128) == 500
    stored = table_rows(conn, "machine_telemetry")
    assert stored[:500] == rows and stored[500:] == rows
    ids = [row[0] for row in conn.execute("select id from bronze.machine_telemetry order by id")]
    assert ids == sorted(ids) and len(set(ids)) == 1000


def test_copy_rows_refuses_id_and_unknown_columns(conn):
    with pytest.raises(IngestError, match="column id: generated by the database"):
        copy_rows(conn, "alarms", ["id", "time"], [(1, START)])
    with pytest.raises(IngestError, match="column colour: unknown column"):
        copy_rows(conn, "alarms", ["time", "colour"], [(START, "red")])
    with pytest.raises(IngestError, match="unknown Bronze table"):
        copy_rows(conn, "telemetry", ["time"], [(START,)])


def test_missing_bronze_table_says_what_to_run(cluster, tmp_path):
    name = "setu_test_ingest_empty"
    cluster.psql(f"drop database if exists {name} with (force)", db="postgres")
    url = cluster.create_database(name, extensions=False)
    path = write_csv(tmp_path / "alarms.csv", ["time"], [["2026-01-05T00:00:00Z"]])
    with psycopg.connect(url) as connection, pytest.raises(IngestError,
                                                           match="setu bronze"):
        ingest_file(connection, path)


def test_concurrent_loads_of_one_file_count_once(db, conn, tmp_path):
    import threading

    path = write_csv(tmp_path / "machine_cycles.csv", ["time", "machine_id", "part_count"],
                     [[f"2026-01-05T00:{minute:02d}:00Z", 1, minute] for minute in range(60)])
    results, errors = [], []

    def load() -> None:
        try:
            with psycopg.connect(db) as connection:
                results.append(ingest_file(connection, path))
        except (IngestError, DatabaseError) as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(result.skipped for result in results) == [False, True, True]
    assert len(table_rows(conn, "machine_cycles")) == 60


# -- a CSV in its own columns: --columns MAP.yaml (issue 13, point 7) ----------------------

CSV_FIXTURES = Path(__file__).parents[1] / "fixtures" / "csv"
MILL_CSV = CSV_FIXTURES / "cnc_mill_experiment_01.csv"
MILL_MAP = CSV_FIXTURES / "cnc_mill_experiment.yaml"
MILL_START = datetime(2026, 1, 5, 3, 30, tzinfo=UTC)  # 09:00 Asia/Kolkata


def run_ingest(*args: str):
    return CliRunner().invoke(ingest, [*map(str, args)], env={"SETU_PG_DATABASE": DATABASE},
                              catch_exceptions=False)


def mill_expected() -> list[tuple]:
    """The mapping applied by hand: one row per data line, 100 ms apart."""
    with MILL_CSV.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    return [(MILL_START + timedelta(milliseconds=100 * number), 9301,
             float(line["S1_ActualVelocity"]), float(line["X1_ActualVelocity"]) * 60,
             float(line["S1_OutputPower"]) / 1000 if line["S1_OutputPower"] else None)
            for number, line in enumerate(lines)]


def mill_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select time, machine_id, spindle_speed_rpm, feed_rate_mm_min, "
                        "power_kw from bronze.machine_telemetry order by time").fetchall()


def test_column_mapping_dry_run_writes_nothing(conn: psycopg.Connection) -> None:
    result = run_ingest(MILL_CSV, "--columns", MILL_MAP, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would load 40 row(s) into bronze.machine_telemetry" in result.output
    assert "X1_ActualVelocity x 60 -> feed_rate_mm_min" in result.output
    assert "S1_OutputPower x 0.001 -> power_kw (1 empty: null)" in result.output
    assert "2026-01-05T09:00:00+05:30 .. 2026-01-05T09:00:03.900000+05:30" in result.output
    assert "Machining_Process" in result.output  # named as ignored
    assert mill_rows(conn) == [] and ledger(conn) == []


def test_column_mapping_loads_a_public_cnc_mill_csv_once(conn: psycopg.Connection,
                                                         tmp_path: Path) -> None:
    result = run_ingest(MILL_CSV, "--columns", MILL_MAP)
    assert result.exit_code == 0, result.output
    actual = mill_rows(conn)
    expected = mill_expected()
    assert len(actual) == len(expected) == 40
    for got, want in zip(actual, expected, strict=True):
        assert got[:2] == want[:2]
        assert got[2:] == pytest.approx(want[2:])
    assert ledger(conn) == [("cnc_mill_experiment_01.csv", "machine_telemetry", 40)]
    again = run_ingest(MILL_CSV, "--columns", MILL_MAP)
    assert "skipped (already loaded)" in again.output and len(mill_rows(conn)) == 40
    # the same file as another machine's run is another load
    other = tmp_path / "other-machine.yaml"
    other.write_text(MILL_MAP.read_text().replace("machine_id: 9301", "machine_id: 9302"))
    assert run_ingest(MILL_CSV, "--columns", other).exit_code == 0
    assert conn.execute("select count(*) from bronze.machine_telemetry where machine_id = 9302"
                        ).fetchone()[0] == 40


def test_column_mapping_with_a_time_column_and_clear_errors(conn: psycopg.Connection,
                                                            tmp_path: Path) -> None:
    data = tmp_path / "press-7.csv"
    data.write_text("Timestamp,Machine,Status,Prog\n2026-01-05 06:00:00,7,Running,O12\n"
                    "2026-01-05 06:07:30,7,idle,O12\n")
    mapping = tmp_path / "states.yaml"
    mapping.write_text("table: machine_state_events\ntime: {column: Timestamp, timezone: "
                       "Asia/Kolkata}\ncolumns: {Machine: machine_id, Status: state, "
                       "Prog: program_name}\n")
    assert run_ingest(data, "--columns", mapping).exit_code == 0
    assert conn.execute("select time, machine_id, state, program_name "
                        "from bronze.machine_state_events order by time").fetchall() == [
        (datetime(2026, 1, 5, 0, 30, tzinfo=UTC), 7, "Running", "O12"),
        (datetime(2026, 1, 5, 0, 37, 30, tzinfo=UTC), 7, "idle", "O12")]
    # a column neither mapped nor ignored: named, nothing loaded
    loose = tmp_path / "loose.yaml"
    loose.write_text("table: machine_state_events\ntime: {column: Timestamp, timezone: UTC}\n"
                     "columns: {Machine: machine_id, Status: state}\n")
    result = run_ingest(data, "--columns", loose)
    assert result.exit_code == 2
    assert "column(s) Prog neither mapped nor listed under ignore" in result.output
    # a value that cannot become its column: file, line and column, nothing loaded
    bad = tmp_path / "bad.csv"
    bad.write_text(MILL_CSV.read_text().replace("53.3", "fast", 1))
    result = run_ingest(bad, "--columns", MILL_MAP)
    assert result.exit_code == 2
    assert "bad.csv: line 8, column S1_ActualVelocity: cannot become spindle_speed_rpm" \
        in result.output
    assert mill_rows(conn) == []
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("table: machine_telemetry\ntime: {start: '2026-01-05T09:00:00'}\n"
                     "columns: {S1_ActualVelocity: spindle_speed_rpm}\n")
    result = run_ingest(MILL_CSV, "--columns", wrong)
    assert result.exit_code == 2 and "time: give either column" in result.output
