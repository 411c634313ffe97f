#!/usr/bin/env bash
# Sets up SETU on a Debian 12 machine from nothing: PostgreSQL 15 with pg_cron,
# TimescaleDB (Apache edition, built from Debian's source package), and the Python virtual
# environment in .venv. Idempotent: a second run checks and skips everything in seconds.
#
#   bash scripts/setup.sh
#
# Runs as root, or as a user with sudo (for apt and `make install` only). See docs/setup.md.
#
# Knobs, for developers of this script:
#   SETU_FORCE_TIMESCALEDB_BUILD=1   build TimescaleDB even when it is installed
#   SETU_TIMESCALEDB_DESTDIR=/path   install the build into a staging folder, not the system
#   SETU_KEEP_BUILD=1                keep the TimescaleDB work folder for inspection
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
TIMESCALEDB_SERIES=2.19
# Debian's next release, whose source package carries TimescaleDB 2.19 (Apache-licensed parts).
TIMESCALEDB_SUITE=trixie
TS_WORK=/var/tmp/setu-timescaledb
APT_PACKAGES=(
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
    "postgresql-$PG_MAJOR-cron"
    cmake gcc make xz-utils
    # headless browser for the dbt docs lineage test and `setu report --png`
    chromium
    # the Spark runtime of the lake models (dbt-spark, `session` method; docs/lake.md)
    openjdk-17-jre-headless
)

START=$SECONDS
log() { printf '[setup %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf '[setup %4ds] error: %s\n' "$((SECONDS - START))" "$*" >&2; exit 1; }

[[ -f $ROOT/pyproject.toml && -f $ROOT/dbt_project.yml ]] || die "$ROOT is not a SETU checkout"
if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "run as root, or install sudo: apt packages and TimescaleDB need root to install"
fi
export DEBIAN_FRONTEND=noninteractive

installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# -- Python 3.11 -----------------------------------------------------------------------------

# Prints the path of a Python 3.11 interpreter that can create virtual environments.
find_python() {
    local candidate exe
    for candidate in python3.11 python3 /usr/bin/python3.11; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        exe=$("$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
        "$exe" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || continue
        "$exe" -c 'import ensurepip, venv' 2>/dev/null || continue
        printf '%s\n' "$exe"
        return 0
    done
    return 1
}

# -- apt packages ----------------------------------------------------------------------------

install_apt_packages() {
    local missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        installed "$package" || missing+=("$package")
    done
    if ! find_python >/dev/null; then
        # Debian's own 3.11 lacks ensurepip until python3-venv is installed.
        installed python3-venv || missing+=(python3-venv)
    fi
    if ((${#missing[@]} == 0)); then
        log "apt: all ${#APT_PACKAGES[@]} packages present"
        return
    fi
    if [[ " ${missing[*]} " == *" postgresql-server-dev-$PG_MAJOR "* ]] \
        && [[ " ${missing[*]} " != *" postgresql-$PG_MAJOR "* ]]; then
        # Upgrade the server with its headers, so TimescaleDB is built for the running minor.
        missing+=("postgresql-$PG_MAJOR")
    fi
    # SETU runs its own cluster (`setu db start`); the Debian package's main cluster would only
    # take memory and port 5432. postgresql-common reads this before creating it.
    if [[ ! -e /etc/postgresql-common/createcluster.d/50-setu.conf ]]; then
        "${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
        printf '%s\n' "# Written by SETU's scripts/setup.sh: SETU runs its own cluster." \
            "create_main_cluster = false" |
            "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/50-setu.conf >/dev/null
    fi
    local began=$SECONDS
    log "apt: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "apt: installed in $((SECONDS - began)) s"
}

# -- TimescaleDB, Apache edition, from Debian's source package --------------------------------

# Prints the archive URI of the machine's own Debian sources (not the security archive).
debian_archive_uri() {
    local file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -r $file ]] || continue
        uri=$(grep -v '^[[:space:]]*#' "$file" | awk '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/) types = $i
                    if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                }
                if (types !~ /deb/) next
                n = split(uris, list, /[ \t]+/)
                for (j = 1; j <= n; j++) if (list[j] ~ /\/debian\/?$/) { print list[j]; exit }
            }')
        [[ -n $uri ]] && { printf '%s\n' "$uri"; return 0; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $file ]] || continue
        uri=$(awk '
            $1 == "deb" || $1 == "deb-src" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($i ~ /\/debian\/?$/) { print $i; exit }
            }' "$file")
        [[ -n $uri ]] && { printf '%s\n' "$uri"; return 0; }
    done
    return 1
}

install_timescaledb() {
    local sharedir control
    sharedir=$("$PG_CONFIG" --sharedir)
    control=$sharedir/extension/timescaledb.control
    if [[ -e $control && ${SETU_FORCE_TIMESCALEDB_BUILD:-0} != 1 ]]; then
        log "timescaledb: installed ($(sed -n "s/^default_version = '\(.*\)'/\1/p" "$control"))"
        return
    fi
    local uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    uri=$(debian_archive_uri) || die "no Debian archive in /etc/apt/sources.list(.d): cannot fetch TimescaleDB's source"
    log "timescaledb: building ${TIMESCALEDB_SERIES}.x from Debian $TIMESCALEDB_SUITE's source package"

    # A private deb-src list, so the machine's apt sources stay as they are.
    "${SUDO[@]}" rm -rf "$TS_WORK"
    "${SUDO[@]}" mkdir -p "$TS_WORK/sources" "$TS_WORK/lists/partial" "$TS_WORK/download"
    {
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n' "$uri" "$TIMESCALEDB_SUITE"
        [[ -r $keyring ]] && printf 'Signed-By: %s\n' "$keyring"
    } | "${SUDO[@]}" tee "$TS_WORK/sources/setu-timescaledb.sources" >/dev/null
    # apt downloads as its unprivileged _apt user, when that user may write the folder.
    if id _apt >/dev/null 2>&1; then
        "${SUDO[@]}" chown _apt "$TS_WORK/download"
    fi
    local apt_private=(
        -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$TS_WORK/sources"
        -o "Dir::State::Lists=$TS_WORK/lists"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    )
    local began=$SECONDS
    "${SUDO[@]}" apt-get "${apt_private[@]}" update -qq
    (cd "$TS_WORK/download" &&
        "${SUDO[@]}" apt-get "${apt_private[@]}" source --download-only -qq timescaledb >/dev/null)
    local tarball
    tarball=$(find "$TS_WORK/download" -maxdepth 1 -name 'timescaledb_*.orig.tar.*' | head -n 1)
    [[ -n $tarball ]] || die "Debian $TIMESCALEDB_SUITE offered no timescaledb source tarball"
    local version=${tarball##*/timescaledb_}
    version=${version%%[+.]orig*}
    version=${version%%+*}
    [[ $version == "$TIMESCALEDB_SERIES".* ]] ||
        die "Debian $TIMESCALEDB_SUITE offers TimescaleDB $version, SETU expects $TIMESCALEDB_SERIES.x"
    log "timescaledb: downloaded $version source in $((SECONDS - began)) s"

    local build=$TS_WORK/src
    "${SUDO[@]}" mkdir -p "$build"
    "${SUDO[@]}" chown -R "$(id -u):$(id -g)" "$build"
    tar -xf "$tarball" -C "$build" --strip-components=1
    began=$SECONDS
    # APACHE_ONLY: the Debian source is the Apache-licensed part only (no tsl/ folder).
    cmake -S "$build" -B "$build/build" -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF -DSEND_TELEMETRY_DEFAULT=NO \
        -DPG_CONFIG="$PG_CONFIG" -DCMAKE_BUILD_TYPE=Release >"$TS_WORK/cmake.log" 2>&1 ||
        { tail -n 30 "$TS_WORK/cmake.log" >&2; die "timescaledb: cmake failed (log: $TS_WORK/cmake.log)"; }
    log "timescaledb: configured in $((SECONDS - began)) s"
    began=$SECONDS
    make -C "$build/build" -j "$(nproc)" >"$TS_WORK/make.log" 2>&1 ||
        { tail -n 30 "$TS_WORK/make.log" >&2; die "timescaledb: make failed (log: $TS_WORK/make.log)"; }
    log "timescaledb: compiled in $((SECONDS - began)) s"
    began=$SECONDS
    "${SUDO[@]}" make -C "$build/build" install DESTDIR="${SETU_TIMESCALEDB_DESTDIR:-}" \
        >"$TS_WORK/install.log" 2>&1 ||
        { tail -n 30 "$TS_WORK/install.log" >&2; die "timescaledb: make install failed"; }
    log "timescaledb: installed $version${SETU_TIMESCALEDB_DESTDIR:+ into $SETU_TIMESCALEDB_DESTDIR} in $((SECONDS - began)) s"
    if [[ ${SETU_KEEP_BUILD:-0} != 1 ]]; then
        "${SUDO[@]}" rm -rf "$TS_WORK"
    fi
}

# -- Python virtual environment --------------------------------------------------------------

setup_venv() {
    local venv=$ROOT/.venv python stamp
    python=$(find_python) || die "no Python 3.11 with venv support found (python3.11, python3)"
    stamp="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x $venv/bin/python && -x $venv/bin/setu && -f $venv/.setu-stamp ]] \
        && [[ $(cat "$venv/.setu-stamp") == "$stamp" ]] \
        && "$venv/bin/python" -c 'import setu' 2>/dev/null; then
        log "venv: up to date ($venv)"
        return
    fi
    local began=$SECONDS
    if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        rm -rf "$venv"
        "$python" -m venv "$venv"
        log "venv: created with $python"
    fi
    # -qq: errors only (a machine's pip.conf may name wheel folders that do not exist).
    local pip_flags=(--disable-pip-version-check -qq)
    [[ -t 1 ]] || pip_flags+=(--progress-bar off)
    "$venv/bin/pip" install "${pip_flags[@]}" -e "${ROOT}[dev,validate,lake]"
    printf '%s\n' "$stamp" >"$venv/.setu-stamp"
    log "venv: installed SETU, its dev tools, the validate and lake extras in $((SECONDS - began)) s"
}

log "setting up SETU in $ROOT"
install_apt_packages
install_timescaledb
setup_venv
log "done: run \`bash scripts/dev.sh demo\` or \`bash scripts/dev.sh test\`"
