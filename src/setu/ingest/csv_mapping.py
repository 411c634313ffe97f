"""`setu ingest --columns MAP.yaml`: a CSV whose columns are not Bronze's, mapped on the way in.

Public and vendor CSVs name their columns their own way, in their own units, often without
the machine (one file per machine) and without a time column (a start time and a sampling
period). The mapping file says, for one Bronze table: which CSV column becomes which Bronze
column (with a unit factor), which columns are knowingly left out, constant columns, and
where `time` comes from. Every CSV data line becomes exactly one Bronze row; a value that
cannot become its column stops the file with its line and column (nothing is loaded).
`--dry-run` checks everything and prints what would load, writing nothing.
docs/ingest.md has the format.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import math
import re
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import yaml

from setu.ingest.loader import (
    BRONZE_SCHEMA,
    READ_ERRORS,
    BronzeColumn,
    Destination,
    IngestError,
    bronze_columns,
    claim_ledger,
    copy_rows,
    decoded_lines,
    describe_copy_error,
    file_sha256,
    open_file_bytes,
    read_csv_header,
    record_ledger_rows,
    require_regular_file,
    unreadable,
)

PERIOD_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0}
NUMERIC_TYPES = {"double precision": float, "real": float, "bigint": int, "integer": int,
                 "smallint": int}
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class ColumnRule:
    source: str  # CSV column, as the header spells it
    target: str  # Bronze column
    factor: float | None = None


@dataclass(frozen=True)
class CsvMapping:
    table: str
    columns: tuple[ColumnRule, ...]
    ignore: frozenset[str]
    constants: Mapping[str, Any]
    time_column: str | None = None
    time_zone: tzinfo | None = None
    start: datetime | None = None
    period_seconds: float | None = None
    text: str = ""  # canonical form, part of the ledger key

    @property
    def targets(self) -> list[str]:
        return ["time", *(rule.target for rule in self.columns), *self.constants]


def parse_period(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|min)\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise IngestError(f"{where}: time.period {value!r}: expected seconds or e.g. 100ms, "
                          f"2s, 1min")
    return float(match.group(1)) * PERIOD_UNITS[match.group(2)]


def load_mapping(path: Path) -> CsvMapping:
    """The mapping file, checked; errors name the file and the key."""
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise IngestError(f"{where}: not a readable YAML file: {exc}") from None
    if not isinstance(raw, dict):
        raise IngestError(f"{where}: expected a mapping with table, time and columns")
    unknown = set(raw) - {"table", "time", "columns", "constants", "ignore"}
    if unknown:
        raise IngestError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: "
                          f"table, time, columns, constants, ignore)")
    table = raw.get("table")
    if not isinstance(table, str):
        raise IngestError(f"{where}: table: name the Bronze table (e.g. machine_telemetry)")
    rules = []
    columns = raw.get("columns") or {}
    if not isinstance(columns, dict) or not columns:
        raise IngestError(f"{where}: columns: map at least one CSV column to a Bronze column")
    for source, rule in columns.items():
        if isinstance(rule, str):
            rules.append(ColumnRule(str(source), rule))
            continue
        if not isinstance(rule, dict) or not isinstance(rule.get("to"), str) \
                or set(rule) - {"to", "factor"}:
            raise IngestError(f"{where}: columns.{source}: expected a Bronze column name or "
                              f"{{to: column, factor: number}}")
        factor = rule.get("factor")
        if factor is not None and (isinstance(factor, bool) or not isinstance(
                factor, int | float) or not math.isfinite(factor)):
            raise IngestError(f"{where}: columns.{source}.factor: expected a number")
        rules.append(ColumnRule(str(source), rule["to"],
                                None if factor is None else float(factor)))
    constants = raw.get("constants") or {}
    if not isinstance(constants, dict):
        raise IngestError(f"{where}: constants: expected column: value pairs")
    ignore = raw.get("ignore") or []
    if not isinstance(ignore, list):
        raise IngestError(f"{where}: ignore: expected a list of CSV columns")
    timing = raw.get("time")
    if not isinstance(timing, dict):
        raise IngestError(f"{where}: time: give either column (and timezone) or start and "
                          f"period")
    zone = None
    if timing.get("timezone") is not None:
        try:
            zone = ZoneInfo(str(timing["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise IngestError(f"{where}: time.timezone {timing['timezone']!r}: unknown IANA "
                              f"zone") from None
    mapping = dict(table=table, columns=tuple(rules), ignore=frozenset(map(str, ignore)),
                   constants=dict(constants), time_zone=zone)
    if "column" in timing and ("start" in timing or "period" in timing):
        raise IngestError(f"{where}: time: column, or start and period, not both")
    if "column" in timing:
        mapping["time_column"] = str(timing["column"])
    elif "start" in timing and "period" in timing:
        start = timing["start"]
        try:
            start = start if isinstance(start, datetime) else datetime.fromisoformat(
                str(start))
        except ValueError:
            raise IngestError(f"{where}: time.start {start!r}: expected an ISO 8601 "
                              f"timestamp") from None
        if start.tzinfo is None:
            if zone is None:
                raise IngestError(f"{where}: time.start has no offset: add one or "
                                  f"time.timezone")
            start = start.replace(tzinfo=zone)
        mapping["start"] = start
        mapping["period_seconds"] = parse_period(timing["period"], where)
    else:
        raise IngestError(f"{where}: time: give either column (and timezone) or start and "
                          f"period")
    mapping["text"] = json.dumps(raw, sort_keys=True, default=str)
    return CsvMapping(**mapping)


def check_against(mapping: CsvMapping, header: Sequence[str], catalog: Mapping[str, BronzeColumn],
                  where: str) -> None:
    """Every CSV column mapped, ignored or the time column; every target a Bronze column."""
    seen = set()
    for target in mapping.targets:
        if target in seen:
            raise IngestError(f"{where}: Bronze column {target} is filled twice")
        seen.add(target)
        if target not in catalog or catalog[target].generated:
            known = ", ".join(name for name, col in catalog.items() if not col.generated)
            raise IngestError(f"{where}: {target} is not a column of bronze.{mapping.table} "
                              f"(known: {known})")
    for rule in mapping.columns:
        if rule.factor is not None and catalog[rule.target].type_name not in NUMERIC_TYPES:
            raise IngestError(f"{where}: columns.{rule.source}: a factor needs a numeric "
                              f"column; {rule.target} is {catalog[rule.target].type_name}")
    wanted = {rule.source for rule in mapping.columns} | (
        {mapping.time_column} if mapping.time_column else set())
    missing = sorted(wanted - set(header))
    if missing:
        raise IngestError(f"{where}: line 1: no column {', '.join(missing)} in the header")
    loose = [name for name in header if name not in wanted and not ignored(mapping, name)]
    if loose:
        raise IngestError(f"{where}: line 1: column(s) {', '.join(loose)} neither mapped nor "
                          f"listed under ignore: map them or ignore them knowingly")


def ignored(mapping: CsvMapping, name: str) -> bool:
    """Listed under ignore, by name or shell pattern (X1_*); a mapped column never is."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in mapping.ignore)


def convert(value: str, column: BronzeColumn, factor: float | None, zone: tzinfo | None
            ) -> object:
    text = value.strip()
    if not text:
        return None
    kind = NUMERIC_TYPES.get(column.type_name)
    if kind is not None:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {text!r}")
        number *= factor if factor is not None else 1.0
        if kind is int:
            if not number.is_integer():
                raise ValueError(f"not a whole number: {text!r}")
            return int(number)
        return number
    if column.type_name.startswith("timestamp"):
        return parse_timestamp(text, zone)
    if column.type_name == "boolean":
        return {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False
                }[text.lower()]
    return text


def parse_timestamp(text: str, zone: tzinfo | None) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError(f"timestamp {text!r} has no offset and the mapping no "
                             f"time.timezone")
        moment = moment.replace(tzinfo=zone)
    return moment


def constant_value(value: object, column: BronzeColumn, zone: tzinfo | None) -> object:
    return None if value is None else convert(str(value), column, None, zone)


@dataclass
class MappedFile:
    path: Path
    mapping: CsvMapping
    header: list[str]
    ignored: list[str]
    rows: int = 0
    preview: list[tuple] = field(default_factory=list)
    nulls: dict[str, int] = field(default_factory=dict)  # Bronze column -> empty values
    first_time: datetime | None = None
    last_time: datetime | None = None
    # The CSV line of each row sent, so that a row the database refuses is named by its line.
    lines: array = field(default_factory=lambda: array("q"))


def mapped_rows(path: Path, mapping: CsvMapping, catalog: Mapping[str, BronzeColumn],
                summary: MappedFile) -> Iterator[tuple]:
    """The file's Bronze rows in mapping.targets order; fills summary as it goes."""
    constants = [constant_value(value, catalog[name], mapping.time_zone)
                 for name, value in mapping.constants.items()]
    with open_file_bytes(path) as raw:
        reader = csv.reader(decoded_lines(raw, path.name))
        header = next(reader)
        position = {name: index for index, name in enumerate(header)}
        rules = [(position[rule.source], rule, catalog[rule.target]) for rule in mapping.columns]
        for number, record in enumerate(reader):
            line = reader.line_num
            if not record:
                raise IngestError(f"{path.name}: line {line}: empty line (a data line is "
                                  f"expected: every line is one sample)")
            if len(record) != len(header):
                raise IngestError(f"{path.name}: line {line}: {len(record)} fields, the header "
                                  f"has {len(header)}")
            if mapping.time_column is not None:
                try:
                    moment = parse_timestamp(record[position[mapping.time_column]],
                                             mapping.time_zone)
                except ValueError as exc:
                    raise IngestError(f"{path.name}: line {line}, column "
                                      f"{mapping.time_column}: {exc}") from None
            else:
                assert mapping.start is not None and mapping.period_seconds is not None
                moment = mapping.start + timedelta(seconds=number * mapping.period_seconds)
            values = []
            for index, rule, column in rules:
                try:
                    value = convert(record[index], column, rule.factor, mapping.time_zone)
                except (ValueError, KeyError) as exc:
                    raise IngestError(f"{path.name}: line {line}, column {rule.source}: "
                                      f"cannot become {rule.target} ({column.type_name}): "
                                      f"{exc}") from None
                if value is None:
                    summary.nulls[rule.target] = summary.nulls.get(rule.target, 0) + 1
                values.append(value)
            row = (moment, *values, *constants)
            summary.rows += 1
            summary.lines.append(line)
            summary.first_time = summary.first_time or moment
            summary.last_time = moment
            if len(summary.preview) < PREVIEW_ROWS:
                summary.preview.append(row)
            yield row


def ingest_mapped(conn: psycopg.Connection, path: Path, mapping: CsvMapping, *,
                  dry_run: bool = False) -> tuple[MappedFile, bool]:
    """Load (or with dry_run only check) one CSV through the mapping, in one transaction,
    exactly once: the ledger key is the file's bytes and the mapping, so the same file for
    another machine (another constant) is another load. Returns (summary, skipped)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        raise IngestError(f"{path.name}: --columns maps CSV files; Parquet names its columns "
                          f"already (rename them when writing it)")
    require_regular_file(path)
    header = read_csv_header(path)
    summary = MappedFile(path, mapping, header,
                         [name for name in header if name not in {
                             rule.source for rule in mapping.columns}
                          and name != mapping.time_column and ignored(mapping, name)])
    sha256 = hashlib.sha256(f"{file_sha256(path)}\n{mapping.text}".encode()).hexdigest()
    try:
        with conn.transaction(force_rollback=dry_run):
            conn.execute("set local time zone 'UTC'")
            catalog = bronze_columns(conn, mapping.table)
            check_against(mapping, header, catalog, path.name)
            rows = mapped_rows(path, mapping, catalog, summary)
            if dry_run:
                for _ in rows:
                    pass
                return summary, False
            earlier = claim_ledger(conn, sha256, "file", path.name, mapping.table,
                                   path.stat().st_size)
            if earlier is not None:
                return summary, True
            copy_rows(conn, mapping.table, mapping.targets, rows)
            record_ledger_rows(conn, sha256, summary.rows)
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None
    except psycopg.Error as exc:
        # A value its column's type takes but the table does not (one too long to index).
        raise IngestError(describe_copy_error(
            exc, path, "csv", conn, Destination(BRONZE_SCHEMA, mapping.table, 0),
            line_of_row=lambda row: summary.lines[row - 1])) from None
    return summary, False


def describe(summary: MappedFile, dry_run: bool, skipped: bool) -> list[str]:
    mapping = summary.mapping
    verb = "would load" if dry_run else ("skipped (already loaded)" if skipped else "loaded")
    lines = [f"{summary.path.name}: {verb} {summary.rows:,} row(s) into bronze.{mapping.table}"]
    if summary.first_time is not None:
        lines.append(f"  time: {summary.first_time.isoformat()} .. "
                     f"{summary.last_time.isoformat()}")
    for rule in mapping.columns:
        factor = f" x {rule.factor:g}" if rule.factor is not None else ""
        empty = summary.nulls.get(rule.target, 0)
        nulls = f" ({empty:,} empty: null)" if empty else ""
        lines.append(f"  {rule.source}{factor} -> {rule.target}{nulls}")
    for name, value in mapping.constants.items():
        lines.append(f"  constant {name} = {value}")
    if summary.ignored:
        lines.append(f"  ignored column(s): {', '.join(summary.ignored)}")
    if dry_run and summary.preview:
        lines.append(f"  first rows ({', '.join(mapping.targets)}):")
        lines.extend(f"    {tuple(str(v) if v is not None else None for v in row)}"
                     for row in summary.preview)
    return lines
