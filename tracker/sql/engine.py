"""Creating the SQLAlchemy engine of a store: SQLite pragmas, and a liveness check of pooled
server connections."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError

from tracker.codec import decode_text, dumps
from tracker.errors import StoreConnectionError
from tracker.records import Synchronous
from tracker.urls import StoreLocation, mask_password

BUSY_TIMEOUT_MS = 30_000


def make_engine(location: StoreLocation, synchronous: Synchronous, *, read_only: bool = False) -> Engine:
    """The engine for the store; JSON columns go through the codec's text form. A `read_only`
    engine cannot write: SQLite connections are `query_only` on a file opened without creating it
    (mode=rw, so that the last one to close removes the -wal and -shm files as a writer's would;
    mode=ro where the file cannot be written), PostgreSQL sessions are READ ONLY.
    Raises StoreConnectionError for an unusable URL or a missing driver."""
    kwargs: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": decode_text}
    url: Any = location.url
    if location.backend == "sqlite":
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        if read_only and location.path is not None:
            path = quote(str(location.path.resolve()))
            mode = "rw" if os.access(location.path, os.W_OK) else "ro"
            url = URL.create("sqlite", database=f"file:{path}", query={"mode": mode, "uri": "true"})
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreConnectionError(
            f"cannot use the database URL {location.safe_url}: {mask_password(str(exc))}"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, synchronous)
        if read_only:
            event.listen(engine, "connect", _query_only)
    else:
        event.listen(engine, "checkout", _drop_dead_connection)
        if read_only:
            event.listen(engine, "connect", _read_only_session)
    return engine


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    """This SQLite connection refuses every write."""
    dbapi_conn.execute("PRAGMA query_only = ON")


def _read_only_session(dbapi_conn: Any, _record: Any) -> None:
    """Every transaction of this connection is READ ONLY: the server refuses any write."""
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_conn.commit()


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
        # A writer takes the write lock when it begins, so it never fails half-way on a busy file.
        write = conn.get_execution_options().get("tracker_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _drop_dead_connection(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a pooled server connection whose socket is closed, or has unread data
    (the termination notice a restarting server sends), is replaced before use. A non-blocking
    peek costs no round trip, unlike a pre-ping query."""
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is None:
        return
    try:
        probe = socket.socket(fileno=os.dup(pgconn.socket))
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
