"""What only MariaDB and MySQL need: the three URL forms, the session settings, exact text in a
database whose own collation ignores case and trailing spaces, microsecond UTC timestamps,
infinities in DOUBLE columns, read-only sessions, named locks, and deadlocks and lock waits
retried. The contract, bad-input, property, differential and reliability suites run on MariaDB
too (conftest's BACKENDS); these are the rest."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.conftest import temporary_database
from tracker import (
    ExperimentTracker,
    ReadOnlyStoreError,
    SchemaError,
    StoreConnectionError,
    StoreError,
    ValidationError,
)
from tracker.sql.engine import MYSQL_SQL_MODE, session_lock
from tracker.sql.errors import is_transient, translate
from tracker.sql.unit_of_work import UnitOfWork, retrying
from tracker.store.location import resolve

EMOJI = "📈🦄"  # 4-byte UTF-8: utf8mb3 columns would refuse them


def with_scheme(url: str, scheme: str) -> str:
    return scheme + "://" + url.split("://", 1)[1]


@pytest.mark.parametrize(
    ("scheme", "dialect"), [("mysql", "mysql"), ("mysql+pymysql", "mysql"), ("mariadb+pymysql", "mariadb")]
)
def test_each_url_form_opens_the_store_and_shares_strategy_code(mysql_url: str, scheme: str, dialect: str) -> None:
    url = with_scheme(mysql_url, scheme)
    assert resolve(url, None, None).backend == "mysql"
    with ExperimentTracker(url) as tracker:
        assert tracker.repository.uow.dialect == dialect  # type: ignore[attr-defined]
        eid = tracker.create_experiment(f"code {EMOJI}", "t", "m")
        code = f"def f(data, params):\n    return data  # {EMOJI}\n" * 50
        first = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0}, strategy_code=code)
        second = tracker.log_trial(eid, 1, {}, {"sharpe": 2.0}, strategy_code=code)
    with ExperimentTracker(url) as tracker:  # a fresh cache: the second insert of the blob was a duplicate
        third = tracker.log_trial(eid, 2, {}, {"sharpe": 3.0}, strategy_code=code)
        assert {tracker.get_trial(i)["strategy_code"] for i in (first, second, third)} == {code}
    engine = create_engine(mysql_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blobs")).scalar() == 1
    engine.dispose()


def test_without_returning_ids_come_from_each_rows_lastrowid(mysql_url: str) -> None:
    """MySQL and MariaDB before 10.5 have no INSERT ... RETURNING: the same server, told so."""
    with ExperimentTracker(mysql_url) as tracker, ExperimentTracker(mysql_url) as other:
        dialect = tracker.repository.uow.engine.dialect  # type: ignore[attr-defined]
        assert dialect.insert_returning
        dialect.insert_returning = False
        eid = tracker.create_experiment("e", "t", "m")
        other.log_trial(eid, 100, {}, {"sharpe": 0.0})  # ids need not be consecutive
        batch = [{"trial_number": n, "params": {"n": n}, "performance": {"sharpe": n}} for n in range(5)]
        ids = tracker.log_trials(eid, batch)
        checked = {"trial_number": 5, "params": {}, "performance": {}, "ttpt": {"passed": True, "num_violations": 0}}
        ids += tracker.log_trials(eid, [checked])
        assert {t["trial_number"]: t["id"] for t in tracker.get_trials(eid) if t["trial_number"] < 100} == dict(
            enumerate(ids)
        )
        assert len(set(ids)) == 6
        assert tracker.get_ttpt_results(ids[5])[0]["passed"] is True


def test_every_session_is_strict_utc_and_utf8mb4(mysql_url: str) -> None:
    db = UnitOfWork(resolve(mysql_url, None, None))
    try:
        row = db.read(
            lambda conn: conn.execute(
                text("SELECT @@session.sql_mode, @@session.time_zone, @@character_set_client, @@collation_connection")
            ).one()
        )
    finally:
        db.dispose()
    modes = set(row[0].split(","))
    assert set(MYSQL_SQL_MODE.split(",")) <= modes
    assert row[1] == "+00:00"
    assert row[2] == "utf8mb4"
    assert row[3] in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")


@pytest.fixture
def lenient_database() -> Iterator[str]:
    """A database whose default collation ignores case and trailing spaces (a server default)."""
    with temporary_database("utf8mb4_general_ci") as url:
        yield url


def test_text_is_exact_even_in_a_database_whose_collation_ignores_case_and_trailing_spaces(
    lenient_database: str,
) -> None:
    with ExperimentTracker(lenient_database) as tracker:
        a = tracker.create_experiment("Momentum", "T", "m")
        b = tracker.create_experiment("momentum", "T", "m")
        c = tracker.create_experiment("momentum ", "T", "m")
        assert tracker.experiment_ids("momentum") == [b]
        assert tracker.experiment_ids("momentum ") == [c]
        assert [e["id"] for e in tracker.filter_experiments(name_contains="Mom")] == [a]
        assert tracker.experiment("MOMENTUM", "T", "m") not in (a, b, c)
        tracker.set_tags(("experiment", a), {"desk": "fx", "Desk": "credit"})
        tracker.set_tags(("experiment", b), {"desk": "fx "})
        assert tracker.get_tags(("experiment", a)) == {"desk": "fx", "Desk": "credit"}
        assert [e["id"] for e in tracker.filter_experiments(tags={"desk": "fx"})] == [a]
        assert [e["id"] for e in tracker.filter_experiments(tags={"desk": "fx "})] == [b]
        assert tracker.filter_experiments(tags={"desk": "FX"}) == []


def test_four_byte_characters_round_trip_in_every_text_field(mysql_url: str) -> None:
    with ExperimentTracker(mysql_url) as tracker:
        eid = tracker.create_experiment(EMOJI, EMOJI, EMOJI, {EMOJI: EMOJI})
        tid = tracker.log_trial(eid, 0, {EMOJI: EMOJI}, {"sharpe": 1.0, EMOJI: 2.0}, strategy_code=EMOJI)
        tracker.set_tags(("trial", tid), {"k": EMOJI})
        tracker.set_note(("trial", tid), EMOJI * 1000)
        tracker.log_ttpt_result(tid, True, 0, {EMOJI: EMOJI}, violations=[EMOJI])
    with ExperimentTracker(mysql_url) as tracker:
        e = tracker.get_experiment(eid)
        assert (e["name"], e["template"], e["mode"], e["config"]) == (EMOJI, EMOJI, EMOJI, {EMOJI: EMOJI})
        t = tracker.get_trial(tid)
        assert (t["params"], t["performance"][EMOJI], t["strategy_code"]) == ({EMOJI: EMOJI}, 2.0, EMOJI)
        assert t["note"] == EMOJI * 1000
        assert tracker.get_tags(("trial", tid)) == {"k": EMOJI}
        assert tracker.get_ttpt_results(tid)[0]["violations"] == [EMOJI]
        assert [x["id"] for x in tracker.filter_experiments(name_contains=EMOJI[1])] == [eid]


def test_text_larger_than_a_mysql_text_column_round_trips(mysql_url: str) -> None:
    big = "x" * 70_000 + EMOJI  # TEXT holds 65,535 bytes; strict mode would refuse, not cut
    with ExperimentTracker(mysql_url) as tracker:
        eid = tracker.create_experiment("big", big, "m")
        tid = tracker.log_trial(eid, 0, {}, {}, strategy_template=big)
        tracker.set_note(("trial", tid), big)
        long_tag = "é" * 40_000  # 80,000 bytes of UTF-8, within the 65,536 characters of a tag
        assert tracker.get_experiment(eid)["template"] == big
        assert tracker.get_trial(tid)["strategy_template"] == big
        assert tracker.get_trial(tid)["note"] == big
        tracker.set_tags(("trial", tid), {"k": long_tag})
        assert tracker.get_tags(("trial", tid)) == {"k": long_tag}


def test_timestamps_keep_microseconds_in_utc_and_are_stored_as_naive_utc(mysql_url: str) -> None:
    paris = timezone(timedelta(hours=1))
    started = datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=paris)
    with ExperimentTracker(mysql_url) as tracker:
        eid = tracker.create_experiment("t", "t", "m")
        tid = tracker.log_trial(eid, 0, {}, {}, started_at=started, completed_at=datetime(2026, 3, 1, 9, 31, 0, 1))
        trial = tracker.repository.get_trial(tid)
        assert trial.started_at == started
        assert trial.started_at is not None
        assert trial.started_at.tzinfo == UTC
        assert trial.completed_at == datetime(2026, 3, 1, 9, 31, 0, 1, tzinfo=UTC)  # naive means UTC
        assert tracker.get_trial(tid)["started_at"] == "2026-03-01T09:30:15.123456+00:00"
        frame = tracker.trials_dataframe([eid])
        assert str(frame["started_at"].iloc[0]).startswith("2026-03-01 09:30:15.123456")
    engine = create_engine(mysql_url)
    with engine.connect() as conn:
        conn.execute(text("SET SESSION time_zone = '+05:00'"))  # DATETIME does not move with the session
        raw = conn.execute(text("SELECT started_at, completed_at FROM trials")).one()
        column = conn.execute(
            text(
                "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND table_name = 'trials' AND column_name = 'started_at'"
            )
        ).scalar()
    engine.dispose()
    assert raw == (datetime(2026, 3, 1, 9, 30, 15, 123456), datetime(2026, 3, 1, 9, 31, 0, 1))
    assert column == "datetime(6)"


def test_infinities_in_double_columns_read_back_as_infinities(mysql_url: str) -> None:
    with ExperimentTracker(mysql_url) as tracker:
        up = tracker.create_experiment("up", "t", "m")
        down = tracker.create_experiment("down", "t", "m", direction="minimize")
        tracker.log_trial(up, 0, {}, {"sharpe": 1.0})
        tracker.log_trial(up, 1, {}, {"sharpe": math.inf})
        tracker.log_trial(down, 0, {}, {"sharpe": -math.inf})
        tid = tracker.log_trial(down, 1, {}, {"sharpe": 2.0})
        tracker.log_step_metrics(tid, 0, {"a": math.inf, "b": -math.inf, "c": math.nan})
        assert tracker.best_trial(up)["value"] == math.inf  # type: ignore[index]
        assert tracker.best_trial(down)["value"] == -math.inf  # type: ignore[index]
        stats = {e["id"]: e for e in tracker.list_experiments(stats=True)}
        assert stats[up]["best_value"] == math.inf
        finite = tracker.create_experiment("finite", "t", "m")
        tracker.log_trial(finite, 0, {}, {"sharpe": 1e300})
        assert [e["id"] for e in tracker.filter_experiments(min_best_value=math.inf)] == [up, down]
        assert [e["id"] for e in tracker.filter_experiments(min_best_value=-math.inf)] == [up, down, finite]
        steps = {m.key: m.value for m in tracker.repository.list_step_metrics(trial_id=tid)}
        assert steps["a"] == math.inf
        assert steps["b"] == -math.inf
        assert math.isnan(steps["c"])
        # The largest finite double is where an infinity is kept, so it is refused (on every backend).
        with pytest.raises(ValidationError, match="the largest float"):
            tracker.log_trial(up, 2, {}, {"sharpe": sys.float_info.max})
        with pytest.raises(ValidationError, match="the largest float"):
            tracker.log_step_metrics(tid, 1, {"a": -sys.float_info.max})


def test_the_dashboards_read_only_engine_cannot_write(mysql_url: str) -> None:
    ExperimentTracker(mysql_url).close()
    reader = UnitOfWork(resolve(mysql_url, None, None), read_only=True)
    try:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            reader.write(lambda conn: conn.execute(text("INSERT INTO experiment_tags VALUES (1, 'k', 'v')")))
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            reader.write(lambda conn: conn.execute(text("DELETE FROM experiments")))
    finally:
        reader.dispose()


def test_a_named_lock_is_held_until_the_transaction_ends_and_then_released(mysql_url: str) -> None:
    db = UnitOfWork(resolve(mysql_url, None, None))
    other = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
    name = "SHA1(CONCAT_WS('/', 'tracker', 'serialize', DATABASE(), 'k'))"
    try:
        with db.transaction():
            db.write(lambda conn: session_lock(conn, "serialize", "k"))
            db.write(lambda conn: None)  # a later call in the same transaction
            with other.connect() as conn:
                assert conn.execute(text(f"SELECT IS_FREE_LOCK({name})")).scalar() == 0
        with other.connect() as conn:
            assert conn.execute(text(f"SELECT IS_FREE_LOCK({name})")).scalar() == 1
    finally:
        other.dispose()
        db.dispose()


def _deadlock(mysql_url: str) -> list[BaseException | None]:
    """Two transactions that lock two rows in opposite orders: InnoDB kills one (error 1213)."""
    engine = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS pair (id INT PRIMARY KEY, n INT) ENGINE=InnoDB"))
        conn.execute(text("INSERT IGNORE INTO pair VALUES (1, 0), (2, 0)"))
    engine.dispose()
    barrier = threading.Barrier(2)
    outcome: list[BaseException | None] = [None, None]

    def side(index: int, first: int, second: int) -> None:
        engine = create_engine(mysql_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": first})
                barrier.wait()
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": second})
        except DBAPIError as exc:
            outcome[index] = exc
        finally:
            engine.dispose()

    sides = [threading.Thread(target=side, args=(0, 1, 2)), threading.Thread(target=side, args=(1, 2, 1))]
    for thread in sides:
        thread.start()
    for thread in sides:
        thread.join()
    return outcome


def test_a_deadlock_is_transient_and_retried(mysql_url: str) -> None:
    failures = [exc for exc in _deadlock(mysql_url) if exc is not None]
    assert len(failures) == 1
    [failure] = failures
    assert isinstance(failure, DBAPIError)
    assert failure.orig.args[0] == 1213  # type: ignore[union-attr]
    assert is_transient(failure)
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise failure
        return "done"

    assert retrying(flaky) == "done"
    assert len(attempts) == 3
    message = str(translate(failure, resolve(mysql_url, None, None)))
    assert "1213" in message
    assert "rolled back. Run it again" in message


@pytest.mark.parametrize("caller", ["lets it propagate", "catches it and goes on"])
def test_a_deadlock_inside_a_transaction_block_keeps_nothing_of_it_and_says_to_run_it_again(
    mysql_url: str, caller: str
) -> None:
    """InnoDB rolls back the lighter of two deadlocked transactions, whole: here tracker's block.
    Retrying one call of it would be wrong (its earlier calls are gone), so the error says to run
    the whole block again; a block that catches the error and goes on cannot write or commit any
    more; nothing of the block is in the store."""
    with ExperimentTracker(mysql_url) as tracker:
        a = tracker.create_experiment("a", "t", "m")
        b = tracker.create_experiment("b", "t", "m")
        ids = tracker.log_trials(a, [{"trial_number": i, "params": {}, "performance": {}} for i in range(50)])
        barrier = threading.Barrier(2, timeout=30)
        other = create_engine(mysql_url)

        def heavier() -> None:  # 51 rows changed: InnoDB picks tracker's lighter transaction
            with other.begin() as conn:
                # by primary key: record locks only, no gap lock that would hold up tracker's insert
                conn.execute(text("UPDATE trials SET note = 'theirs' WHERE id = :i"), [{"i": i} for i in ids])
                conn.execute(text("UPDATE experiments SET note = 'theirs' WHERE id = :a"), {"a": a})
                barrier.wait()
                time.sleep(0.5)  # tracker's block now waits for experiment a
                conn.execute(text("UPDATE experiments SET note = 'theirs' WHERE id = :b"), {"b": b})

        def block() -> None:
            with tracker.transaction():
                tracker.set_note(("experiment", b), "mine")
                tracker.log_trial(b, 0, {}, {"sharpe": 1.0})
                barrier.wait()
                if caller == "lets it propagate":
                    tracker.set_note(("experiment", a), "mine")
                    return
                with pytest.raises(StoreError, match="1213"):
                    tracker.set_note(("experiment", a), "mine")
                with pytest.raises(StoreError, match="run the whole block again"):
                    tracker.log_trial(b, 1, {}, {"sharpe": 2.0})

        thread = threading.Thread(target=heavier)
        thread.start()
        with pytest.raises(StoreError) as info:
            block()
        thread.join()
        other.dispose()
        message = str(info.value)
        assert "1213" in message
        assert "run the whole block again" in message
        assert tracker.get_trials(b) == []
        assert tracker.get_experiment(a)["note"] == tracker.get_experiment(b)["note"] == "theirs"


def test_a_lock_wait_timeout_is_transient(mysql_url: str) -> None:
    with ExperimentTracker(mysql_url) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
    holder = create_engine(mysql_url)
    waiter = create_engine(mysql_url)
    with holder.connect() as held:
        held.execute(text("SELECT id FROM experiments WHERE id = :i FOR UPDATE"), {"i": eid})
        with waiter.connect() as conn:
            conn.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            with pytest.raises(DBAPIError) as info:
                conn.execute(text("UPDATE experiments SET note = 'x' WHERE id = :i"), {"i": eid})
        held.rollback()
    waiter.dispose()
    assert info.value.orig.args[0] == 1205  # type: ignore[union-attr]
    assert is_transient(info.value)
    holder.dispose()


def test_a_blob_beyond_the_servers_packet_limit_is_refused_before_it_is_sent(mysql_url: str) -> None:
    """PyMySQL sends bytes in hex: more than half of max_allowed_packet would make the server drop
    the connection ("server has gone away"). tracker says which setting to raise instead."""
    engine = create_engine(mysql_url)
    with engine.connect() as conn:
        limit = int(conn.execute(text("SELECT @@max_allowed_packet")).scalar() or 0)
    engine.dispose()
    with ExperimentTracker(mysql_url) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        if limit > 2 * 100 * 2**20 + 2**20:  # a server set up as docs/data-model.md says takes the largest
            tracker.log_artifact(("experiment", eid), os.urandom(100 * 2**20), name="largest.bin")
            return
        noise = os.urandom(limit // 2 + 1)  # does not compress
        with pytest.raises(StoreError, match=r"max_allowed_packet = [\d,]+\); raise max_allowed_packet") as info:
            tracker.log_artifact(("experiment", eid), noise, name="noise.bin")
        assert not isinstance(info.value, StoreConnectionError)
        assert tracker.list_artifacts(("experiment", eid)) == []
        tracker.log_artifact(("experiment", eid), noise[: limit // 4], name="quarter.bin")
        assert tracker.get_artifact(("experiment", eid), "quarter.bin") == noise[: limit // 4]


@pytest.mark.parametrize(
    ("scheme", "collation"), [("mariadb+pymysql", "utf8mb4_nopad_bin"), ("mysql", "utf8mb4_0900_bin")]
)
def test_offline_sql_for_a_dba_speaks_the_servers_dialect(scheme: str, collation: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--url", f"{scheme}://u@h/db", "db", "upgrade", "--sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE TABLE experiments (id INTEGER PRIMARY KEY AUTO_INCREMENT" in out
    assert f"COLLATE={collation};" in out  # the in-house tables of 0001
    assert out.count(f"COLLATE {collation};") == 11  # every table of 0002, 0003, 0004 and 0005
    assert "CREATE TEMPORARY TABLE tracker_upgrade_guard" in out  # data needs the online upgrade
    assert "DATETIME(6)" in out
    assert "LONGBLOB" in out


def test_a_database_holding_optunas_tables_is_refused_untouched(mysql_url: str) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(mysql_url)
    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    storage.remove_session()
    storage.engine.dispose()
    engine = create_engine(mysql_url)
    with engine.connect() as conn:
        before = sorted(conn.execute(text("SHOW TABLES")).scalars())
    with pytest.raises(SchemaError, match="Optuna's RDBStorage tables"):
        ExperimentTracker(mysql_url)
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SHOW TABLES")).scalars()) == before
    engine.dispose()


def test_a_password_in_the_url_is_masked_in_every_error(mysql_url: str) -> None:
    url = make_url(mysql_url).set(password="pw-" + "x" * 8).render_as_string(hide_password=False)
    with pytest.raises(StoreError) as info:
        ExperimentTracker(url)
    assert "pw-xxxxxxxx" not in str(info.value)
    assert ":***@" in str(info.value)


def test_a_committed_write_sends_no_rollback_and_a_read_never_keeps_its_snapshot(mysql_url: str) -> None:
    """The pool rolls back only an open transaction: Com_rollback (the server's count of ROLLBACK
    statements in the session) does not move for committed writes; reads still see new rows."""
    with ExperimentTracker(mysql_url) as tracker, ExperimentTracker(mysql_url) as other:
        eid = tracker.create_experiment("e", "t", "m")
        engine = tracker.repository.uow.engine  # type: ignore[attr-defined]

        def rollbacks() -> int:
            with engine.connect() as conn:  # the pool's one connection: its session's counters
                count = int(conn.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'")).one()[1])
                conn.rollback()
            return count

        tracker.log_trial(eid, 0, {"n": 0}, {"sharpe": 0.0})  # the first also reads the objective
        before = rollbacks()
        for n in range(1, 5):
            tracker.log_trial(eid, n, {"n": n}, {"sharpe": float(n)})
        after = rollbacks()
        assert after - before == 1  # the counting connection's own rollback, none for the writes
        assert len(tracker.get_trials(eid)) == 5  # a read transaction, ended on return
        other.log_trial(eid, 5, {}, {"sharpe": 9.0})
        assert len(tracker.get_trials(eid)) == 6  # REPEATABLE READ: a kept snapshot would show 5
        assert tracker.best_trial(eid)["trial_number"] == 5  # type: ignore[index]
        raw = engine.raw_connection()  # a DBAPI connection left in a read transaction goes back
        cursor = raw.cursor()
        cursor.execute("SELECT count(*) FROM trials")
        assert cursor.fetchone()[0] == 6
        cursor.close()
        raw.close()
        other.log_trial(eid, 6, {}, {"sharpe": 10.0})
        assert len(tracker.get_trials(eid)) == 7  # its snapshot was rolled back on return
