"""Creating the SQLAlchemy engine of a store: SQLite pragmas, MariaDB/MySQL session settings and
session locks, PostgreSQL behind a connection pooler (`?pooler=`), and a liveness check of pooled
server connections."""

from __future__ import annotations

import os
import socket
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import NullPool, PoolResetState

from tracker.errors import DISTRIBUTION, StoreConnectionError, StoreError, ValidationError
from tracker.sql.models import MARIADB_COLLATION, MYSQL_COLLATION, MYSQL_DIALECTS
from tracker.sql.sqlite_reader import connector, folder_is_unwritable
from tracker.store.codec import dumps, loads
from tracker.store.location import StoreLocation, mask_password
from tracker.store.records import Synchronous

BUSY_TIMEOUT_MS = 30_000
MYSQL_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
"""Every MariaDB/MySQL session: a bad value is an error, never a silent truncation or a zero date."""
LOCK_TIMEOUT_S = 300
"""How long a MariaDB/MySQL session lock (`session_lock`) is waited for."""
_LOCKS = "tracker_session_locks"
Pooler = Literal["transaction", "session"]
POOLERS: tuple[Pooler, ...] = ("transaction", "session")
POOLER_POOL_SIZE = 1
"""Client connections a process keeps to a transaction pooler (see `pooler_engine_options`)."""


def pooler_of(location: StoreLocation) -> Pooler | None:
    """The `?pooler=transaction|session` option of a PostgreSQL URL (None without it): the store is
    reached through a connection pooler such as PgBouncer in that pool mode. Raises ValidationError
    for another value, or for the option on a store that is not PostgreSQL."""
    if "pooler=" not in location.url:
        return None
    value = make_url(location.url).query.get("pooler")
    if value is None:
        return None
    if location.backend != "postgresql":
        raise ValidationError("url", f"?pooler= applies to PostgreSQL URLs only, not to {location.backend}")
    if value not in POOLERS:
        raise ValidationError(
            "url", f"?pooler= must be 'transaction' or 'session' (PgBouncer's pool_mode), got {value!r}"
        )
    return value


def pooler_engine_options(pooler: Pooler) -> dict[str, Any]:
    """Engine options behind a pooler. No server-side prepared statements (psycopg prepares a
    statement after 5 runs, and the next transaction may land on a server connection that does not
    have it). In transaction mode an idle client connection holds no server connection, so each
    process keeps one (a new connection per transaction cost more: docs/scale-out.md); in session
    mode a kept client connection would pin a server connection, so none is kept (NullPool)."""
    options: dict[str, Any] = {"connect_args": {"prepare_threshold": None}}
    if pooler == "session":
        options["poolclass"] = NullPool
    else:
        options["pool_size"] = POOLER_POOL_SIZE
    return options


def make_engine(location: StoreLocation, synchronous: Synchronous, *, read_only: bool = False) -> Engine:
    """The engine for the store. JSON columns are the codec's storage form as JSON text both ways
    (`dumps`, `loads`): values are encoded and decoded at the repository, not here. A `read_only`
    engine cannot write: SQLite connections are `query_only`, on a file opened without creating it
    (mode=rw, so that the last one to close removes the -wal and -shm files as a writer's would;
    mode=ro, where SQLite itself refuses every write, when the file cannot be written; see
    `sqlite_reader` where its folder cannot be); PostgreSQL and MariaDB/MySQL sessions are READ ONLY.
    Raises StoreConnectionError for an unusable URL or a missing driver."""
    kwargs: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": loads}
    url: Any = location.url
    pooler = pooler_of(location)
    if pooler is not None:
        url = make_url(location.url).difference_update_query(["pooler"])
        kwargs.update(pooler_engine_options(pooler))
    if location.backend == "mysql":
        # utf8mb4 on the wire whatever the URL says (connect_args win over its query).
        kwargs["connect_args"] = {"charset": "utf8mb4"}
        # The pool's rollback on return is `_reset_mysql`'s, sent only when a transaction is open.
        kwargs["pool_reset_on_return"] = None
    if location.backend == "sqlite":
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        if read_only and location.path is not None and folder_is_unwritable(location.path):
            kwargs["creator"] = connector(location.path, BUSY_TIMEOUT_MS / 1000)
            kwargs["poolclass"] = NullPool  # each connection looks again for a write-ahead log
        elif read_only and location.path is not None:
            # mode=rw where this process may write the file, so that the last connection to close
            # removes the -wal and -shm files as a writer's would (a read leaves nothing behind);
            # mode=ro where it may not, and SQLite itself then refuses every write.
            mode = "rw" if os.access(location.path, os.W_OK) else "ro"
            path = quote(str(location.path.resolve()))
            url = URL.create("sqlite", database=f"file:{path}", query={"mode": mode, "uri": "true"})
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as exc:  # the driver is not installed
        extra = {"postgresql": "postgres", "mysql": "mysql"}.get(location.backend)
        hint = f"; install it with: pip install '{DISTRIBUTION}[{extra}]'" if extra else ""
        raise StoreConnectionError(
            f"cannot use the database URL {location.safe_url}: {mask_password(str(exc))}{hint}"
        ) from None
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreConnectionError(
            f"cannot use the database URL {location.safe_url}: {mask_password(str(exc))}"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, synchronous, CACHE_KIB if not read_only else None)
        if read_only:
            event.listen(engine, "connect", _query_only)
    elif engine.dialect.name in MYSQL_DIALECTS:
        event.listen(engine, "connect", _mysql_session_read_only if read_only else _mysql_session)
        event.listen(engine, "checkout", _drop_dead_connection)
        event.listen(engine, "reset", _reset_mysql)
        event.listen(engine, "commit", _transaction_ended)
        event.listen(engine, "rollback", _transaction_ended)
    else:
        event.listen(engine, "checkout", _drop_dead_connection)
        if read_only:
            event.listen(engine, "connect", _read_only_session if pooler is None else _read_only_transactions)
    return engine


def _mysql_session(dbapi_conn: Any, _record: Any, *, read_only: bool = False) -> None:
    """Strict SQL mode, UTC, the tables' collation and REPEATABLE READ for this new MariaDB/MySQL
    connection (two statements, once per pooled connection); a read-only engine's sessions refuse
    every write."""
    collation = MARIADB_COLLATION if "MariaDB" in dbapi_conn.get_server_info() else MYSQL_COLLATION
    cursor = dbapi_conn.cursor()
    cursor.execute(
        f"SET SESSION sql_mode = '{MYSQL_SQL_MODE}', time_zone = '+00:00', collation_connection = '{collation}'"
    )
    # InnoDB's default, set in case the server's is another: a read transaction sees one snapshot.
    access = ", READ ONLY" if read_only else ""
    cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ{access}")
    cursor.close()


def _mysql_session_read_only(dbapi_conn: Any, record: Any) -> None:
    _mysql_session(dbapi_conn, record, read_only=True)


def session_lock(conn: Connection, purpose: str, key: str = "") -> None:
    """Take a MariaDB/MySQL named lock for `purpose` and `key` in this database, waiting up to
    LOCK_TIMEOUT_S. Such locks belong to the session, not the transaction: it is released when the
    connection goes back to the pool, after the transaction ended. Raises StoreError on timeout."""
    name = "SHA1(CONCAT_WS('/', 'tracker', :purpose, DATABASE(), :key))"
    got = conn.execute(
        text(f"SELECT GET_LOCK({name}, :timeout)"), {"purpose": purpose, "key": key, "timeout": LOCK_TIMEOUT_S}
    ).scalar()
    if got != 1:
        raise StoreError(
            f"waited {LOCK_TIMEOUT_S} s for the {purpose} lock of this database (another process holds it); "
            "try again when that process is done"
        )
    conn.info[_LOCKS] = conn.info.get(_LOCKS, 0) + 1


def _reset_mysql(dbapi_conn: Any, record: Any, state: PoolResetState) -> None:
    """Pool reset of a MariaDB/MySQL connection going back: release the named locks it took, and
    roll back unless its last transaction was ended (committed or rolled back) through SQLAlchemy
    and the server says none is open (PyMySQL keeps the status flags of the last reply). So a write
    costs two round trips, not three: `ROLLBACK` is a round trip on this protocol, where psycopg
    skips an idle one. A DBAPI connection used directly is rolled back: a read snapshot is not
    flagged by the server, so only SQLAlchemy's events say it ended."""
    if state.terminate_only:
        return
    try:
        if record.info.pop(_LOCKS, 0):
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT RELEASE_ALL_LOCKS()")
            cursor.close()
        ended = record.info.pop(_ENDED, False)
        status = getattr(dbapi_conn, "server_status", None)
        idle = ended and status is not None and not status & SERVER_STATUS_IN_TRANS
        if not (state.transaction_was_reset or idle):
            dbapi_conn.rollback()
    except Exception as exc:  # noqa: BLE001 - a dead connection has lost its locks and transaction with its session
        record.invalidate(exc)


def _transaction_ended(conn: Connection) -> None:
    if not conn.invalidated:  # a dead connection's info would reconnect it (and it is not reused)
        conn.info[_ENDED] = True


_ENDED = "tracker.transaction_ended"
"""Connection info key: SQLAlchemy ended its last transaction (a later one through SQLAlchemy would
be ended too, inline, when the connection closes; tracker never uses the driver connection of a
MariaDB/MySQL engine directly)."""
SERVER_STATUS_IN_TRANS = 1
"""The MySQL protocol's status flag for an open transaction (pymysql.constants.SERVER_STATUS)."""


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    """This SQLite connection refuses every write."""
    dbapi_conn.execute("PRAGMA query_only = ON")


def _read_only_session(dbapi_conn: Any, _record: Any) -> None:
    """Every transaction of this connection is READ ONLY: the server refuses any write."""
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_conn.commit()


def _read_only_transactions(dbapi_conn: Any, _record: Any) -> None:
    """Behind a pooler: psycopg sends READ ONLY with each BEGIN, so no session setting outlives a
    transaction (the next one may run on another server connection). A statement in autocommit
    has no BEGIN and is not refused by the server there."""
    dbapi_conn.read_only = True


CACHE_KIB = 65_536
"""SQLite's page cache per writable connection, at most (it grows as used): a batch's index
inserts (trials, trial_performance) then land on pages still in memory; with the default 2 MiB
they are read again from the file once a store passes about 100,000 trials. Read-only engines
(the dashboard's) keep the default: each of its connections streaming an artifact would
otherwise keep up to this much of it."""


def _configure_sqlite(engine: Engine, synchronous: Synchronous, cache_kib: int | None) -> None:
    pragma = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}[synchronous]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {pragma}")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size = -{cache_kib}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock when it begins, so it never fails half-way on a busy file.
        write = conn.get_execution_options().get("tracker_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _socket_of(dbapi_conn: Any) -> int | None:
    """The file descriptor of a psycopg or PyMySQL connection's socket (None when it has none)."""
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is not None:
        return int(pgconn.socket)
    sock = getattr(dbapi_conn, "_sock", None)  # PyMySQL
    return None if sock is None else int(sock.fileno())


def _drop_dead_connection(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a pooled server connection whose socket is closed, or has unread data
    (the termination notice a restarting PostgreSQL sends; the error packet of a MariaDB `KILL`),
    is replaced before use. A non-blocking peek costs no round trip, unlike a pre-ping query."""
    try:
        fd = _socket_of(dbapi_conn)
    except (OSError, ValueError) as exc:
        raise DisconnectionError("the connection has no socket") from exc
    if fd is None:
        if getattr(dbapi_conn, "_sock", False) is None:  # PyMySQL closed it after an error
            raise DisconnectionError("the connection is closed")
        return
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        raise DisconnectionError("the connection has no socket") from exc
    try:
        waiting = probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return  # nothing to read: alive and idle
    except OSError as exc:
        raise DisconnectionError(f"the connection is broken: {exc}") from exc
    finally:
        probe.close()
    raise DisconnectionError("the server closed the connection" if not waiting else "the server sent a notice")
