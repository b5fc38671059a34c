"""Fixtures that give each test a real, empty store: a SQLite file, a PostgreSQL schema, a MariaDB
(or MySQL) database, a JSON journal, a PostgreSQL database reached through PgBouncer. PostgreSQL
tests need TRACKER_TEST_POSTGRES_URL and MariaDB tests TRACKER_TEST_MYSQL_URL; without them they
skip and say why, unless TRACKER_REQUIRE_POSTGRES=1 or TRACKER_REQUIRE_MYSQL=1 (both set by CI),
which turn every such skip into a failure. PgBouncer tests use TRACKER_TEST_PGBOUNCER_URL (a
PgBouncer in transaction mode in front of that PostgreSQL), or start their own PgBouncer when it is
unset and pgbouncer is installed; TRACKER_REQUIRE_PGBOUNCER=1 turns their skips into failures.
TRACKER_REQUIRE_ALL=1 (set by CI) turns any skip into a failure."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tracker import ExperimentTracker

PG_ENV = "TRACKER_TEST_POSTGRES_URL"
REQUIRE_ENV = "TRACKER_REQUIRE_POSTGRES"
MYSQL_ENV = "TRACKER_TEST_MYSQL_URL"
REQUIRE_MYSQL_ENV = "TRACKER_REQUIRE_MYSQL"
PGBOUNCER_ENV = "TRACKER_TEST_PGBOUNCER_URL"
REQUIRE_PGBOUNCER_ENV = "TRACKER_REQUIRE_PGBOUNCER"
BACKENDS = ["sqlite", "postgresql", "mysql", "json"]
SQL_BACKENDS = ["sqlite", "postgresql", "mysql"]
SERVER_BACKENDS = ("postgresql", "mysql")

_skipped_postgres: list[str] = []
_skipped_mysql: list[str] = []
_skipped_pgbouncer: list[str] = []
_skipped_any: list[str] = []
REQUIRE_ALL_ENV = "TRACKER_REQUIRE_ALL"
"""Set by CI: any skipped test fails the run (the browser, root-only and server tests included)."""


def postgres_base_url() -> str:
    """The server URL for PostgreSQL tests; skips (or fails in CI) when there is none."""
    url = os.environ.get(PG_ENV)
    required = os.environ.get(REQUIRE_ENV) == "1"
    reason = None
    if not url:
        reason = f"PostgreSQL tests need {PG_ENV}=postgresql+psycopg://user@host/db"
    else:
        try:
            engine = create_engine(url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:
            reason = f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is not answering: {exc}"
    if reason is not None:
        if required:
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    assert url is not None
    return url


def with_search_path(url: str, schema: str) -> str:
    return str(
        make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    )


@contextmanager
def temporary_schema() -> Iterator[str]:
    """A URL whose search_path is a new, empty PostgreSQL schema, dropped afterwards."""
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(base, schema)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with temporary_schema() as url:
        yield url


def mysql_base_url() -> str:
    """The server URL for MariaDB/MySQL tests; skips (or fails in CI) when there is none."""
    url = os.environ.get(MYSQL_ENV)
    required = os.environ.get(REQUIRE_MYSQL_ENV) == "1"
    reason = None
    if not url:
        reason = f"MariaDB tests need {MYSQL_ENV}=mysql+pymysql://user@host:3306/db"
    else:
        try:
            engine = create_engine(url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:
            reason = f"MariaDB at {make_url(url).render_as_string(hide_password=True)} is not answering: {exc}"
    if reason is not None:
        if required:
            pytest.fail(f"{REQUIRE_MYSQL_ENV}=1 but {reason}")
        pytest.skip(reason)
    assert url is not None
    return url


@contextmanager
def temporary_database(collation: str = "utf8mb4_bin") -> Iterator[str]:
    """The URL of a new, empty MariaDB/MySQL database (the server's analogue of a PostgreSQL
    schema), named after the database of TRACKER_TEST_MYSQL_URL and dropped afterwards."""
    base = make_url(mysql_base_url())
    name = f"{(base.database or 't')[:48]}_{uuid.uuid4().hex[:12]}"  # named after the run's database
    engine = create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE {collation}"))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def pgbouncer_base_url() -> Iterator[str]:
    """The URL of a PgBouncer in transaction mode in front of the test PostgreSQL (any database
    name passes through); started here, as user postgres, when TRACKER_TEST_PGBOUNCER_URL is unset."""
    from tests import pgbouncer

    url = os.environ.get(PGBOUNCER_ENV)
    if url:
        yield url
        return
    reason = None
    if not os.environ.get(PG_ENV):
        reason = f"PgBouncer tests need {PGBOUNCER_ENV}, or {PG_ENV} and pgbouncer installed"
    elif shutil.which("pgbouncer") is None and not Path(pgbouncer.PGBOUNCER).exists():
        reason = f"PgBouncer tests need {PGBOUNCER_ENV}, or pgbouncer installed (apt-get install pgbouncer)"
    if reason is not None:
        if os.environ.get(REQUIRE_PGBOUNCER_ENV) == "1":
            pytest.fail(f"{REQUIRE_PGBOUNCER_ENV}=1 but {reason}")
        pytest.skip(reason)
    with pgbouncer.running(os.environ[PG_ENV], "tracker_pgbouncer_") as url:
        yield url


@contextmanager
def database_behind_pgbouncer(pooler_base: str) -> Iterator[tuple[str, str]]:
    """A new, empty PostgreSQL database: its URL through PgBouncer (with ?pooler=transaction) and
    its direct URL; dropped afterwards."""
    base = make_url(postgres_base_url())
    name = f"{(base.database or 't')[:40]}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pooled = make_url(pooler_base).set(database=name).update_query_dict({"pooler": "transaction"})
    try:
        yield (
            pooled.render_as_string(hide_password=False),
            base.set(database=name).render_as_string(hide_password=False),
        )
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pgbouncer_url(pgbouncer_base_url: str) -> Iterator[str]:
    """The URL, through PgBouncer in transaction mode, of a new, empty PostgreSQL database."""
    with database_behind_pgbouncer(pgbouncer_base_url) as (pooled, _direct):
        yield pooled


def make_store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "pgbouncer":
        return str(request.getfixturevalue("pgbouncer_url"))
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if backend == "json":
        return str(tmp_path / "store.jsonl")
    if backend == "mysql":
        return str(request.getfixturevalue("mysql_url"))
    return str(request.getfixturevalue("pg_url"))


@contextmanager
def temporary_store(backend: str) -> Iterator[str]:
    """A server store's URL outside a test's fixtures (module-scoped fixtures, state machines)."""
    with temporary_schema() if backend == "postgresql" else temporary_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store of each backend."""
    return make_store_url(request.param, tmp_path, request)


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_store_url(request.param, tmp_path, request)


@pytest.fixture
def tracker(store_url: str) -> Iterator[ExperimentTracker]:
    with ExperimentTracker(store_url) as t:
        yield t


def _is_mysql(nodeid: str) -> bool:
    lowered = nodeid.lower()
    return "mysql" in lowered or "mariadb" in lowered


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.nodeid.lower():
        _skipped_postgres.append(report.nodeid)
    if report.skipped and _is_mysql(report.nodeid):
        _skipped_mysql.append(report.nodeid)
    if report.skipped and "pgbouncer" in report.nodeid.lower():
        _skipped_pgbouncer.append(report.nodeid)
    if report.skipped:
        _skipped_any.append(report.nodeid)


def _required_but_skipped() -> list[tuple[str, str, list[str]]]:
    found = [
        ("PostgreSQL", REQUIRE_ENV, _skipped_postgres),
        ("MariaDB", REQUIRE_MYSQL_ENV, _skipped_mysql),
        ("PgBouncer", REQUIRE_PGBOUNCER_ENV, _skipped_pgbouncer),
        ("any", REQUIRE_ALL_ENV, _skipped_any),
    ]
    return [(name, env, skipped) for name, env, skipped in found if os.environ.get(env) == "1" and skipped]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _required_but_skipped():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, env, skipped in _required_but_skipped():
        terminalreporter.write_line(f"FAILED: {len(skipped)} {name} test(s) skipped although {env}=1", red=True)


@pytest.fixture(scope="session")
def cluster_executor() -> Iterator[Any]:
    """The executor of a real Dask LocalCluster of 2 single-threaded worker processes, shared by
    the tests that run work on a cluster."""
    import distributed

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client.get_executor()


@pytest.fixture(autouse=True)
def dashboards_finish_their_background_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard reads its store in the background after it starts and answers meanwhile
    (`counting`). A test that checks figures right after start would race that pass, so here the
    pass is run to its end before the app serves; `tests/test_ui_early.py` (marked
    `early_answers`) tests the answers given during it."""
    if request.node.get_closest_marker("early_answers"):
        return
    from tracker.read.early import EarlyAnswers

    start = EarlyAnswers.warm_in_background

    def to_the_end(self: EarlyAnswers[Any]) -> Any:
        thread = start(self)
        thread.join(120)
        return thread

    monkeypatch.setattr(EarlyAnswers, "warm_in_background", to_the_end)
