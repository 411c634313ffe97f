"""Incremental Silver while writers commit out of id order: no Bronze row is lost or taken
twice. Writers are threads with their own connections whose transactions sleep before they
commit; the sweeps run through _etl.take_horizon()/_etl.apply_batch() (what dbt's
materialization and the in-database job call) and through dbt itself."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import time as dt_time
from datetime import timedelta

import psycopg
import pytest

import silver_reference as ref
from silver_reference import batch_vars, dbt_args, fetch_dicts, utc

MACHINES = (1, 2)
MODELS = ("fct_telemetry", "fct_machine_cycles")
START = utc(2026, 2, 2, 8, 0)


def connect(db_url: str, **kwargs) -> psycopg.Connection:
    """A connection whose statements give up after a minute, so a lock the test gets wrong
    fails the test instead of hanging it."""
    return psycopg.connect(db_url, options="-c statement_timeout=60000", **kwargs)


def setup_master(conn: psycopg.Connection) -> None:
    conn.execute("insert into master.sites values (1, 'BER', 'Europe/Berlin')")
    conn.execute("insert into master.shifts values (1, 1, 'day', '06:00', '18:00')")
    for machine in MACHINES:
        conn.execute("insert into master.machines values (%s, %s, 1)", [machine, f"M{machine}"])


@pytest.fixture(scope="module")
def models_registered(db_url: str, dbt_run) -> None:
    """One dbt run registers the models in _etl.models; the tests then reset by SQL."""
    assert dbt_run(dbt_args("run-operation", "setup_warehouse")) == 0
    with connect(db_url, autocommit=True) as conn:
        ref.reset_warehouse(conn)
        setup_master(conn)
    assert dbt_run(dbt_args("run", *ref.SILVER_SELECTION)) == 0


@pytest.fixture
def registered(db_url: str, models_registered) -> Callable[[int], None]:
    """Empty Bronze and Silver for the two models; calling it sets their batch size."""
    with connect(db_url, autocommit=True) as conn:
        conn.execute("truncate bronze.machine_telemetry, bronze.machine_cycles restart identity")
        conn.execute("truncate silver.fct_telemetry, silver.fct_machine_cycles")
        conn.execute("delete from silver.quarantine")
        conn.execute("update silver.latest_cycle_state set last_cycle_end = null,"
                     " last_part_count = null, last_bronze_id = null, last_cycle_start = null")
        conn.execute("update _etl.watermarks set last_processed_id = 0, batch_end_id = 0,"
                     " last_processed_ts = null, rows_processed = 0, horizon_id = 0,"
                     " pending_id = null, pending_writers = null")

    def register(batch_size: int) -> None:
        with connect(db_url, autocommit=True) as conn:
            conn.execute("update _etl.models set batch_size = %s where model_name = any(%s)",
                         [batch_size, list(MODELS)])

    return register


def sweep(conn: psycopg.Connection, model: str) -> int:
    """One batch the way the materialization runs it: horizon, commit, batch, commit."""
    with conn.transaction():
        has_work = conn.execute("select _etl.take_horizon(%s)", [model]).fetchone()[0]
    if not has_work:
        return -1
    with conn.transaction():
        return conn.execute("select _etl.apply_batch(%s)", [model]).fetchone()[0]


def drain(conn: psycopg.Connection, model: str) -> None:
    while sweep(conn, model) >= 0:
        pass


def assert_each_id_once(conn: psycopg.Connection, table: str) -> int:
    fact = ref.FACT_OF[table]
    bronze = [r[0] for r in conn.execute(f"select id from bronze.{table}").fetchall()]
    landed = [r[0] for r in conn.execute(
        f"select bronze_id from silver.{fact} union all"
        " select bronze_id from silver.quarantine where source_table = %s", [table]).fetchall()]
    missing = sorted(set(bronze) - set(landed))
    doubled = sorted({i for i in landed if landed.count(i) > 1})
    orphans = sorted(set(landed) - set(bronze))
    assert (missing, doubled, orphans) == ([], [], []), table
    return len(bronze)


def wait_until_blocked(conn: psycopg.Connection, pid: int, timeout: float = 10) -> str:
    """Waits until backend pid waits on a lock; returns the lock type it waits on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "select l.locktype from pg_locks as l where l.pid = %s and not l.granted",
            [pid]).fetchone()
        if row:
            return row[0]
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never blocked")


class Writers:
    """Threads inserting telemetry (some of it bad) and cycles in transactions that sleep a
    few ms to 200 ms before they commit (one in ten rolls back), so ids commit out of order
    and cycles of one machine arrive out of time order."""

    def __init__(self, db_url: str, count: int, seed: int) -> None:
        self.db_url, self.count, self.seed = db_url, count, seed
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.committed = 0
        self.lock = threading.Lock()
        # one timeline of cycles per machine, handed out in order to whichever writer asks
        self.next_cycle = {m: (START, 0) for m in MACHINES}
        self.threads = [threading.Thread(target=self.write, args=(i,), daemon=True)
                        for i in range(count)]

    def take_cycle(self, rnd: random.Random) -> dict:
        with self.lock:
            machine = rnd.choice(MACHINES)
            end, count = self.next_cycle[machine]
            start = end + timedelta(seconds=rnd.choice([5, 40, 300]))
            end = start + timedelta(seconds=60)
            count = 0 if rnd.random() < 0.05 else count + 1
            self.next_cycle[machine] = (end, count)
        return {"machine_id": machine, "cycle_start": start, "time": end, "ingested_at": end,
                "part_count": count, "result": "GOOD", "program_name": "P",
                "std_cycle_seconds": 60.0, "std_load_unload_seconds": 10.0,
                "down_threshold_seconds": 100.0}

    def telemetry(self, rnd: random.Random) -> dict:
        when = START + timedelta(seconds=rnd.randint(0, 36000))
        row = {"machine_id": rnd.choice([*MACHINES, 99]), "time": when, "ingested_at": when,
               "spindle_temp_c": rnd.choice([20.0, 40.0, 400.0]), "power_kw": 3.0}
        if rnd.random() < 0.05:
            row["ingested_at"] = when - timedelta(hours=1)  # future_time
        return row

    def write(self, index: int) -> None:
        rnd = random.Random(self.seed * 100 + index)
        try:
            with connect(self.db_url) as conn:
                while not self.stop.is_set():
                    # one Bronze table per transaction, as `setu ingest` writes (see
                    # test_dbt_hook_and_a_writer_spanning_two_tables_do_not_deadlock)
                    if rnd.random() < 0.5:
                        rows = [("machine_cycles", self.take_cycle(rnd))
                                for _ in range(rnd.randint(1, 2))]
                    else:
                        rows = [("machine_telemetry", self.telemetry(rnd))
                                for _ in range(rnd.randint(1, 4))]
                    with conn.cursor() as cur:
                        for table, row in rows:
                            ref.insert_rows(cur, table, [row])
                    time.sleep(rnd.uniform(0.003, 0.2))
                    if rnd.random() < 0.1:
                        conn.rollback()
                    else:
                        conn.commit()
                        with self.lock:
                            self.committed += len(rows)
        except BaseException as error:  # reported by the main thread
            self.errors.append(error)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        if exc[0] is None:
            assert not self.errors, self.errors


def check_cycles_against_reference(conn: psycopg.Connection) -> None:
    rows = fetch_dicts(conn, "select * from bronze.machine_cycles")
    verdict = ref.classify("machine_cycles", rows, set(MACHINES))
    day = [ref.Shift(1, 1, dt_time(6), dt_time(18))]
    expected = ref.cycle_facts(rows, verdict,
                               lambda m, ts: ref.shift_of("Europe/Berlin", day, ts))
    actual = {r["bronze_id"]: r
              for r in fetch_dicts(conn, "select * from silver.fct_machine_cycles")}
    assert ref.differences(expected, actual) == []


def run_writers_and_sweeps(db_url: str, dbt_run, registered, seconds: float, seed: int) -> None:
    registered(13)
    runner_errors: list[BaseException] = []
    stop_runner = threading.Event()

    def second_runner() -> None:
        """Another runner (a job, say) sweeping the same models at the same time."""
        try:
            with connect(db_url, autocommit=True) as conn:
                while not stop_runner.is_set():
                    for model in MODELS:
                        sweep(conn, model)
        except BaseException as error:
            runner_errors.append(error)

    runner = threading.Thread(target=second_runner, daemon=True)
    try:
        with connect(db_url, autocommit=True) as conn, Writers(db_url, 4, seed) as writers:
            runner.start()
            deadline = time.monotonic() + seconds
            dbt_done = False
            while time.monotonic() < deadline:
                for model in MODELS:
                    sweep(conn, model)
                if not dbt_done and time.monotonic() > deadline - seconds / 2:
                    # dbt's own incremental run, while the writers and the other runner go on
                    assert dbt_run(dbt_args("run", "--select", *MODELS, *batch_vars(13))) == 0
                    dbt_done = True
    finally:
        stop_runner.set()
        runner.join(timeout=60)
    assert not runner_errors, runner_errors
    with connect(db_url, autocommit=True) as conn:
        assert dbt_run(dbt_args("run", "--select", *MODELS, *batch_vars(13))) == 0
        for model in MODELS:
            drain(conn, model)
        total = sum(assert_each_id_once(conn, table)
                    for table in ("machine_telemetry", "machine_cycles"))
        assert total == writers.committed
        assert writers.committed > 100, "the writers hardly wrote: the test proves little"
        check_cycles_against_reference(conn)
        gaps = conn.execute("select max(id) - count(*) from bronze.machine_telemetry").fetchone()
        assert gaps[0] > 0, "no rolled-back ids: the sweep never had to skip a gap"


def test_concurrent_writers_lose_nothing(db_url, dbt_run, registered) -> None:
    run_writers_and_sweeps(db_url, dbt_run, registered, seconds=8, seed=1)


@pytest.mark.slow
def test_concurrent_writers_lose_nothing_longer(db_url, dbt_run, registered) -> None:
    run_writers_and_sweeps(db_url, dbt_run, registered, seconds=40, seed=2)


SAMPLE_SECONDS = iter(range(10**9))


def insert_telemetry(conn: psycopg.Connection, count: int) -> None:
    """count distinct samples (not duplicates of one another)."""
    for _ in range(count):
        conn.execute("insert into bronze.machine_telemetry (time, machine_id, power_kw)"
                     " values (%s, 1, 1.0)", [START + timedelta(seconds=next(SAMPLE_SECONDS))])


def test_a_horizon_taken_during_another_runners_batch_loses_nothing(
    db_url: str, registered
) -> None:
    """Two runners of one model (dbt and the job): runner B's batch is in flight when runner A
    takes a newer horizon. B must not mark A's larger range as processed."""
    registered(1000)
    with (connect(db_url, autocommit=True) as conn,
          connect(db_url) as runner_a, connect(db_url) as runner_b):
        insert_telemetry(conn, 5)
        runner_a.execute("select _etl.take_horizon('fct_telemetry')")
        runner_a.commit()                                   # horizon 5 for the next batch
        insert_telemetry(conn, 5)
        runner_a.execute("select _etl.take_horizon('fct_telemetry')")  # horizon 10, open
        result: list = []
        b_pid = runner_b.info.backend_pid

        def apply_b() -> None:
            try:
                result.append(runner_b.execute(
                    "select _etl.apply_batch('fct_telemetry')").fetchone()[0])
                runner_b.commit()
            except BaseException as error:
                result.append(error)

        thread = threading.Thread(target=apply_b, daemon=True)
        thread.start()
        wait_until_blocked(conn, b_pid)
        runner_a.commit()
        thread.join(timeout=30)
        assert result and not isinstance(result[0], BaseException), result
        drain(conn, "fct_telemetry")
        assert_each_id_once(conn, "machine_telemetry")


def horizon(conn: psycopg.Connection, model: str = "fct_telemetry") -> tuple:
    return conn.execute("select horizon_id, pending_id from _etl.watermarks"
                        " where model_name = %s", [model]).fetchone()


def landed_ids(conn: psycopg.Connection) -> list[int]:
    return sorted(r[0] for r in conn.execute("select bronze_id from silver.fct_telemetry"))


def test_naive_max_id_would_skip_an_open_transaction(db_url: str, registered) -> None:
    """max(id) passes over a row whose transaction commits later, so the naive sweep would
    lose that row. take_horizon() neither passes it nor waits for it: the horizon stays
    below the open writer's id until that writer ends."""
    registered(1000)
    with (connect(db_url, autocommit=True) as conn,
          connect(db_url) as slow_writer, connect(db_url) as fast_writer):
        # id 1 creates the chunk (TimescaleDB serialises the inserts that create one)
        insert_telemetry(conn, 1)
        drain(conn, "fct_telemetry")
        insert_telemetry(slow_writer, 1)                     # id 2, not committed yet
        insert_telemetry(fast_writer, 1)                     # id 3, committed at once
        fast_writer.commit()
        naive_horizon = conn.execute("select max(id) from bronze.machine_telemetry").fetchone()[0]
        naive_batch = [r[0] for r in conn.execute(
            "select id from bronze.machine_telemetry where id <= %s", [naive_horizon])]
        assert (naive_horizon, naive_batch) == (3, [1, 3])   # the naive sweep: 2 is skipped

        drain(conn, "fct_telemetry")                         # returns at once: nobody waits
        assert horizon(conn) == (1, 3)                       # 3 pending behind writer of 2
        assert landed_ids(conn) == [1]
        slow_writer.commit()
        drain(conn, "fct_telemetry")
        assert landed_ids(conn) == [1, 2, 3]

        insert_telemetry(slow_writer, 1)                     # id 4, open again
        insert_telemetry(fast_writer, 1)                     # id 5, committed
        fast_writer.commit()
        drain(conn, "fct_telemetry")
        assert landed_ids(conn) == [1, 2, 3]
        slow_writer.rollback()                               # 4 never becomes a row
        drain(conn, "fct_telemetry")
        assert_each_id_once(conn, "machine_telemetry")
        assert landed_ids(conn) == [1, 2, 3, 5]


def test_a_writer_still_drawing_ids_without_an_xid_holds_the_horizon(
    db_url: str, registered
) -> None:
    """A COPY into a plain table (Bronze on a server without TimescaleDB) draws each row's
    id as it parses the row and buffers the row; the transaction gets its xid only when
    the buffer is first written, so a snapshot's in-progress list cannot see it yet. The
    horizon must not pass those ids all the same."""
    with connect(db_url, autocommit=True) as conn, connect(db_url) as writer:
        conn.execute("drop table if exists public.copy_probe")
        conn.execute("create table public.copy_probe"
                     " (id bigint generated always as identity, v int)")
        conn.execute("insert into _etl.watermarks (model_name, source_name)"
                     " values ('copy_probe', 'public.copy_probe') on conflict do nothing")
        conn.execute("insert into public.copy_probe (v) values (0)")  # id 1, committed

        def source_horizon() -> tuple:
            conn.execute("select _etl.source_horizon('copy_probe', 'public.copy_probe', 'id')")
            return conn.execute("select horizon_id, pending_id from _etl.watermarks"
                                " where model_name = 'copy_probe'").fetchone()

        assert source_horizon() == (1, None)
        with writer.cursor() as cur, cur.copy("copy public.copy_probe (v) from stdin") as copy:
            copy.write("1\n2\n3\n")
            writer.pgconn.flush()                            # libpq holds small writes back
            deadline = time.monotonic() + 30
            while conn.execute("select pg_sequence_last_value('public.copy_probe_id_seq')"
                               ).fetchone()[0] != 4:
                assert time.monotonic() < deadline, "the COPY never drew its ids"
                time.sleep(0.02)
            xid, snapshot = conn.execute(
                "select backend_xid, pg_current_snapshot()::text from pg_stat_activity"
                " where pid = %s", [writer.info.backend_pid]).fetchone()
            # what a snapshot-only horizon would see: no writer in flight, so ids 2-4 passed
            assert xid is None, f"the COPY has an xid already ({snapshot}): proves nothing"
            assert source_horizon() == (1, 4)
            assert source_horizon() == (1, 4)                # still open: still pending
        writer.commit()
        assert source_horizon() == (4, None)
        conn.execute("delete from _etl.watermarks where model_name = 'copy_probe'")
        conn.execute("drop table public.copy_probe")


def test_a_long_open_transaction_neither_is_passed_nor_makes_writers_wait(
    db_url: str, registered
) -> None:
    """A transaction left open (a large `setu ingest` file, say) while runners take horizons
    and other writers go on: their inserts must not queue behind the horizon (lock_timeout
    turns any wait into an error), and no runner passes the open transaction's ids."""
    registered(3)
    with (connect(db_url, autocommit=True) as conn, connect(db_url) as long_writer,
          psycopg.connect(db_url, options="-c lock_timeout=2000 -c statement_timeout=10000",
                          autocommit=True) as writer, connect(db_url) as runner):
        insert_telemetry(conn, 2)                            # ids 1-2
        drain(conn, "fct_telemetry")
        insert_telemetry(long_writer, 1)                     # id 3, stays open
        for _round in range(3):
            # a runner's horizon, taken in its own thread as dbt or a job would
            take = threading.Thread(target=runner.execute, daemon=True,
                                    args=("select _etl.take_horizon('fct_telemetry')",))
            take.start()
            take.join(timeout=10)
            # whatever take_horizon did, a writer's insert now must not wait for it
            insert_telemetry(writer, 2)
            runner.commit()
            assert not take.is_alive()
            with runner.transaction():
                runner.execute("select _etl.apply_batch('fct_telemetry')")
            drain(conn, "fct_telemetry")
        assert landed_ids(conn) == [1, 2]                    # nothing at or above 3 yet
        assert horizon(conn)[0] == 2
        long_writer.commit()
        drain(conn, "fct_telemetry")
        assert landed_ids(conn) == list(range(1, 10))
        assert_each_id_once(conn, "machine_telemetry")


def run_like_dbt(conn: psycopg.Connection, model: str) -> tuple[int, list[int]]:
    """One model's run as the materialization does it: the limits first, then batches
    until no work is left below them. Returns the batches and the limits."""
    limits = conn.execute("select _etl.run_limits(%s)", [model]).fetchone()[0]
    batches = 0
    while True:
        with conn.transaction():
            has_work = conn.execute("select _etl.take_horizon(%s, %s)",
                                    [model, limits]).fetchone()[0]
        if not has_work:
            return batches, limits
        with conn.transaction():
            conn.execute("select _etl.apply_batch(%s)", [model])
        batches += 1


def test_a_run_ends_while_writers_go_on_and_the_next_run_takes_the_rest(
    db_url: str, dbt_run, registered
) -> None:
    """A run takes the backlog that existed when it started, in batches, and ends while
    writers keep inserting; what they add is the next run's. Termination is asserted on
    the number of batches, bounded by the backlog at the start, never on time."""
    batch = 7
    registered(batch)
    with connect(db_url, autocommit=True) as conn:
        insert_telemetry(conn, 120)                          # the backlog: ids 1-120
        with Writers(db_url, 4, seed=3) as writers:
            while writers.committed < 20:                    # the stream is flowing
                time.sleep(0.05)
            batches, limits = run_like_dbt(conn, "fct_telemetry")
            processed = conn.execute(
                "select last_processed_id from _etl.watermarks"
                " where model_name = 'fct_telemetry'").fetchone()[0]
            assert processed <= limits[0]
            backlog = limits[0]                              # from id 0 when the run began
            assert batches <= -(-backlog // batch) + 1, (batches, backlog)
            # dbt itself, while the writers go on, ends too (a hang fails by timeout)
            assert dbt_run(dbt_args("run", "--select", "fct_telemetry", *batch_vars(batch))) == 0
        # the writers have stopped: the next run takes the rest, and every id reconciles
        run_like_dbt(conn, "fct_telemetry")
        assert assert_each_id_once(conn, "machine_telemetry") > 120


def test_dbt_hook_and_a_writer_spanning_two_tables_do_not_deadlock(
    db_url: str, dbt_run, registered
) -> None:
    with connect(db_url) as writer:
        writer.execute("set deadlock_timeout = '200ms'")
        # holds ROW EXCLUSIVE on bronze.machine_telemetry until it commits
        writer.execute("insert into bronze.machine_telemetry (time, machine_id, power_kw)"
                       " values (%s, 1, 1.0)", [START])
        outcome: list[int] = []
        hook = threading.Thread(
            target=lambda: outcome.append(dbt_run(dbt_args("run-operation", "setup_warehouse"))),
            daemon=True)
        hook.start()
        with connect(db_url, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            # wait until the hook holds machine_cycles and waits for machine_telemetry
            while time.monotonic() < deadline and not conn.execute(
                "select 1 from pg_locks as l join pg_class as c on c.oid = l.relation"
                " where c.relname = 'machine_telemetry' and not l.granted"
                " and l.mode = 'AccessExclusiveLock'"
            ).fetchone():
                time.sleep(0.02)
        try:
            writer.execute(
                "insert into bronze.machine_cycles (time, machine_id, cycle_start, part_count,"
                " result) values (%s, 1, %s, 1, 'GOOD')", [START, START])
            writer.commit()
        finally:
            hook.join(timeout=60)
        assert outcome == [0]
