"""Maintenance of a SQL store: collecting the blobs nothing references (left by versions that did
not collect them), and checkpointing a SQLite file's write-ahead log."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select, text

from tracker.errors import ValidationError
from tracker.sql.blob_store import unused
from tracker.sql.models import blobs
from tracker.sql.unit_of_work import UnitOfWork


def vacuum(uow: UnitOfWork) -> dict[str, int]:
    """Delete every blob (strategy code, artifact content) that nothing references, in one
    transaction; on SQLite then give the freed pages back to the file system. Returns the blobs
    removed, their bytes (stored, compressed), and the file's bytes before and after (SQLite)."""

    def collect(conn: Connection) -> dict[str, int]:
        count, size = conn.execute(
            select(func.count(), func.coalesce(func.sum(func.length(blobs.c.data)), 0)).where(unused())
        ).one()
        conn.execute(delete(blobs).where(unused()))
        return {"blobs_removed": int(count), "bytes_freed": int(size)}

    path = uow.location.path
    before = path.stat().st_size if path is not None else 0
    freed = uow.write(collect)
    if uow.dialect == "sqlite":
        raw = uow.engine.raw_connection()  # VACUUM runs outside a transaction, so not through SQLAlchemy's
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    after = path.stat().st_size if path is not None else 0
    return {**freed, "file_bytes_before": before, "file_bytes_after": after}


def checkpoint(uow: UnitOfWork) -> None:
    """Copy a SQLite file's write-ahead log into the file and empty it, so that readers who
    cannot write its folder can read it. Raises ValidationError on server databases."""
    if uow.dialect != "sqlite":
        raise ValidationError("--url", "`tracker db checkpoint` applies to SQLite files; servers checkpoint themselves")
    with uow.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
