"""The SQL unit of work: every repository call runs in a transaction, either its own or the
caller's `transaction()` block, which the calls inside it join. Busy databases, serialisation
failures and deadlocks are retried with one bounded back-off (`retrying`); database errors are
translated by `tracker.sql.errors`. `insert` chooses the writer (`tracker.sql.fast_insert`): the
SQLite fast path is taken here and only here.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

from sqlalchemy import Connection, Executable, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tracker.errors import MigrationError, StoreError, TrackerError, TransactionRolledBackError
from tracker.sql.engine import make_engine
from tracker.sql.errors import from_driver, is_transient, translate
from tracker.sql.fast_insert import (
    CoreWriter,
    KeptConnection,
    MySQLWriter,
    SQLiteWriter,
    Statements,
    Writer,
    as_sqlite,
    sqlite_driver,
)
from tracker.sql.models import MYSQL_DIALECTS
from tracker.store.location import StoreLocation
from tracker.store.records import Synchronous
from tracker.store.retry import retry

log = logging.getLogger(__name__)

T = TypeVar("T")
OnIntegrity = Callable[[IntegrityError], TrackerError] | None


def retrying(attempt: Callable[[], T]) -> T:
    """Call `attempt` again while it fails with a transient database error (`tracker.store.retry.retry`)."""
    return retry(attempt, lambda exc: isinstance(exc, DBAPIError) and is_transient(exc), "database busy")


def partitions(conn: Connection, statement: Executable, size: int) -> Iterator[Sequence[Row[Any]]]:
    """The rows of `statement` in lists of `size`, streamed from the server while the caller runs
    other statements on the connection between lists. PyMySQL cannot do that (a statement sent
    while rows are unread discards them), so on MariaDB and MySQL the rows are fetched first."""
    if conn.dialect.name in MYSQL_DIALECTS:
        yield from conn.execute(statement).partitions(size)
    else:
        yield from conn.execution_options(yield_per=size).execute(statement).partitions()


class _Block:
    """A caller's open `transaction()` block: its connection, whether it writes, and why the
    database ended it early (a deadlock or serialisation failure rolls the whole of it back)."""

    __slots__ = ("conn", "lost", "write")

    def __init__(self, conn: Connection, write: bool) -> None:
        self.conn = conn
        self.write = write
        self.lost: str | None = None


LOST = (
    "the database rolled back this transaction block ({why}); nothing of it was written. Leave "
    "the block and run the whole block again: a transaction is retried only as a whole"
)


def _why(exc: DBAPIError) -> str:
    """The first line of the driver's message, for LOST."""
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UnitOfWork:
    """Owns a store's engine and runs each unit of work in one transaction."""

    def __init__(
        self, location: StoreLocation, *, synchronous: Synchronous = "normal", read_only: bool = False
    ) -> None:
        self.location = location
        self.engine = make_engine(location, synchronous, read_only=read_only)
        self.dialect: str = self.engine.dialect.name
        self._active: ContextVar[_Block | None] = ContextVar(f"tracker_transaction_{id(self)}", default=None)
        self.statements = Statements(self.engine.dialect)
        self._threads = threading.local()
        self._writers: weakref.WeakSet[KeptConnection] = weakref.WeakSet()

    # transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        """A block that the calls made inside it, on this thread, join: committed when it ends
        normally, rolled back when it raises. Nested blocks join the outer one. A write block
        takes SQLite's write lock at once; a read block on PostgreSQL sees one snapshot."""
        outer = self._active.get()
        if outer is not None:
            if write and not outer.write:
                raise StoreError("a write transaction cannot be opened inside a read transaction")
            yield
            return
        conn = self._guard(lambda: retrying(lambda: self._begin(write)))
        block = _Block(conn, write)
        token = self._active.set(block)
        try:
            try:
                yield
            except BaseException:
                with suppress(SQLAlchemyError):
                    conn.rollback()
                raise
            if block.lost is not None:  # the block caught the error and went on: commit nothing
                with suppress(SQLAlchemyError):
                    conn.rollback()
                raise TransactionRolledBackError(LOST.format(why=block.lost))
            try:
                conn.commit()
            except DBAPIError as exc:  # e.g. a serialisation failure found at COMMIT
                if not is_transient(exc):
                    raise translate(exc, self.location) from None
                raise TransactionRolledBackError(LOST.format(why=_why(exc))) from None
            except SQLAlchemyError as exc:
                raise translate(exc, self.location) from None
        finally:
            self._active.reset(token)
            conn.close()

    def in_transaction(self) -> bool:
        """Whether this thread is inside a `transaction()` block of this unit of work."""
        return self._active.get() is not None

    def _begin(self, write: bool) -> Connection:
        conn = self.engine.connect()
        try:
            if write and self.dialect == "sqlite":
                conn.execution_options(tracker_write=True)
            elif not write and self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
        except BaseException:
            conn.close()
            raise
        return conn

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a read transaction (the caller's, if one is open)."""
        return self._call(work, write=False, on_integrity=None)

    def write(self, work: Callable[[Connection], T], *, on_integrity: OnIntegrity = None) -> T:
        """Run `work` in a write transaction and commit it; an integrity error becomes the error
        `on_integrity` builds. In a caller's transaction it runs in a savepoint, so a failed call
        leaves the caller's transaction usable."""
        return self._call(work, write=True, on_integrity=on_integrity)

    def _joinable(self, write: bool) -> _Block | None:
        """This thread's open transaction block, if there is one."""
        active = self._active.get()
        if active is None:
            return None
        if write and not active.write:
            raise StoreError("cannot write inside a read transaction; open it with transaction(write=True)")
        if active.lost is not None:
            raise TransactionRolledBackError(LOST.format(why=active.lost))
        return active

    def _call(self, work: Callable[[Connection], T], *, write: bool, on_integrity: OnIntegrity) -> T:
        active = self._joinable(write)
        if active is not None:
            return self._guard(lambda: self._joined(active, write, lambda: work(active.conn)), on_integrity)

        def once() -> T:
            with self.engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(tracker_write=True)
                with conn.begin():
                    return work(conn)

        return self._guard(lambda: retrying(once), on_integrity)

    @staticmethod
    def _joined(block: _Block, write: bool, work: Callable[[], T]) -> T:
        """Run a call inside a caller's block; a write in a savepoint, so that a refused call (a
        duplicate trial number) leaves the block usable. tracker does not carry a block on past
        a database error it cannot undo alone: a deadlock or serialisation failure (MariaDB has
        rolled back the whole transaction; elsewhere the block's outcome would depend on which
        statements the server undid), any database error in a call without a savepoint (a read:
        PostgreSQL has aborted the transaction, and its COMMIT would silently roll back), or a
        savepoint that cannot be rolled back. The block is then marked lost and rolled back, and
        TransactionRolledBackError is raised by this call, by every later call in the block and
        at the end of the outermost block."""
        savepoint = block.conn.begin_nested() if write else None
        try:
            result = work()
        except DBAPIError as exc:
            if savepoint is None or is_transient(exc):
                UnitOfWork._lose(block, _why(exc))
            try:
                savepoint.rollback()
            except SQLAlchemyError:  # the server had rolled back the savepoint with the transaction
                UnitOfWork._lose(block, _why(exc))
            raise
        except BaseException:
            if savepoint is not None and savepoint.is_active:
                savepoint.rollback()
            raise
        if savepoint is not None:
            savepoint.commit()
        return result

    @staticmethod
    def _lose(block: _Block, why: str) -> NoReturn:
        block.lost = why
        with suppress(SQLAlchemyError):
            block.conn.rollback()
        raise TransactionRolledBackError(LOST.format(why=why)) from None

    def _guard(self, call: Callable[[], T], on_integrity: OnIntegrity = None) -> T:
        try:
            return call()
        except IntegrityError as exc:
            raise (on_integrity(exc) if on_integrity is not None else translate(exc, self.location)) from None
        except SQLAlchemyError as exc:
            raise translate(exc, self.location) from None

    # inserts ---------------------------------------------------------------------------------

    def insert(
        self, fill: Callable[[Writer], T], *, on_integrity: OnIntegrity = None, one_statement: bool = False
    ) -> T:
        """Run `fill`, which writes through the `Writer` it is given, as one write.

        `one_statement` promises that `fill` inserts one row: on PostgreSQL that then runs in
        autocommit, one round trip instead of three (BEGIN, INSERT, COMMIT). Not on MariaDB/MySQL,
        where PyMySQL sends no BEGIN and switching autocommit on and back costs two round trips.

        SQLite is the fast path. Measured on a 2-core machine (WAL, synchronous=NORMAL): a
        transaction of one insert costs 23 µs on the pooled DBAPI connection and 51 µs through a
        SQLAlchemy Connection (78 µs with Core's execute). Logging trials one at a time is the hot
        loop of an optimisation, so the statements are compiled once by SQLAlchemy (same SQL) and
        run on the DBAPI cursor, with executemany for batches.
        """
        active = self._joinable(True)
        if self.dialect == "sqlite":
            if active is not None:
                return self._guard(
                    lambda: self._joined(
                        active, True, lambda: self._sqlite_fill(sqlite_driver(active.conn).cursor(), fill)
                    ),
                    on_integrity,
                )
            return self._guard(lambda: retrying(lambda: self._sqlite_transaction(fill)), on_integrity)
        if one_statement and active is None and self.dialect == "postgresql":
            return self._guard(lambda: retrying(lambda: self._autocommit(fill)), on_integrity)
        if self.dialect in MYSQL_DIALECTS and self.engine.dialect.insert_returning:
            return self.write(lambda conn: fill(MySQLWriter(self.statements, conn)), on_integrity=on_integrity)
        return self.write(lambda conn: fill(CoreWriter(conn)), on_integrity=on_integrity)

    def _autocommit(self, fill: Callable[[Writer], T]) -> T:
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            return fill(CoreWriter(conn))

    def _sqlite_transaction(self, fill: Callable[[Writer], T]) -> T:
        driver = self._writer()
        cursor = driver.cursor()
        try:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                result = fill(SQLiteWriter(self.statements, cursor))
                cursor.execute("COMMIT")
                return result
            except BaseException:
                if driver.in_transaction:
                    cursor.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise from_driver(exc) from exc
        finally:
            cursor.close()

    def _writer(self) -> sqlite3.Connection:
        """This thread's pooled connection for the fast path, checked out once and kept: a pool
        checkout with its reset costs a quarter of a one-trial write (measured: 70 -> 52 µs CPU).
        It goes back to the pool when the thread ends or the store is closed."""
        writer: KeptConnection | None = getattr(self._threads, "writer", None)
        if writer is None or writer.raw is None:
            writer = self._threads.writer = KeptConnection(self.engine.raw_connection())
            self._writers.add(writer)
        return as_sqlite(writer.raw.driver_connection)

    def _sqlite_fill(self, cursor: sqlite3.Cursor, fill: Callable[[Writer], T]) -> T:
        try:
            return fill(SQLiteWriter(self.statements, cursor))
        except sqlite3.Error as exc:
            raise from_driver(exc) from exc

    # schema work -----------------------------------------------------------------------------

    def migrate(self, work: Callable[[Connection], T]) -> T:
        """Run schema work in one write transaction; on SQLite with foreign keys off (so that
        tables can be rebuilt) and checked before commit."""

        def once() -> T:
            with self.engine.connect() as conn:
                if self.dialect != "sqlite":
                    with conn.begin():
                        return work(conn)
                conn.execution_options(tracker_write=True)
                dbapi = sqlite_driver(conn)
                dbapi.execute("PRAGMA foreign_keys = OFF")
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
                    dbapi.execute("PRAGMA foreign_keys = ON")

        return self._guard(lambda: retrying(once))

    def use_wal(self) -> None:
        """Switch a SQLite file to WAL journaling (persistent; done once the schema is known good)."""
        if self.dialect == "sqlite":
            self._guard(lambda: self._on_driver(lambda driver: driver.execute("PRAGMA journal_mode = WAL")))

    def _on_driver(self, call: Callable[[sqlite3.Connection], Any]) -> None:
        with self.engine.connect() as conn:
            call(sqlite_driver(conn))

    def dispose(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._threads = threading.local()
        self.engine.dispose()
