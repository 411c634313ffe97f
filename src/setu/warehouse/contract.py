"""The data contract as data: var `setu_contract` of dbt_project.yml, the one machine-readable
home of the Bronze tables and columns, the master tables, the code lists, ranges, required
columns, quarantine reasons and their order, duplicate keys and the Bronze -> Silver fact map.
The dbt macros read it through var('setu_contract'); Python reads it here, so a contract
change is made once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from setu.warehouse.paths import PROJECT_DIR

# The columns every Bronze table has before its own (contract, "Conventions").
COMMON_COLUMNS = ("time", "ingested_at", "gateway_id")


class ContractError(RuntimeError):
    """dbt_project.yml has no usable setu_contract, phrased as one line."""


@dataclass(frozen=True)
class BronzeTable:
    name: str
    entity_column: str
    columns: tuple[tuple[str, str], ...]   # (name, SQL type) beyond id and COMMON_COLUMNS
    fact: str
    fact_time_column: str
    required: tuple[str, ...]
    required_any: tuple[str, ...]
    codes: dict[str, tuple[str, ...]]      # column -> allowed values after normalising
    normalize: dict[str, str]              # column -> "upper" or "lower"
    ranges: dict[str, tuple[float | None, float | None]]
    max_chars: dict[str, int]              # text column -> longest accepted value
    interval_start: str | None
    duplicate_key: tuple[str, ...]
    duplicate_values: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def double_columns(self) -> tuple[str, ...]:
        """The double precision columns: where NaN and ±Infinity can arrive."""
        return tuple(name for name, data_type in self.columns
                     if data_type.startswith("double precision"))


@cache
def raw() -> dict[str, Any]:
    """The setu_contract var as dbt_project.yml holds it."""
    path = PROJECT_DIR / "dbt_project.yml"
    try:
        contract = yaml.safe_load(path.read_text())["vars"]["setu_contract"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ContractError(f"{path}: no vars.setu_contract ({error})") from None
    return contract


@cache
def bronze_tables() -> dict[str, BronzeTable]:
    """Every Bronze table of the contract, in the contract's order."""
    tables = {}
    for name, spec in raw()["bronze"].items():
        codes = spec.get("codes") or {}
        tables[name] = BronzeTable(
            name=name,
            entity_column=spec["entity_column"],
            columns=tuple((column, data_type) for column, data_type in spec["columns"]),
            fact=spec["fact"],
            fact_time_column=spec.get("fact_time_column", "time"),
            required=tuple(spec.get("required") or ()),
            required_any=tuple(spec.get("required_any") or ()),
            codes={column: tuple(code["values"]) for column, code in codes.items()},
            normalize={column: code["normalize"] for column, code in codes.items()},
            ranges={column: (low, high) for column, (low, high)
                    in (spec.get("ranges") or {}).items()},
            max_chars=dict(spec.get("max_chars") or {}),
            interval_start=spec.get("interval_start"),
            duplicate_key=tuple(spec["duplicate_key"]),
            duplicate_values=tuple(spec["duplicate_values"]),
        )
    return tables


def bronze_table_names() -> tuple[str, ...]:
    return tuple(bronze_tables())


def bronze_to_fact() -> dict[str, str]:
    """Bronze table -> the Silver fact every accepted row of it lands in."""
    return {name: table.fact for name, table in bronze_tables().items()}


def reasons() -> tuple[str, ...]:
    """The quarantine reasons, in the order in which the first that applies wins."""
    return tuple(raw()["reasons"])


def codes(table: str, column: str) -> tuple[str, ...]:
    return bronze_tables()[table].codes[column]


def master_columns() -> dict[str, tuple[str, ...]]:
    """master table -> its column names."""
    return {name: tuple(column for column, _ in spec["columns"])
            for name, spec in raw()["master"].items()}


# The horizon as macros/validation reads it too: a whole number and one calendar unit, so it
# is a PostgreSQL interval and means the same in SQL and Python.
MAX_EVENT_AGE_PATTERN = re.compile(r"\s*([1-9][0-9]*)\s+(year|month|week|day|hour)s?\s*")


def max_event_age() -> tuple[int, str]:
    """The out_of_range horizon (`max_event_age`): (amount, unit), e.g. (5, "year")."""
    value = raw().get("max_event_age")
    match = MAX_EVENT_AGE_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ContractError(
            f"{PROJECT_DIR / 'dbt_project.yml'}: vars.setu_contract.max_event_age is "
            f"{value!r}: give a whole number and a unit (years, months, weeks, days or hours), "
            "e.g. '5 years'")
    return int(match.group(1)), match.group(2)


def finite_numbers() -> bool:
    """True when NaN and ±Infinity in a double precision column are out_of_range."""
    return bool(raw().get("finite_numbers", False))


def max_magnitude() -> float | None:
    """A double precision value beyond ±this is out_of_range (None: no bound)."""
    value = raw().get("max_magnitude")
    return None if value is None else float(value)
