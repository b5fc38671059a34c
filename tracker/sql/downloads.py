"""Artifact downloads from a SQL store: the blob row is read piece by piece, each piece in its
own short read transaction, so a download holds neither the artifact nor a connection for its
whole length. Blobs never change once written.

SQLite reads a piece through its incremental blob I/O (the whole value is never loaded);
PostgreSQL slices the stored bytes (`substr` fetches only the TOAST chunks it needs, the value
being stored uncompressed: zstd output or incompressible bytes); MariaDB and MySQL read the whole
value on the server for each `SUBSTRING`, so pieces there are `MYSQL_PIECE` bytes, and memory in
this process stays bounded by one piece per download."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from tracker.errors import NotFoundError
from tracker.read.downloads import CHUNK, Download
from tracker.sql.attachments import require
from tracker.sql.models import MYSQL_DIALECTS, blobs
from tracker.sql.rows import OWNERS
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.records import Artifact, Owner

MYSQL_PIECE = 16 << 20
"""Bytes per read on MariaDB and MySQL, where each read costs the server the whole value."""


def download(uow: UnitOfWork, owner: Owner, name: str) -> Download:
    """The artifact `name` of `owner`, ready to stream; raises NotFoundError."""
    tables = OWNERS[owner.kind]
    a = tables.artifacts
    query = (
        select(a.c.media_type, a.c.created_at, blobs.c.id, blobs.c.sha256, blobs.c.size, blobs.c.codec)
        .join(blobs, blobs.c.id == a.c.blob_id)
        .where(a.c[tables.key] == owner.id, a.c.name == name)
    )

    def find(conn: Connection) -> tuple[Artifact, int, str]:
        row = conn.execute(query).first()
        if row is None:
            require(conn, owner)
            raise NotFoundError(f"{owner.kind} {owner.id} has no artifact named {name!r}")
        media_type, created_at, blob_id, sha, size, codec = row
        return Artifact(owner, name, media_type, int(size), sha, created_at), int(blob_id), str(codec)

    artifact, blob_id, codec = uow.read(find)

    def read_packed(offset: int, n: int) -> bytes:
        piece = select(func.substr(blobs.c.data, offset + 1, n)).where(blobs.c.id == blob_id)
        return bytes(uow.read(lambda conn: conn.execute(piece).scalar()) or b"")

    def read_sqlite(offset: int, n: int) -> bytes:
        def work(conn: Connection) -> bytes:
            raw: Any = conn.connection.driver_connection
            with raw.blobopen("blobs", "data", blob_id, readonly=True) as blob:
                blob.seek(min(offset, len(blob)))
                return bytes(blob.read(n))

        return uow.read(work)

    if uow.dialect == "sqlite":
        return Download(artifact, codec, read_sqlite)
    return Download(artifact, codec, read_packed, MYSQL_PIECE if uow.dialect in MYSQL_DIALECTS else CHUNK)
