"""FROZEN: what revisions 0001-0003 need on MariaDB and MySQL (written 2026-12-01 for issue 16,
when those revisions first ran there). Never edit this file; a later revision that needs
something else gets a copy of its own.

On MariaDB and MySQL every table is InnoDB in utf8mb4 with a binary collation that does not pad
trailing spaces; free text is LONGTEXT (TEXT holds 64 KiB), bytes LONGBLOB, timestamps DATETIME(6)
holding naive UTC. An AUTO_INCREMENT counter never goes back: `restore` only raises it.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

DIALECTS = ("mysql", "mariadb")
"""SQLAlchemy's names: "mariadb" for mariadb+pymysql:// URLs, "mysql" otherwise."""


def used_by(conn: Any) -> bool:
    """Whether the connection (or offline migration bind) talks to MariaDB or MySQL."""
    return bool(conn.dialect.name in DIALECTS)


def collation(conn: Any) -> str:
    """The binary collation without padding: MariaDB's name, or MySQL 8's."""
    return "utf8mb4_nopad_bin" if getattr(conn.dialect, "is_mariadb", False) else "utf8mb4_0900_bin"


def table_options(conn: Any) -> dict[str, str]:
    """Keyword arguments of a new table on MariaDB/MySQL; nothing on other databases."""
    if not used_by(conn):
        return {}
    options = {"engine": "InnoDB", "charset": "utf8mb4", "collate": collation(conn)}
    return {f"{name}_{key}": value for name in DIALECTS for key, value in options.items()}


def text_type() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *DIALECTS)


def bytes_type() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.LONGBLOB(), *DIALECTS)


def time_type() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *DIALECTS)


def double(value: float | None, conn: Any) -> float | None:
    """A DOUBLE column's value: MariaDB/MySQL cannot hold infinities, so ±inf is stored there as the
    largest finite double of its sign (which tracker reads back as ±inf). Unchanged elsewhere."""
    if value is not None and math.isinf(value) and used_by(conn):
        return math.copysign(sys.float_info.max, value)
    return value


def in_house_ddl(statements: tuple[str, ...], conn: Any) -> tuple[str, ...]:
    """The in-house CREATE TABLE statements (SQLite's) in MariaDB/MySQL's words: AUTO_INCREMENT
    ids, LONGTEXT, timestamps with microseconds, utf8mb4 tables."""
    suffix = f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation(conn)}"
    out = []
    for statement in statements:
        converted = statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY AUTO_INCREMENT")
        converted = converted.replace("TIMESTAMP DEFAULT CURRENT_TIMESTAMP", "DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6)")
        out.append(re.sub(r"\bTEXT\b", "LONGTEXT", converted) + suffix)
    return tuple(out)


def counter(conn: sa.Connection, table: str) -> int:
    """The highest id the table's AUTO_INCREMENT counter has handed out (0 for none)."""
    if not getattr(conn.dialect, "is_mariadb", False):  # MySQL 8 caches these statistics for a day
        conn.execute(sa.text("SET SESSION information_schema_stats_expiry = 0"))
    row = conn.execute(
        sa.text(
            "SELECT auto_increment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :t"
        ),
        {"t": table},
    ).first()
    return int(row[0]) - 1 if row and row[0] is not None else 0


def restore(conn: sa.Connection, table: str, floor: int) -> None:
    """Make the table's next id at least floor + 1 and above every id in it (never lower)."""
    highest = conn.execute(sa.select(sa.func.coalesce(sa.func.max(sa.column("id")), 0)).select_from(sa.table(table)))
    top = max(floor, int(highest.scalar() or 0), counter(conn, table))
    if top > 0:
        conn.execute(sa.text(f"ALTER TABLE `{table}` AUTO_INCREMENT = {int(top) + 1}"))
