"""Reading a SQLite file whose folder the reader cannot write (a dashboard user who does not own
the folder). SQLite's write-ahead log needs `-wal` and `-shm` files beside the database, which such
a reader cannot create. When the log is checkpointed (no `-wal`, or an empty one: the state every
write command leaves when it exits), the file alone holds everything, and it is opened
`immutable`, which needs no files beside it. Each connection decides again when it opens (these
engines do not pool), so a writer that starts later is seen: its `-wal` is then used if SQLite
can read it, and otherwise the error says how to make the file readable."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from tracker.errors import ReadOnlyStoreError


def folder_is_unwritable(path: Path) -> bool:
    """Whether `path` is an existing file in a folder this process cannot write."""
    return path.is_file() and not os.access(path.parent, os.W_OK)


def connector(path: Path, timeout: float) -> Callable[[], sqlite3.Connection]:
    """A function that opens `path` read-only for a reader that cannot write its folder. It raises
    ReadOnlyStoreError, saying what to do, when a write-ahead log it cannot use is present."""
    target = path.resolve()
    wal = target.with_name(target.name + "-wal")
    where = quote(str(target))

    def connect() -> sqlite3.Connection:
        checkpointed = not wal.exists() or wal.stat().st_size == 0
        uri = f"file:{where}?mode=ro" + ("&immutable=1" if checkpointed else "")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _unreadable(target, wal, exc) from None
        if not checkpointed:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                conn.close()
                raise _unreadable(target, wal, exc) from None
        return conn

    return connect


def _unreadable(path: Path, wal: Path, exc: sqlite3.Error) -> ReadOnlyStoreError:
    return ReadOnlyStoreError(
        f"cannot read {path} ({exc}): its write-ahead log {wal} holds recent writes, and reading it needs write "
        f"access to the folder {path.parent}, which you do not have. Ask the file's owner to run any write "
        f"command once, or `tracker --url sqlite:///{path} db checkpoint`, which folds the log into the file; "
        "then it can be read without write access"
    )
