"""`setu provision`: verify platform-extension startup messages and register the devices.

A device announces itself with one JSON object per line::

    {"device_serial": "PX-00017", "time": "2026-05-04T06:00:00Z", "firmware": "2.4.1",
     "signature": "<64 hex digits>"}

``signature`` is the lowercase or uppercase hex HMAC-SHA256, keyed with the fleet's secret
(UTF-8 bytes of ``SETU_DEVICE_SECRET``), of the canonical message ``f"{device_serial}|{time}"``
encoded as UTF-8, where ``time`` is the string exactly as sent (ISO 8601 with a UTC offset).

Each message is accepted into ``_ingest.device_registry`` (through the SECURITY DEFINER
function ``_ingest.provision_device``) or rejected into ``_ingest.error_ledger`` with its
reason, in one transaction per file with a savepoint per message: nothing is dropped, and a
message PostgreSQL refuses is recorded as refused_by_database instead of stopping the file.
The secret is used here only: it is never logged, never written to the database, never passed
to dbt or SQL, and an error ledger payload that happens to contain it has it redacted.
The expected signature is never logged either (it would make the command a signing oracle).
See docs/provisioning.md.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger("setu.ingest.connectors.provision")

SECRET_ENV = "SETU_DEVICE_SECRET"
MIN_SECRET_CHARS = 16  # 128 bits of a random secret, hex or base64
DEFAULT_MAX_SKEW_MINUTES = 5.0  # the contract's future_time margin, both ways here
SOURCE = "provision"
REGISTRY_TABLE = "_ingest.device_registry"
ERROR_TABLE = "_ingest.error_ledger"
REGISTER_FUNCTION = "_ingest.provision_device"
REQUIRED_FIELDS = ("device_serial", "time", "firmware", "signature")
MAX_LINE_CHARS = 16_384
MAX_SERIAL_CHARS = 128
MAX_FIRMWARE_CHARS = 64
RAW_PAYLOAD_CHARS = 4_096
REDACTED = "[redacted]"
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
# Printable, no separator: the canonical message must split one way only.
SERIAL = re.compile(r"[^|\x00-\x1f\x7f]+")

# Rejection reasons, in the order they are checked; the last is PostgreSQL refusing a
# message the checks let through (kept as a reason, so one message never stops a file).
MALFORMED, BAD_SIGNATURE, STALE, REPLAYED = "malformed", "bad_signature", "stale", "replayed"
REFUSED_BY_DATABASE = "refused_by_database"
REASONS = (MALFORMED, BAD_SIGNATURE, STALE, REPLAYED, REFUSED_BY_DATABASE)


class ProvisionError(RuntimeError):
    """A setup problem (no secret, no tables), phrased as what to do."""


class DeviceSecret:
    """The fleet's HMAC key. Its repr and str never show the value, so neither a log line
    nor a traceback with local variables can print it."""

    __slots__ = ("_key",)

    def __init__(self, value: str) -> None:
        if len(value) < MIN_SECRET_CHARS:
            raise ProvisionError(
                f"{SECRET_ENV} is shorter than {MIN_SECRET_CHARS} characters: use a random "
                f"secret, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        self._key = value.encode()

    @classmethod
    def from_env(cls) -> DeviceSecret:
        value = os.environ.get(SECRET_ENV)
        if not value:
            raise ProvisionError(
                f"{SECRET_ENV} is not set: export the fleet's device provisioning secret (the "
                f"key the devices sign their startup messages with) before `setu provision`"
            )
        return cls(value)

    def sign(self, device_serial: str, time_text: str) -> str:
        """The hex HMAC-SHA256 of the canonical message (devices and tests use this)."""
        return hmac.new(self._key, canonical_message(device_serial, time_text),
                        hashlib.sha256).hexdigest()

    def verify(self, device_serial: str, time_text: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(device_serial, time_text), signature.lower())

    def redact(self, value: Any) -> Any:
        """value (JSON-like) with every occurrence of the secret replaced."""
        if isinstance(value, str):
            return value.replace(self._key.decode(), REDACTED)
        if isinstance(value, dict):
            return {self.redact(str(key)): self.redact(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        return value

    def __repr__(self) -> str:
        return "DeviceSecret(<redacted>)"

    __str__ = __repr__


def canonical_message(device_serial: str, time_text: str) -> bytes:
    """What a device signs: its serial and its time as sent, joined by '|', UTF-8."""
    return f"{device_serial}|{time_text}".encode()


# -- checking one message ----------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    line_number: int
    reason: str | None  # None: accepted (subject to the registry's replay check)
    detail: str
    payload: Any  # the parsed object, or {"raw": line}
    device_serial: str | None = None
    firmware: str | None = None
    announced_at: datetime | None = None


class _Malformed(ValueError):
    pass


def _unstorable(value: Any) -> str | None:
    """What PostgreSQL cannot store in text or jsonb (a NUL, a lone UTF-16 surrogate) that
    value holds, keys included, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "a lone surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        return next(filter(None, map(_unstorable, value)), None)
    return None


def _storable(value: Any) -> Any:
    """value (JSON-like) with NULs and lone surrogates spelled out, for the error ledger."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _field(message: dict, name: str, limit: int | None = None) -> str:
    value = message.get(name)
    if value is None:
        raise _Malformed(f"missing field {name}")
    if not isinstance(value, str):
        raise _Malformed(f"field {name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _Malformed(f"field {name} is empty")
    if limit is not None and len(value) > limit:
        raise _Malformed(f"field {name} is longer than {limit} characters")
    return value


def _parse(line: str) -> tuple[dict, str, str, str, str, datetime]:
    if len(line) > MAX_LINE_CHARS:
        raise _Malformed(f"line longer than {MAX_LINE_CHARS} characters")
    try:
        message = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Malformed(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(message, dict):
        raise _Malformed(f"not a JSON object but a {type(message).__name__}")
    unstorable = _unstorable(message)
    if unstorable:
        raise _Malformed(f"holds {unstorable}, which a device never sends")
    missing = [name for name in REQUIRED_FIELDS if name not in message]
    if missing:
        raise _Malformed(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    serial = _field(message, "device_serial", MAX_SERIAL_CHARS)
    if not SERIAL.fullmatch(serial):
        raise _Malformed("device_serial holds '|' or a control character")
    time_text = _field(message, "time", 64)
    firmware = _field(message, "firmware", MAX_FIRMWARE_CHARS)
    signature = _field(message, "signature")
    if not SIGNATURE.fullmatch(signature):
        raise _Malformed("signature is not 64 hex digits (HMAC-SHA256)")
    try:
        announced_at = datetime.fromisoformat(time_text)
    except ValueError:
        raise _Malformed(f"time {time_text[:40]!r} is not ISO 8601") from None
    if announced_at.tzinfo is None:
        raise _Malformed(f"time {time_text!r} has no UTC offset (e.g. Z or +00:00)")
    return message, serial, time_text, firmware, signature, announced_at


def check_message(line: str, line_number: int, secret: DeviceSecret, now: datetime,
                  max_skew: timedelta) -> Verdict:
    """The verdict on one line: malformed, then signature, then freshness."""
    try:
        message, serial, time_text, firmware, signature, announced_at = _parse(line)
    except _Malformed as exc:
        try:
            parsed = json.loads(line) if len(line) <= MAX_LINE_CHARS else None
        except json.JSONDecodeError:
            parsed = None
        payload = parsed if isinstance(parsed, dict) else {"raw": line[:RAW_PAYLOAD_CHARS]}
        return Verdict(line_number, MALFORMED, str(exc), _storable(secret.redact(payload)))
    payload = secret.redact(message)
    if not secret.verify(serial, time_text, signature):
        return Verdict(line_number, BAD_SIGNATURE,
                       "HMAC-SHA256 of 'device_serial|time' does not match the signature",
                       payload, serial)
    skew = announced_at - now
    if abs(skew) > max_skew:
        side = "ahead of" if skew > timedelta(0) else "behind"
        return Verdict(line_number, STALE,
                       f"time is {abs(skew).total_seconds() / 60:.1f} min {side} now "
                       f"(limit {max_skew.total_seconds() / 60:g} min)", payload, serial)
    return Verdict(line_number, None, "", payload, serial, firmware,
                   announced_at.astimezone(UTC))


# -- recording -----------------------------------------------------------------------------

@dataclass
class ProvisionResult:
    source_name: str
    provisioned: int = 0  # new devices
    updated: int = 0  # known devices with a newer startup message
    rejected: Counter = field(default_factory=Counter)  # reason -> messages
    blank_lines: int = 0

    @property
    def accepted(self) -> int:
        return self.provisioned + self.updated

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _record_error(conn: psycopg.Connection, source_name: str, verdict: Verdict,
                  reason: str, detail: str) -> None:
    conn.execute(
        f"insert into {ERROR_TABLE} (source, source_name, line_number, reason, detail, payload)"
        " values (%s, %s, %s, %s, %s, %s)",
        (SOURCE, source_name, verdict.line_number, reason, detail, Jsonb(verdict.payload)),
    )


def _record(conn: psycopg.Connection, source_name: str, verdict: Verdict,
            result: ProvisionResult) -> Verdict:
    """Write one message's verdict (the registry or the error ledger); the final verdict."""
    if verdict.reason is None:
        # The registry is written only through this function (setu_provision may execute
        # it, nobody may write the table): newer than the device's last accepted message,
        # or nothing is written, so a replay cannot roll firmware back.
        (outcome,) = conn.execute(f"select {REGISTER_FUNCTION}(%s, %s, %s)",
                                  (verdict.device_serial, verdict.firmware,
                                   verdict.announced_at)).fetchone()
        if outcome == "provisioned":
            result.provisioned += 1
            return verdict
        if outcome == "updated":
            result.updated += 1
            return verdict
        verdict = Verdict(verdict.line_number, REPLAYED,
                          "not newer than the device's last accepted startup message",
                          verdict.payload, verdict.device_serial)
    _record_error(conn, source_name, verdict, verdict.reason, verdict.detail)
    result.rejected[verdict.reason] += 1
    return verdict


def provision_lines(conn: psycopg.Connection, lines: Iterable[str], secret: DeviceSecret, *,
                    source_name: str, max_skew: timedelta = timedelta(
                        minutes=DEFAULT_MAX_SKEW_MINUTES),
                    now: datetime | None = None) -> ProvisionResult:
    """Check every line and record it, accepted or rejected, in one transaction."""
    now = now or datetime.now(UTC)
    result = ProvisionResult(source_name)
    try:
        with conn.transaction():
            for line_number, raw in enumerate(lines, start=1):
                line = raw.strip()
                if not line:
                    result.blank_lines += 1
                    continue
                verdict = check_message(line, line_number, secret, now, max_skew)
                try:
                    # One savepoint per message: a message PostgreSQL refuses is recorded
                    # as refused and the file goes on, keeping what came before it.
                    with conn.transaction():
                        verdict = _record(conn, source_name, verdict, result)
                except psycopg.errors.DataError as exc:
                    verdict = Verdict(line_number, REFUSED_BY_DATABASE,
                                      str(exc).splitlines()[0] if str(exc) else
                                      type(exc).__name__, _storable(verdict.payload),
                                      verdict.device_serial)
                    _record_error(conn, source_name, verdict, verdict.reason, verdict.detail)
                    result.rejected[verdict.reason] += 1
                if verdict.reason is None:
                    log.debug("%s:%d: %s accepted (firmware %s)", source_name, line_number,
                              verdict.device_serial, verdict.firmware)
                else:
                    log.debug("%s:%d: rejected (%s): %s", source_name, line_number,
                              verdict.reason, verdict.detail)
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction):
        raise ProvisionError(
            f"{REGISTRY_TABLE}, {ERROR_TABLE} or {REGISTER_FUNCTION}() does not exist: run "
            f"`setu bronze` (or any dbt run) first"
        ) from None
    except psycopg.errors.InsufficientPrivilege:
        raise ProvisionError(
            f"{conn.info.user} may not provision devices: a superuser grants it with "
            f"`setu roles --grant {conn.info.user}=provision`"
        ) from None
    log.info("%s: %d accepted, %d rejected", source_name, result.accepted,
             result.rejected_total)
    return result


def provision_file(conn: psycopg.Connection, path: Path | str, secret: DeviceSecret, *,
                   max_skew: timedelta = timedelta(minutes=DEFAULT_MAX_SKEW_MINUTES),
                   now: datetime | None = None) -> ProvisionResult:
    """One file of JSON lines ('-' for standard input), in one transaction."""
    if str(path) == "-":
        # Read as the files are: bytes that are not UTF-8 become U+FFFD, never an exception.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        return provision_lines(conn, stdin, secret, source_name="<stdin>",
                               max_skew=max_skew, now=now)
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace") as handle:
        return provision_lines(conn, handle, secret, source_name=path.name,
                               max_skew=max_skew, now=now)


# -- command line --------------------------------------------------------------------------

@click.command("provision")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--max-skew-minutes", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_MAX_SKEW_MINUTES, show_default=True,
              envvar="SETU_PROVISION_MAX_SKEW_MINUTES",
              help="Reject a message whose time is further than this from now (either way).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]),
              default="warning", show_default=True,
              help="Log to standard error at this level (debug: one line per message).")
@click.option("--target", help="dbt target to write to (default: the profile's target).")
def provision(files: tuple[str, ...], max_skew_minutes: float, log_level: str,
              target: str | None) -> None:
    """Verify device startup messages (JSON lines) in FILES and register the devices.

    Each line is {"device_serial", "time", "firmware", "signature"}; signature is the hex
    HMAC-SHA256 of "<device_serial>|<time>" (time exactly as sent, ISO 8601 with offset)
    keyed with the secret in the environment variable SETU_DEVICE_SECRET. Accepted devices
    go to _ingest.device_registry; every rejected line goes to _ingest.error_ledger with its
    reason (malformed, bad_signature, stale, replayed, refused_by_database). One transaction
    per file, a savepoint per message ('-' reads standard input). Exit code 0 when every
    message was accepted, 1 when some were rejected, 2 on an error.
    """
    from rich.console import Console

    err = Console(stderr=True, soft_wrap=True, highlight=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(log_level.upper())
    try:
        _provision_files(files, max_skew_minutes, target, err)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _provision_files(files: tuple[str, ...], max_skew_minutes: float, target: str | None,
                     err: Any) -> None:
    from setu.warehouse.preflight import ensure_database
    from setu.warehouse.profile import connect

    try:
        secret = DeviceSecret.from_env()
    except ProvisionError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
    ensure_database(target)
    max_skew = timedelta(minutes=max_skew_minutes)
    rejected_any = False
    with connect(target) as conn:
        for name in files:
            try:
                result = provision_file(conn, name, secret, max_skew=max_skew)
            except ProvisionError as exc:
                err.print(f"[bold red]error:[/] {exc}")
                raise SystemExit(2) from None
            reasons = ", ".join(f"{reason} {result.rejected[reason]}" for reason in REASONS
                                if result.rejected[reason])
            click.echo(f"{result.source_name}: {result.provisioned} device(s) provisioned, "
                       f"{result.updated} updated, {result.rejected_total} message(s) "
                       f"rejected" + (f" ({reasons}; see {ERROR_TABLE})" if reasons else ""))
            rejected_any = rejected_any or bool(result.rejected_total)
    raise SystemExit(1 if rejected_any else 0)
