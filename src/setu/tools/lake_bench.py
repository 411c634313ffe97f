"""The lake's measurements for docs/lake.md, on the warehouse the profile targets.

    python -m setu.tools.lake_bench formats            compression x row-group size on fct_telemetry
    python -m setu.tools.lake_bench export LAKE PLANT  a full export beside plain COPY ... TO

Numbers, not tests: the tests assert exact rows, never timings.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from setu.ops import export as lake_export
from setu.warehouse.profile import connect

FORMATS = [("snappy", None), ("zstd", None), ("zstd", 9), ("gzip", None), ("none", None)]
ROW_GROUPS = [16_384, 131_072, 1_048_576]


def telemetry(conn) -> pa.Table:
    spec = next(spec for spec in lake_export.TABLES if spec.table == "fct_telemetry")
    columns = lake_export.table_columns(conn, spec)
    schema = lake_export.arrow_schema(spec, columns)
    names = sql.SQL(", ").join(sql.Identifier(name) for name in schema.names)
    query = sql.SQL("select {} from silver.fct_telemetry order by machine_id, time").format(names)
    conn.execute("set timezone to 'UTC'")
    return lake_export.read_rows(conn, query, {}, schema)


def formats() -> None:
    with connect(autocommit=True) as conn:
        table = telemetry(conn)
    machine = pc.min(table.column("machine_id")).as_py()
    print(f"fct_telemetry: {table.num_rows:,} rows, {table.nbytes / 1e6:.1f} MB in Arrow")
    print("codec      level  row_group   MB   write_s  full_read_s  one_machine_read_s")
    with tempfile.TemporaryDirectory() as folder:
        for codec, level in FORMATS:
            for rows in ROW_GROUPS:
                path = Path(folder) / f"{codec}-{level}-{rows}.parquet"
                began = time.perf_counter()
                pq.write_table(table, path, compression=codec, compression_level=level,
                               row_group_size=rows)
                write_s = time.perf_counter() - began
                began = time.perf_counter()
                pq.read_table(path)
                read_s = time.perf_counter() - began
                began = time.perf_counter()
                pq.read_table(path, filters=[("machine_id", "=", machine)])
                one_s = time.perf_counter() - began
                print(f"{codec:9} {level or '-':>6} {rows:>10,} {path.stat().st_size / 1e6:6.2f}"
                      f" {write_s:8.3f} {read_s:11.3f} {one_s:12.3f}")


def export_beside_copy(lake: str, plant: str) -> None:
    """A full export, then COPY ... TO of the very same rows into a local CSV file."""
    with connect(autocommit=True) as conn:
        began = time.perf_counter()
        results = list(lake_export.export(conn, lake_export.Lake.open(lake), plant, full=True))
        export_s = time.perf_counter() - began
        rows = sum(result.rows for result in results)
        parquet = sum(result.bytes for result in results)
        copied = 0
        began = time.perf_counter()
        with tempfile.NamedTemporaryFile(dir="/var/tmp") as out:
            for result in results:
                if result.skipped:
                    continue
                schema, table = result.relation.split(".")
                # A query, not the table: COPY of a hypertable itself reads only its empty root.
                query = sql.SQL("copy (select * from {}) to stdout with (format csv)").format(
                    sql.Identifier(schema, table))
                with conn.cursor().copy(query) as stream:
                    for chunk in stream:
                        out.write(chunk)
                        copied += len(chunk)
            out.flush()
        copy_s = time.perf_counter() - began
        print(f"export : {rows:,} rows, {parquet / 1e6:.1f} MB Parquet in {export_s:.1f} s: "
              f"{rows / export_s:,.0f} rows/s, {parquet / 1e6 / export_s:.1f} MB/s Parquet, "
              f"{copied / 1e6 / export_s:.1f} MB/s as CSV")
        print(f"COPY TO: {rows:,} rows, {copied / 1e6:.1f} MB CSV in {copy_s:.1f} s: "
              f"{rows / copy_s:,.0f} rows/s, {copied / 1e6 / copy_s:.1f} MB/s")
        print("table                               rows      parquet_MB  database_MB")
        for result in results:
            if result.skipped:
                continue
            schema, table = result.relation.split(".")
            (size,) = conn.execute(
                "select case when exists (select from timescaledb_information.hypertables"
                " where hypertable_schema = %s and hypertable_name = %s)"
                " then hypertable_size(%s::regclass)"
                " else pg_total_relation_size(%s::regclass) end",
                (schema, table, result.relation, result.relation)).fetchone()
            print(f"{result.relation:34} {result.rows:>10,} {result.bytes / 1e6:12.2f}"
                  f" {size / 1e6:12.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["formats"]:
        formats()
    elif sys.argv[1:2] == ["export"] and len(sys.argv) == 4:
        export_beside_copy(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
