"""tracker behind a real PgBouncer (`?pooler=transaction` and `?pooler=session`): many processes,
one server's few connections. The contract suite also runs through it (test_contract.py's
`pgbouncer` store). Each test works in a database of its own (PgBouncer passes no search_path)."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import pgbouncer
from tests.conftest import database_behind_pgbouncer
from tests.test_ttpt import ma_crossover
from tracker import ExperimentTracker, MigrationError, ValidationError
from tracker.demo import synthetic_prices
from tracker.integrations.optuna import TrackingCallback
from tracker.sql import schema
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.location import resolve
from tracker.stores import open_reader
from tracker.ttpt import LookaheadMonitor

WRITERS = 64
TRIALS_EACH = 40
_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(["tracker", "tracker.sql.repository", "sqlalchemy", "psycopg", "pandas"])


def server_connections(direct_url: str) -> int:
    """Server connections to the database of `direct_url`, this query's own left out."""
    engine = create_engine(direct_url)
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalar_one()
    engine.dispose()
    return int(count)


def write_trials(url: str, number: int, barrier: Any, results: Any) -> None:
    """One writer: get-or-create the shared experiment at the same moment as the others, then log
    its trials with a TTPT result each and read the best trial after each; report every error."""
    errors: list[str] = []
    experiment_id = None
    try:
        with ExperimentTracker(url) as t:
            barrier.wait(timeout=300)
            experiment_id = t.experiment("fleet", "momentum", "tpe")
            for n in range(TRIALS_EACH):
                try:
                    t.log_trials(
                        experiment_id,
                        [
                            {
                                "trial_number": number * TRIALS_EACH + n,
                                "params": {"writer": number, "n": n},
                                "performance": {"sharpe": number + n / 100},
                                "ttpt": {"passed": n % 2 == 0, "num_violations": n % 2},
                            }
                        ],
                    )
                    best = t.best_trial(experiment_id)
                    assert best is not None
                    assert best["value"] >= number + n / 100
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    results.put((number, experiment_id, errors))


def run_writers(url: str, writers: int) -> list[tuple[int, int | None, list[str]]]:
    barrier = _forkserver.Barrier(writers)
    results = _forkserver.Queue()
    processes = [_forkserver.Process(target=write_trials, args=(url, n, barrier, results)) for n in range(writers)]
    for process in processes:
        process.start()
    found = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return found


@pytest.fixture
def pgbouncer_database(pgbouncer_base_url: str) -> Iterator[tuple[str, str]]:
    """A new database: (its URL through PgBouncer with ?pooler=transaction, its direct URL)."""
    with database_behind_pgbouncer(pgbouncer_base_url) as urls:
        yield urls


class TestThroughPgBouncerInTransactionMode:
    def test_64_writers_get_or_create_one_experiment_and_lose_no_trial(
        self, pgbouncer_database: tuple[str, str]
    ) -> None:
        pooled, direct = pgbouncer_database
        ExperimentTracker(pooled).close()  # the schema, once (the writers would serialise on it anyway)
        found = run_writers(pooled, WRITERS)
        errors = [error for _number, _eid, errs in found for error in errs]
        assert errors == []
        assert {eid for _number, eid, _errs in found} == {1}
        with ExperimentTracker(direct) as t:
            assert [e["id"] for e in t.list_experiments()] == [1]
            trials = t.get_trials(1)
            assert len(trials) == WRITERS * TRIALS_EACH == 2560
            assert sorted(trial["trial_number"] for trial in trials) == list(range(2560))
            assert sum(trial["ttpt_result"] is not None for trial in trials) == 2560
        assert server_connections(direct) <= pgbouncer.SERVER_CONNECTIONS

    def test_no_statement_is_prepared_on_the_server(self, pgbouncer_database: tuple[str, str]) -> None:
        pooled, direct = pgbouncer_database

        def prepared_after_repeats(url: str) -> int:
            with ExperimentTracker(url) as t:
                eid = t.create_experiment("e", "t", "m")
                for n in range(8):  # psycopg prepares a statement once it has run 5 times
                    t.log_trial(eid, n, {}, {"sharpe": 1.0})
                repository: Any = t._repo
                return int(
                    repository.uow.read(
                        lambda conn: conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
                    )
                )

        assert prepared_after_repeats(direct) > 0  # the control: a direct connection prepares them
        assert prepared_after_repeats(pooled) == 0

    def test_a_reader_leaves_no_read_only_session_behind_for_the_writers(
        self, pgbouncer_database: tuple[str, str]
    ) -> None:
        pooled, _direct = pgbouncer_database
        with ExperimentTracker(pooled) as t:
            eid = t.create_experiment("e", "t", "m")
        readers = [open_reader(pooled) for _ in range(pgbouncer.SERVER_CONNECTIONS)]
        try:
            with ExitStack() as held:  # 8 read transactions at once: every server connection serves one
                for reader in readers:
                    held.enter_context(reader.transaction(write=False))
                    assert reader.get_experiment(eid).name == "e"
            with ExperimentTracker(pooled) as writer:
                for n in range(2 * pgbouncer.SERVER_CONNECTIONS):
                    writer.log_trial(eid, n, {}, {"sharpe": float(n)})
                assert len(writer.get_trials(eid)) == 2 * pgbouncer.SERVER_CONNECTIONS
        finally:
            for reader in readers:
                reader.close()

    def test_migrations_are_refused_with_the_command_to_run_against_the_server(
        self, pgbouncer_database: tuple[str, str]
    ) -> None:
        pooled, _direct = pgbouncer_database
        uow = UnitOfWork(resolve(pooled, None, None))
        try:
            with pytest.raises(MigrationError, match=r"transaction pooler.*`tracker db upgrade --url URL`"):
                schema.upgrade(uow)
            assert uow.read(schema.current_revision) is None  # nothing was created
        finally:
            uow.dispose()
        run = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", pooled, "db", "upgrade", "--yes"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 1
        assert "with the URL of the PostgreSQL server itself" in run.stderr

    def test_an_optuna_study_of_4_processes_logs_every_trial_once(self, pgbouncer_database: tuple[str, str]) -> None:
        pooled, direct = pgbouncer_database
        engine = create_engine(direct)
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA optuna"))
        engine.dispose()
        optuna_url = make_url(direct).update_query_dict({"options": "-csearch_path=optuna"})
        storage_url = optuna_url.render_as_string(hide_password=False)
        optuna.create_study(study_name="fleet", storage=storage_url, direction="maximize")  # once, first
        ExperimentTracker(pooled).close()
        context = multiprocessing.get_context("forkserver")
        workers = [context.Process(target=optimise, args=(storage_url, pooled, seed)) for seed in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=600)
        assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
        study = optuna.load_study(study_name="fleet", storage=storage_url)
        with ExperimentTracker(direct) as t:
            [experiment_id] = t.experiment_ids("fleet-study")
            trials = t.get_trials(experiment_id)
            assert sorted(trial["trial_number"] for trial in trials) == [trial.number for trial in study.trials]
            assert len(trials) == 4 * OPTUNA_TRIALS_EACH
            checked = [trial for trial in trials if trial["ttpt_result"] is not None]
            assert checked
            assert all(trial["ttpt_result"]["passed"] for trial in checked)
            by_number = {trial["trial_number"]: trial["value"] for trial in trials}
            assert by_number == {trial.number: trial.value for trial in study.trials}


OPTUNA_TRIALS_EACH = 5


def crossover(data: Any, params: dict[str, Any]) -> Any:
    return ma_crossover(data, {"fast": params["fast"], "slow": 20})


def optimise(storage_url: str, tracker_url: str, seed: int) -> None:
    """One Optuna worker: the study Optuna's storage holds, the trials into tracker through PgBouncer."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="fleet", storage=storage_url, sampler=optuna.samplers.RandomSampler(seed=seed))
    data = {"close": synthetic_prices(seed=1, assets=2, years=1)}
    with ExperimentTracker(tracker_url) as t:
        monitor = LookaheadMonitor(crossover, data, budget=6)
        callback = TrackingCallback(
            t, experiment_name="fleet-study", reuse=True, ttpt=monitor, checkpoint_interval=2, metric_names=["sharpe"]
        )
        study.optimize(
            lambda trial: float(trial.suggest_int("fast", 2, 9)), n_trials=OPTUNA_TRIALS_EACH, callbacks=[callback]
        )


@pytest.fixture(scope="module")
def session_pgbouncer_url() -> Iterator[str]:
    """A PgBouncer of its own in session mode (8 server connections), in front of the test server."""
    import os

    from tests.conftest import PG_ENV, postgres_base_url

    postgres_base_url()
    if shutil.which("pgbouncer") is None and not Path(pgbouncer.PGBOUNCER).exists():
        if os.environ.get("TRACKER_REQUIRE_PGBOUNCER") == "1":
            pytest.fail("TRACKER_REQUIRE_PGBOUNCER=1 but pgbouncer is not installed")
        pytest.skip("the session-mode test needs pgbouncer installed")
    with pgbouncer.running(os.environ[PG_ENV], "tracker_pgbouncer_session_", pool_mode="session") as url:
        yield url


class TestThroughPgBouncerInSessionMode:
    def test_12_writers_share_8_server_connections_and_lose_no_trial(self, session_pgbouncer_url: str) -> None:
        with database_behind_pgbouncer(session_pgbouncer_url) as (pooled, direct):
            pooled = pooled.replace("pooler=transaction", "pooler=session")
            ExperimentTracker(pooled).close()
            found = run_writers(pooled, 12)
            assert [error for _number, _eid, errs in found for error in errs] == []
            with ExperimentTracker(direct) as t:
                assert len(t.get_trials(1)) == 12 * TRIALS_EACH
            assert server_connections(direct) <= pgbouncer.SERVER_CONNECTIONS


class TestThePoolerOption:
    def test_an_unknown_pool_mode_is_refused_before_anything_is_written(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="must be 'transaction' or 'session'"):
            ExperimentTracker("postgresql+psycopg://nobody@127.0.0.1:1/none?pooler=statement")

    def test_it_applies_to_postgresql_only(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="PostgreSQL URLs only"):
            ExperimentTracker(f"sqlite:///{tmp_path / 'a.db'}?pooler=transaction")
        assert not (tmp_path / "a.db").exists()


def test_a_prepared_statement_error_says_to_name_the_pooler_in_the_url(pg_url: str) -> None:
    """The error a transaction pooler causes when the URL does not say `?pooler=transaction` (a
    real one from the server: a prepared statement this connection does not have) tells how to
    fix it, with a URL that opens the store."""
    from tracker.errors import StoreError

    with ExperimentTracker(pg_url) as t:
        repository: Any = t._repo
        with pytest.raises(StoreError) as raised:
            repository.uow.read(lambda conn: conn.exec_driver_sql("EXECUTE _pg3_0"))
    message = str(raised.value)
    assert 'prepared statement "_pg3_0" does not exist' in message
    suggested = message.rsplit("pooler=transaction in its query: ", 1)[1]
    assert suggested.endswith("pooler=transaction")
    with ExperimentTracker(suggested) as t:  # the URL it gives works as it is
        assert t.list_experiments() == []


def test_the_pooler_hint_keeps_a_password_out_and_says_to_put_it_back(pg_url: str) -> None:
    from sqlalchemy.engine import make_url

    from tracker.errors import StoreError

    url = make_url(pg_url).set(password="s3cret-pass").render_as_string(hide_password=False)  # noqa: S106 - a test password
    with ExperimentTracker(url) as t:  # trust authentication: any password opens it
        repository: Any = t._repo
        with pytest.raises(StoreError) as raised:
            repository.uow.read(lambda conn: conn.exec_driver_sql("EXECUTE _pg3_0"))
    message = str(raised.value)
    assert "s3cret-pass" not in message
    assert message.endswith("pooler=transaction (with your password)")
    suggested = message.rsplit("in its query: ", 1)[1].removesuffix(" (with your password)")
    with ExperimentTracker(suggested.replace("***", "s3cret-pass")) as t:
        assert t.list_experiments() == []
