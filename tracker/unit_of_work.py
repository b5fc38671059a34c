"""The SQL unit of work: one engine per store, one transaction per call, retries, and the single
place where database errors become `tracker` errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tracker.errors import (
    CorruptStoreError,
    MigrationError,
    ReadOnlyStoreError,
    StoreConnectionError,
    StoreError,
    TrackerError,
)
from tracker.records import Synchronous
from tracker.urls import StoreLocation, mask_password
from tracker.values import decode_text, dumps

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 10
BUSY_TIMEOUT_MS = 30_000
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


class SqlDatabase:
    """Owns the engine for a store's lifetime and runs each unit of work in one transaction."""

    def __init__(self, location: StoreLocation, *, synchronous: Synchronous = "normal") -> None:
        self.location = location
        kwargs: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": decode_text}
        if location.backend == "sqlite":
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(location.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreConnectionError(
                f"cannot use the database URL {location.safe_url}: {mask_password(str(exc))}"
            ) from None
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, synchronous)

    def run(
        self,
        work: Callable[[Connection], T],
        *,
        write: bool,
        migrating: bool = False,
        on_integrity: Callable[[IntegrityError], TrackerError] | None = None,
    ) -> T:
        """Run `work` in one transaction and commit it; roll back and raise a TrackerError on failure.

        Busy databases, serialisation failures and deadlocks are retried with bounded back-off;
        an integrity error is turned into the error that `on_integrity` builds. With `migrating`,
        SQLite runs with foreign keys off (so that tables can be rebuilt) and checked before commit.
        """
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    if write and self.dialect == "sqlite":
                        conn = conn.execution_options(tracker_write=True)
                    if migrating and self.dialect == "sqlite":
                        return self._migrate_sqlite(conn, work)
                    with conn.begin():
                        return work(conn)
            except IntegrityError as exc:
                if on_integrity is not None:
                    raise on_integrity(exc) from None
                raise self.translate(exc) from exc
            except DBAPIError as exc:
                if _is_transient(exc) and attempt + 1 < MAX_ATTEMPTS:
                    delay = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())  # noqa: S311
                    log.info("database busy (%s); retry %d in %.2fs", type(exc.orig).__name__, attempt + 1, delay)
                    time.sleep(delay)
                    continue
                raise self.translate(exc) from None
            except SQLAlchemyError as exc:
                raise self.translate(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def use_wal(self) -> None:
        """Switch a SQLite file to WAL journaling (persistent; done once the schema is known good)."""
        if self.dialect != "sqlite":
            return
        try:
            with self.engine.connect() as conn:
                driver = conn.connection.driver_connection
                if driver is not None:
                    driver.execute("PRAGMA journal_mode = WAL")
        except DBAPIError as exc:
            raise self.translate(exc) from None

    def _migrate_sqlite(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        driver = conn.connection.driver_connection
        if driver is None:
            raise StoreError("the SQLite connection is closed")
        driver.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                result = work(conn)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"the migration left {len(broken)} broken foreign keys, e.g. {tuple(broken[0])}"
                    )
            return result
        finally:
            driver.execute("PRAGMA foreign_keys = ON")

    def translate(self, exc: SQLAlchemyError) -> StoreError:
        """The `tracker` error for a database error; its message names the store without a password."""
        where = self.location.safe_url
        orig = getattr(exc, "orig", None)
        detail = mask_password(
            str(orig if orig is not None else exc).strip().splitlines()[0]
            if str(orig if orig is not None else exc).strip()
            else type(exc).__name__
        )
        lowered = detail.lower()
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connection_error(exc):
            return StoreConnectionError(
                f"cannot reach the database {where}: {detail}. Check that the server is running "
                "and that the URL, user and password are right"
            )
        if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
            return ReadOnlyStoreError(f"the database {where} is read-only: {detail}")
        if "disk is full" in lowered or "disk full" in lowered or "no space" in lowered:
            return ReadOnlyStoreError(f"the disk holding {where} is full: {detail}")
        if "file is not a database" in lowered or "malformed" in lowered:
            return CorruptStoreError(f"{where} is not a usable SQLite database: {detail}")
        if "unable to open database" in lowered:
            return StoreConnectionError(f"cannot open the SQLite file behind {where}: {detail}")
        return StoreError(f"database error on {where}: {detail}")

    def dispose(self) -> None:
        self.engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None)
    if code in _TRANSIENT_SQLSTATES:
        return True
    if isinstance(exc, OperationalError):
        text = str(orig).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    return False


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or ""
    if code.startswith("08") or code in ("28P01", "28000", "3D000", "57P01", "57P02", "57P03"):
        return True
    name = type(orig).__name__
    if name in ("OperationalError", "InterfaceError") and type(orig).__module__.startswith("psycopg"):
        return code == "" or code.startswith("08")
    return False


def _configure_sqlite(engine: Engine, synchronous: Synchronous) -> None:
    pragma = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}[synchronous]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("tracker_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def sqlite_engine_without_pool(url: str) -> Engine:
    """A bare engine for schema work on SQLite (no pool, so the file is released at once)."""
    return create_engine(url, poolclass=NullPool)
