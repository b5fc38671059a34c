"""Reliability: many writing processes, SIGKILL at random moments, server faults, unusable files,
and passwords that never leak. Sizes are small here; bench/stress.py runs the large versions."""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import make_store_url
from tracker import (
    CorruptStoreError,
    ExperimentTracker,
    ReadOnlyStoreError,
    StoreConnectionError,
    StoreError,
    TrackerError,
    TransactionRolledBackError,
)
from tracker.store.retry import atomically

ROOT = Path(__file__).parent.parent
SECRET = "".join(["hun", "ter2", "sec", "ret"])  # never written whole in this file, so a traceback cannot show it
STRESS = ROOT / "bench" / "stress.py"
WRITERS = {"sqlite": 8, "json": 8, "postgresql": 16, "mysql": 16}


def stress(*args: str) -> dict[str, object]:
    run = subprocess.run([sys.executable, str(STRESS), *args], capture_output=True, text=True, timeout=600)
    report: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, (report, run.stderr[-2000:])
    return report


@pytest.mark.parametrize("backend", ["sqlite", "json", "postgresql", "mysql"])
def test_many_writers_lose_nothing(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = make_store_url(backend, tmp_path, request)
    report = stress("many", "--url", url, "--writers", str(WRITERS[backend]), "--trials", "30")
    assert report["writers"] == WRITERS[backend]
    assert report["acknowledged"] == report["stored"] >= WRITERS[backend] * 30
    failures = ("lost", "content_differs", "duplicates", "half_written_batches", "failed_calls")
    assert {key: report[key] for key in failures} == dict.fromkeys(failures, 0)
    assert report["atomic_trials_without_ttpt"] == 0


@pytest.mark.parametrize("backend", ["sqlite", "json", "postgresql", "mysql"])
def test_sigkill_during_writes_leaves_a_store_that_opens_with_every_acknowledged_write(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = make_store_url(backend, tmp_path, request)
    iterations = int(os.environ.get("TRACKER_CRASH_ITERATIONS", "6"))
    report = stress("crash", "--url", url, "--iterations", str(iterations), "--seed", str(len(backend)))
    assert report["iterations"] == iterations
    assert report["acknowledged"] > 0
    failures = ("lost", "content_differs", "duplicates", "half_written_batches", "atomic_trials_without_ttpt")
    assert {key: report[key] for key in failures} == dict.fromkeys(failures, 0)


class TestPostgresFaults:
    def test_a_read_that_fails_inside_a_block_loses_the_block_and_nothing_is_committed(self, pg_url: str) -> None:
        """PostgreSQL aborts a transaction at any error, and a COMMIT of an aborted transaction
        rolls back without a word: a block whose read failed must not end as if it had worked."""
        with ExperimentTracker(pg_url) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            locker = create_engine(pg_url)

            def block() -> None:
                with tracker.transaction():
                    tracker.log_trial(eid, 0, {}, {"sharpe": 1.0})
                    active = tracker.repository.uow._active.get()  # type: ignore[attr-defined]
                    active.conn.exec_driver_sql("SET LOCAL statement_timeout = '200ms'")
                    with locker.begin() as other:  # the read below waits for this lock, then times out
                        other.exec_driver_sql("LOCK TABLE ttpt_results IN ACCESS EXCLUSIVE MODE")
                        # a nested block joins the outer one; its own end does not raise
                        with (
                            tracker.transaction(),
                            pytest.raises(TransactionRolledBackError, match="statement timeout"),
                        ):
                            tracker.filter_experiments(max_violation_rate=0.1)
                    with pytest.raises(TransactionRolledBackError):
                        tracker.get_trials(eid)

            with pytest.raises(TransactionRolledBackError, match="run the whole block again"):
                block()
            locker.dispose()
            assert tracker.get_trials(eid) == []

    def test_an_unreachable_server_is_a_connection_error_without_the_password(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        url = make_url("postgresql+psycopg://alice@127.0.0.1:1/db").set(password=SECRET)
        with caplog.at_level(logging.DEBUG), pytest.raises(StoreConnectionError) as info:
            ExperimentTracker(url.render_as_string(hide_password=False))
        text_of_error = "".join(traceback.format_exception(info.value))
        assert SECRET not in text_of_error
        assert SECRET not in caplog.text
        assert "alice:***@127.0.0.1:1" in str(info.value)
        assert isinstance(info.value, ConnectionError)

    def test_a_refused_login_never_shows_the_password(
        self, pg_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
    ) -> None:
        url = make_url(pg_url).set(username="no_such_role", password=SECRET, database="no_such_db")
        bad = url.render_as_string(hide_password=False)
        with caplog.at_level(logging.DEBUG), pytest.raises(StoreConnectionError) as info:
            ExperimentTracker(bad)
        assert SECRET not in "".join(traceback.format_exception(info.value))
        assert SECRET not in caplog.text
        run = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", bad, "experiments", "list"], capture_output=True, text=True
        )
        assert run.returncode == 1
        assert SECRET not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr

    def test_repr_and_url_of_an_open_tracker_hide_the_password(self, pg_url: str) -> None:
        with ExperimentTracker(make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)) as t:
            assert SECRET not in repr(t)
            assert SECRET not in t.url

    def test_terminated_connections_are_replaced_on_the_next_call(self, pg_url: str) -> None:
        url, name = named(pg_url)
        with ExperimentTracker(url) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            tracker.log_trial(eid, 0, {}, {"sharpe": 1})
            assert terminate(pg_url, name) >= 1
            tracker.log_trial(eid, 1, {}, {"sharpe": 2})
            assert len(tracker.get_trials(eid)) == 2

    def test_a_call_cut_off_mid_transaction_raises_writes_nothing_and_the_tracker_goes_on(self, pg_url: str) -> None:
        url, name = named(pg_url)
        with ExperimentTracker(url) as tracker:
            _cut_off_mid_call(tracker, lambda: bool(busy_backends(pg_url, name)), lambda: terminate(pg_url, name))


class TestMariadbFaults:
    """The same faults on MariaDB: `KILL CONNECTION` stands for a restarting server."""

    def test_an_unreachable_server_is_a_connection_error_without_the_password(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        url = make_url("mysql+pymysql://alice@127.0.0.1:1/db").set(password=SECRET)
        with caplog.at_level(logging.DEBUG), pytest.raises(StoreConnectionError) as info:
            ExperimentTracker(url.render_as_string(hide_password=False))
        assert SECRET not in "".join(traceback.format_exception(info.value))
        assert SECRET not in caplog.text
        assert "alice:***@127.0.0.1:1" in str(info.value)
        assert isinstance(info.value, ConnectionError)

    def test_a_refused_login_never_shows_the_password(self, mysql_url: str, caplog: pytest.LogCaptureFixture) -> None:
        bad = make_url(mysql_url).set(username="no_such_user", password=SECRET).render_as_string(hide_password=False)
        with caplog.at_level(logging.DEBUG), pytest.raises(StoreConnectionError) as info:
            ExperimentTracker(bad)
        assert SECRET not in "".join(traceback.format_exception(info.value))
        assert SECRET not in caplog.text
        assert "no_such_user:***@" in str(info.value)
        run = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", bad, "experiments", "list"], capture_output=True, text=True
        )
        assert run.returncode == 1
        assert SECRET not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr

    def test_repr_and_url_of_an_open_tracker_hide_the_password(self, mysql_url: str) -> None:
        admin = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
        user = f"u{os.getpid()}_{time.monotonic_ns() % 10**6}"
        database = make_url(mysql_url).database
        with admin.connect() as conn:
            conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'"))
            conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
        try:
            url = make_url(mysql_url).set(username=user, password=SECRET).render_as_string(hide_password=False)
            with ExperimentTracker(url) as t:
                t.create_experiment("e", "t", "m")
                assert SECRET not in repr(t)
                assert SECRET not in t.url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP USER '{user}'@'%'"))
            admin.dispose()

    def test_killed_connections_are_replaced_on_the_next_call(self, mysql_url: str) -> None:
        with ExperimentTracker(mysql_url) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            tracker.log_trial(eid, 0, {}, {"sharpe": 1})
            assert kill_connections(mysql_url) >= 1
            tracker.log_trial(eid, 1, {}, {"sharpe": 2})
            assert len(tracker.get_trials(eid)) == 2
            assert kill_connections(mysql_url) >= 1
            assert [t["trial_number"] for t in tracker.get_trials(eid)] == [0, 1]  # a read, first after the kill

    def test_a_call_cut_off_mid_transaction_raises_writes_nothing_and_the_tracker_goes_on(self, mysql_url: str) -> None:
        with ExperimentTracker(mysql_url) as tracker:
            _cut_off_mid_call(tracker, lambda: bool(busy_connections(mysql_url)), lambda: kill_connections(mysql_url))


def _cut_off_mid_call(tracker: ExperimentTracker, busy: Callable[[], bool], cut: Callable[[], object]) -> None:
    """Cut the connection (`cut`) while a large batch is being written (`busy`), then check: the
    call raised StoreConnectionError, wrote nothing, and the tracker goes on."""
    eid = tracker.create_experiment("e", "t", "m")
    batch = [{"trial_number": n, "params": {"blob": "x" * 2000}, "performance": {"sharpe": n}} for n in range(60_000)]
    outcome: list[BaseException | list[int]] = []
    worker = threading.Thread(target=lambda: outcome.append(_call(tracker.log_trials, eid, batch)))
    worker.start()
    deadline = time.time() + 30
    while worker.is_alive() and time.time() < deadline:
        if busy():
            cut()
            break
        time.sleep(0.01)
    worker.join()
    [result] = outcome
    assert isinstance(result, StoreConnectionError), result
    assert tracker.get_trials(eid) == []
    tracker.log_trial(eid, 1, {}, {"sharpe": 1})
    assert len(tracker.get_trials(eid)) == 1


def _other_connections(conn: Any, busy: bool) -> list[int]:
    """The ids of the server's connections to this test's database but `conn` (running a statement
    when `busy`)."""
    query = "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
    if busy:
        query += " AND command = 'Query'"
    return [int(i) for i in conn.execute(text(query)).scalars()]


def busy_connections(mysql_url: str) -> int:
    engine = create_engine(mysql_url)
    with engine.connect() as conn:
        found = len(_other_connections(conn, busy=True))
    engine.dispose()
    return found


def kill_connections(mysql_url: str) -> int:
    """`KILL CONNECTION` every other connection to this test's database, as a server restart would,
    and wait (up to 5 s) until they are gone."""
    engine = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        victims = _other_connections(conn, busy=False)
        for victim in victims:
            conn.execute(text(f"KILL CONNECTION {victim}"))
        deadline = time.time() + 5
        while set(_other_connections(conn, busy=False)) & set(victims) and time.time() < deadline:
            time.sleep(0.01)
    engine.dispose()
    return len(victims)


def _call(function: object, *args: object) -> BaseException | list[int]:
    try:
        return function(*args)  # type: ignore[operator, no-any-return]
    except TrackerError as exc:
        return exc


def named(pg_url: str) -> tuple[str, str]:
    """The URL with a unique application_name, so that only this test's connections are cut."""
    name = f"tracker-test-{os.getpid()}-{time.monotonic_ns()}"
    return make_url(pg_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False), name


def busy_backends(pg_url: str, name: str) -> int:
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        busy = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n AND state = 'active'"), {"n": name}
        ).scalar()
    engine.dispose()
    return int(busy or 0)


def terminate(pg_url: str, name: str) -> int:
    """Terminate the server processes of connections named `name`, as a server restart would, and
    wait (up to 5 s each) until they are gone."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        killed = conn.execute(
            text("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE application_name = :n"),
            {"n": name},
        ).scalar()
    engine.dispose()
    return int(killed or 0)


def _run(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make a file read-only even for root (chattr +i)."""
    if not _run(["chattr", "+i", str(path)]):
        pytest.skip("chattr +i is not available here (needs root and a filesystem with attributes)")
    try:
        yield
    finally:
        _run(["chattr", "-i", str(path)])


@contextmanager
def read_only_view(folder: Path) -> Iterator[Path]:
    """A read-only bind mount of `folder` (a read-only file system, as for root)."""
    view = folder.parent / f"{folder.name}-ro"
    view.mkdir()
    if not (_run(["mount", "--bind", str(folder), str(view)]) and _run(["mount", "-o", "remount,ro,bind", str(view)])):
        _run(["umount", str(view)])
        pytest.skip("read-only bind mounts are not available here (needs root)")
    try:
        yield view
    finally:
        _run(["umount", str(view)])


def _written(folder: Path, suffix: str) -> Path:
    path = folder / f"store{suffix}"
    with ExperimentTracker(path) as t:
        eid = t.create_experiment("e", "t", "m")
        t.log_trial(eid, 0, {"a": 1}, {"sharpe": 1})
    return path


@pytest.mark.parametrize("suffix", [".db", ".jsonl"])
def test_a_read_only_file_is_a_clear_error_and_stays_intact(tmp_path: Path, suffix: str) -> None:
    path = _written(tmp_path, suffix)
    before = path.read_bytes()
    with (
        immutable(path),
        pytest.raises(ReadOnlyStoreError, match=r"read-only|cannot write"),
        ExperimentTracker(path) as t,
    ):
        t.log_trial(1, 1, {}, {})
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", [".db", ".jsonl"])
def test_a_read_only_folder_is_a_clear_error_and_stays_intact(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = _written(folder, suffix)
    before = path.read_bytes()
    with (
        read_only_view(folder) as view,
        pytest.raises(StoreError, match=r"read-only|cannot"),
        ExperimentTracker(view / path.name) as t,
    ):
        t.log_trial(1, 1, {}, {})
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", [".db", ".jsonl"])
def test_a_full_disk_is_a_clear_error_and_existing_data_survives(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"store{suffix}"
    with ExperimentTracker(path) as t:
        eid = t.create_experiment("e", "t", "m")
        t.log_trial(eid, 0, {"a": 1}, {"sharpe": 1})
    size = path.stat().st_size
    code = (
        "import resource, signal, sys\nfrom tracker import ExperimentTracker, StoreError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 4096}, {size + 4096}))\n"
        f"t = ExperimentTracker({str(path)!r})\n"
        "try:\n"
        "    rows = [{'trial_number': n, 'params': {'pad': 'x' * 1000}, 'performance': {}} for n in range(1, 200)]\n"
        f"    t.log_trials({eid}, rows)\n"
        "except StoreError as e: print(type(e).__name__, '|', e)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert run.returncode == 0, run.stderr
    assert "StoreError" in run.stdout or "ReadOnlyStoreError" in run.stdout, run.stdout
    with ExperimentTracker(path) as t:
        assert [x["params"] for x in t.get_trials(eid)] == [{"a": 1}]
        t.log_trial(eid, 5, {}, {})


@pytest.mark.parametrize("suffix", [".db", ".jsonl"])
def test_a_path_that_is_a_directory_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(StoreError, match=r"directory|unable to open|cannot open"):
        ExperimentTracker(folder)


def test_a_file_that_is_not_a_database_is_a_clear_error_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match="not a usable SQLite database"):
        ExperimentTracker(path)
    assert path.read_bytes() == before


def test_rlimit_is_restored_in_this_process() -> None:
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY


def test_blocks_tracker_opens_run_again_whole_when_rolled_back(store_url: str) -> None:
    """`atomically` runs a block again from the start after TransactionRolledBackError (raised
    here by the block itself, as the database's rollback would be); inside a caller's block it
    runs once, since only the caller can run its block again."""
    with ExperimentTracker(store_url) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        attempts: list[int] = []

        def work(number: int, failures: int) -> int:
            with tracker.transaction():
                tracker.log_trial(eid, number, {}, {"sharpe": 1.0})
                attempts.append(number)
                if len(attempts) <= failures:
                    raise TransactionRolledBackError("rolled back by the database")
            return len(attempts)

        assert atomically(lambda: work(0, 2), [tracker.repository]) == 3
        assert [t["trial_number"] for t in tracker.get_trials(eid)] == [0]
        attempts.clear()
        with pytest.raises(TransactionRolledBackError), tracker.transaction():
            atomically(lambda: work(1, 1), [tracker.repository])
        assert attempts == [1]
        assert [t["trial_number"] for t in tracker.get_trials(eid)] == [0]


def test_read_only_error_is_a_permission_error() -> None:
    assert issubclass(ReadOnlyStoreError, PermissionError)


@pytest.mark.parametrize(
    ("source", "destination"),
    [("sqlite", "json"), ("json", "postgresql"), ("postgresql", "sqlite"), ("sqlite", "mysql"), ("mysql", "json")],
)
def test_archival_killed_at_random_moments_leaves_every_experiment_whole_in_a_store(
    source: str, destination: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    src = make_store_url(source, tmp_path / "src", request)
    dst = make_store_url(destination, tmp_path / "dst", request)
    if source == destination == "postgresql":  # pragma: no cover - not a parametrised pair
        pytest.fail("two PostgreSQL stores need two schemas")
    iterations = int(os.environ.get("TRACKER_CRASH_ITERATIONS", "6"))
    report = stress(
        "archive", "--url", src, "--to", dst, "--iterations", str(iterations), "--experiments", "4", "--trials", "300"
    )
    assert report["iterations"] == iterations
    assert report["final"] == {"destination": 4}
    assert sum(report["experiments_checked_after_kills"].values()) == 4 * iterations  # type: ignore[union-attr]
