"""The Great Expectations suites of `setu validate`, kept as code: one suite per Silver, Gold
and serving relation.

Each rule is a plain tuple (expectation class name, keyword arguments), so this module imports
without Great Expectations (which takes seconds to import) and `setu validate --list` can
show the rules; `build_suites()` turns them into GX expectation objects.

What the suites check, beside dbt's own tests: keys never null, the contract's code lists
(state, result, severity_class, side, unit, reason), the contract's physical ranges (the
same bounds that send a Bronze row to the quarantine, read from the contract's one home),
OEE factors in range, utilization within 0..100, statistics
in order (min ≤ p25 ≤ median ≤ p75 ≤ max) and at least one row in the core facts. Every
double precision measure is bounded by ±LARGEST_FINITE even where the contract leaves an end
open: PostgreSQL sorts NaN above every number, so that bound fails NaN and ±Infinity, which
Silver quarantines (the contract's finite_numbers).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from setu.warehouse import contract

# Code lists, reasons, tables and ranges come from the contract's one home (setu.warehouse.contract,
# var setu_contract of dbt_project.yml), so the suites cannot disagree with the models.
STATES = list(contract.codes("machine_state_events", "state"))
RESULTS = list(contract.codes("machine_cycles", "result"))
EVENTS = list(contract.codes("alarms", "event"))
SEVERITY_CLASSES = ["emergency", "error", "warning", "other"]
SIDES = ["LEFT", "RIGHT", "CENTER"]
UNITS = list(contract.codes("platform_extension", "unit"))
REASONS = list(contract.reasons())
BRONZE_TABLES = list(contract.bronze_table_names())
SENSORS = ["spindle_temp_c", "motor_temp_c", "coolant_temp_c", "spindle_load_pct", "power_kw"]
STATE_SECONDS = [f"{state.lower()}_seconds" for state in STATES]
# The longest local day (25 hours, when daylight saving time ends), in seconds.
LONGEST_DAY_SECONDS = 25 * 3600
# The largest finite double: the bound of an end the contract leaves open, which NaN and
# ±Infinity (out_of_range under finite_numbers) fall outside of.
LARGEST_FINITE = sys.float_info.max
# Contract ranges of the telemetry measures (outside them a row is quarantined out_of_range):
# column -> (min, max), None for an open end, every measure (finite_numbers bounds them all).
_TELEMETRY = contract.bronze_tables()["machine_telemetry"]
MEASURE_RANGES: dict[str, tuple[float | None, float | None]] = {
    column: _TELEMETRY.ranges.get(column, (None, None)) for column in _TELEMETRY.double_columns}

Rule = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class SuiteSpec:
    """The rules for one relation (`schema.table`)."""

    relation: str
    rules: list[Rule] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.relation.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.relation.split(".", 1)[1]


# -- rule helpers ------------------------------------------------------------------------------

def not_null(*columns: str) -> list[Rule]:
    return [("ExpectColumnValuesToNotBeNull", {"column": column}) for column in columns]


def unique(column: str) -> list[Rule]:
    return [("ExpectColumnValuesToBeUnique", {"column": column})]


def unique_together(*columns: str) -> list[Rule]:
    return [("ExpectCompoundColumnsToBeUnique", {"column_list": list(columns)})]


def in_set(column: str, values: list[str]) -> list[Rule]:
    return [("ExpectColumnValuesToBeInSet", {"column": column, "value_set": values})]


def between(column: str, low: float | None = None, high: float | None = None) -> list[Rule]:
    kwargs: dict[str, Any] = {"column": column}
    if low is not None:
        kwargs["min_value"] = low
    if high is not None:
        kwargs["max_value"] = high
    return [("ExpectColumnValuesToBeBetween", kwargs)]


def at_least(column_a: str, column_b: str) -> list[Rule]:
    """column_a ≥ column_b wherever both are set."""
    return [("ExpectColumnPairValuesAToBeGreaterThanB", {
        "column_A": column_a, "column_B": column_b, "or_equal": True,
        "ignore_row_if": "either_value_is_missing",
    })]


def has_rows() -> list[Rule]:
    return [("ExpectTableRowCountToBeBetween", {"min_value": 1})]


def finite_between(column: str, low: float | None = None, high: float | None = None
                   ) -> list[Rule]:
    """Like between, with an open end closed at ±LARGEST_FINITE: fails NaN and ±Infinity."""
    return between(column, -LARGEST_FINITE if low is None else low,
                   LARGEST_FINITE if high is None else high)


def finite(*columns: str) -> list[Rule]:
    return [rule for column in columns for rule in finite_between(column)]


def measure_ranges(columns: list[str] | None = None) -> list[Rule]:
    rules: list[Rule] = []
    for column, (low, high) in MEASURE_RANGES.items():
        if columns is None or column in columns:
            rules += finite_between(column, low, high)
    return rules


# -- the suites --------------------------------------------------------------------------------

def suite_specs() -> list[SuiteSpec]:
    """Every suite, Silver first, then Gold and serving (the order of the report)."""
    return [
        SuiteSpec("silver.fct_machine_cycles", [
            *has_rows(),
            *not_null("bronze_id", "machine_id", "cycle_start", "cycle_end", "cycle_seconds",
                      "part_count", "result"),
            *unique("bronze_id"),
            *in_set("result", RESULTS),
            *finite_between("cycle_seconds", 0),
            *finite_between("exceed_load_unload_seconds", 0),
            *finite_between("downtime_seconds", 0),
            *finite("std_cycle_seconds"),
            *between("parts_delta", 0),
            *at_least("cycle_end", "cycle_start"),
        ]),
        SuiteSpec("silver.fct_state_intervals", [
            *has_rows(),
            *not_null("bronze_id", "machine_id", "state", "valid_from"),
            *unique("bronze_id"),
            *in_set("state", STATES),
            *at_least("valid_to", "valid_from"),
        ]),
        SuiteSpec("silver.fct_telemetry", [
            *has_rows(),
            *not_null("bronze_id", "machine_id", "time"),
            *unique("bronze_id"),
            *measure_ranges(),
        ]),
        # Alarms and platform-extension readings can be absent for days: no row count.
        SuiteSpec("silver.fct_alarm_events", [
            *not_null("bronze_id", "machine_id", "time", "alarm_code", "severity",
                      "severity_class", "event"),
            *unique("bronze_id"),
            *in_set("severity_class", SEVERITY_CLASSES),
            *in_set("event", EVENTS),
        ]),
        SuiteSpec("silver.fct_platform_extension", [
            *not_null("bronze_id", "device_id", "time", "value", "value_mm", "side", "unit"),
            *unique("bronze_id"),
            *in_set("side", SIDES),
            *in_set("unit", UNITS),
            *finite("value", "value_mm"),
        ]),
        # A machine can run for days without a classified stop: no row count.
        SuiteSpec("silver.fct_downtime_events", [
            *not_null("bronze_id", "machine_id", "down_start", "down_end", "down_seconds",
                      "reason_code"),
            *unique("bronze_id"),
            *finite_between("down_seconds", 0),
            *at_least("down_end", "down_start"),
        ]),
        SuiteSpec("silver.quarantine", [
            *not_null("source_table", "bronze_id", "reason", "quarantined_at"),
            *unique_together("source_table", "bronze_id"),
            *in_set("source_table", BRONZE_TABLES),
            *in_set("reason", REASONS),
        ]),
        SuiteSpec("silver.latest_cycle_state", [
            *has_rows(),
            *not_null("machine_id", "updated_at"),
            *unique("machine_id"),
        ]),
        SuiteSpec("silver.dim_machine", [
            *has_rows(),
            *not_null("machine_id", "machine_code", "site_id"),
            *unique("machine_id"),
        ]),
        SuiteSpec("gold.machine_utilization_daily", [
            *has_rows(),
            *not_null("machine_id", "local_date", *STATE_SECONDS),
            *unique_together("machine_id", "local_date"),
            *[rule for column in STATE_SECONDS
              for rule in between(column, 0, LONGEST_DAY_SECONDS)],
            *between("utilization_pct", 0, 100),
        ]),
        SuiteSpec("gold.program_history_daily", [
            *has_rows(),
            *not_null("machine_id", "local_date", "cycles", "good_parts", "scrap_parts",
                      "cycle_seconds"),
            *unique_together("machine_id", "local_date", "program_name"),
            *between("cycles", 1),
            *between("good_parts", 0),
            *between("scrap_parts", 0),
            *finite_between("cycle_seconds", 0),
            *at_least("cycles", "good_parts"),
            *at_least("cycles", "scrap_parts"),
        ]),
        SuiteSpec("gold.alerts_daily", [
            *not_null("machine_id", "local_date", "severity_class", "alert_count"),
            *unique_together("machine_id", "local_date", "severity_class"),
            *in_set("severity_class", SEVERITY_CLASSES),
            *between("alert_count", 1),
        ]),
        SuiteSpec("gold.downtime_daily", [
            *not_null("machine_id", "local_date", "reason_code", "events", "down_seconds",
                      "planned"),
            *unique_together("machine_id", "local_date", "reason_code"),
            *between("events", 1),
            *finite_between("down_seconds", 0),
        ]),
        SuiteSpec("gold.oee_daily", [
            *has_rows(),
            *not_null("machine_id", "local_date", "planned_seconds", "running_seconds",
                      "cycles", "good_cycles"),
            *unique_together("machine_id", "local_date"),
            *between("planned_seconds", 0, LONGEST_DAY_SECONDS),
            *finite_between("availability", 0),
            *finite_between("performance", 0),
            *between("quality", 0, 1),
            *finite_between("oee", 0),
            *at_least("cycles", "good_cycles"),
        ]),
        SuiteSpec("gold.energy_hourly", [
            *has_rows(),
            *not_null("machine_id", "bucket", "kwh"),
            *unique_together("machine_id", "bucket"),
            *finite_between("kwh", 0),
        ]),
        SuiteSpec("gold.energy_daily", [
            *has_rows(),
            *not_null("machine_id", "local_date", "kwh_total", "peak_hour", "peak_kwh"),
            *unique_together("machine_id", "local_date"),
            *finite_between("kwh_total", 0),
            *finite_between("peak_kwh", 0),
            *at_least("kwh_total", "peak_kwh"),
        ]),
        SuiteSpec("gold.sensor_stats_15m", [
            *has_rows(),
            *not_null("machine_id", "sensor", "bucket", "sample_count", "min_value", "p25",
                      "median", "p75", "max_value", "mean_value"),
            *unique_together("machine_id", "sensor", "bucket"),
            *in_set("sensor", SENSORS),
            *between("sample_count", 1),
            *finite("min_value", "p25", "median", "p75", "max_value", "mean_value"),
            *at_least("p25", "min_value"),
            *at_least("median", "p25"),
            *at_least("p75", "median"),
            *at_least("max_value", "p75"),
        ]),
        SuiteSpec("webapp.machine_status_current", [
            *has_rows(),
            *not_null("machine_id", "open_alarm_count"),
            *unique("machine_id"),
            *in_set("state", STATES),
            *between("open_alarm_count", 0),
            *measure_ranges(),
        ]),
    ]


def describe(rule: Rule) -> str:
    """One readable line: `expect_column_values_to_be_between(column=utilization_pct, ...)`."""
    class_name, kwargs = rule
    return f"{snake_case(class_name)}({format_kwargs(kwargs)})"


def snake_case(class_name: str) -> str:
    """GX's expectation type of a class name: ExpectColumnValuesToBeUnique ->
    expect_column_values_to_be_unique."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def format_kwargs(kwargs: dict[str, Any]) -> str:
    parts = []
    for key, value in kwargs.items():
        if key in ("ignore_row_if", "result_format"):
            continue
        if isinstance(value, list):
            value = "[" + ", ".join(str(item) for item in value) + "]"
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def build_suites(specs: list[SuiteSpec] | None = None) -> dict[str, Any]:
    """relation -> gx.ExpectationSuite named after it (imports Great Expectations)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suites = {}
    for spec in specs if specs is not None else suite_specs():
        expectations = [getattr(gxe, class_name)(**kwargs) for class_name, kwargs in spec.rules]
        suites[spec.relation] = gx.ExpectationSuite(name=spec.relation,
                                                    expectations=expectations)
    return suites
