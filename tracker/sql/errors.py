"""The one place where database errors become `tracker` errors."""

from __future__ import annotations

import sqlite3
from typing import cast

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from tracker.errors import CorruptStoreError, ReadOnlyStoreError, StoreConnectionError, StoreError
from tracker.store.location import StoreLocation, mask_password

_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
_CONNECTION_SQLSTATES = frozenset({"28P01", "28000", "3D000", "57P01", "57P02", "57P03"})
_MYSQL_TRANSIENT = frozenset({1205, 1213})  # lock wait timeout, deadlock
_MYSQL_CONNECTION = frozenset(
    # access denied (user, database), unknown database, server shutting down, killed connection,
    # cannot connect, server gone away, lost connection, disconnected by the server
    {1044, 1045, 1049, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
)
_MYSQL_UNIQUE = frozenset({1062, 1586})
_MYSQL_FULL = frozenset({1021, 1114})  # disk full, table full
_MYSQL_PACKET = 1153  # bigger than the server's max_allowed_packet


def mysql_code(exc: BaseException | None) -> int | None:
    """The error number of a PyMySQL error (None for other drivers' errors)."""
    if exc is None or not type(exc).__module__.startswith("pymysql"):
        return None
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def from_driver(exc: sqlite3.Error) -> DBAPIError:
    """The SQLAlchemy error for an error raised by the sqlite3 driver on the insert fast path."""
    return cast(DBAPIError, DBAPIError.instance(None, None, exc, sqlite3.Error))


def is_transient(exc: DBAPIError) -> bool:
    """A busy database, a serialisation failure or a deadlock: worth trying again."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES or mysql_code(orig) in _MYSQL_TRANSIENT:
        return True
    if isinstance(exc, OperationalError):
        text = str(orig).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    return False


def is_unique_violation(exc: IntegrityError) -> bool:
    number = mysql_code(exc.orig)
    if number is not None:
        return number in _MYSQL_UNIQUE
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return bool(code == "23505")
    return "UNIQUE constraint failed" in str(exc.orig)


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    number = mysql_code(orig)
    if number is not None:
        return number in _MYSQL_CONNECTION or (number == 0 and type(orig).__name__ == "InterfaceError")
    code = getattr(orig, "sqlstate", None) or ""
    if code.startswith("08") or code in _CONNECTION_SQLSTATES:
        return True
    if type(orig).__name__ in ("OperationalError", "InterfaceError") and type(orig).__module__.startswith("psycopg"):
        return code == ""
    return False


def translate(exc: SQLAlchemyError, location: StoreLocation) -> StoreError:
    """The `tracker` error for a database error; its message names the store without a password."""
    where = location.safe_url
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    detail = mask_password(text.splitlines()[0] if text else type(exc).__name__)
    lowered = detail.lower()
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connection_error(exc):
        return StoreConnectionError(
            f"cannot reach the database {where}: {detail}. Check that the server is running "
            "and that the URL, user and password are right"
        )
    if isinstance(exc, DBAPIError) and is_transient(exc):
        return StoreError(
            f"the database {where} could not complete the call for other writers ({detail}), even after "
            "retrying; it was rolled back. Run it again"
        )
    number = mysql_code(orig)
    if number in _MYSQL_FULL:
        return ReadOnlyStoreError(f"the disk or table holding {where} is full: {detail}")
    if number == _MYSQL_PACKET:
        return StoreError(
            f"a value is too large for the server behind {where} ({detail}); raise the server's "
            "max_allowed_packet (e.g. max_allowed_packet=256M under [mysqld]) and try again"
        )
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return ReadOnlyStoreError(f"the database {where} is read-only: {detail}")
    if "disk is full" in lowered or "disk full" in lowered or "no space" in lowered:
        return ReadOnlyStoreError(f"the disk holding {where} is full: {detail}")
    if "file is not a database" in lowered or "malformed" in lowered:
        return CorruptStoreError(f"{where} is not a usable SQLite database: {detail}")
    if "prepared statement" in lowered and location.backend == "postgresql" and "pooler=" not in location.url:
        pooled = where + ("&" if "?" in where else "?") + "pooler=transaction"
        return StoreError(
            f"database error on {where}: {detail}. tracker prepares no statement itself: the driver does "
            "once a statement has run 5 times, and a transaction pooler (PgBouncer in transaction mode) "
            "runs the next transaction on another server connection. Say so in the URL, with "
            f"pooler=transaction in its query: {pooled}" + (" (with your password)" if "***" in where else "")
        )
    if "unable to open database" in lowered:
        return StoreConnectionError(f"cannot open the SQLite file behind {where}: {detail}")
    return StoreError(f"database error on {where}: {detail}")
