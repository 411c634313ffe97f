"""The contract's "nothing is lost", counted: every Bronze id in exactly one place, its
Silver fact or the quarantine (the fact map comes from the contract). `setu demo` and
`setu soak` print it; the dbt test `reconciles_with_silver` holds the same rule per source."""

from __future__ import annotations

from typing import NamedTuple

import psycopg

from setu.warehouse import contract


class Reconciled(NamedTuple):
    """One Bronze table's ids in a range, by where they are."""

    rows: int
    once: int  # in exactly one row of the Silver fact or the quarantine
    missing: int  # processed (at or below the watermark) and in none: lost
    several: int  # in more than one
    unprocessed: int  # above the watermark: the pipeline has not reached them yet


def reconcile(conn: psycopg.Connection, after: dict[str, int] | None = None,
              upto: dict[str, int] | None = None) -> dict[str, Reconciled]:
    """Per Bronze table, over ids in (after, upto] (all ids when not given), where a place
    is a row of its Silver fact or of the quarantine."""
    after = after or {}
    upto = upto or {}
    result = {}
    for table, fact in contract.bronze_to_fact().items():
        watermark = conn.execute(
            "select coalesce(min(last_processed_id), 0) from _etl.watermarks"
            " where model_name = %s and source_name = %s", (fact, f"bronze.{table}"),
        ).fetchone()[0]
        params = {"table": table, "low": after.get(table, 0),
                  "high": upto.get(table, 2**63 - 1),
                  "watermark": watermark}
        result[table] = Reconciled(*conn.execute(
            f"""
            with placed as (
                select bronze_id from silver.{fact}
                where bronze_id > %(low)s and bronze_id <= %(high)s
                union all
                select bronze_id from silver.quarantine
                where source_table = %(table)s and bronze_id > %(low)s
                    and bronze_id <= %(high)s
            ),

            counted as (
                select bronze_id, count(*) as places from placed group by bronze_id
            )

            select
                count(*),
                count(*) filter (where counted.places = 1),
                count(*) filter (
                    where counted.places is null and bronze.id <= %(watermark)s
                ),
                count(*) filter (where counted.places > 1),
                count(*) filter (
                    where counted.places is null and bronze.id > %(watermark)s
                )
            from bronze.{table} as bronze
            left join counted on bronze.id = counted.bronze_id
            where bronze.id > %(low)s and bronze.id <= %(high)s
            """, params).fetchone())
    return result
