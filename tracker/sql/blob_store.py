"""The blobs table: bytes stored once per distinct content (strategy code, artifacts), found by
SHA-256, referenced by id. Ids are never reused, so the cached name -> id map can only go stale by
losing a row (to `collect`), which the insert then reports as a broken reference."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, exists, insert, literal_column, select
from sqlalchemy.dialects import mysql, postgresql

from tracker.errors import StoreError
from tracker.sql.fast_insert import Writer
from tracker.sql.models import MYSQL_DIALECTS, blobs, experiment_artifacts, trial_artifacts, trials
from tracker.store import blobs as content

CHUNK = 5_000
_ID_OF = select(blobs.c.id).where(blobs.c.sha256 == bindparam("sha256"))


def insert_ignoring_duplicates(dialect: str) -> Insert:
    """INSERT INTO blobs that skips a content already there (another writer may add it first)."""
    if dialect == "postgresql":
        return postgresql.insert(blobs).on_conflict_do_nothing(index_elements=["sha256"])
    if dialect in MYSQL_DIALECTS:  # "mariadb" for mariadb+pymysql:// URLs, "mysql" otherwise
        # Not INSERT IGNORE, which also turns other errors (a bad value, a broken key) into warnings.
        add = mysql.insert(blobs)
        return add.on_duplicate_key_update(sha256=add.inserted.sha256)
    return insert(blobs).prefix_with("OR IGNORE", dialect="sqlite")


class BlobStore:
    """Finds or adds blobs and reads them back, with per-store caches of ids and names."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.add = insert_ignoring_duplicates(dialect)
        self.ids: dict[str, int] = {}  # sha256 -> id
        self.names: dict[int, str] = {}  # id -> sha256
        self.packet_limit: int | None = None  # MariaDB/MySQL: the server's max_allowed_packet

    def forget(self) -> None:
        """Drop the cached ids (after a reference to a collected blob was refused)."""
        self.ids.clear()
        self.names.clear()

    def ensure(self, writer: Writer, contents: dict[str, bytes]) -> dict[str, int]:
        """The ids of the contents (sha256 -> raw bytes), adding the ones the store lacks, within
        the writer's transaction."""
        missing = [sha for sha in contents if sha not in self.ids]
        if missing:
            rows = []
            for sha in missing:
                codec, packed = content.pack(contents[sha])
                rows.append({"sha256": sha, "codec": codec, "size": len(contents[sha]), "data": packed})
            if self.dialect in MYSQL_DIALECTS:
                self._check_packet_size(writer, rows)
            writer.execute(self.add, rows, keep=True)
            for sha in missing:
                [(blob_id,)] = writer.execute(_ID_OF, [{"sha256": sha}], keep=True)
                self.ids[sha], self.names[blob_id] = int(blob_id), sha
        return {sha: self.ids[sha] for sha in contents}

    def _check_packet_size(self, writer: Writer, rows: list[dict[str, Any]]) -> None:
        """MariaDB/MySQL drop the connection ("server has gone away") on a statement larger than
        their max_allowed_packet: refuse such a blob first, saying which setting to raise."""
        if self.packet_limit is None:
            [(limit,)] = writer.execute(select(literal_column("@@max_allowed_packet")))
            self.packet_limit = int(limit)
        for row in rows:
            sent = 2 * len(row["data"]) + 1024  # PyMySQL sends bytes in hex, within the statement
            if sent > self.packet_limit:
                raise StoreError(
                    f"{row['size']:,} bytes ({sent:,} compressed and in hex) are more than the database "
                    f"server accepts in one statement (max_allowed_packet = {self.packet_limit:,}); raise "
                    "max_allowed_packet on the server (e.g. max_allowed_packet=256M under [mysqld]), or store "
                    "less"
                )

    def texts(self, conn: Connection, ids: Iterable[int | None]) -> dict[int, str]:
        """The decoded texts of blob ids (from the process-wide cache where possible)."""
        out: dict[int, str] = {}
        wanted = []
        for blob_id in {i for i in ids if i is not None}:
            sha = self.names.get(blob_id)
            text = None if sha is None else content.TEXTS.get_fresh(sha)
            if text is None:
                wanted.append(blob_id)
            else:
                out[blob_id] = text
        for start in range(0, len(wanted), CHUNK):
            query = select(blobs.c.id, blobs.c.sha256, blobs.c.codec, blobs.c.data).where(
                blobs.c.id.in_(wanted[start : start + CHUNK])
            )
            for blob_id, sha, codec, data in conn.execute(query):
                text = content.unpack(codec, data).decode("utf-8")
                self.names[blob_id], self.ids[sha] = sha, blob_id
                content.TEXTS.put(sha, text)
                out[blob_id] = text
        return out

    def read(self, conn: Connection, blob_id: int) -> bytes:
        """The bytes of one blob."""
        codec, data = conn.execute(select(blobs.c.codec, blobs.c.data).where(blobs.c.id == blob_id)).one()
        return content.unpack(codec, data)

    def collect(self, conn: Connection, candidates: Iterable[int]) -> None:
        """Delete the candidate blobs that nothing references any more (after a delete)."""
        wanted = sorted(set(candidates))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            unused: Any = blobs.c.id.in_(chunk)
            for column in (trials.c.strategy_code_id, experiment_artifacts.c.blob_id, trial_artifacts.c.blob_id):
                unused = unused & ~exists().where(column == blobs.c.id).correlate(blobs)
            conn.execute(delete(blobs).where(unused))
        for blob_id in wanted:
            sha = self.names.pop(blob_id, None)
            if sha is not None:
                self.ids.pop(sha, None)
