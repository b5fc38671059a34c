"""The journal's file: an exclusive lock for writers, appends, reads of complete lines from an
offset (no lock needed), repair of a torn tail, and atomic rewrites.

Writers append whole lines with one `write` under the lock, so a reader that stops at the last
newline never sees a partial record. A rewrite (compaction, conversion) replaces the file; a
reader notices from the inode, the size or the first line, and starts again from the top.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from tracker.errors import ReadOnlyStoreError, StoreError
from tracker.store.records import Synchronous

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Position:
    """How far a reader has read: the file (inode and first line) and the offset after the last
    complete line."""

    inode: int
    first_line: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """What a read found: complete lines after the position, whether they start a new file (the
    reader must drop what it had), the new position, and the bytes of a torn last line."""

    lines: list[bytes]
    fresh: bool
    position: Position
    torn: int


class JournalFile:
    """One journal file on disk."""

    def __init__(self, path: Path, synchronous: Synchronous) -> None:
        self.path = path
        self.synchronous = synchronous
        self._lock = FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S, thread_local=False)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive writer lock (a `PATH.lock` file) for the block."""
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreError(
                f"could not lock {self.path} within {LOCK_TIMEOUT_S:.0f} s; another process holds it"
            ) from None
        except OSError as exc:
            raise ReadOnlyStoreError(f"cannot create the lock file for {self.path}: {exc.strerror}") from None
        try:
            yield
        finally:
            self._lock.release()

    def size(self) -> int | None:
        """The file's size in bytes; None when there is no file."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return None

    def read(self, position: Position | None) -> Chunk:
        """The complete lines after `position` (from the start when it is None or the file was
        replaced since). Raises StoreError when the file cannot be read."""
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                first_line = handle.readline()
                fresh = (
                    position is None
                    or position.inode != stat.st_ino
                    or position.first_line != first_line
                    or stat.st_size < position.offset
                )
                start = 0 if fresh or position is None else position.offset
                handle.seek(start)
                data = handle.read()
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        end = data.rfind(b"\n") + 1
        complete = first_line if first_line.endswith(b"\n") else b""
        return Chunk(data[:end].splitlines(), fresh, Position(stat.st_ino, complete, start + end), len(data) - end)

    def head(self, size: int = 64) -> bytes:
        """The first `size` bytes of the file, leading whitespace stripped."""
        try:
            with open(self.path, "rb") as handle:
                return handle.read(size).lstrip()
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None

    def read_all(self) -> bytes:
        """The whole file (for a file that is not a journal)."""
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None

    def cut(self, size: int) -> None:
        """Truncate the file to `size` bytes: the repair of a torn tail (writers only, locked)."""
        try:
            with open(self.path, "r+b") as handle:
                handle.truncate(size)
        except OSError as exc:
            raise ReadOnlyStoreError(f"cannot repair the torn end of {self.path}: {exc.strerror}") from None

    def append(self, line: bytes, position: Position) -> Position:
        """Append one complete line at `position` (the end of the file; locked) and return the new
        position. A failed or short write is cut off again, so the file never keeps half a line."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    os.ftruncate(fd, position.offset)
                    raise ReadOnlyStoreError(f"short write to {self.path}; is the disk full?")
                if self.synchronous == "full":
                    os.fsync(fd)
            finally:
                os.close(fd)
        except ReadOnlyStoreError:
            raise
        except OSError as exc:
            self._drop_partial(position.offset)
            raise ReadOnlyStoreError(f"cannot write to {self.path}: {exc.strerror}") from None
        return Position(position.inode, position.first_line or line, position.offset + len(line))

    def _drop_partial(self, size: int) -> None:
        try:
            if self.path.stat().st_size > size:
                self.cut(size)
        except (OSError, StoreError):
            log.warning("%s: could not remove a partial record after a failed write", self.path)

    def rewrite(self, lines: list[bytes]) -> None:
        """Replace the file by `lines` atomically. Readers see the old file or the new one."""
        write_atomically(self.path, lines)


def write_atomically(path: Path, chunks: list[bytes]) -> None:
    """Write `path` as a whole or not at all: a temporary file, fsync, rename, fsync of the folder.
    Raises ReadOnlyStoreError when the folder cannot be written."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            handle.writelines(chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ReadOnlyStoreError(f"cannot write {path}: {exc.strerror}") from None
