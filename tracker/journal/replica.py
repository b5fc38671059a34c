"""The journal's replay state kept in step with its file: readers catch up on the complete lines
appended since their last read, without the file lock; writers take the lock, repair a torn tail
left by a crash, convert an in-house file or an older journal (after a backup copy), and append
one line per call or per transaction. It does not import SQLAlchemy.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracker.errors import UPGRADE_TRACKER, CorruptStoreError, ReadOnlyStoreError, StoreError, StoreNotFoundError
from tracker.journal.file import JournalFile, Position
from tracker.journal.state import KINDS, JournalState
from tracker.store import codec
from tracker.store.records import Synchronous

log = logging.getLogger(__name__)

FORMAT = "tracker-journal"
VERSION = 2
"""Version 2 keeps strategy code once per distinct text and adds tags, notes, step metrics and
artifacts. A version 1 journal is read as it is and rewritten as version 2 on its first write,
after a copy of it is kept at `PATH.v1-backup`."""


class JournalReplica:
    """A journal file and the state its lines replay to, safe for many threads and processes.

    Line 1 is a header (`{"format": "tracker-journal", "version": 2, "next_ids": {...}}`); every
    later line is one operation (see `tracker.journal.state`). Raises StoreNotFoundError for an
    empty file when it may not create one.
    """

    def __init__(
        self, path: Path, synchronous: Synchronous, *, create: bool, read_only: bool, strict: bool = False
    ) -> None:
        self.path = path
        self.strict = strict  # refuse an in-house file with unknown keys instead of warning
        self.file = JournalFile(path, synchronous)
        self.read_only = read_only
        self.state = JournalState()
        self._thread_lock = threading.RLock()
        self._position: Position | None = None
        self._in_house = False
        self._pending: list[bytes] | None = None  # the lines of an open transaction
        self._line = 0  # lines replayed, for error messages
        self._version = VERSION
        self._reads = 0  # depth of this thread's open read transactions
        if not self.file.size():
            if not create or read_only:
                raise StoreNotFoundError(str(path), "the file is empty; a reader creates nothing")
            with self.file.locked():
                if not self.file.size():
                    header = {"format": FORMAT, "version": VERSION, "next_ids": dict.fromkeys(KINDS, 1)}
                    self.file.rewrite([codec.dumps(header).encode() + b"\n"])
        with self.reading():
            pass

    @contextmanager
    def reading(self) -> Iterator[JournalState]:
        """The state, brought up to date with what other processes appended (no file lock); one
        state throughout a transaction."""
        with self._thread_lock:
            if self._pending is None and not self._reads:
                self._catch_up(repair=False)
            yield self.state

    @contextmanager
    def writing(self) -> Iterator[JournalState]:
        """Hold the thread and file locks with the state up to date (a torn tail repaired)."""
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.path} is open read-only; open it with ExperimentTracker to write")
        with self._thread_lock:
            if self._pending is not None:  # inside this thread's transaction: the lock is held
                yield self.state
                return
            if self._reads:
                raise StoreError("cannot write inside a read transaction; open it with transaction(write=True)")
            with self.file.locked():
                self._catch_up(repair=True)
                if self._in_house:
                    self._convert(".inhouse-backup", "the in-house JSON file")
                elif self._version < VERSION:
                    self._convert(f".v{self._version}-backup", f"the version {self._version} journal")
                yield self.state

    def _catch_up(self, *, repair: bool) -> None:
        chunk = self.file.read(self._position)
        if chunk.fresh:
            self.state, self._in_house, self._line = JournalState(), False, 0
            if not self.file.head().startswith(b'{"format"'):
                self._load_in_house()
                return
        for raw in chunk.lines:
            self._line += 1
            try:
                op = codec.loads(raw)
                if self._line == 1:
                    self._check_header(op)
                else:
                    self.state.apply(op)
            except CorruptStoreError:
                raise
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptStoreError(
                    f"{self.path}, line {self._line}: damaged journal record ({exc}); "
                    "restore the file from a backup or remove that line"
                ) from None
        self._position = chunk.position
        if chunk.torn and repair:
            log.warning(
                "%s: the last record is incomplete (%d bytes, a write was interrupted); "
                "it is dropped and every complete record is kept",
                self.path,
                chunk.torn,
            )
            self.file.cut(chunk.position.offset)

    def _check_header(self, op: Any) -> None:
        if not isinstance(op, dict) or op.get("format") != FORMAT:
            raise CorruptStoreError(f"{self.path} is not a tracker journal (bad header)")
        if op.get("version") not in (1, VERSION):
            raise CorruptStoreError(
                f"{self.path} is journal version {op.get('version')}; this tracker reads versions 1 and {VERSION}: "
                f"{UPGRADE_TRACKER}"
            )
        self._version = int(op["version"])
        self.state.take_ids(op)

    def in_transaction(self) -> bool:
        """Whether this thread is inside a `transaction()` block of this journal."""
        with self._thread_lock:
            return self._pending is not None or self._reads > 0

    def emit(self, *ops: dict[str, Any]) -> None:
        """Write operations as one line (held back until commit inside a transaction) and apply them."""
        op = ops[0] if len(ops) == 1 else {"op": "batch", "ops": list(ops)}
        line = codec.dumps(op).encode() + b"\n"
        if self._pending is not None:
            self._pending.append(line)
        else:
            self._append(line)
        self.state.apply(op)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        if not write:
            with self.reading():
                joined = self._pending is not None  # a read block inside a write block
                self._reads += 0 if joined else 1
                try:
                    yield
                finally:
                    self._reads -= 0 if joined else 1
            return
        with self.writing():
            if self._pending is not None:
                yield
                return
            self._pending = []
            try:
                yield
            except BaseException:
                self._pending = None
                self.state, self._position = JournalState(), None  # replayed afresh at the next call
                raise
            lines, self._pending = self._pending, None
            if lines:
                batch = b'{"op":"batch","ops":[' + b",".join(line[:-1] for line in lines) + b"]}\n"
                self._append(lines[0] if len(lines) == 1 else batch)

    def _append(self, line: bytes) -> None:
        if self._position is None:  # pragma: no cover - _writing's catch-up sets it
            raise StoreError(f"{self.path}: the journal was not read before writing")
        self._position = self.file.append(line, self._position)
        self._line += 1

    def compact(self, then: Callable[[JournalState], object]) -> None:
        """Rewrite the file as a snapshot of its current content, atomically, under the lock, then
        call `then` with the state replayed from the new file, the lock still held."""
        with self.writing() as state:
            self._rewrite(state)
            then(self.state)

    def forget(self) -> None:
        """Drop the state; the next call replays the file afresh."""
        with self._thread_lock:
            self.state, self._position = JournalState(), None

    def _rewrite(self, state: JournalState) -> None:
        header = {"format": FORMAT, "version": VERSION, "next_ids": dict(state.next_ids)}
        self.file.rewrite([codec.dumps(op).encode() + b"\n" for op in (header, *state.snapshot())])
        self.state, self._position = JournalState(), None
        self._catch_up(repair=True)

    # in-house files ---------------------------------------------------------------------------

    def _load_in_house(self) -> None:
        from tracker.journal.inhouse import read_in_house_json

        self.state = JournalState()
        for op in read_in_house_json(self.file.read_all(), self.path, strict=self.strict):
            self.state.apply(op)
        self._in_house = True
        self._position = None  # re-read (as a journal) after the conversion

    def _convert(self, suffix: str, what: str) -> None:
        """Keep a copy of the file as it is, then rewrite it as a current journal."""
        backup = self.path.with_name(self.path.name + suffix)
        number = 1
        while backup.exists():
            number += 1
            backup = self.path.with_name(f"{self.path.name}{suffix}{number}")
        shutil.copy2(self.path, backup)
        log.warning(
            "converted %s %s to a version %d journal; the original is kept at %s", what, self.path, VERSION, backup
        )
        self._rewrite(self.state)
        self._in_house = False
