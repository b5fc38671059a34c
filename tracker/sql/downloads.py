"""Artifact downloads from a SQL store: the blob row is read piece by piece (`substr` on the
stored bytes), each piece in its own short read transaction, so a download holds neither the
artifact nor a connection for its whole length. Blobs never change once written."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from tracker.errors import NotFoundError
from tracker.read.downloads import Download
from tracker.sql.attachments import require
from tracker.sql.models import blobs
from tracker.sql.rows import OWNERS
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.records import Artifact, Owner


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

    return Download(artifact, codec, read_packed)
