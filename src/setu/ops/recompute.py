"""`setu recompute master.TABLE`: rebuild what a change of master data affects.

Silver and Gold read master data as it stands when a batch is computed, and an incremental
run computes only new Bronze rows: a new or corrected row of a master table (a device's
calibration, a machine's site, a downtime reason's `planned` flag) leaves the rows built
before it as they were. This command rebuilds every stored model that reads the table,
directly or through other models, so the warehouse equals a full refresh again.

The models come from dbt's manifest lineage (the source's descendants that keep rows: not
views, not ephemeral models), never from a hand-kept list, so a new model that reads master
data is covered the day it is written. See docs/architecture.md, "Master data changes".
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import click

from setu.warehouse import dbt

# Materializations that keep no rows of their own: their readers are what needs rebuilding.
STATELESS = frozenset({"view", "ephemeral"})


class RecomputeError(RuntimeError):
    """A relation that is no master table of the project, phrased as what to do."""


def master_sources(manifest: Any) -> dict[str, str]:
    """schema.table -> unique_id of every source in the master schema."""
    return {
        f"{source.schema}.{source.identifier or source.name}": unique_id
        for unique_id, source in manifest.sources.items()
        if source.schema == "master"
    }


def affected_models(manifest: Any, relation: str) -> list[tuple[str, str]]:
    """(schema.relation, model name) of the stored models that read relation, directly or
    through other models, parents first."""
    sources = master_sources(manifest)
    if relation not in sources:
        raise RecomputeError(
            f"{relation} is not a master table of this project; choose one of "
            f"{', '.join(sorted(sources))}"
        )
    seen: set[str] = set()
    queue = deque([sources[relation]])
    while queue:
        for child in manifest.child_map.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    models = [
        manifest.nodes[unique_id]
        for unique_id in seen
        if unique_id.startswith("model.")
        and manifest.nodes[unique_id].config.materialized not in STATELESS
    ]
    depth = _depths(manifest, {model.unique_id for model in models})
    return [
        (f"{model.schema}.{model.alias or model.name}", model.name)
        for model in sorted(models, key=lambda node: (depth[node.unique_id], node.name))
    ]


def _depths(manifest: Any, unique_ids: set[str]) -> dict[str, int]:
    """Longest path from a selected node's selected ancestors: a model sorts after them."""
    depth: dict[str, int] = {}

    def of(unique_id: str) -> int:
        if unique_id not in depth:
            parents = [
                parent for parent in manifest.parent_map.get(unique_id, ()) if parent in unique_ids
            ]
            depth[unique_id] = 1 + max(map(of, parents), default=-1)
        return depth[unique_id]

    for unique_id in unique_ids:
        of(unique_id)
    return depth


def parse_manifest() -> Any:
    """The project's manifest, parsed in-process (dbt's partial parsing keeps it fast)."""
    result = dbt.invoke(["--quiet", "parse"])
    if not result.success or result.result is None:
        raise RecomputeError(
            f"dbt could not parse the project: {result.exception}; run `setu parse` for the details"
        )
    return result.result


@click.command("recompute")
@click.argument("relation", metavar="master.TABLE")
@click.option(
    "--no-run",
    is_flag=True,
    help="Only list the models the change affects and the dbt command that rebuilds them.",
)
@click.option("--target", help="dbt target (default: the profile's target).")
def recompute(relation: str, no_run: bool, target: str | None) -> None:
    """Rebuild every Silver and Gold model that reads master.TABLE after you changed it.

    Incremental runs read master data as it stands when they compute a batch, so rows built
    before a change keep the old values (e.g. value_mm after a new row in
    master.device_calibrations). This finds the stored models downstream of the table in
    dbt's lineage and rebuilds them with `dbt run --full-refresh`, after which they equal a
    full refresh of the warehouse. Example: setu recompute master.device_calibrations
    """
    from rich.console import Console

    err = Console(stderr=True, soft_wrap=True, highlight=False)
    relation = relation.strip().lower()
    if "." not in relation:
        relation = f"master.{relation}"
    try:
        models = affected_models(parse_manifest(), relation)
    except RecomputeError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
    argv = ["run", "--full-refresh", "--select", *(name for _, name in models)]
    if target:
        argv += ["--target", target]
    click.echo(
        f"{relation}: read by {len(models)} stored model(s): "
        f"{', '.join(shown for shown, _ in models)}"
    )
    if not models:
        raise SystemExit(0)
    if no_run:
        click.echo(f"rebuild them with: setu {' '.join(argv)}")
        raise SystemExit(0)
    from setu.warehouse.preflight import ensure_database

    ensure_database(target)
    with dbt.warehouse_lock(target):
        sys.exit(dbt.run(argv))
