"""`setu roles`: four NOLOGIN group roles, idempotent, each allowed exactly what it needs.

A login user in each role (the test cluster trusts loopback: no password) proves both what
the role can and what it cannot do. The module builds the warehouse in a database of its own
in the session cluster (ownership and grants are per database; the roles themselves are
cluster-wide and harmless to the other modules)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import errors

from conftest import own_database
from setu.cli import main
from setu.warehouse.cluster import Cluster

DATABASE = "setu_roles"
GROUPS = ("setu_ingest", "setu_etl", "setu_reader", "setu_analyst", "setu_provision")
LOGINS = {"setu_test_ingest": "ingest", "setu_test_etl": "etl",
          "setu_test_reader": "setu_reader", "setu_test_analyst": "analyst",
          "setu_test_provision": "provision"}
INGEST, ETL, READER, ANALYST, PROVISION = LOGINS


class RolesDatabase:
    def __init__(self, cluster: Cluster, url: str, scratch: Path) -> None:
        self.cluster = cluster
        self.url = url
        self.scratch = scratch

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def login(self, user: str) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.cluster.port, dbname=DATABASE,
                               user=user, autocommit=True)

    def tables(self, *schemas: str) -> list[str]:
        with self.admin() as conn:
            return [name for (name,) in conn.execute(
                "select format('%%I.%%I', table_schema, table_name)"
                " from information_schema.tables where table_schema = any(%s) order by 1",
                (list(schemas),))]


def setu_roles(*args: str) -> str:
    result = CliRunner().invoke(main, ["roles", *args])
    assert result.exit_code == 0, result.output
    return result.output


def insert_bronze(conn: psycopg.Connection, hours: int = 2, day: int = 4) -> None:
    conn.execute(
        "insert into bronze.machine_telemetry (time, ingested_at, machine_id, power_kw,"
        " spindle_temp_c, energy_kwh)"
        " select t, t, m, 3.5, 40, s from generate_series(0, %s) as s"
        " cross join (values (9101), (9102)) as v (m)"
        " cross join lateral (select %s::timestamptz + s * interval '1 minute' as t) as x"
        " order by t, m", (hours * 60, f"2026-05-{day:02d} 06:00+00"))


@pytest.fixture(scope="module")
def roles_db(cluster: Cluster, dbt_run) -> Iterator[RolesDatabase]:
    scratch = Path(tempfile.mkdtemp(prefix="setu-test-roles-", dir="/var/tmp"))
    try:
        with own_database(cluster, DATABASE, DBT_TARGET_PATH=str(scratch / "target"),
                          DBT_LOG_PATH=str(scratch / "logs")) as url:
            assert dbt_run(["run-operation", "setup_warehouse"]) == 0
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("insert into master.sites values (91, 'ROLES', 'Europe/Berlin')")
                conn.execute("insert into master.machines values (9101, 'R1', 91),"
                             " (9102, 'R2', 91)")
                insert_bronze(conn)
                for login in LOGINS:
                    conn.execute(f"""
                        do $$ begin
                            if not exists (select from pg_roles where rolname = '{login}') then
                                create role {login} login;
                            end if;
                        end $$""")
            assert dbt_run(["run"]) == 0
            grants = [f"--grant={login}={role}" for login, role in LOGINS.items()]
            setu_roles(*grants)
            setu_roles(*grants)  # idempotent
            yield RolesDatabase(cluster, url, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def denied(conn: psycopg.Connection, sql: str) -> bool:
    try:
        conn.execute(sql)
    except errors.InsufficientPrivilege:
        return True
    return False


def privileges(conn: psycopg.Connection) -> list[tuple]:
    """Roles, memberships, role settings, owners and ACLs of everything in SETU's schemas."""
    return conn.execute("""
        select 'role', rolname, rolcanlogin::text, null from pg_roles where rolname like 'setu%'
        union all
        select 'member', r.rolname, m.rolname, null from pg_auth_members as a
            inner join pg_roles as r on a.roleid = r.oid
            inner join pg_roles as m on a.member = m.oid where r.rolname like 'setu%'
        union all
        select 'setting', coalesce(r.rolname, ''), array_to_string(s.setconfig, ','), null
            from pg_db_role_setting as s left join pg_roles as r on s.setrole = r.oid
        union all
        select 'relation', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner),
            c.relacl::text from pg_class as c inner join pg_namespace as n
            on c.relnamespace = n.oid
            where n.nspname in ('bronze', 'master', 'silver', 'gold', 'webapp', '_etl', '_ingest')
        union all
        select 'default acl', pg_get_userbyid(defaclrole), defaclnamespace::regnamespace::text,
            defaclacl::text from pg_default_acl
        order by 1, 2, 3, 4
    """).fetchall()


def test_groups_are_nologin_roles_with_their_session_settings(roles_db: RolesDatabase) -> None:
    with roles_db.admin() as conn:
        rows = dict(conn.execute(
            "select rolname, rolcanlogin from pg_roles where rolname = any(%s)", (list(GROUPS),)))
        assert rows == dict.fromkeys(GROUPS, False)
        settings = dict(conn.execute(
            "select r.rolname, s.setconfig from pg_db_role_setting as s"
            " inner join pg_roles as r on s.setrole = r.oid where s.setdatabase = 0"))
    assert "synchronous_commit=off" in settings["setu_ingest"]
    assert "synchronous_commit=off" in settings["setu_etl"]
    # A group's settings reach no member: `setu roles --grant` puts them on each login.
    for login, expected in ((INGEST, "off"), (ETL, "off"), (READER, "on"), (ANALYST, "on"),
                            (PROVISION, "on")):
        with roles_db.login(login) as conn:
            assert conn.execute("show synchronous_commit").fetchone()[0] == expected, login
    with roles_db.login(ETL) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "setu_etl"
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        roles_db.login("setu_reader").close()


def test_setu_roles_again_changes_nothing(roles_db: RolesDatabase) -> None:
    with roles_db.admin() as conn:
        before = privileges(conn)
    setu_roles(*[f"--grant={login}={role}" for login, role in LOGINS.items()])
    with roles_db.admin() as conn:
        assert privileges(conn) == before


def test_bad_grants_are_one_clear_error(roles_db: RolesDatabase) -> None:
    result = CliRunner().invoke(main, ["roles", "--grant", "somebody=admin"])
    assert result.exit_code == 2
    assert "ROLE one of setu_ingest, setu_etl, setu_reader, setu_analyst" in result.output
    result = CliRunner().invoke(main, ["roles", "--grant", "no_such_login=reader"])
    assert result.exit_code != 0
    assert "no role no_such_login in this cluster; create it first" in result.output


def test_ingest_inserts_into_bronze_and_nothing_else(roles_db: RolesDatabase,
                                                     tmp_path: Path) -> None:
    from setu.ingest.loader import ingest_file

    with roles_db.login(INGEST) as conn:
        # A far-away time: TimescaleDB creates a new chunk for the ingest role.
        conn.execute("insert into bronze.machine_telemetry (time, machine_id, power_kw)"
                     " values ('2031-01-01 00:00+00', 9101, 1.0)")
        conn.execute("insert into bronze.alarms (time, machine_id, alarm_code, severity, event)"
                     " values (now(), 9101, 'A1', 'info', 'RAISED')")
        csv = tmp_path / "machine_telemetry.csv"
        csv.write_text("time,machine_id,power_kw\n2026-05-04T09:00:00Z,9102,2.5\n")
        with psycopg.connect(conn.info.dsn, autocommit=False) as loader:
            assert ingest_file(loader, csv, "machine_telemetry").rows == 1
        assert denied(conn, "select count(*) from bronze.machine_telemetry")
        assert denied(conn, "select count(*) from silver.fct_telemetry")
        assert denied(conn, "insert into silver.quarantine (source_table, bronze_id, reason)"
                            " values ('alarms', -1, 'x')")
        assert denied(conn, "delete from bronze.alarms")
        assert denied(conn, "select * from gold.energy_hourly")
        assert denied(conn, "call _etl.run_pipeline()")


def test_reader_reads_gold_webapp_and_master_only(roles_db: RolesDatabase) -> None:
    readable = roles_db.tables("gold", "webapp", "master")
    assert len(readable) > 8
    with roles_db.login(READER) as conn:
        for table in readable:
            conn.execute(f"select * from {table} limit 1")
        assert conn.execute("select count(*) from webapp.machine_status_current"
                            ).fetchone()[0] == 2
        for table in ("silver.fct_telemetry", "silver.quarantine", "bronze.alarms",
                      "_etl.watermarks"):
            assert denied(conn, f"select * from {table} limit 1"), table
        assert denied(conn, "insert into gold.alerts_daily (machine_id) values (1)")
        assert denied(conn, "update master.machines set machine_code = 'x'")
        assert denied(conn, "select _etl.apply_batch('fct_telemetry')")


def test_analyst_reads_silver_and_gold_and_writes_nothing(roles_db: RolesDatabase) -> None:
    readable = roles_db.tables("silver", "gold")
    assert len(readable) > 12
    with roles_db.login(ANALYST) as conn:
        for table in readable:
            conn.execute(f"select * from {table} limit 1")
        assert conn.execute("select count(*) from silver.fct_telemetry").fetchone()[0] > 0
        assert denied(conn, "delete from silver.fct_telemetry")
        assert denied(conn, "update gold.energy_hourly set kwh = 0")
        assert denied(conn, "insert into silver.quarantine (source_table, bronze_id, reason)"
                            " values ('alarms', -1, 'x')")
        assert denied(conn, "select * from bronze.machine_telemetry limit 1")
        assert denied(conn, "create table silver.mine (a int)")


def test_etl_runs_the_pipeline_and_owns_the_warehouse(roles_db: RolesDatabase) -> None:
    with roles_db.admin() as conn:
        insert_bronze(conn, hours=1, day=5)
        owners = conn.execute(
            "select distinct pg_get_userbyid(p.proowner) from pg_proc as p"
            " where p.pronamespace = '_etl'::regnamespace").fetchall()
        assert owners == [("setu_etl",)], "the SECURITY DEFINER functions must run as setu_etl"
    with roles_db.login(ETL) as conn:
        conn.execute("call _etl.run_pipeline('roles test')")
        status, rows, error = conn.execute(
            "select status, rows_processed, error from _etl.job_runs"
            " order by run_id desc limit 1").fetchone()
        assert (status, error) == ("succeeded", None)
        assert rows > 0
        assert conn.execute("select count(*) from silver.fct_telemetry"
                            " where time >= '2026-05-05'").fetchone()[0] == 122
        conn.execute("insert into bronze.alarms (time, machine_id, alarm_code, severity, event)"
                     " values (now(), 9102, 'A2', 'warning', 'RAISED')")
        conn.execute("select count(*) from bronze.alarms, master.machines, gold.alerts_daily")
        assert denied(conn, "create role setu_test_intruder")
        assert denied(conn, "alter role setu_etl superuser")


def test_etl_login_runs_dbt_and_tables_stay_covered(roles_db: RolesDatabase, dbt_run,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """setu_etl rebuilds what the superuser built (it owns it), and what either rebuilds is
    readable by the reader at once (default privileges)."""
    monkeypatch.setenv("SETU_PG_USER", ETL)
    # Its own target path: another user is another profile, which would cost the module's
    # partial parse.
    assert dbt_run(["run", "--full-refresh", "--select", "fct_alarm_events+",
                    "--target-path", str(roles_db.scratch / "etl-target")]) == 0
    monkeypatch.delenv("SETU_PG_USER")
    # The test's own dbt runs as the superuser `setu`: the on-run-end hook
    # grant_role_privileges() hands what it rebuilt to setu_etl.
    assert dbt_run(["run", "--full-refresh", "--select", "energy_hourly"]) == 0
    with roles_db.admin() as conn:
        owners = dict(conn.execute(
            "select relname, pg_get_userbyid(relowner) from pg_class"
            " where relname in ('fct_alarm_events', 'alerts_daily', 'energy_hourly')"))
    assert owners == {"fct_alarm_events": "setu_etl", "alerts_daily": "setu_etl",
                      "energy_hourly": "setu_etl"}
    with roles_db.login(READER) as conn:
        conn.execute("select * from gold.alerts_daily, gold.energy_hourly limit 1")
    with roles_db.login(ANALYST) as conn:
        conn.execute("select * from silver.fct_alarm_events, gold.energy_hourly limit 1")
    with roles_db.login(ETL) as conn:
        conn.execute("call _etl.run_pipeline('roles test')")
        assert conn.execute("select status from _etl.job_runs order by run_id desc limit 1"
                            ).fetchone()[0] == "succeeded"


def test_on_run_end_hook_hands_new_tables_to_setu_etl(roles_db: RolesDatabase, dbt_run) -> None:
    """grant_role_privileges(), the project's on-run-end hook, gives setu_etl what a
    superuser's dbt run created."""
    with roles_db.admin() as conn:
        conn.execute("alter table gold.energy_hourly owner to setu")
    assert dbt_run(["run", "--full-refresh", "--select", "energy_hourly"]) == 0
    with roles_db.admin() as conn:
        owner = conn.execute("select pg_get_userbyid(relowner) from pg_class"
                             " where oid = 'gold.energy_hourly'::regclass").fetchone()[0]
    assert owner == "setu_etl"


# -- issue 16: each role exactly what its job needs ------------------------------------------

LEDGER_ROW = ("insert into _ingest.edge_sync_ledger (gateway_id, source_table, source_rowid,"
              " source_updated_ts, destination) values ('gw-roles', 'T', {rowid}, '',"
              " 'bronze.alarms')")
REGISTER = "select _ingest.provision_device('PX-{serial}', '1.0', now())"


def test_ingest_appends_to_its_ledgers_and_cannot_forge_or_rewrite(
        roles_db: RolesDatabase) -> None:
    with roles_db.login(INGEST) as conn:
        # what sync-edge and ingest need: append to the ledgers, read them, keep state current
        conn.execute(LEDGER_ROW.format(rowid=1))
        assert conn.execute("select count(*) from _ingest.edge_sync_ledger"
                            " where gateway_id = 'gw-roles'").fetchone()[0] == 1
        conn.execute("insert into _ingest.edge_part_counters (gateway_id, machine_id,"
                     " part_count) values ('gw-roles', 9101, 1)")
        conn.execute("update _ingest.edge_part_counters set part_count = 2"
                     " where gateway_id = 'gw-roles'")
        conn.execute("update _ingest.ledger set row_count = row_count where false")
        # a forged device, a rewritten or erased ledger, a registration without the HMAC
        assert denied(conn, "insert into _ingest.device_registry (device_serial, firmware,"
                            " announced_at) values ('PX-FORGED', '6.6.6', now())")
        assert denied(conn, "update _ingest.device_registry set firmware = '0.0.1'")
        assert denied(conn, "update _ingest.edge_sync_ledger set destination = 'nowhere'")
        assert denied(conn, "delete from _ingest.edge_sync_ledger")
        assert denied(conn, "update _ingest.edge_unmapped set value = null")
        assert denied(conn, REGISTER.format(serial="INGEST"))
        assert denied(conn, "select * from _ingest.error_ledger")


def test_provision_registers_through_the_function_only(roles_db: RolesDatabase) -> None:
    with roles_db.login(PROVISION) as conn:
        assert conn.execute(REGISTER.format(serial="R1")).fetchone()[0] == "provisioned"
        conn.execute("insert into _ingest.error_ledger (source, reason, payload)"
                     " values ('provision', 'malformed', '{}')")
        assert denied(conn, "insert into _ingest.device_registry (device_serial, firmware,"
                            " announced_at) values ('PX-DIRECT', '1', now())")
        assert denied(conn, "update _ingest.device_registry set firmware = 'x'")
        assert denied(conn, "select * from _ingest.device_registry")
        assert denied(conn, "delete from _ingest.error_ledger")
        assert denied(conn, LEDGER_ROW.format(rowid=2))
        assert denied(conn, "insert into bronze.alarms (time, machine_id) values (now(), 1)")
    with roles_db.admin() as conn:
        registered = conn.execute("select firmware, provisioned_by from _ingest.device_registry"
                                  " where device_serial = 'PX-R1'").fetchone()
        search_path = conn.execute(
            "select proconfig, prosecdef from pg_proc"
            " where oid = '_ingest.provision_device(text, text, timestamptz)'::regprocedure"
        ).fetchone()
    assert registered == ("1.0", PROVISION)
    assert search_path == (["search_path=pg_catalog, pg_temp"], True)


def test_nobody_creates_in_the_shared_default_schema(roles_db: RolesDatabase) -> None:
    for login in LOGINS:
        with roles_db.login(login) as conn:
            assert denied(conn, f"create table public.{login}_table (a int)"), login
    with roles_db.login(ETL) as conn:
        conn.execute("create table silver.roles_scratch (a int)")  # its own schemas: yes
        conn.execute("drop table silver.roles_scratch")


def test_ingest_syncs_a_gateway_file(roles_db: RolesDatabase, tmp_path: Path) -> None:
    """sync-edge is the ingest role's job: it reads the machine list and shifts it maps with
    (master), writes Bronze, its ledgers and its state, and needs nothing more."""
    import sqlite3

    from setu.ingest.connectors.edge_sync import sync_gateway

    path = tmp_path / "gw.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            create table MachineRunningStatus_MVP (IOTID text, RunningProgramNo text,
                Status text, OperatorID text, Target integer, UpdatedTS text,
                SyncedStatus integer default 0);
            insert into MachineRunningStatus_MVP values
                ('R1', 'O1', 'Running', 'OP1', 5, '2026-05-06 08:00:00', 0),
                ('R2', 'O1', 'Idle', null, null, '2026-05-06 08:01:00', 0);
            create table MachineWiseCycleDetails_MVP (IOTID text, CycleStart text,
                CycleEnd text, ProgramNo text, StdLoadUnload real, DownThreshold real,
                StdCycleTime real, UpdatedTS text, SyncedStatus integer default 0);
            insert into MachineWiseCycleDetails_MVP values ('R1', '2026-05-06 08:02:00',
                '2026-05-06 08:05:00', 'O1', 30, 120, 180, '2026-05-06 08:05:00', 0);
        """)
    with psycopg.connect(host="127.0.0.1", port=roles_db.cluster.port, dbname=DATABASE,
                         user=INGEST) as conn:
        report = sync_gateway(conn, path, "gw-roles-sync")
    assert report.loaded == {"bronze.machine_state_events": 2, "bronze.machine_cycles": 1}
    with roles_db.admin() as conn:
        assert conn.execute("select count(*) from _ingest.edge_sync_ledger"
                            " where gateway_id = 'gw-roles-sync'").fetchone()[0] == 3
