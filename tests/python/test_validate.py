"""`setu validate`: the Great Expectations checkpoint passes on a good build, and fails, naming
the expectation, when Gold is corrupted, a column is gone, or the database is unreachable."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from analyst_build import Build, on_database, small_build
from setu.cli import main
from setu.ops.expectations import SuiteSpec, describe, suite_specs
from setu.ops.validate import raised_message, sqlalchemy_url


@pytest.fixture(scope="module")
def build(cluster, dbt_run) -> Build:
    return small_build(cluster, dbt_run)


@pytest.fixture
def validate(build: Build) -> Iterator:
    def run(*args: str):
        with on_database(build.database):
            return CliRunner().invoke(main, ["validate", *args], catch_exceptions=False)
    yield run


def failure_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAILED ")]


def test_passes_on_a_good_build_and_writes_data_docs(validate, cluster) -> None:
    result = validate()
    assert result.exit_code == 0, result.output
    assert "setu validate passed" in result.output
    assert not failure_lines(result.output)
    docs = Path(result.output.split("Data Docs: ", 1)[1].splitlines()[0])
    assert docs.is_file() and docs.name == "index.html"
    # Under the state folder (SETU_HOME in tests, .setu/ otherwise), which git ignores.
    assert Path(cluster.home) in docs.parents


def test_corrupted_gold_row_fails_naming_the_expectation(validate, build: Build) -> None:
    with psycopg.connect(build.url, autocommit=True) as conn:
        machine, day, saved = conn.execute(
            "select machine_id, local_date, utilization_pct from gold.machine_utilization_daily"
            " order by machine_id, local_date limit 1").fetchone()
        conn.execute("update gold.machine_utilization_daily set utilization_pct = 150"
                     " where machine_id = %s and local_date = %s", (machine, day))
        try:
            result = validate("--select", "gold.machine_utilization_daily")
        finally:
            conn.execute("update gold.machine_utilization_daily set utilization_pct = %s"
                         " where machine_id = %s and local_date = %s", (saved, machine, day))
    assert result.exit_code == 1, result.output
    assert failure_lines(result.output) == [
        "FAILED gold.machine_utilization_daily: expect_column_values_to_be_between("
        "column=utilization_pct, min_value=0.0, max_value=100.0): 1 of "
        f"{count_rows(build, 'gold.machine_utilization_daily')} rows unexpected (e.g. 150.0)"
    ]
    assert "setu validate FAILED" in result.output


@pytest.mark.parametrize(("relation", "column", "key", "hostile"), [
    ("silver.fct_telemetry", "energy_kwh", "bronze_id", "NaN"),
    ("silver.fct_telemetry", "energy_kwh", "bronze_id", "-Infinity"),
    ("silver.fct_telemetry", "power_kw", "bronze_id", "NaN"),
    ("gold.energy_daily", "kwh_total", "machine_id, local_date", "NaN"),
    ("gold.sensor_stats_15m", "mean_value", "machine_id, sensor, bucket", "Infinity"),
])
def test_non_finite_measure_fails(validate, build: Build, relation, column, key,
                                  hostile) -> None:
    """NaN sorts above every number in PostgreSQL and passed every open-ended range: an
    energy total of NaN was 'all expectations met' (issue #16)."""
    with psycopg.connect(build.url, autocommit=True) as conn:
        conn.execute(f"create temp table saved as select {key}, {column} as value"
                     f" from {relation} where {column} is not null order by {key} limit 1")
        row = f"({key}) = (select {key} from saved)"
        conn.execute(f"update {relation} set {column} = %s::double precision where {row}",
                     [hostile])
        try:
            result = validate("--select", relation)
        finally:
            conn.execute(f"update {relation} set {column} = (select value from saved)"
                         f" where {row}")
    assert result.exit_code == 1, result.output
    assert any(line.startswith(f"FAILED {relation}: expect_column_values_to_be_between("
                               f"column={column},") and ": 1 of " in line
               for line in failure_lines(result.output)), result.output


def test_expectation_that_raises_fails_the_run(validate, build: Build) -> None:
    """A query that errors does not raise out of GX: it must still fail the run."""
    with psycopg.connect(build.url, autocommit=True) as conn:
        conn.execute("alter table gold.energy_daily rename column peak_kwh to peak_kwh_gone")
        try:
            result = validate("--select", "gold.energy_daily")
        finally:
            conn.execute("alter table gold.energy_daily rename column peak_kwh_gone to peak_kwh")
    assert result.exit_code == 1, result.output
    lines = failure_lines(result.output)
    assert lines and all("peak_kwh" in line and ": raised " in line for line in lines), lines


def test_unreachable_database_fails_in_one_line(build: Build, cluster, monkeypatch) -> None:
    from conftest import free_port

    monkeypatch.setenv("SETU_PG_PORT", str(free_port()))
    result = CliRunner().invoke(main, ["validate"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach target 'local'" in errors[0], result.output
    assert "Connection refused" in errors[0]


def test_unreachable_checkpoint_result_counts_as_raised() -> None:
    """The shapes GX gives exception_info: flat, and keyed by metric when a metric failed."""
    assert raised_message({"raised_exception": False, "exception_message": None}) is None
    assert raised_message({"raised_exception": True, "exception_message": "boom"}) == "boom"
    nested = {"MetricConfigurationID(metric_name='table.row_count')": {
        "raised_exception": True, "exception_message": "connection refused"}}
    assert raised_message(nested) == "connection refused"


def test_suites_cover_the_contract_code_lists_and_ranges() -> None:
    rules = {spec.relation: [describe(rule) for rule in spec.rules] for spec in suite_specs()}
    assert "expect_column_values_to_be_between(column=utilization_pct, min_value=0, " \
           "max_value=100)" in rules["gold.machine_utilization_daily"]
    for relation, column in [("silver.fct_state_intervals", "state"),
                             ("silver.fct_machine_cycles", "result"),
                             ("gold.alerts_daily", "severity_class"),
                             ("silver.fct_platform_extension", "side"),
                             ("silver.quarantine", "reason")]:
        assert any(line.startswith(f"expect_column_values_to_be_in_set(column={column},")
                   for line in rules[relation]), relation
    for relation in ("silver.fct_machine_cycles", "silver.fct_state_intervals",
                     "silver.fct_telemetry", "gold.machine_utilization_daily"):
        assert "expect_table_row_count_to_be_between(min_value=1)" in rules[relation]
    assert all(isinstance(spec, SuiteSpec) and spec.rules for spec in suite_specs())


def test_list_needs_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # nor Great Expectations, whose import alone takes seconds: an import of it fails here
    monkeypatch.setitem(sys.modules, "great_expectations", None)
    result = CliRunner().invoke(main, ["validate", "--list", "--select", "gold.energy_daily"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("gold.energy_daily: expect_")


def test_sqlalchemy_url_from_profile_keeps_the_password_quoted() -> None:
    from setu.warehouse.profile import Target

    url = sqlalchemy_url(Target(name="prod", host="db.example", port=5433, user="etl",
                                password="p@ss:w/rd", dbname="setu", sslmode="verify-full"))
    assert url.startswith("postgresql+psycopg2://etl:p%40ss%3Aw%2Frd@db.example:5433/setu?")
    assert "sslmode=verify-full" in url


def count_rows(build: Build, relation: str) -> int:
    with psycopg.connect(build.url) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def test_suites_read_the_contract_ranges_and_nothing_more() -> None:
    """The telemetry ranges are the contract's, an open end (power_kw, feed_rate_mm_min,
    energy_kwh) closed only at the largest finite double (finite_numbers: NaN and ±Infinity
    are out_of_range), so `setu validate` accepts what Silver accepts; the v2 relations have
    their suites."""
    rules = {spec.relation: [describe(rule) for rule in spec.rules] for spec in suite_specs()}
    ranges = [line for line in rules["silver.fct_telemetry"]
              if line.startswith("expect_column_values_to_be_between(")]
    largest = "1.7976931348623157e+308"
    assert sorted(ranges) == sorted([
        "expect_column_values_to_be_between(column=spindle_temp_c, min_value=-50, "
        "max_value=300)",
        "expect_column_values_to_be_between(column=motor_temp_c, min_value=-50, max_value=300)",
        "expect_column_values_to_be_between(column=coolant_temp_c, min_value=-50, "
        "max_value=300)",
        "expect_column_values_to_be_between(column=spindle_speed_rpm, min_value=0, "
        "max_value=60000)",
        f"expect_column_values_to_be_between(column=power_kw, min_value=0, max_value={largest})",
        "expect_column_values_to_be_between(column=feed_rate_mm_min, min_value=0, "
        f"max_value={largest})",
        "expect_column_values_to_be_between(column=spindle_load_pct, min_value=0, "
        "max_value=1000)",
        f"expect_column_values_to_be_between(column=energy_kwh, min_value=-{largest}, "
        f"max_value={largest})",
    ])
    assert [line for line in rules["webapp.machine_status_current"] if "energy_kwh" in line] \
        == [f"expect_column_values_to_be_between(column=energy_kwh, min_value=-{largest}, "
            f"max_value={largest})"]
    assert "downtime_events" in next(
        line for line in rules["silver.quarantine"] if "in_set(column=source_table" in line)
    assert "expect_column_values_to_be_between(column=quality, min_value=0, max_value=1)" \
        in rules["gold.oee_daily"]
    assert "expect_compound_columns_to_be_unique(column_list=[machine_id, local_date, " \
        "reason_code])" in rules["gold.downtime_daily"]
