"""`setu provision`: signed startup messages in, every line accounted for, the secret nowhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import mmap
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from conftest import own_database
from setu.cli import main
from setu.ingest.connectors.provision import DeviceSecret, canonical_message
from setu.warehouse.paths import PROJECT_DIR, state_dir

DATABASE = "setu_test_provision"
SECRET = secrets.token_hex(24)
OTHER_SECRET = secrets.token_hex(24)


@pytest.fixture(scope="module")
def db(cluster, dbt_run) -> Iterator[str]:
    """A database of this module's own, with the Bronze DDL (and provisioning tables)."""
    with own_database(cluster, DATABASE) as url:
        assert dbt_run(["--quiet", "run-operation", "setup_warehouse"]) == 0
        yield url


@pytest.fixture
def conn(db: str, monkeypatch) -> Iterator[psycopg.Connection]:
    """Empty registry and error ledger; the secret in the environment."""
    monkeypatch.setenv("SETU_DEVICE_SECRET", SECRET)
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("truncate _ingest.device_registry, _ingest.error_ledger")
        yield connection


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message(serial: str, at: datetime, firmware: str = "2.4.1", secret: str = SECRET,
            **overrides: object) -> str:
    time_text = stamp(at)
    body = {"device_serial": serial, "time": time_text, "firmware": firmware,
            "signature": DeviceSecret(secret).sign(serial, time_text)}
    body.update(overrides)
    return json.dumps(body)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def registry(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("select device_serial, firmware from _ingest.device_registry"))


def rejected(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("select reason, count(*) from _ingest.error_ledger"
                             " where source = 'provision' group by reason"))


def test_signature_is_hmac_sha256_of_serial_bar_time():
    time_text = "2026-05-04T06:00:00Z"
    expected = hmac.new(SECRET.encode(), b"PX-00017|2026-05-04T06:00:00Z",
                        hashlib.sha256).hexdigest()
    assert canonical_message("PX-00017", time_text) == b"PX-00017|2026-05-04T06:00:00Z"
    assert DeviceSecret(SECRET).sign("PX-00017", time_text) == expected
    assert DeviceSecret(SECRET).verify("PX-00017", time_text, expected.upper())
    assert not DeviceSecret(SECRET).verify("PX-00018", time_text, expected)
    assert SECRET not in repr(DeviceSecret(SECRET)) + str(DeviceSecret(SECRET))


def test_valid_bad_stale_and_malformed_each_land_in_one_place(conn, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    stolen = json.loads(message("PX-A", now))["signature"]
    lines = [
        message("PX-A", now),
        message("PX-B", now - timedelta(minutes=2), firmware="1.9.0"),
        message("PX-C", now + timedelta(minutes=1)),
        message("PX-D", now, signature=DeviceSecret(SECRET).sign("PX-D", stamp(now)).upper()),
        "",
        # bad signatures: another fleet's key; a valid signature moved to another serial
        message("PX-E", now, secret=OTHER_SECRET),
        json.dumps({"device_serial": "PX-F", "time": stamp(now), "firmware": "2.4.1",
                    "signature": stolen}),
        # stale: an hour old, ten minutes ahead (both correctly signed)
        message("PX-G", now - timedelta(hours=1)),
        message("PX-H", now + timedelta(minutes=10)),
        # malformed
        "PX-I booted",
        "[1, 2, 3]",
        json.dumps({"device_serial": "PX-J", "time": stamp(now), "firmware": "2.4.1"}),
        message("PX-K", now, time="2026-05-04T06:00:00"),  # no UTC offset
        message("PX-L", now, signature="not-hex"),
        message("PX-M", now, firmware=241),
        # a replay of the first message
        message("PX-A", now),
    ]
    path = write_lines(tmp_path / "startup.jsonl", lines)

    result = CliRunner().invoke(main, ["provision", str(path)])

    assert result.exit_code == 1, result.output
    assert "4 device(s) provisioned" in result.output
    assert "11 message(s) rejected" in result.output
    assert registry(conn) == {"PX-A": "2.4.1", "PX-B": "1.9.0", "PX-C": "2.4.1",
                              "PX-D": "2.4.1"}
    assert rejected(conn) == {"bad_signature": 2, "stale": 2, "malformed": 6, "replayed": 1}
    # Nothing dropped: every non-blank line is in the registry or the error ledger.
    assert len(registry(conn)) + sum(rejected(conn).values()) == sum(1 for line in lines
                                                                    if line)
    by_line = dict(conn.execute("select line_number, reason from _ingest.error_ledger"))
    assert by_line[6] == "bad_signature" and by_line[8] == "stale" and by_line[16] == "replayed"
    raw, detail = conn.execute("select payload ->> 'raw', detail from _ingest.error_ledger"
                               " where line_number = 10").fetchone()
    assert raw == "PX-I booted" and detail.startswith("not JSON")
    no_offset = conn.execute("select detail from _ingest.error_ledger where line_number = 13"
                             ).fetchone()[0]
    assert "no UTC offset" in no_offset


def test_a_newer_announcement_updates_and_an_older_one_is_refused(conn, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    first = write_lines(tmp_path / "first.jsonl", [message("PX-A", now - timedelta(minutes=3))])
    newer = write_lines(tmp_path / "newer.jsonl", [message("PX-A", now, firmware="3.0.0")])
    older = write_lines(tmp_path / "older.jsonl",
                        [message("PX-A", now - timedelta(minutes=1), firmware="1.0.0")])
    runner = CliRunner()
    assert runner.invoke(main, ["provision", str(first)]).exit_code == 0
    provisioned_at = conn.execute("select provisioned_at from _ingest.device_registry"
                                  ).fetchone()[0]

    result = runner.invoke(main, ["provision", str(newer), str(older)])

    assert result.exit_code == 1, result.output
    assert "newer.jsonl: 0 device(s) provisioned, 1 updated" in result.output
    assert registry(conn) == {"PX-A": "3.0.0"}
    assert conn.execute("select provisioned_at from _ingest.device_registry").fetchone()[0] \
        == provisioned_at
    assert rejected(conn) == {"replayed": 1}


def test_max_skew_is_configurable(conn, tmp_path):
    now = datetime.now(UTC)
    path = write_lines(tmp_path / "late.jsonl", [message("PX-A", now - timedelta(minutes=20))])
    assert CliRunner().invoke(main, ["provision", str(path)]).exit_code == 1
    result = CliRunner().invoke(main, ["provision", "--max-skew-minutes", "30", str(path)])
    assert result.exit_code == 0, result.output
    assert rejected(conn) == {"stale": 1}
    assert registry(conn) == {"PX-A": "2.4.1"}


@pytest.mark.parametrize("value", [None, "", "short"])
def test_a_missing_or_weak_secret_is_a_clear_error(conn, tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SETU_DEVICE_SECRET")
    else:
        monkeypatch.setenv("SETU_DEVICE_SECRET", value)
    path = write_lines(tmp_path / "startup.jsonl", [message("PX-A", datetime.now(UTC))])

    result = CliRunner().invoke(main, ["provision", str(path)])

    assert result.exit_code == 2
    assert "SETU_DEVICE_SECRET is" in result.output
    assert "Traceback" not in result.output
    assert registry(conn) == {} and rejected(conn) == {}


def files_containing(needle: bytes, roots: Iterable[Path]) -> list[Path]:
    """Every readable file under roots holding needle (a binary grep -rlF)."""
    found = []
    for root in roots:
        for folder, _, names in os.walk(root, onerror=lambda _: None):
            for name in names:
                path = Path(folder) / name
                try:
                    if path.is_symlink() or not path.is_file() or not path.stat().st_size:
                        continue
                    with path.open("rb") as handle, \
                            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                        if data.find(needle) != -1:
                            found.append(path)
                except (OSError, ValueError):
                    continue  # vanished (WAL recycling) or not mappable
    return found


def test_the_secret_reaches_no_log_artifact_or_table(conn, tmp_path, dbt_run, caplog):
    caplog.set_level("DEBUG")
    assert dbt_run(["build"]) == 0
    now = datetime.now(UTC).replace(microsecond=0)
    path = write_lines(tmp_path / "startup.jsonl", [
        message("PX-A", now),
        message("PX-B", now, secret=OTHER_SECRET, note=f"key={SECRET}"),  # a careless device
        f"debug dump: {SECRET}",
    ])

    result = CliRunner().invoke(main, ["provision", "--log-level", "debug", str(path)])

    assert result.exit_code == 1, result.output
    assert "PX-A accepted" in result.output  # debug logging was on and captured
    captured = result.output + caplog.text
    assert SECRET not in captured
    payloads = [text for (text,) in conn.execute(
        "select payload::text from _ingest.error_ledger order by line_number")]
    assert len(payloads) == 2 and all("[redacted]" in text for text in payloads)
    assert not any(SECRET in text for text in payloads)

    roots = [PROJECT_DIR / "target", PROJECT_DIR / "logs", PROJECT_DIR / ".setu", state_dir()]
    roots += [Path(os.environ[name]) for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH")
              if os.environ.get(name)]
    canary = tmp_path / "canary" / "found.txt"
    canary.parent.mkdir()
    canary.write_text(f"the search works: {SECRET}")
    assert files_containing(SECRET.encode(), [canary.parent]) == [canary]
    assert files_containing(SECRET.encode(), [root for root in roots if root.exists()]) == []


def test_a_poison_message_is_refused_alone_and_the_rest_is_kept(conn, tmp_path):
    """A NUL or a lone surrogate in one message (which PostgreSQL cannot store) goes to the
    error ledger as malformed; the messages around it are provisioned all the same."""
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        message("PX-A", now),
        message("PX-NUL", now, firmware="2.4\u00001"),  # JSON escape \u0000, signed
        message("PX-B", now),
        # a lone surrogate, JSON escape \ud800 (nobody can sign it: it has no UTF-8)
        json.dumps({"device_serial": "PX-\ud800", "time": stamp(now), "firmware": "2.4.1",
                    "signature": "0" * 64}),
        'not json with a raw NUL: \x00 here',
        message("PX-C", now, note="tail \u0000"),  # an extra field only
        message("PX-D", now),
    ]
    path = tmp_path / "poison.jsonl"
    path.write_bytes("".join(f"{line}\n" for line in lines).encode("utf-8", "surrogatepass"))

    result = CliRunner().invoke(main, ["provision", str(path)])

    assert result.exit_code == 1, result.output
    # exit code 1 is also what click gives an uncaught exception: check there was none
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert registry(conn) == {"PX-A": "2.4.1", "PX-B": "2.4.1", "PX-D": "2.4.1"}
    by_line = dict(conn.execute("select line_number, reason from _ingest.error_ledger"))
    assert by_line == {2: "malformed", 4: "malformed", 5: "malformed", 6: "malformed"}
    details = dict(conn.execute("select line_number, detail from _ingest.error_ledger"))
    assert "NUL" in details[2] and "surrogate" in details[4], details
    assert "3 device(s) provisioned" in result.output
    assert "4 message(s) rejected" in result.output


def test_a_message_the_database_refuses_is_recorded_and_the_file_goes_on(
        conn, tmp_path, monkeypatch):
    """What the checks do not foresee (here: a registration function that fails with a data
    error for one serial) refuses that message alone, as refused_by_database."""
    from setu.ingest.connectors import provision as provision_module

    conn.execute("create schema if not exists setu_test")
    conn.execute("""
        create or replace function setu_test.refusing_provision(
            serial text, firmware text, announced_at timestamptz) returns text
        language sql as $$
            select case when serial = 'PX-BAD' then (1 / 0)::text
                else _ingest.provision_device(serial, firmware, announced_at) end
        $$""")
    monkeypatch.setattr(provision_module, "REGISTER_FUNCTION", "setu_test.refusing_provision")
    now = datetime.now(UTC).replace(microsecond=0)
    path = write_lines(tmp_path / "refused.jsonl",
                       [message("PX-A", now), message("PX-BAD", now), message("PX-B", now)])

    result = CliRunner().invoke(main, ["provision", str(path)])

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert "refused_by_database 1" in result.output
    assert registry(conn) == {"PX-A": "2.4.1", "PX-B": "2.4.1"}
    line, detail = conn.execute("select line_number, detail from _ingest.error_ledger"
                                " where reason = 'refused_by_database'").fetchone()
    assert line == 2 and "division by zero" in detail


def test_standard_input_that_is_not_utf8_is_refused_line_by_line(conn):
    now = datetime.now(UTC).replace(microsecond=0)
    data = (message("PX-A", now) + "\n").encode() + b'{"device_serial": "PX-\xff\xfe"}\n' \
        + (message("PX-B", now) + "\n").encode()

    result = CliRunner().invoke(main, ["provision", "-"], input=data)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert registry(conn) == {"PX-A": "2.4.1", "PX-B": "2.4.1"}
    assert rejected(conn) == {"malformed": 1}
