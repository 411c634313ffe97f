"""`setu export`: Silver facts and Gold tables to a Hive-partitioned Parquet lake, exactly once.

Layout (docs/lake.md says why)::

    <root>/<schema>/<table>/plant=<plant>/<date column>=<YYYY-MM-DD>/part-<bucket>.parquet
    <root>/<schema>/<table>/_setu_manifests/plant=<plant>/v<version>.json

A file holds every row of one (plant, date, bucket) group, where bucket = machine (or device)
id modulo the table's bucket count. A run exports the groups that hold a row written by an ETL
batch after the table's export watermark (Gold and Silver rows carry `etl_batch_id`): it reads
each such group whole from the database and writes it in place of the group's file. The file
name is fixed for the group, so a corrected group replaces its file instead of adding one: a
reader that lists the folder sees the old rows or the new ones, never both, and never none.

Each file is written under a temporary name in the plant's staging folder and then moved to its
place (a rename on a local disk; on S3 a server-side copy, which makes the object appear whole).
Only when every group of a table is published does the run write the table's manifest and then
advance the watermark in the database. A run killed at any point leaves the watermark where it
was; the next run writes the same groups again, from the database's current rows, to the same
names: nothing is lost and no row is written twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from typing import Any

import click
import psycopg
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from psycopg import sql

# Chosen by measurement (docs/lake.md, "Compression and row groups", fct_telemetry of 200
# machines for a day): zstd at its default level writes files a quarter smaller than snappy
# for the same write and scan time (level 9 saves 8% more for three times the write time,
# gzip is slower still); row groups of 1 Mi rows are a quarter smaller again than 128 Ki and
# scan faster, and since rows are sorted by machine a machine filter still reads one group.
COMPRESSION = "zstd"
ROW_GROUP_ROWS = 1_048_576
MANIFEST_FOLDER = "_setu_manifests"
STAGING_FOLDER = "_setu_staging"
PLANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ExportError(Exception):
    """Bad input or configuration for `setu export`: one clear line for the user."""


@dataclass(frozen=True)
class TableSpec:
    """One exported relation: how its rows map to partitions and buckets."""

    relation: str  # schema.table in the warehouse
    key_column: str  # machine_id or device_id: the bucket key, first sort key
    order_by: tuple[str, ...]  # the rest of the sort order within a file
    date_column: str = "local_date"  # the Hive partition column
    # The row's time for tables without a local_date column; None: the table has local_date.
    time_column: str | None = None
    local_time: bool = True  # date of time_column in the site's zone (else UTC)
    buckets: int = 1

    @property
    def schema(self) -> str:
        return self.relation.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.relation.split(".", 1)[1]


# Gold holds one row per machine and day (or hour): one file per plant-day stays some MB even
# at 10,000 machines. Silver holds the events; telemetry, the largest (~28 bytes a row in
# Parquet), is spread over 16 files a plant-day, so a late reading rewrites a sixteenth of it.
TABLES: tuple[TableSpec, ...] = (
    TableSpec("gold.machine_utilization_daily", "machine_id", ("local_date",)),
    TableSpec("gold.program_history_daily", "machine_id", ("local_date", "program_name")),
    TableSpec("gold.alerts_daily", "machine_id", ("local_date", "severity_class")),
    TableSpec("gold.energy_daily", "machine_id", ("local_date",)),
    TableSpec("gold.energy_hourly", "machine_id", ("bucket",), time_column="bucket"),
    TableSpec("gold.sensor_stats_15m", "machine_id", ("sensor", "bucket"),
              time_column="bucket"),
    TableSpec("gold.oee_daily", "machine_id", ("local_date",)),
    TableSpec("gold.downtime_daily", "machine_id", ("local_date", "reason_code")),
    TableSpec("silver.fct_state_intervals", "machine_id", ("valid_from", "bronze_id"),
              time_column="valid_from", buckets=4),
    TableSpec("silver.fct_machine_cycles", "machine_id", ("cycle_end", "bronze_id"),
              time_column="cycle_end", buckets=4),
    TableSpec("silver.fct_downtime_events", "machine_id", ("down_end", "bronze_id"),
              time_column="down_end", buckets=4),
    TableSpec("silver.fct_alarm_events", "machine_id", ("time", "bronze_id"),
              time_column="time", buckets=4),
    TableSpec("silver.fct_telemetry", "machine_id", ("time", "bronze_id"),
              time_column="time", buckets=16),
    # Devices belong to no machine and so to no site: their days are UTC days.
    TableSpec("silver.fct_platform_extension", "device_id", ("time", "bronze_id"),
              date_column="utc_date", time_column="time", local_time=False, buckets=4),
)

CONTROL_DDL = """
create schema if not exists _lake;
revoke all on schema _lake from public;
create table if not exists _lake.export_watermarks (
    destination text not null,
    relation text not null,
    plant text not null,
    last_batch_id bigint not null default 0,
    version integer not null default 0,
    rows_exported bigint not null default 0,
    files_written bigint not null default 0,
    updated_at timestamptz not null default now(),
    primary key (destination, relation)
)
"""

# PostgreSQL type -> Arrow type for the CSV reader; timestamps arrive in UTC (the session's
# TimeZone), so every timestamptz becomes an instant in UTC, which Spark, Trino and DuckDB
# all read as a timestamp with time zone.
ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "numeric": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "date": pa.date32(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
}


@dataclass
class TableResult:
    relation: str
    groups: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    version: int = 0
    skipped: str | None = None


@dataclass
class Lake:
    """A lake root on a pyarrow filesystem: a local folder or an object-store URI."""

    uri: str
    fs: pa_fs.FileSystem = field(repr=False)
    root: str

    @classmethod
    def open(cls, uri: str) -> Lake:
        if "://" not in uri:
            uri = os.path.abspath(uri)
        try:
            if uri.startswith("s3://"):
                fs, root = s3_filesystem(uri)
            else:
                fs, root = pa_fs.FileSystem.from_uri(uri)
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise ExportError(f"cannot open the lake at {uri}: {first_line(exc)}") from exc
        return cls(uri=uri.rstrip("/"), fs=fs, root=root.rstrip("/"))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def make_dir(self, path: str) -> None:
        # Object stores have no folders; creating one there only writes a marker object.
        if isinstance(self.fs, pa_fs.LocalFileSystem):
            self.fs.create_dir(path, recursive=True)


def s3_filesystem(uri: str) -> tuple[pa_fs.FileSystem, str]:
    """S3 with credentials and region from the environment, as every AWS client reads them.

    AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points at an S3-compatible store (MinIO, Ceph,
    moto in the tests); plain http is allowed only when the endpoint says http://.
    """
    without_scheme = uri[len("s3://"):]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {}
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        options["region"] = os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        if not host:
            raise ExportError(f"AWS_ENDPOINT_URL {endpoint!r} needs a scheme (https:// or http://)")
        options.update(endpoint_override=host.rstrip("/"), scheme=scheme,
                       force_virtual_addressing=False)
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                       secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                       session_token=os.environ.get("AWS_SESSION_TOKEN"))
    return pa_fs.S3FileSystem(**options), without_scheme


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- the database side -------------------------------------------------------------------------

def table_columns(conn: psycopg.Connection, spec: TableSpec) -> list[tuple[str, str]] | None:
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (spec.schema, spec.table)).fetchall()
    return [(name, kind) for name, kind in rows] or None


def date_expression(spec: TableSpec) -> sql.Composable:
    if spec.time_column is None:
        return sql.SQL("t.local_date")
    column = sql.SQL("t.") + sql.Identifier(spec.time_column)
    if spec.local_time:
        # The site's zone as it stands now, as Gold reads master data (contract).
        return sql.SQL("({} at time zone coalesce(z.timezone, 'UTC'))::date").format(column)
    return sql.SQL("({} at time zone 'UTC')::date").format(column)


def zone_join(spec: TableSpec) -> sql.Composable:
    if spec.time_column is None or not spec.local_time:
        return sql.SQL("")
    return sql.SQL(
        " left join lateral (select s.timezone from master.machines as m"
        " inner join master.sites as s on s.site_id = m.site_id"
        " where m.machine_id = t.{key}) as z on true").format(key=sql.Identifier(spec.key_column))


def bucket_expression(spec: TableSpec) -> sql.Composable:
    # Never negative (devices known only by serial have negative ids): 0 .. buckets - 1.
    return sql.SQL("coalesce(mod(mod(t.{k}, {n}) + {n}, {n}), 0)").format(
        k=sql.Identifier(spec.key_column), n=sql.Literal(spec.buckets))


def take_horizon(conn: psycopg.Connection, spec: TableSpec) -> int:
    """The highest etl_batch_id at or below which every batch has committed.

    As `_etl.take_horizon()` does for the models: a SHARE lock waits for the writers in flight
    and holds new ones back for the instant of max(); it ends with this short transaction.
    """
    with conn.transaction():
        conn.execute(sql.SQL("lock table {} in share mode").format(
            sql.Identifier(spec.schema, spec.table)))
        (horizon,) = conn.execute(sql.SQL("select coalesce(max(etl_batch_id), 0) from {}").format(
            sql.Identifier(spec.schema, spec.table))).fetchone()
    return int(horizon)


def changed_groups(conn: psycopg.Connection, spec: TableSpec, after: int, upto: int | None
                   ) -> list[tuple[date, int]]:
    """The (date, bucket) groups holding a row of a batch in (after, upto]; all when upto is
    None (the first export, which also takes rows that no batch stamped)."""
    where = sql.SQL("true") if upto is None else sql.SQL(
        "t.etl_batch_id > {} and t.etl_batch_id <= {}").format(sql.Literal(after),
                                                               sql.Literal(upto))
    query = sql.SQL("select distinct {d}, {b} from {t} as t{z} where {w} order by 1, 2").format(
        d=date_expression(spec), b=bucket_expression(spec),
        t=sql.Identifier(spec.schema, spec.table), z=zone_join(spec), w=where)
    return [(day, int(bucket)) for day, bucket in conn.execute(query).fetchall()
            if day is not None]


def select_day_sql(spec: TableSpec, columns: list[tuple[str, str]]) -> sql.Composable:
    """The rows of the given buckets of one day of `spec`, bucket first and then in file order,
    for COPY ... TO STDOUT; the bucket is the last column.

    The day is bounded by a time range first (wide enough for every zone), so the hypertable's
    chunks and time indexes prune before the exact local-date filter.
    """
    data = [name for name, _ in columns if name != spec.date_column]
    select = sql.SQL(", ").join(
        [sql.SQL("t.") + sql.Identifier(name) for name in data] + [bucket_expression(spec)])
    where = [sql.SQL("{d} = %(day)s").format(d=date_expression(spec)),
             sql.SQL("{b} = any(%(buckets)s)").format(b=bucket_expression(spec))]
    if spec.time_column is not None:
        where.insert(0, sql.SQL("t.{c} >= %(low)s and t.{c} < %(high)s").format(
            c=sql.Identifier(spec.time_column)))
    order = sql.SQL(", ").join(
        [bucket_expression(spec)]
        + [sql.SQL("t.") + sql.Identifier(name)
           for name in (spec.key_column, *spec.order_by) if name != spec.date_column])
    return sql.SQL("select {s} from {t} as t{z} where {w} order by {o}").format(
        s=select, t=sql.Identifier(spec.schema, spec.table), z=zone_join(spec),
        w=sql.SQL(" and ").join(where), o=order)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """An instant range that holds local day `day` in every zone (UTC-14 .. UTC+14)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start - timedelta(hours=15), start + timedelta(days=1, hours=15)


def read_rows(conn: psycopg.Connection, query: sql.Composable, params: dict[str, Any],
              schema: pa.Schema) -> pa.Table:
    """A query's rows through COPY ... CSV, parsed by Arrow's C++ CSV reader."""
    buffer = BytesIO()
    copy = sql.SQL("copy ({}) to stdout with (format csv)").format(query)
    with conn.cursor() as cursor, cursor.copy(copy, params) as stream:
        for chunk in stream:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    return pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=64 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        # PostgreSQL writes NULL as an empty field and '' as "": keep them apart.
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            strings_can_be_null=True, quoted_strings_can_be_null=False),
    )


def arrow_schema(spec: TableSpec, columns: list[tuple[str, str]]) -> pa.Schema:
    fields = []
    for name, kind in columns:
        if name == spec.date_column:
            continue
        if kind not in ARROW_TYPES:
            raise ExportError(f"{spec.relation}.{name} has type {kind}, which the export "
                              "does not map to Parquet")
        fields.append(pa.field(name, ARROW_TYPES[kind]))
    return pa.schema(fields)


# -- the lake side ------------------------------------------------------------------------------

def group_path(spec: TableSpec, plant: str, day: date, bucket: int) -> str:
    return (f"{spec.schema}/{spec.table}/plant={plant}/{spec.date_column}={day.isoformat()}/"
            f"part-{bucket:05d}.parquet")


def manifest_path(spec: TableSpec, plant: str, version: int) -> str:
    return f"{spec.schema}/{spec.table}/{MANIFEST_FOLDER}/plant={plant}/v{version:08d}.json"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue().to_pybytes()


def clear_staging(lake: Lake, plant: str) -> int:
    """Removes what a killed run left in this plant's staging folder (never a published file)."""
    staging = lake.path(STAGING_FOLDER, f"plant={plant}")
    infos = lake.fs.get_file_info(pa_fs.FileSelector(staging, recursive=True,
                                                     allow_not_found=True))
    files = [info.path for info in infos if info.type == pa_fs.FileType.File]
    if files:
        lake.fs.delete_dir_contents(staging, missing_dir_ok=True)
    return len(files)


def publish(lake: Lake, staged: str, final: str) -> None:
    lake.make_dir(final.rsplit("/", 1)[0])
    lake.fs.move(staged, final)


# -- one run ------------------------------------------------------------------------------------

# (relation, groups done, groups in all, path of the file just published or None)
ProgressHook = Callable[[str, int, int, str | None], None]
BUCKET_COLUMN = "_setu_bucket"


def export(conn: psycopg.Connection, lake: Lake, plant: str, *,
           relations: list[str] | None = None, full: bool = False,
           progress: ProgressHook | None = None) -> Iterator[TableResult]:
    """Exports every table (or `relations`) to `lake` under plant=`plant`; yields per table.

    `conn` must be an autocommit connection.
    """
    if not PLANT_PATTERN.match(plant):
        raise ExportError(f"plant name {plant!r} must be 1-63 letters, digits, '.', '_' or '-' "
                          "(it becomes a folder name plant=<name>)")
    specs = select_specs(relations)
    destination = f"{lake.uri}/plant={plant}"
    conn.execute(CONTROL_DDL)
    conn.execute("set timezone to 'UTC'")
    conn.execute("set datestyle to 'ISO, YMD'")
    lock_key = f"setu.export:{destination}"
    # One exporter per destination at a time: two would race on the same files.
    if not conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))",
                        (lock_key,)).fetchone()[0]:
        raise ExportError(f"another `setu export` to {destination} is running")
    try:
        clear_staging(lake, plant)
        for spec in specs:
            yield export_table(conn, lake, plant, destination, spec, full=full,
                               progress=progress)
    finally:
        conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (lock_key,))


def select_specs(relations: list[str] | None) -> list[TableSpec]:
    if not relations:
        return list(TABLES)
    known = {spec.relation: spec for spec in TABLES}
    known.update({spec.table: spec for spec in TABLES})
    unknown = [name for name in relations if name not in known]
    if unknown:
        raise ExportError(f"unknown table {unknown[0]!r}; exported tables: "
                          + ", ".join(spec.relation for spec in TABLES))
    return [known[name] for name in relations]


def export_table(conn: psycopg.Connection, lake: Lake, plant: str, destination: str,
                 spec: TableSpec, *, full: bool, progress: ProgressHook | None) -> TableResult:
    result = TableResult(spec.relation)
    began = time.perf_counter()
    columns = table_columns(conn, spec)
    if columns is None:
        result.skipped = "not in this warehouse"
        return result
    if "etl_batch_id" not in {name for name, _ in columns}:
        result.skipped = "has no etl_batch_id column"
        return result
    schema = arrow_schema(spec, columns)
    conn.execute(
        "insert into _lake.export_watermarks (destination, relation, plant) values (%s, %s, %s) "
        "on conflict do nothing", (destination, spec.relation, plant))
    last, version = conn.execute(
        "select last_batch_id, version from _lake.export_watermarks "
        "where destination = %s and relation = %s", (destination, spec.relation)).fetchone()
    horizon = take_horizon(conn, spec)
    first = full or version == 0
    if not first and horizon <= last:
        result.version = version
        return result
    query = select_day_sql(spec, columns)
    read_schema = schema.append(pa.field(BUCKET_COLUMN, pa.int64()))
    run_id = uuid.uuid4().hex[:12]
    files: dict[str, dict[str, Any]] = {}
    new_version = version + 1
    # One snapshot for the table's whole version: every group is read as of the same instant.
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        groups = changed_groups(conn, spec, last, None if first else horizon)
        days: dict[date, list[int]] = {}
        for day, bucket in groups:
            days.setdefault(day, []).append(bucket)
        done = 0
        for day, buckets in days.items():
            low, high = day_bounds(day)
            rows = read_rows(conn, query, {"day": day, "buckets": buckets, "low": low,
                                           "high": high}, read_schema)
            bucket_of = rows.column(BUCKET_COLUMN)
            for bucket in buckets:
                part = rows.filter(pa.compute.equal(bucket_of, bucket)).drop_columns(
                    [BUCKET_COLUMN])
                written = write_group(lake, spec, plant, day, bucket, part, run_id, len(files))
                done += 1
                if written is not None:
                    written["version"] = new_version
                    files[written["path"]] = written
                    result.rows += written["rows"]
                    result.bytes += written["bytes"]
                result.groups += 1
                if progress is not None:
                    progress(spec.relation, done, len(groups),
                             None if written is None else written["path"])
    write_manifest(lake, spec, plant, new_version, version, files, horizon, last, full=first)
    conn.execute(
        "update _lake.export_watermarks set last_batch_id = %s, version = %s, "
        "rows_exported = rows_exported + %s, files_written = files_written + %s, "
        "updated_at = now() where destination = %s and relation = %s",
        (horizon, new_version, result.rows, len(files), destination, spec.relation))
    result.version = new_version
    result.seconds = time.perf_counter() - began
    return result


def write_group(lake: Lake, spec: TableSpec, plant: str, day: date, bucket: int,
                rows: pa.Table, run_id: str, sequence: int) -> dict[str, Any] | None:
    """Writes one group's file under a temporary name, then moves it to its fixed name."""
    final_rel = group_path(spec, plant, day, bucket)
    final = lake.path(final_rel)
    if rows.num_rows == 0:
        # A group can only empty on --full after its rows left the warehouse: drop its file.
        delete_if_exists(lake, final)
        return None
    data = parquet_bytes(rows)
    staged = lake.path(STAGING_FOLDER, f"plant={plant}", f"{run_id}-{sequence:06d}.parquet.tmp")
    lake.make_dir(staged.rsplit("/", 1)[0])
    lake.write_bytes(staged, data)
    publish(lake, staged, final)
    return {"path": final_rel, spec.date_column: day.isoformat(), "bucket": bucket,
            "rows": rows.num_rows, "bytes": len(data)}


def delete_if_exists(lake: Lake, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        lake.fs.delete_file(path)


def write_manifest(lake: Lake, spec: TableSpec, plant: str, version: int, previous: int,
                   changed: dict[str, dict[str, Any]], horizon: int, last: int, *,
                   full: bool) -> None:
    """The files that make up this version of the table: the previous version's, with the
    groups this run wrote in place of theirs. Written after every file is published and before
    the watermark moves, so a manifest never names a file that is not there."""
    entries: dict[str, dict[str, Any]] = {}
    if previous and not full:
        raw = lake.read_bytes(lake.path(manifest_path(spec, plant, previous)))
        if raw is not None:
            entries = {entry["path"]: entry for entry in json.loads(raw)["files"]}
        else:
            entries = listed_files(lake, spec, plant)
    entries.update(changed)
    manifest = {
        "format": "setu-lake-manifest/1",
        "table": spec.relation,
        "plant": plant,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "etl_batch_id_after": last,
        "etl_batch_id_upto": horizon,
        "partitioning": ["plant", spec.date_column],
        "bucket_key": spec.key_column,
        "buckets": spec.buckets,
        "compression": COMPRESSION,
        "row_group_rows": ROW_GROUP_ROWS,
        "rows": sum(entry["rows"] for entry in entries.values()),
        "changed_files": sorted(changed),
        "files": [entries[path] for path in sorted(entries)],
    }
    lake.make_dir(lake.path(manifest_path(spec, plant, version)).rsplit("/", 1)[0])
    lake.write_bytes(lake.path(manifest_path(spec, plant, version)),
                     json.dumps(manifest, indent=1).encode())


def listed_files(lake: Lake, spec: TableSpec, plant: str) -> dict[str, dict[str, Any]]:
    """The plant's published files of a table, from a listing (when a manifest went missing)."""
    base = lake.path(spec.schema, spec.table, f"plant={plant}")
    infos = lake.fs.get_file_info(pa_fs.FileSelector(base, recursive=True, allow_not_found=True))
    entries = {}
    prefix = lake.root + "/"
    for info in infos:
        if info.type != pa_fs.FileType.File or not info.path.endswith(".parquet"):
            continue
        relative = info.path[len(prefix):] if info.path.startswith(prefix) else info.path
        with lake.fs.open_input_file(info.path) as handle:
            rows = pq.ParquetFile(handle).metadata.num_rows
        entries[relative] = {"path": relative, "rows": rows, "bytes": info.size}
    return entries


# -- command line -------------------------------------------------------------------------------

@click.command("export")
@click.argument("destination", metavar="LAKE")
@click.option("--plant", envvar="SETU_PLANT", metavar="NAME",
              help="This warehouse's name in the lake: its folder plant=NAME under every table "
                   "(default: $SETU_PLANT). Give each plant its own, and keep it.")
@click.option("--table", "relations", multiple=True, metavar="TABLE",
              help="Export only this table (repeatable), e.g. gold.energy_daily.")
@click.option("--full", is_flag=True,
              help="Write every group again, not only those changed since the last export.")
@click.option("--target", help="dbt target to export from (default: the profile's target).")
@click.option("--verbose", "-v", is_flag=True, help="Print each published file.")
def export_command(destination: str, plant: str | None, relations: tuple[str, ...], full: bool,
                   target: str | None, verbose: bool) -> None:
    """Silver facts and Gold tables to Parquet in LAKE, a folder or s3://bucket/prefix.

    Incremental: each run writes the (plant, day, bucket) files whose rows changed since the
    last run, late-event corrections included, in place of the old ones, then a manifest per
    table, then moves the export watermark in the database. Safe to kill and run again.
    S3 credentials, region and endpoint come from the usual AWS_* environment variables.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from setu.warehouse.profile import connect

    console = Console()
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    if not plant:
        err.print("[bold red]error:[/] name this plant with --plant NAME (or SETU_PLANT)")
        raise SystemExit(2)
    summary = Table("table", "version", "groups", "rows", "MB", "seconds", "note")
    began = time.perf_counter()
    total_rows = total_bytes = 0
    try:
        lake = Lake.open(destination)
        with connect(target, autocommit=True) as conn, Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console, transient=True,
                disable=verbose or not console.is_terminal) as bar:
            task = bar.add_task("export", total=None)

            def report(relation: str, done: int, total: int, path: str | None) -> None:
                bar.update(task, description=relation, completed=done, total=total)
                if verbose and path is not None:
                    print(f"published {path}", flush=True)

            for result in export(conn, lake, plant, relations=list(relations) or None,
                                 full=full, progress=report):
                total_rows += result.rows
                total_bytes += result.bytes
                summary.add_row(result.relation, str(result.version), f"{result.groups:,}",
                                f"{result.rows:,}", f"{result.bytes / 1e6:.2f}",
                                f"{result.seconds:.1f}",
                                result.skipped or ("" if result.groups else "unchanged"))
    except (ExportError, OSError, pa.ArrowException) as exc:
        err.print(f"[bold red]error:[/] {first_line(exc)}")
        raise SystemExit(2) from exc
    console.print(summary)
    seconds = time.perf_counter() - began
    console.print(f"exported {total_rows:,} rows ({total_bytes / 1e6:.2f} MB of Parquet) to "
                  f"{lake.uri} as plant={plant} in {seconds:.1f} s", highlight=False)
