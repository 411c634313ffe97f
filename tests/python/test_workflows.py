"""The GitHub Actions workflows (.github/workflows/) are valid and do what CI relies on.

actionlint cannot be installed from the package registries these machines reach (the PyPI
wrapper downloads its binary from GitHub at install time), so the workflows are checked
against the GitHub workflow JSON schema that check-jsonschema ships (SchemaStore's), plus the
checks below: every run script parses with bash, every `setu` verb exists, the dbt
selectors parse, actions are pinned, and no untrusted expression is spliced into a script.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from setu.cli import main
from setu.warehouse.paths import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# Contexts an attacker controls (branch names, PR titles, ...): never inside a run script.
UNTRUSTED = re.compile(r"\$\{\{\s*github\.(event|head_ref|base_ref)\b")


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def scripts(workflow: dict) -> list[str]:
    return [step["run"] for step in steps(workflow) if "run" in step]


def test_both_workflows_exist() -> None:
    assert {path.name for path in FILES} >= {"pr.yml", "scheduled.yml"}


def test_workflows_match_the_github_workflow_schema() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (dev extra) not installed")
    completed = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_run_scripts_parse_and_splice_nothing_untrusted(path: Path, tmp_path: Path) -> None:
    workflow = load(path)
    for index, script in enumerate(scripts(workflow)):
        assert not UNTRUSTED.search(script), f"{path.name}: pass it through env: {script!r}"
        file = tmp_path / f"step{index}.sh"
        # Expressions are replaced by the runner before bash sees the script.
        file.write_text(re.sub(r"\$\{\{[^}]*\}\}", "x", script))
        check = subprocess.run(["bash", "-n", str(file)], capture_output=True, text=True)
        assert check.returncode == 0, f"{path.name}: {check.stderr}\n{script}"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_actions_are_pinned_and_jobs_bounded(path: Path) -> None:
    workflow = load(path)
    for step in steps(workflow):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]
    for name, job in workflow["jobs"].items():
        assert job.get("timeout-minutes"), f"{path.name}: job {name} has no timeout"
        image = job["services"]["timescaledb"]["image"]
        assert image.startswith("timescale/timescaledb:") and "pg15" in image
    assert workflow["permissions"]["contents"] == "read"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_setu_verb_exists(path: Path) -> None:
    verbs = set()
    for script in scripts(load(path)):
        words = shlex.split(script.replace("\\\n", " "), comments=True)
        verbs |= {words[i + 1] for i, word in enumerate(words[:-1]) if word == "setu"}
    assert verbs, f"{path.name} runs no setu command"
    unknown = verbs - set(main.commands)
    assert not unknown, f"{path.name}: unknown setu commands {unknown}"


def test_pr_lints_changed_sql_and_builds_the_modified_subgraph() -> None:
    text = "\n".join(scripts(load(WORKFLOWS / "pr.yml")))
    assert "sqlfluff lint" in text and "git diff --name-only" in text
    assert "setu build --select state:modified+ --defer --state state" in text
    assert "gh run download" in text and "--name dbt-state" in text


def test_scheduled_runs_freshness_build_validate_docs_and_keeps_the_state() -> None:
    workflow = load(WORKFLOWS / "scheduled.yml")
    assert workflow["on"]["schedule"][0]["cron"]
    text = "\n".join(scripts(workflow))
    order = [text.index(command) for command in (
        "setu source freshness", "setu build", "setu validate", "setu docs generate")]
    assert order == sorted(order)
    uploads = {step["with"]["name"]: step["with"]["path"] for step in steps(workflow)
               if step.get("uses", "").startswith("actions/upload-artifact@")}
    assert "target/manifest.json" in uploads["dbt-state"]
    assert "dbt-docs" in uploads and "gx-data-docs" in uploads


def test_pr_selectors_parse_against_a_manifest(cluster, dbt_run, tmp_path: Path) -> None:
    """The state selectors of pr.yml, run by dbt against a real manifest (no database)."""
    from analyst_build import small_build

    state = tmp_path / "state"
    state.mkdir()
    build = small_build(cluster, dbt_run)
    (state / "manifest.json").write_text((build.target_path / "manifest.json").read_text())
    target = ["--target-path", str(tmp_path / "target")]
    for selection in (["--select", "state:modified+"],
                      ["--select", "+state:modified+", "--exclude", "state:modified+"]):
        assert dbt_run(["--quiet", "ls", *selection, "--state", str(state), *target]) == 0
    assert json.loads((state / "manifest.json").read_text())["nodes"]
