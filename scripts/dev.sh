#!/usr/bin/env bash
# The README's two commands, each from a bare Debian 12 machine (they run scripts/setup.sh):
#
#   bash scripts/dev.sh demo   start the embedded database and build the warehouse on a
#                              simulated fleet
#   bash scripts/dev.sh test   lint (sqlfluff, ruff) and run the Python tests (pytest);
#                              exits non-zero when any of them fails, as CI's .ci/run does
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SETU=$ROOT/.venv/bin/setu
PY=$ROOT/.venv/bin/python
START=$SECONDS

log() { printf '[dev %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf '[dev %4ds] error: %s\n' "$((SECONDS - START))" "$*" >&2; exit 1; }

if [[ ! -t 1 ]]; then
    # CI and logs: no colour codes from rich, pytest, ruff or sqlfluff.
    export NO_COLOR=1 TERM=dumb DBT_USE_COLORS=false
fi

usage() {
    sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 2
}

has_setu_command() {
    "$PY" -c 'import sys; from setu.cli import main; sys.exit(sys.argv[1] not in main.commands)' "$1"
}

demo() {
    bash "$ROOT/scripts/setup.sh"
    if has_setu_command demo; then
        log "setu demo"
        "$SETU" demo
    else
        log "setu demo is not there yet: setu db start && setu build"
        "$SETU" db start
        "$SETU" build
    fi
    log "demo finished"
}

FAILED=()

# Runs one named check, timing it; a failure is recorded and the remaining checks still run.
check() {
    local name=$1 began=$SECONDS rc=0
    shift
    log "$name: running"
    "$@" || rc=$?
    if ((rc == 0)); then
        log "$name: passed in $((SECONDS - began)) s"
    else
        log "$name: FAILED (exit $rc) in $((SECONDS - began)) s"
        FAILED+=("$name")
    fi
    return 0
}

sqlfluff_lint() {
    local paths=() path
    for path in models macros analyses tests; do
        [[ -d $path ]] && paths+=("$path")
    done
    # The dbt templater reads the profile that `setu` writes (.sqlfluff names its folder);
    # when the profile lives elsewhere (DBT_PROFILES_DIR, ~/.dbt) sqlfluff is told so.
    local profiles extra=()
    profiles=$("$PY" -c 'from setu.warehouse.profile import profiles_dir; print(profiles_dir())')
    if [[ $profiles != "$ROOT/.setu/profiles" ]]; then
        printf '[sqlfluff:templater:dbt]\nprofiles_dir = %s\n' "$profiles" >"$ROOT/.setu/sqlfluff-profiles.cfg"
        extra=(--config "$ROOT/.setu/sqlfluff-profiles.cfg")
    fi
    local color=()
    [[ -t 1 ]] || color=(--nocolor)
    "$ROOT/.venv/bin/sqlfluff" lint "${color[@]}" "${extra[@]}" "${paths[@]}"
}

pytest_run() {
    local rc=0
    "$ROOT/.venv/bin/pytest" "$@" || rc=$?
    if ((rc == 5)); then
        echo "pytest collected no tests: that is a failure here, not a pass" >&2
    fi
    return "$rc"
}

run_tests() {
    bash "$ROOT/scripts/setup.sh"
    # The sqlfluff dbt templater compiles models, which needs the embedded database. Leave it
    # as it was found: stop it afterwards only when this run started it.
    if ! "$SETU" db status >/dev/null 2>&1; then
        trap '"$SETU" db stop >/dev/null 2>&1 || true' EXIT
    fi
    "$SETU" db start
    check sqlfluff sqlfluff_lint
    check ruff "$ROOT/.venv/bin/ruff" check src tests
    check pytest pytest_run "$@"
    if ((${#FAILED[@]})); then
        log "test: FAILED: ${FAILED[*]}"
        exit 1
    fi
    log "test: all checks passed"
}

case "${1:-}" in
    demo) shift; demo "$@" ;;
    test) shift; run_tests "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
