"""`setu validate`: a Great Expectations checkpoint over Silver, Gold and serving.

The suites are code (setu/expectations.py); this module turns them into a GX Core 1.x file
context under SETU's git-ignored state folder (`.setu/gx/`: suites, checkpoint, validation
history and Data Docs), runs one checkpoint against the dbt profile's target and reports.

Success needs both: the checkpoint's `success`, and no expectation that raised. A query that
fails (a missing table or column, a lost connection) does not raise out of GX: it comes back
as an unsuccessful result with `exception_info`, so every result is inspected.

The connection string reaches GX through an environment variable that the context's config
names (`${SETU_GX_CONNECTION_STRING}`), so no password is written to disk.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from setu.ops.expectations import SuiteSpec, format_kwargs, suite_specs
from setu.warehouse.paths import state_dir
from setu.warehouse.profile import Target, load_target

CONNECTION_ENV = "SETU_GX_CONNECTION_STRING"
DATASOURCE = "setu"
CHECKPOINT = "setu_silver_gold"
EXIT_PASSED, EXIT_FAILED = 0, 1


def gx_root() -> Path:
    """Where GX keeps its project folder `gx/` (suites, checkpoint, validation history, Data
    Docs): SETU's git-ignored state folder."""
    return state_dir()


def sqlalchemy_url(target: Target) -> str:
    """The profile's target as a SQLAlchemy URL for psycopg2, password included."""
    from sqlalchemy.engine import URL

    query = {"application_name": "setu validate", "connect_timeout": "10"}
    if target.sslmode:
        query["sslmode"] = target.sslmode
    url = URL.create("postgresql+psycopg2", username=target.user,
                     password=target.password or None, host=target.host, port=target.port,
                     database=target.dbname, query=query)
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Failure:
    """One expectation that failed or raised."""

    relation: str
    expectation: str
    detail: str

    def line(self) -> str:
        return f"FAILED {self.relation}: {self.expectation}: {self.detail}"


@dataclass
class Outcome:
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)
    checkpoint_success: bool = False
    data_docs: Path | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return self.error is None and self.checkpoint_success and not self.failures


def raised_message(exception_info: Any) -> str | None:
    """The first exception message in a result's exception_info, or None when nothing raised.

    GX reports either {"raised_exception": ..., "exception_message": ...} or, when a metric
    failed, {metric id: {"raised_exception": ..., ...}, ...}.
    """
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message") or "raised an exception")
    for value in exception_info.values():
        message = raised_message(value)
        if message is not None:
            return message
    return None


def first_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else str(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_failure(result: Any) -> str:
    """Why one unsuccessful expectation result failed, in a few words."""
    message = raised_message(result.exception_info)
    if message is not None:
        return f"raised {first_line(message)}"
    details = result.result or {}
    if "observed_value" in details and "unexpected_count" not in details:
        return f"observed {details['observed_value']}"
    unexpected = details.get("unexpected_count")
    total = details.get("element_count")
    examples = details.get("partial_unexpected_list") or []
    text = f"{unexpected} of {total} rows unexpected" if unexpected is not None else "failed"
    if examples:
        text += " (e.g. " + ", ".join(repr(value) for value in examples[:3]) + ")"
    return text


def expectation_name(config: Any) -> str:
    kwargs = {key: value for key, value in dict(config.kwargs).items()
              if key not in ("batch_id", "result_format")}
    return f"{config.type}({format_kwargs(kwargs)})"


# GX's stores of the configuration that this module rebuilds from code on every run; the
# validation results and Data Docs under uncommitted/ are kept.
REBUILT_STORES = ("expectations", "validation_definitions", "checkpoints")


def _context(root: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    root.mkdir(parents=True, exist_ok=True)
    # A checkpoint of an earlier run may name relations this run does not validate (--select)
    # or suites that no longer exist: start from none.
    for store in REBUILT_STORES:
        shutil.rmtree(root / "gx" / store, ignore_errors=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False,
                                                         metric_calculations=False)
    context.variables.analytics_enabled = False
    context.variables.save()
    return context


def run_validation(target: str | None = None, specs: list[SuiteSpec] | None = None,
                   root: Path | None = None) -> Outcome:
    """Build the suites and the checkpoint, run it, and collect what failed or raised."""
    with warnings.catch_warnings():
        # One datasource serves three schemas, so each table asset names its schema, which
        # GX 1.x deprecates in favour of one schema per connection.
        warnings.filterwarnings("ignore", message=".*schema_name.* is deprecated",
                                category=DeprecationWarning)
        return _run_validation(target, specs, root)


def _run_validation(target: str | None, specs: list[SuiteSpec] | None,
                    root: Path | None) -> Outcome:
    # Before GX is imported: no usage statistics leave this machine.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.datasource.fluent.interfaces import TestConnectionError

    from setu.ops.expectations import build_suites

    started = time.perf_counter()
    outcome = Outcome()
    settings = load_target(target)
    specs = suite_specs() if specs is None else specs
    os.environ[CONNECTION_ENV] = sqlalchemy_url(settings)
    context = _context(root or gx_root())
    try:
        datasource = context.data_sources.add_or_update_postgres(
            name=DATASOURCE, connection_string="${" + CONNECTION_ENV + "}")
    except TestConnectionError as exc:
        # psycopg2's first line ends in the cause ("... failed: Connection refused").
        reason = first_line(str(exc.__cause__ or exc)).rsplit(" failed: ", 1)[-1]
        hint = " (start it with `setu db start`)" if settings.is_embedded else ""
        outcome.error = (f"cannot reach target {settings.name!r} at {settings.host}:"
                         f"{settings.port}/{settings.dbname}{hint}: {reason}")
        outcome.seconds = time.perf_counter() - started
        return outcome

    definitions = []
    for relation, suite in build_suites(specs).items():
        schema, table = relation.split(".", 1)
        asset = datasource.add_table_asset(name=relation, table_name=table, schema_name=schema)
        batch = asset.add_batch_definition_whole_table("whole_table")
        suite = context.suites.add_or_update(suite)
        definitions.append(context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=relation, data=batch, suite=suite)))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=CHECKPOINT, validation_definitions=definitions,
        actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
        result_format="SUMMARY"))

    result = checkpoint.run()
    outcome.checkpoint_success = bool(result.success)
    for suite_result in result.run_results.values():
        relation = suite_result.suite_name
        for item in suite_result.results:
            outcome.evaluated += 1
            if item.success and raised_message(item.exception_info) is None:
                continue
            outcome.failures.append(Failure(relation, expectation_name(item.expectation_config),
                                            describe_failure(item)))
    if not outcome.checkpoint_success and not outcome.failures:
        outcome.error = "the checkpoint failed without a failing expectation (see Data Docs)"
    outcome.data_docs = _docs_index(context)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _docs_index(context: Any) -> Path | None:
    for site in context.get_docs_sites_urls():
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            return Path(url.removeprefix("file://"))
    return None


@click.command("validate")
@click.option("--target", help="dbt target to validate (default: the profile's target)")
@click.option("--select", "selected", multiple=True, metavar="RELATION",
              help="only this relation, e.g. gold.energy_daily (repeatable)")
@click.option("--list", "list_only", is_flag=True,
              help="print every expectation and exit, without connecting")
def validate(target: str | None, selected: tuple[str, ...], list_only: bool) -> None:
    """Check Silver, Gold and serving with Great Expectations; exit 1 on any failure.

    Runs one checkpoint of the suites in setu/expectations.py (keys not null, code lists,
    physical ranges, every measure finite: no NaN or ±Infinity, utilization 0..100, rows in
    the core facts) against the dbt profile's
    target. Each failing expectation, or one that could not run, is printed on one line.
    Data Docs (every run, browsable) are written under .setu/gx/uncommitted/data_docs/.
    """
    from setu.ops.expectations import describe

    specs = suite_specs()
    if selected:
        known = {spec.relation for spec in specs}
        unknown = sorted(set(selected) - known)
        if unknown:
            raise click.BadParameter(f"no suite for {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(known))}", param_hint="--select")
        specs = [spec for spec in specs if spec.relation in selected]
    if list_only:
        for spec in specs:
            for rule in spec.rules:
                click.echo(f"{spec.relation}: {describe(rule)}")
        return
    # Only running the suites needs Great Expectations (seconds to import): listing does not.
    try:
        import great_expectations  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "setu validate needs Great Expectations: pip install 'setu[validate]' "
            "(scripts/setup.sh installs it)") from None

    outcome = run_validation(target, specs)
    if outcome.error:
        click.echo(f"error: {outcome.error}", err=True)
    for failure in outcome.failures:
        click.echo(failure.line(), err=True)
    failed = len(outcome.failures)
    if outcome.evaluated == 0:
        click.echo("setu validate FAILED: no expectation could run")
    else:
        verdict = "passed" if outcome.success else "FAILED"
        click.echo(f"setu validate {verdict}: {outcome.evaluated - failed} of "
                   f"{outcome.evaluated} expectations met on {len(specs)} relations in "
                   f"{outcome.seconds:.1f} s")
    if outcome.data_docs is not None:
        click.echo(f"Data Docs: {outcome.data_docs}")
    sys.exit(EXIT_PASSED if outcome.success else EXIT_FAILED)
