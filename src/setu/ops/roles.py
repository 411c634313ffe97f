"""`setu roles`: SETU's database roles, created and granted idempotently (docs/security.md).

Five NOLOGIN group roles: ``setu_ingest`` (insert into Bronze), ``setu_etl`` (owns the
warehouse, runs dbt and the jobs), ``setu_reader`` (gold, webapp, master), ``setu_analyst``
(silver, gold) and ``setu_provision`` (registers devices through a SECURITY DEFINER
function). People and services log in as their own users and are granted one of them
with ``--grant LOGIN=ROLE``. The work is done by the dbt macro ``create_roles`` so the grants
and the project's schemas come from one place.
"""

from __future__ import annotations

import json
import sys

import click

from setu.warehouse import dbt
from setu.warehouse.profile import connect

ROLES = ("setu_ingest", "setu_etl", "setu_reader", "setu_analyst", "setu_provision")


def parse_grant(text: str) -> tuple[str, str]:
    """'alice=reader' or 'alice=setu_reader' -> ('alice', 'setu_reader')."""
    login, sep, role = text.partition("=")
    role = role.strip()
    role = role if role.startswith("setu_") else f"setu_{role}"
    if not sep or not login.strip() or role not in ROLES:
        raise click.BadParameter(
            f"{text!r}: write LOGIN=ROLE with ROLE one of {', '.join(ROLES)}"
            " (or its short name: ingest, etl, reader, analyst, provision)", param_hint="--grant")
    return login.strip(), role


@click.command("roles")
@click.option("--grant", "grants", multiple=True, metavar="LOGIN=ROLE",
              help="also make the existing login LOGIN a member of ROLE (repeatable), "
                   "e.g. --grant grafana=reader")
@click.option("--target", help="dbt target (default: the profile's)")
def roles(grants: tuple[str, ...], target: str | None) -> None:
    """Create or update SETU's roles and their privileges (idempotent; run as a superuser).

    setu_ingest inserts into Bronze; setu_etl owns the warehouse and runs dbt and the jobs;
    setu_reader reads gold, webapp and master; setu_analyst reads silver and gold;
    setu_provision registers devices (`setu provision`).
    """
    members = dict(parse_grant(text) for text in grants)
    # One clear line for an unreachable database, before dbt parses the project.
    connect(target).close()
    argv = ["run-operation", "create_roles", "--args", json.dumps({"members": members})]
    if target:
        argv += ["--target", target]
    sys.exit(dbt.run(argv))
