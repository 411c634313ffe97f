"""The lake models' SQL lint: Spark SQL, the house rules, zero violations.

`bash scripts/dev.sh test` lints models/ with the dbt templater on the postgres target, where
the lake models are disabled and so skipped; here they are linted as Spark SQL through the
Jinja templater (models/lake/sqlfluff-spark.cfg renders the one lake macro), with every other
rule from the project's .sqlfluff.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQLFLUFF = Path(sys.executable).parent / "sqlfluff"
LAKE = ROOT / "models" / "lake"


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SQLFLUFF), "lint", "--nocolor", "--templater", "jinja", "--dialect", "sparksql",
         "--config", str(LAKE / "sqlfluff-spark.cfg"), "--processes", "1",
         *map(str, paths)], cwd=ROOT, capture_output=True, text=True)


def test_lake_models_lint_clean_as_spark_sql() -> None:
    models = sorted(LAKE.glob("*.sql"))
    assert len(models) >= 8
    result = lint(*models)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lake_lint_finds_violations(tmp_path: Path) -> None:
    bad = tmp_path / "probe.sql"
    bad.write_text("SELECT plant,MACHINE_ID from {{ lake_parquet('gold', 'alerts_daily') }}\n")
    result = lint(bad)
    assert result.returncode == 1
    assert "CP01" in result.stdout and "LT01" in result.stdout
