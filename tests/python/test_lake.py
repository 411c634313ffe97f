"""The fleet on Spark: two plants, two embedded clusters, one lake, `dbt build --target lake`.

Plant A runs in the session cluster with the simulator's zones (Europe/Berlin, Asia/Kolkata);
plant B in a second cluster of its own whose sites an operator moved to America/Chicago and
Asia/Tokyo. Both export to one lake folder; the Spark models must then hold, row for row, the
union of the two plants' Gold (read from the databases), and per-plant figures computed here
in Python from the same rows. Late events and a new batch at plant A, a second export and a
second Spark run must keep that, with no exported row twice.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch
from zoneinfo import ZoneInfo

import psycopg
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
import pytest

from conftest import free_port
from setu.warehouse.cluster import Cluster
from test_export import (
    START,
    Plant,
    exported_specs,
    insert_late_events,
    lake_rows,
)

pytest.importorskip("pyspark", reason="the [lake] extra (bash scripts/setup.sh) brings pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java: scripts/setup.sh installs openjdk-17-jre-headless",
                allow_module_level=True)

# Gold table -> (fleet model, its key); the fleet model holds the Gold columns but etl_batch_id.
FLEET_OF = {
    "machine_utilization_daily": "fleet_machine_utilization_daily",
    "program_history_daily": "fleet_program_history_daily",
    "alerts_daily": "fleet_alerts_daily",
    "energy_daily": "fleet_energy_daily",
    "oee_daily": "fleet_oee_daily",
}
PLANT_ZONES = {1: "America/Chicago", 2: "Asia/Tokyo"}


class Fleet:
    def __init__(self, lake: Path, state: Path, scratch: Path, plants: dict[str, Plant]):
        self.lake = lake
        self.state = state
        self.scratch = scratch
        self.plants = plants

    def spark(self, command: str) -> None:
        from setu.warehouse import dbt

        env = {"SETU_LAKE": str(self.lake), "SETU_LAKE_STATE": str(self.state),
               "DBT_TARGET_PATH": str(self.scratch / "target-lake"),
               "DBT_LOG_PATH": str(self.scratch / "logs-lake"), "SETU_LAKE_CORES": "1"}
        with patch.dict(os.environ, env):
            assert dbt.run([command, "--target", "lake"]) == 0, f"dbt {command} on Spark failed"

    def export_all(self) -> None:
        for name, plant in self.plants.items():
            plant.export(str(self.lake), name)

    def model_rows(self, model: str) -> list[dict]:
        folder = self.lake / "fleet" / "fleet.db" / model
        rows = []
        for path in sorted(folder.glob("*.parquet")):
            rows.extend(pq.read_table(path).to_pylist())
        return rows


def gold_rows(plant: Plant, table: str) -> list[dict]:
    with plant.connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute(f"select * from gold.{table}")
        return [{key: value for key, value in row.items() if key != "etl_batch_id"}
                for row in cursor]


@pytest.fixture(scope="module")
def fleet(cluster: Cluster) -> Iterator[Fleet]:
    scratch = Path(tempfile.mkdtemp(prefix="setu-test-lake-", dir="/var/tmp"))
    scratch.chmod(0o755)
    second = Cluster(home=scratch / "plant-b", port=free_port(), tuning="test")
    second.start()
    try:
        plant_a = Plant(cluster, "setu_lake_a", scratch / "a")
        plant_b = Plant(second, "setu_lake_b", scratch / "b")
        for plant, machines, seed in ((plant_a, 4, 11), (plant_b, 3, 12)):
            plant.dbt("run-operation", "setup_warehouse")
            plant.simulate(machines, START, timedelta(hours=3), seed=seed)
        with plant_b.connect() as conn:
            for site_id, zone in PLANT_ZONES.items():
                conn.execute("update master.sites set timezone = %s where site_id = %s",
                             (zone, site_id))
        for plant in (plant_a, plant_b):
            plant.dbt("run")
        yield Fleet(scratch / "lake", scratch / "lake-state", scratch,
                    {"plant-a": plant_a, "plant-b": plant_b})
    finally:
        second.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def site_zones(plant: Plant) -> dict[int, ZoneInfo]:
    with plant.connect() as conn:
        return {machine: ZoneInfo(zone) for machine, zone in conn.execute(
            "select m.machine_id, s.timezone from master.machines as m"
            " inner join master.sites as s using (site_id)").fetchall()}


def assert_fleet_is_the_union(fleet: Fleet) -> None:
    for table, model in {**FLEET_OF, "energy_hourly": "fleet_energy_hourly"}.items():
        expected = Counter()
        for name, plant in fleet.plants.items():
            zones = site_zones(plant)
            for row in gold_rows(plant, table):
                if table == "energy_hourly":
                    # The local date of the hour's start, computed here from the site zone.
                    row["local_date"] = row["bucket"].astimezone(zones[row["machine_id"]]).date()
                expected[tuple(sorted({"plant": name, **row}.items()))] += 1
        found = Counter(tuple(sorted(row.items())) for row in fleet.model_rows(model))
        assert found == expected, (
            f"{model}: {sum((expected - found).values())} Gold rows missing, "
            f"{sum((found - expected).values())} extra")
        assert sum(expected.values()) > 0, f"{table} is empty at both plants"


def assert_plant_figures(fleet: Fleet) -> None:
    """The per-plant models against sums computed here from the plants' Gold rows."""
    utilization: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    alerts: Counter = Counter()
    energy: dict[tuple, float] = defaultdict(float)
    hours: dict[tuple, float] = defaultdict(float)
    for name, plant in fleet.plants.items():
        for row in gold_rows(plant, "machine_utilization_daily"):
            for state in ("off", "idle", "running", "setup", "alarm", "maintenance"):
                utilization[name, row["local_date"]][state] += row[f"{state}_seconds"] or 0
        for row in gold_rows(plant, "alerts_daily"):
            alerts[name, row["local_date"], row["severity_class"]] += row["alert_count"]
        for row in gold_rows(plant, "energy_daily"):
            energy[name, row["local_date"]] += row["kwh_total"]
        zones = site_zones(plant)
        for row in gold_rows(plant, "energy_hourly"):
            day = row["bucket"].astimezone(zones[row["machine_id"]]).date()
            hours[name, day, row["bucket"]] += row["kwh"]
    oee: dict[tuple, Counter] = defaultdict(Counter)
    for name, plant in fleet.plants.items():
        for row in gold_rows(plant, "oee_daily"):
            oee[name, row["local_date"]].update(
                {key: row[key] for key in ("planned_seconds", "running_seconds",
                                           "std_cycle_seconds", "cycles", "good_cycles")})
    plant_oee = {(row["plant"], row["local_date"]): row
                 for row in fleet.model_rows("plant_oee_daily")}
    assert set(plant_oee) == set(oee)
    for key, sums in oee.items():
        factors = (
            sums["running_seconds"] / sums["planned_seconds"] if sums["planned_seconds"] else None,
            sums["std_cycle_seconds"] / sums["running_seconds"] if sums["running_seconds"]
            else None,
            sums["good_cycles"] / sums["cycles"] if sums["cycles"] else None,
        )
        got = plant_oee[key]
        assert (got["availability"], got["performance"], got["quality"]) == pytest.approx(factors)
        assert got["oee"] == (None if None in factors else
                              pytest.approx(factors[0] * factors[1] * factors[2]))
    found = {(row["plant"], row["local_date"]): row
             for row in fleet.model_rows("plant_utilization_daily")}
    assert set(found) == set(utilization)
    for key, seconds in utilization.items():
        busy = sum(value for state, value in seconds.items() if state != "off")
        assert found[key]["running_seconds"] == pytest.approx(seconds["running"])
        assert found[key]["utilization_pct"] == (
            pytest.approx(seconds["running"] * 100 / busy) if busy else None)
    assert Counter({(row["plant"], row["local_date"], row["severity_class"]): row["alert_count"]
                    for row in fleet.model_rows("plant_alerts_daily")}) == alerts
    plant_energy = {(row["plant"], row["local_date"]): row
                    for row in fleet.model_rows("plant_energy_daily")}
    assert set(plant_energy) == set(energy)
    for (name, day), kwh in energy.items():
        assert plant_energy[name, day]["kwh_total"] == pytest.approx(kwh)
        day_hours = {bucket: value for (plant, when, bucket), value in hours.items()
                     if (plant, when) == (name, day)}
        peak = max(day_hours.values())
        assert plant_energy[name, day]["peak_kwh"] == pytest.approx(peak)
        assert day_hours[plant_energy[name, day]["peak_hour"]] == pytest.approx(peak)


def assert_no_exported_row_twice(fleet: Fleet) -> None:
    with fleet.plants["plant-a"].connect() as conn:
        specs = exported_specs(conn)
    for spec in specs:
        found = Counter(lake_rows(pa_fs.LocalFileSystem(), str(fleet.lake), spec))
        doubled = [row for row, count in found.items() if count > 1]
        assert not doubled, f"{spec.relation}: {len(doubled)} Parquet rows twice"


def test_fleet_gold_is_the_union_of_the_plants_gold(fleet: Fleet) -> None:
    fleet.export_all()
    fleet.spark("build")
    assert_fleet_is_the_union(fleet)
    assert_plant_figures(fleet)
    dates = {row["local_date"] for row in fleet.model_rows("fleet_machine_utilization_daily")
             if row["plant"] == "plant-b"}
    # Chicago's machines (UTC-6) ran 15:00-18:00 on Nov 1; Berlin's crossed into Nov 2.
    assert min(dates).isoformat() == "2026-11-01"

    plant_a = fleet.plants["plant-a"]
    with plant_a.connect() as conn:
        insert_late_events(conn)
    plant_a.simulate(4, START + timedelta(hours=3), timedelta(hours=1), seed=11)
    plant_a.dbt("run")
    fleet.export_all()
    fleet.spark("run")
    assert_fleet_is_the_union(fleet)
    assert_plant_figures(fleet)
    assert_no_exported_row_twice(fleet)
