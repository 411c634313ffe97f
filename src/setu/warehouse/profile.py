"""Connection settings, from the dbt profile: one place configures dbt and `setu` alike.

Resolution order follows dbt's own (``--profiles-dir``, ``DBT_PROFILES_DIR``, ``~/.dbt``),
except that when the user has no ``setu`` profile of their own, SETU writes one from
``profiles.example.yml`` into its state folder: dbt and `setu` then target the embedded
database.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import psycopg
import yaml

from setu.warehouse.paths import PROJECT_DIR, state_dir

PROFILE_NAME = "setu"


class ProfileError(RuntimeError):
    """A missing or invalid profile or target, phrased as what to fix."""


def _has_setu_profile(folder: Path) -> bool:
    path = folder / "profiles.yml"
    if not path.exists():
        return False
    try:
        return PROFILE_NAME in (yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError:
        return False


def generated_profiles_yml() -> Path:
    """Where SETU writes its profile when the user has none of their own."""
    return state_dir() / "profiles" / "profiles.yml"


def profiles_dir() -> Path:
    """The folder whose profiles.yml dbt and `setu` both read."""
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"])
    home_dbt = Path.home() / ".dbt"
    if _has_setu_profile(home_dbt):
        return home_dbt
    target = generated_profiles_yml()
    generated = target.parent
    example = PROJECT_DIR / "profiles.example.yml"
    if not target.exists() or target.read_bytes() != example.read_bytes():
        generated.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(example, target)
    return generated


def _env_var(name: str, default: str | None = None) -> str:
    if name in os.environ:
        return os.environ[name]
    if default is None:
        raise ProfileError(f"environment variable {name} is required by the dbt profile")
    return default


def _render(value: object) -> object:
    if isinstance(value, str) and "{{" in value:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined)
        env.filters.update(as_number=lambda v: v, as_text=str, as_bool=lambda v: v,
                           as_native=lambda v: v)
        return env.from_string(value).render(env_var=_env_var)
    if isinstance(value, dict):
        return {key: _render(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str | None = None
    profiles_yml: Path | None = None

    def conninfo(self, **overrides: object) -> str:
        params = {
            "host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname,
            "password": self.password or None, "sslmode": self.sslmode,
            "application_name": "setu",
        } | overrides
        return psycopg.conninfo.make_conninfo(
            **{key: value for key, value in params.items() if value not in (None, "")}
        )

    @property
    def is_embedded(self) -> bool:
        """The embedded cluster is the `local` target of the profile SETU generates, nothing
        else (and only while it points at loopback, where the cluster listens): a loopback
        address and a port alone say nothing (the `ci` target reads the same SETU_PG_PORT,
        and a server of one's own may listen on loopback)."""
        return (self.name == "local" and self.host in ("127.0.0.1", "localhost")
                and self.profiles_yml is not None
                and self.profiles_yml.resolve() == generated_profiles_yml().resolve())


def adapter_type(target: str | None = None) -> str:
    """The dbt adapter of a target (postgres for the warehouse, spark for the lake)."""
    path = profiles_dir() / "profiles.yml"
    try:
        profile = (yaml.safe_load(path.read_text()) or {}).get(PROFILE_NAME, {})
    except FileNotFoundError as exc:
        raise ProfileError(f"no profiles.yml in {path.parent}") from exc
    name = target or os.environ.get("SETU_TARGET") or str(_render(profile.get("target", "local")))
    return str(_render(profile.get("outputs", {}).get(name, {})).get("type", "postgres"))


def load_target(target: str | None = None) -> Target:
    path = profiles_dir() / "profiles.yml"
    try:
        profiles = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ProfileError(f"no profiles.yml in {path.parent}") from exc
    if PROFILE_NAME not in profiles:
        raise ProfileError(f"{path} has no profile named {PROFILE_NAME!r}")
    profile = profiles[PROFILE_NAME]
    name = target or os.environ.get("SETU_TARGET") or str(_render(profile.get("target", "local")))
    outputs = profile.get("outputs", {})
    if name not in outputs:
        raise ProfileError(
            f"target {name!r} is not in profile {PROFILE_NAME!r} ({path}); "
            f"known targets: {', '.join(sorted(outputs))}"
        )
    output = _render(outputs[name])
    try:
        return Target(
            name=name, host=str(output["host"]), port=int(output.get("port", 5432)),
            user=str(output["user"]), password=str(output.get("password") or ""),
            dbname=str(output.get("dbname") or output.get("database")),
            sslmode=output.get("sslmode"), profiles_yml=path,
        )
    except KeyError as exc:
        raise ProfileError(f"target {name!r} in {path} lacks the setting {exc.args[0]!r}") from exc


def connect(target: str | None = None, autocommit: bool = False, **overrides: object
            ) -> psycopg.Connection:
    """A psycopg 3 connection to the profile's target, with a clear error when unreachable."""
    settings = load_target(target)
    try:
        return psycopg.connect(settings.conninfo(**overrides), autocommit=autocommit,
                               connect_timeout=10)
    except psycopg.OperationalError as exc:
        # psycopg's first line ends in the cause ("... failed: Connection refused"); the
        # further lines are libpq's generic hints.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].rsplit(" failed: ", 1)[-1] if lines else "no answer"
        hint = " (start it with `setu db start`)" if settings.is_embedded else ""
        raise ProfileError(
            f"cannot connect to target {settings.name!r} at {settings.host}:{settings.port}"
            f"/{settings.dbname}{hint}: {reason}"
        ) from exc
