"""Hostile input (issue #16): values that the contract's ranges alone let through but that
no index, sum or day split survives. A code or name longer than the contract's max_chars
(a 1M-character program name broke dim_program's btree index, and every run after it), NaN
or ±Infinity in a double precision measure (Gold energy became NaN and `setu validate` said
nothing), and a time further before its arrival than max_event_age (a gateway clock reset to
year 1 made 739,956 utilization rows for one machine). Each is quarantined out_of_range, the
build succeeds and so does the next one, Silver and Gold equal the independent references,
and Gold never splits a state interval over more than the horizon."""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
import pytest
import yaml

import gold_reference as gold
import silver_reference as silver
from gold_reference import Row, utc
from setu.ops import expectations
from setu.warehouse import contract

BERLIN = "Europe/Berlin"
MACHINES = (1, 2)
T0 = utc(2026, 11, 2, 8)
NAN, INF = float("nan"), float("inf")
# Text that pglz cannot shrink below btree's 2704-byte index row limit.
HUGE_NAME = secrets.token_hex(500_000)  # 1,000,000 characters
LONG_CODE = secrets.token_hex(2_000)  # 4,000 characters
YEAR_ONE = utc(1, 1, 1)
SIX_YEARS = timedelta(days=6 * 366)


def event(when: datetime, arrived: datetime | None = None, **values) -> Row:
    return {
        "time": when,
        "ingested_at": arrived or when + timedelta(seconds=2),
        "gateway_id": "gw-h",
        **values,
    }


def cycle(start, end, part_count, program="P-1", std=60.0, arrived=None) -> Row:
    return event(
        end,
        arrived,
        machine_id=1,
        cycle_start=start,
        program_name=program,
        part_count=part_count,
        result="GOOD",
        std_cycle_seconds=std,
        std_load_unload_seconds=30.0,
        down_threshold_seconds=600.0,
    )


def state(when, machine, name, program=None, arrived=None) -> Row:
    return event(when, arrived, machine_id=machine, state=name, program_name=program)


def sample(when, arrived=None, **measures) -> Row:
    return event(when, arrived, machine_id=1, **measures)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bronze_rows() -> dict[str, dict[str, Row]]:
    """table -> name -> row, in insertion order; names starting with q_ are hostile and must
    be quarantined out_of_range."""
    states = {
        "m1_running": state(at(0), 1, "RUNNING", "P-1"),
        "q_huge_program": state(at(30), 1, "SETUP", HUGE_NAME),
        "q_clock_reset": state(YEAR_ONE, 1, "IDLE", arrived=at(45)),
        "m1_idle": state(at(120), 1, "IDLE", "P-1"),
        "m1_off": state(at(240), 1, "OFF"),
        # Machine 2 is silent for five and a half years between two valid events: Gold
        # counts the interval for the horizon (5 years) only.
        "m2_running": state(utc(2021, 6, 1, 12), 2, "RUNNING"),
        "m2_idle": state(utc(2026, 12, 1, 12), 2, "IDLE"),
    }
    cycles = {
        "c1": cycle(at(1), at(5), 1),
        "q_long_program": cycle(at(6), at(8), 2, program=LONG_CODE),
        "q_nan_standard": cycle(at(9), at(11), 3, std=NAN),
        "q_ancient_start": cycle(YEAR_ONE, at(14), 4),
        # the same cycle twice: the first copy arrived six years late (out_of_range), so
        # the second one is not its duplicate
        "q_arrived_late": cycle(at(15), at(18), 5, arrived=at(18) + SIX_YEARS),
        "c_resent": cycle(at(15), at(18), 5),
        "c2": cycle(at(20), at(25), 6),
    }
    telemetry = {
        "s1": sample(at(0), power_kw=5.0, energy_kwh=100.0, spindle_temp_c=40.0),
        "q_nan_power": sample(at(10), power_kw=NAN, energy_kwh=100.5),
        "q_inf_energy": sample(at(20), power_kw=4.0, energy_kwh=INF),
        "q_neg_inf_temp": sample(at(25), spindle_temp_c=-INF),
        "q_inf_feed": sample(at(26), feed_rate_mm_min=INF),
        "q_nan_energy": sample(at(70), energy_kwh=NAN),
        "q_old_sample": sample(YEAR_ONE, at(71), power_kw=1.0),
        "q_late_copy": sample(at(80), at(80) + SIX_YEARS, power_kw=3.0, energy_kwh=101.0),
        "s_copy": sample(at(80), power_kw=3.0, energy_kwh=101.0),
        "s2": sample(at(130), power_kw=6.0, energy_kwh=102.0, spindle_temp_c=41.0),
    }
    alarms = {
        "a1": event(
            at(3), machine_id=1, alarm_code="A-1", severity="error", event="RAISED", message="ok"
        ),
        "q_long_code": event(
            at(4),
            machine_id=1,
            alarm_code=LONG_CODE,
            severity="error",
            event="RAISED",
            message="long",
        ),
        "q_long_severity": event(
            at(5),
            machine_id=1,
            alarm_code="A-2",
            severity="x" * 257,
            event="RAISED",
            message="long",
        ),
    }
    downtime = {
        "d1": event(
            at(40), machine_id=1, down_start=at(30), reason_code="TOOL", program_name="P-1"
        ),
        "q_long_reason": event(at(50), machine_id=1, down_start=at(45), reason_code=LONG_CODE),
        "q_huge_program": event(
            at(60), machine_id=1, down_start=at(55), reason_code="TOOL", program_name=HUGE_NAME
        ),
        "q_ancient_stop": event(at(70), machine_id=1, down_start=YEAR_ONE, reason_code="TOOL"),
    }
    platform = {
        "p1": event(at(0), device_id=7, device_serial="SN-7", value=40.0, unit="ticks"),
        "q_long_serial": event(at(1), device_serial="S" * 1000, value=1.0, unit="mm"),
        "q_nan_value": event(at(2), device_id=7, value=NAN, unit="mm"),
        "q_long_firmware": event(at(3), device_id=7, value=1.0, unit="mm", firmware="f" * 300),
    }
    return {
        "machine_state_events": states,
        "machine_cycles": cycles,
        "machine_telemetry": telemetry,
        "alarms": alarms,
        "platform_extension": platform,
        "downtime_events": downtime,
    }


def rows_for_the_job() -> dict[str, dict[str, Row]]:
    """Hostile rows that arrive after the builds, for the in-database job."""
    return {
        "machine_state_events": {
            "q_job_long_program": state(at(300), 1, "RUNNING", LONG_CODE),
            "m1_job_running": state(at(320), 1, "RUNNING", "P-2"),
        },
        "machine_telemetry": {
            "q_job_nan_energy": sample(at(300), energy_kwh=NAN),
            "s_job": sample(at(310), power_kw=2.0, energy_kwh=103.0),
        },
        "alarms": {
            "q_job_long_code": event(
                at(300),
                machine_id=1,
                alarm_code=LONG_CODE,
                severity="warning",
                event="RAISED",
                message="long",
            ),
        },
        "downtime_events": {
            "q_job_long_reason": event(
                at(330), machine_id=1, down_start=at(321), reason_code=LONG_CODE, program_name="P-2"
            ),
        },
    }


@dataclass
class Built:
    rows: dict[str, dict[str, Row]]
    exit_codes: list[int] = field(default_factory=list)
    job_status: tuple[str, str | None] | None = None
    quarantine: dict[str, dict[int, str]] = field(default_factory=dict)
    gold: dict[str, list[Row]] = field(default_factory=dict)
    utilization_rows: dict[int, int] = field(default_factory=dict)

    def accepted(self, table: str) -> list[Row]:
        return [row for name, row in self.rows[table].items() if not name.startswith("q_")]


def insert(conn: psycopg.Connection, table: str, rows: list[Row]) -> None:
    for row in rows:
        columns = [
            c
            for c in ("time", "ingested_at", "gateway_id", *silver.BRONZE_COLUMNS[table])
            if c in row
        ]
        row["id"] = conn.execute(
            f"insert into bronze.{table} ({', '.join(columns)})"
            f" values ({', '.join(['%s'] * len(columns))}) returning id",
            [row[c] for c in columns],
        ).fetchone()[0]


@pytest.fixture(scope="module")
def built(db_url: str, dbt_run) -> Iterator[Built]:
    assert dbt_run(gold.dbt_args("run-operation", "setup_warehouse")) == 0
    data = Built(bronze_rows())
    with psycopg.connect(db_url, autocommit=True) as conn:
        gold.reset_inputs(conn)
        conn.execute("insert into master.sites values (1, 'S1', %s)", [BERLIN])
        for machine in MACHINES:
            conn.execute("insert into master.machines values (%s, %s, 1)", [machine, f"M{machine}"])
        data.exit_codes.append(dbt_run(gold.dbt_args("run", "--full-refresh", *gold.SELECTION)))
        for table, rows in data.rows.items():
            insert(conn, table, list(rows.values()))
        # the build with the hostile rows, then the next one (a poisoned dim failed every run)
        data.exit_codes.append(dbt_run(gold.dbt_args("build", *gold.SELECTION)))
        data.exit_codes.append(dbt_run(gold.dbt_args("build", *gold.SELECTION)))
        # then the in-database job, which runs the SQL dbt compiled
        for table, rows in rows_for_the_job().items():
            insert(conn, table, list(rows.values()))
            data.rows[table].update(rows)
        conn.execute("call _etl.run_pipeline('test_hostile_values')")
        data.job_status = conn.execute(
            "select status, error from _etl.job_runs order by run_id desc limit 1"
        ).fetchone()
        for table in data.rows:
            data.quarantine[table] = silver.quarantine_reasons(conn, table)
        data.gold = gold.snapshot(conn)
        data.utilization_rows = dict(
            conn.execute(
                "select machine_id, count(*) from gold.machine_utilization_daily"
                " group by machine_id"
            ).fetchall()
        )
        yield data


def test_the_build_the_next_one_and_the_job_succeed(built: Built) -> None:
    assert built.exit_codes == [0, 0, 0]
    assert built.job_status == ("succeeded", None)


def test_every_hostile_row_is_quarantined_out_of_range(built: Built) -> None:
    for table, rows in built.rows.items():
        hostile = {row["id"]: "out_of_range" for name, row in rows.items() if name.startswith("q_")}
        assert built.quarantine[table] == hostile, table


def test_quarantine_equals_the_reference(built: Built) -> None:
    machines = set(MACHINES)
    for table, rows in built.rows.items():
        verdict = silver.classify(table, list(rows.values()), machines)
        assert built.quarantine[table] == {
            bronze_id: reason for bronze_id, reason in verdict.items() if reason
        }, table


def test_gold_equals_the_reference_and_is_finite(built: Built) -> None:
    expected = gold.every_relation(
        dict.fromkeys(MACHINES, BERLIN), {table: built.accepted(table) for table in built.rows}, {}
    )
    out = []
    for relation, rows in expected.items():
        out += gold.differences(relation, rows, built.gold[relation])
    assert out == []
    for relation, rows in built.gold.items():
        for row in rows:
            assert all(
                math.isfinite(value) for value in row.values() if isinstance(value, float)
            ), (relation, row)


def test_utilization_never_splits_an_interval_over_more_than_the_horizon(built: Built) -> None:
    # machine 2: RUNNING from 2021-06-01 12:00 UTC, counted until 2026-06-01 12:00 UTC
    days = (utc(2026, 6, 1) - utc(2021, 6, 1)).days + 1
    assert built.utilization_rows == {1: 1, 2: days}
    [last] = [
        row
        for row in built.gold["gold.machine_utilization_daily"]
        if row["machine_id"] == 2 and str(row["local_date"]) == "2026-06-01"
    ]
    assert last["running_seconds"] == 14 * 3600  # midnight CEST (22:00 UTC) to 12:00 UTC


# ---- the contract, its readers and the references (no database) -----------------------------


def test_the_contract_bounds_codes_names_numbers_and_event_age() -> None:
    tables = contract.bronze_tables()
    assert {name: table.max_chars for name, table in tables.items() if table.max_chars} == {
        name: dict.fromkeys(columns, silver.MAX_CHARS)
        for name, columns in silver.LONG_TEXT_COLUMNS.items()
    }
    assert {
        name: table.double_columns for name, table in tables.items() if table.double_columns
    } == silver.DOUBLE_COLUMNS
    assert contract.finite_numbers() is True
    assert contract.max_magnitude() == silver.MAX_MAGNITUDE
    assert contract.max_event_age() == (silver.MAX_EVENT_AGE_YEARS, "year")
    assert gold.MAX_EVENT_AGE_YEARS == silver.MAX_EVENT_AGE_YEARS


@pytest.mark.parametrize("value", ["five years", "5", "-5 years", "5 decades", 5, None])
def test_a_bad_max_event_age_is_one_line(tmp_path, monkeypatch, value) -> None:
    spec = {"name": "setu", "vars": {"setu_contract": {"reasons": [], "max_event_age": value}}}
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(contract, "PROJECT_DIR", tmp_path)
    contract.raw.cache_clear()
    try:
        with pytest.raises(contract.ContractError) as error:
            contract.max_event_age()
    finally:
        contract.raw.cache_clear()
    message = str(error.value)
    assert "\n" not in message
    assert f"vars.setu_contract.max_event_age is {value!r}: give a whole number" in message
    assert "dbt_project.yml" in message


def test_the_dbt_macro_rejects_a_bad_max_event_age_in_one_line(dbt_run) -> None:
    from setu.warehouse.dbt import invoke

    bad = {**contract.raw(), "max_event_age": "five years"}
    result = invoke(
        gold.dbt_args(
            "compile",
            "--select",
            "int_machine_state_events_validated",
            "--vars",
            json.dumps({"setu_contract": bad}),
        )
    )
    assert not result.success
    assert (
        'vars.setu_contract.max_event_age is "five years": give a whole number and a '
        "unit" in str(result.exception)
    )


def test_the_reference_quarantines_what_the_contract_calls_hostile() -> None:
    def reason(table: str, **values) -> str | None:
        row = {"id": 1, "machine_id": 1, "time": T0, "ingested_at": T0, **values}
        return silver.first_reason(silver.problems(table, row, {1}))

    assert reason("machine_telemetry", power_kw=NAN) == "out_of_range"
    assert reason("machine_telemetry", energy_kwh=-INF) == "out_of_range"
    # beyond ±max_magnitude Gold's sums and variances overflow: out_of_range
    assert reason("machine_telemetry", energy_kwh=1e12) is None
    assert reason("machine_telemetry", energy_kwh=-1e12) is None
    assert reason("machine_telemetry", energy_kwh=1.000001e12) == "out_of_range"
    assert reason("machine_telemetry", energy_kwh=1e308) == "out_of_range"
    assert reason("machine_state_events", state="IDLE", program_name="p" * 256) is None
    assert reason("machine_state_events", state="IDLE", program_name="p" * 257) == ("out_of_range")
    # the horizon is five calendar years before arrival, inclusive
    assert reason("machine_state_events", state="IDLE", time=utc(2021, 11, 2, 8)) is None
    assert (
        reason("machine_state_events", state="IDLE", time=utc(2021, 11, 2, 7, 59, 59))
        == "out_of_range"
    )
    assert reason("machine_state_events", state="IDLE", time=YEAR_ONE) == "out_of_range"
    # Feb 29 minus five years is Feb 28, as PostgreSQL counts
    assert silver.years_before(utc(2028, 2, 29, 1), 5) == utc(2023, 2, 28, 1)
    # missing_value still comes first
    assert reason("machine_state_events", time=YEAR_ONE) == "missing_value"


def test_gx_suites_bound_every_double_measure() -> None:
    biggest = f"{expectations.LARGEST_FINITE!r}"
    assert biggest == "1.7976931348623157e+308"
    rules = {
        spec.relation: [expectations.describe(rule) for rule in spec.rules]
        for spec in expectations.suite_specs()
    }
    for relation, column in [
        ("silver.fct_telemetry", "energy_kwh"),
        ("webapp.machine_status_current", "energy_kwh"),
        ("silver.fct_platform_extension", "value_mm"),
        ("gold.sensor_stats_15m", "mean_value"),
    ]:
        assert (
            f"expect_column_values_to_be_between(column={column}, min_value=-{biggest}, "
            f"max_value={biggest})"
        ) in rules[relation], relation
    for relation, column in [
        ("silver.fct_telemetry", "power_kw"),
        ("gold.energy_hourly", "kwh"),
        ("gold.energy_daily", "kwh_total"),
    ]:
        assert (
            f"expect_column_values_to_be_between(column={column}, min_value=0, max_value={biggest})"
        ) in rules[relation], relation
