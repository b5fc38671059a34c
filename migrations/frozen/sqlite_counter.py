"""FROZEN: keeping a SQLite AUTOINCREMENT counter across a table rebuild (batch mode drops the
table, and its sqlite_sequence row with it), so that ids are never reused. Never edit this file."""

from __future__ import annotations

import sqlalchemy as sa


def counter(conn: sa.Connection, table: str) -> int:
    """The highest id the table's counter has handed out (deleted rows included); 0 elsewhere."""
    if conn.dialect.name != "sqlite":
        return 0
    row = conn.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}).first()
    return int(row[0]) if row and row[0] is not None else 0


def restore(conn: sa.Connection, table: str, floor: int) -> None:
    """Set the counter back to at least `floor` after a rebuild (SQLite only)."""
    if conn.dialect.name != "sqlite" or floor == 0:
        return
    updated = conn.execute(
        sa.text("UPDATE sqlite_sequence SET seq = max(seq, :s) WHERE name = :t"), {"s": floor, "t": table}
    )
    if updated.rowcount == 0:
        conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"), {"s": floor, "t": table})
