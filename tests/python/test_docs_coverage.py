"""dbt docs completeness: every model, source, column (as the catalog sees it in the database),
macro, seed and exposure of the project is described.

Runs `dbt docs generate` on a small built warehouse (analyst_build.py) and reads the
manifest and catalog it writes. Failures list what lacks a description, with the file to
add it to, so the fix is one edit away.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from analyst_build import docs_site
from setu.warehouse.paths import PROJECT_DIR

PACKAGE = "setu"
# A model description states its grain.
GRAIN = re.compile(r"\bone row per\b|\bgrain\b", re.IGNORECASE)
MACRO_SIGNATURE = re.compile(
    r"{%-?\s*(?:macro|test)\s+\w+\s*\((?P<args>[^)]*)\)\s*-?%}", re.DOTALL)


@pytest.fixture(scope="module")
def artifacts(cluster, dbt_run) -> tuple[dict, dict]:
    target = docs_site(cluster, dbt_run)
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    return manifest, catalog


def described(text: str | None) -> bool:
    return bool(text and text.strip())


def own(nodes: dict, resource_type: str | None = None) -> dict:
    return {uid: node for uid, node in nodes.items()
            if node.get("package_name") == PACKAGE
            and (resource_type is None or node.get("resource_type") == resource_type)}


def report(missing: list[str], what: str) -> str:
    return f"{len(missing)} {what} without a description:\n  " + "\n  ".join(sorted(missing))


def test_every_model_is_described_with_its_grain(artifacts) -> None:
    manifest, _ = artifacts
    models = own(manifest["nodes"], "model")
    assert models, "the manifest has no models"
    missing = [f"{node['name']} ({node['original_file_path']})" for node in models.values()
               if not described(node["description"])]
    assert not missing, report(missing, "models")
    no_grain = [node["name"] for node in models.values() if not GRAIN.search(node["description"])]
    assert not no_grain, ("model descriptions must state the grain ('one row per ...'): "
                          + ", ".join(sorted(no_grain)))


def test_every_source_table_is_described(artifacts) -> None:
    manifest, _ = artifacts
    sources = own(manifest["sources"])
    assert sources, "the manifest has no sources"
    missing = [f"{node['source_name']}.{node['name']}" for node in sources.values()
               if not described(node["description"])
               or not described(node["source_description"])]
    assert not missing, report(missing, "sources")


@pytest.mark.parametrize("kind", ["nodes", "sources"])
def test_every_column_in_the_catalog_is_described(artifacts, kind: str) -> None:
    """The catalog lists the columns the relations really have; each needs a description."""
    manifest, catalog = artifacts
    entries = catalog[kind]
    assert entries, f"the catalog has no {kind}: was the warehouse built?"
    missing = []
    for uid, entry in entries.items():
        node = manifest[kind].get(uid)
        if node is None or node.get("package_name") != PACKAGE:
            continue
        documented = {name.lower(): column for name, column in node["columns"].items()}
        for column in entry["columns"]:
            if not described(documented.get(column.lower(), {}).get("description")):
                missing.append(f"{entry['metadata']['schema']}.{entry['metadata']['name']}"
                               f".{column} ({node['original_file_path']})")
    assert not missing, report(missing, "columns")


def test_documented_columns_exist(artifacts) -> None:
    """No stale docs: every documented column of a built relation is in the catalog."""
    manifest, catalog = artifacts
    stale = []
    for kind in ("nodes", "sources"):
        for uid, entry in catalog[kind].items():
            node = manifest[kind].get(uid)
            if node is None or node.get("package_name") != PACKAGE:
                continue
            real = {column.lower() for column in entry["columns"]}
            stale += [f"{node['name']}.{name}" for name in node["columns"]
                      if name.lower() not in real]
    assert not stale, "documented columns missing from the database: " + ", ".join(stale)


def test_ephemeral_models_describe_every_column(artifacts) -> None:
    """Intermediate models have no relation (no catalog entry): their YAML lists the columns."""
    manifest, _ = artifacts
    ephemeral = [node for node in own(manifest["nodes"], "model").values()
                 if node["config"]["materialized"] == "ephemeral"]
    assert ephemeral
    missing = [node["name"] for node in ephemeral if not node["columns"]]
    missing += [f"{node['name']}.{name}" for node in ephemeral
                for name, column in node["columns"].items() if not described(column["description"])]
    assert not missing, report(missing, "ephemeral models or their columns")


def test_every_macro_and_its_arguments_are_described(artifacts) -> None:
    manifest, _ = artifacts
    macros = own(manifest["macros"])
    assert macros
    missing, undocumented_args = [], []
    for macro in macros.values():
        where = f"{macro['name']} ({macro['original_file_path']})"
        if not described(macro["description"]):
            missing.append(where)
            continue
        signature = MACRO_SIGNATURE.search(macro["macro_sql"])
        if signature is None:  # a materialization: configured, not called with arguments
            continue
        wanted = [arg.split("=")[0].strip() for arg in signature["args"].split(",")
                  if arg.strip()]
        documented = {arg["name"] for arg in macro["arguments"] if described(arg["description"])}
        undocumented_args += [f"{where}: {arg}" for arg in wanted
                              if arg not in documented and arg != "model"]
    folders = sorted({str(Path(entry.split("(")[1].rstrip(")")).parent) for entry in missing})
    assert not missing, (report(missing, "macros")
                         + "\nadd them to _<topic>__macros.yml in: " + ", ".join(folders))
    assert not undocumented_args, report(undocumented_args, "macro arguments")


def test_every_seed_is_described(artifacts) -> None:
    manifest, _ = artifacts
    seeds = own(manifest["nodes"], "seed")
    missing = [node["name"] for node in seeds.values() if not described(node["description"])]
    missing += [f"{node['name']}.{name}" for node in seeds.values()
                for name, column in node["columns"].items() if not described(column["description"])]
    assert not missing, report(missing, "seeds or seed columns")


def test_exposures_have_owner_maturity_url_and_lineage(artifacts) -> None:
    manifest, _ = artifacts
    exposures = own(manifest["exposures"])
    names = {node["name"] for node in exposures.values()}
    assert {"machine_dashboard", "energy_dashboard", "alerts_dashboard",
            "webapp_live_status"} <= names
    for node in exposures.values():
        assert described(node["description"]), node["name"]
        assert node["owner"].get("name") and node["owner"].get("email"), node["name"]
        assert node["maturity"] in ("low", "medium", "high"), node["name"]
        assert str(node.get("url") or "").startswith("https://"), node["name"]
        parents = node["depends_on"]["nodes"]
        assert parents and all(uid.startswith("model.setu.") for uid in parents), node["name"]


def test_every_exposure_reaches_a_bronze_source(artifacts) -> None:
    """Lineage: walking up from each exposure's models ends at bronze.* sources."""
    manifest, _ = artifacts
    parents = manifest["parent_map"]
    for uid in own(manifest["exposures"]):
        seen, stack, sources = set(), [uid], set()
        while stack:
            current = stack.pop()
            for parent in parents.get(current, []):
                if parent.startswith("source.setu.bronze."):
                    sources.add(parent)
                elif parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        assert sources, f"{uid} has no Bronze source upstream"


def test_overview_and_shared_doc_blocks(artifacts) -> None:
    manifest, _ = artifacts
    docs = {node["name"]: node for node in own(manifest["docs"]).values()}
    overview = docs["__overview__"]["block_contents"]
    assert "medallion" in overview.lower() and "watermark" in overview.lower()
    for name in ("machine_id", "local_date", "bronze_id", "etl_batch_id"):
        assert name in docs, f"shared doc block {name} is missing from models/_shared__docs.md"


def test_every_configured_project_path_exists() -> None:
    """dbt skips a missing folder in silence: a path to nowhere hides resources, not errors."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    configured = {key: project[key] for key in project if key.endswith("-paths")}
    assert {"model-paths", "seed-paths", "test-paths", "analysis-paths"} <= set(configured)
    missing = [f"{key}: {path}" for key, paths in configured.items() for path in paths
               if not (PROJECT_DIR / path).is_dir()]
    assert not missing, "dbt_project.yml names folders that do not exist: " + ", ".join(missing)
