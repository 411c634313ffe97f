"""The contract's one machine-readable home (var setu_contract of dbt_project.yml) and the
places that cannot read it: the Bronze and master sources YAML (dbt YAML cannot read a var
into a column list), and the independent references of the tests, which are read from
contract.md by hand. Each must say exactly what the contract says."""

from __future__ import annotations

from pathlib import Path

import yaml

import gold_reference
import silver_reference
from setu.ingest import loader as ingest
from setu.ops import expectations
from setu.tools.fleet_model import TABLE_COLUMNS
from setu.warehouse import contract

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "models" / "staging" / "bronze" / "_bronze__sources.yml"


def source_tables(name: str) -> dict[str, dict]:
    sources = yaml.safe_load(SOURCES.read_text())["sources"]
    [source] = [s for s in sources if s["name"] == name]
    return {table["name"]: table for table in source["tables"]}


def test_bronze_sources_have_the_contract_columns_and_reconciliation() -> None:
    tables = source_tables("bronze")
    assert list(tables) == list(contract.bronze_tables())
    for name, spec in contract.bronze_tables().items():
        columns = [column["name"] for column in tables[name]["columns"]]
        assert columns == ["id", *contract.COMMON_COLUMNS, *spec.column_names], name
        [test] = [t["reconciles_with_silver"]["arguments"] for t in tables[name]["data_tests"]]
        assert test["fact_model"] == f"ref('{spec.fact}')", name
        assert test["source_table"] == name
        # the test reads the fact's time column from the contract
        assert "fact_time_column" not in test, name


def test_master_sources_have_the_contract_columns() -> None:
    tables = source_tables("master")
    assert {name: tuple(column["name"] for column in table["columns"])
            for name, table in tables.items()} == contract.master_columns()


def test_python_reads_the_contract() -> None:
    names = contract.bronze_table_names()
    assert names[-1] == "downtime_events"
    assert names == ingest.BRONZE_TABLES
    assert list(names) == expectations.BRONZE_TABLES
    assert list(contract.reasons()) == expectations.REASONS
    # the fact map names real Silver models, and every contract table has one
    facts = contract.bronze_to_fact()
    assert set(facts) == set(names)
    assert all((ROOT / "models" / "silver" / f"{fact}.sql").is_file() for fact in facts.values())
    assert {name: columns[len(contract.COMMON_COLUMNS):]
            for name, columns in TABLE_COLUMNS.items()} == {
        name: spec.column_names for name, spec in contract.bronze_tables().items()}


def test_the_hand_read_references_agree_with_the_contract() -> None:
    """The tests' references are read from contract.md, not from the contract var: where they
    agree, the var says what the text says."""
    assert contract.reasons() == silver_reference.REASON_ORDER
    assert contract.bronze_table_names() == silver_reference.BRONZE_TABLES
    assert contract.bronze_to_fact() == silver_reference.FACT_OF
    for name, spec in contract.bronze_tables().items():
        assert silver_reference.BRONZE_COLUMNS[name] == spec.column_names, name
        if name in gold_reference.BRONZE_COLUMNS:
            assert gold_reference.BRONZE_COLUMNS[name] == spec.column_names, name
    telemetry = contract.bronze_tables()["machine_telemetry"]
    assert telemetry.ranges == {
        "spindle_temp_c": (-50, 300), "motor_temp_c": (-50, 300),
        "coolant_temp_c": (-50, 300), "spindle_speed_rpm": (0, 60000),
        "power_kw": (0, None), "feed_rate_mm_min": (0, None), "spindle_load_pct": (0, 1000),
    }
    assert set(contract.codes("machine_state_events", "state")) == silver_reference.STATES
    downtime = contract.bronze_tables()["downtime_events"]
    assert (downtime.required, downtime.codes, downtime.interval_start) == (
        ("down_start", "reason_code"), {}, "down_start")


def test_a_missing_contract_is_one_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: setu\nvars: {}\n")
    monkeypatch.setattr(contract, "PROJECT_DIR", tmp_path)
    contract.raw.cache_clear()
    try:
        contract.raw()
    except contract.ContractError as error:
        assert str(error).endswith("no vars.setu_contract ('setu_contract')")
        assert "\n" not in str(error)
    else:
        raise AssertionError("no ContractError")
    finally:
        contract.raw.cache_clear()
