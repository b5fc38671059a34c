"""The JSON-file repository: an append-only JSON Lines journal of operations, replayed into memory.

Line 1 is a header (`{"format": "tracker-journal", "version": 1, "next_ids": {...}}`); every
later line is one operation (see `tracker.journal.state`). Readers bring their state up to date
from the complete lines appended since their last read, without the file lock; writers take the
lock, repair a torn tail left by a crash, and append one line per call or per transaction.
It does not import SQLAlchemy.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker import blobs, codec
from tracker.errors import (
    UPGRADE_TRACKER,
    CorruptStoreError,
    DuplicateArtifactError,
    DuplicateStepError,
    DuplicateTrialError,
    NotFoundError,
    ReadOnlyStoreError,
    StoreError,
    StoreNotFoundError,
)
from tracker.journal import queries
from tracker.journal.blob_folder import BlobFolder
from tracker.journal.file import JournalFile, Position
from tracker.journal.state import KINDS, JournalState
from tracker.records import (
    Artifact,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    JSONValue,
    NewArtifact,
    NewExperiment,
    NewStepMetric,
    NewTrial,
    NewTTPTResult,
    Owner,
    StepMetric,
    Synchronous,
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
)
from tracker.repository import Repository
from tracker.urls import StoreLocation, prepare_path

if TYPE_CHECKING:
    from tracker.browsing import Browser

log = logging.getLogger(__name__)

FORMAT = "tracker-journal"
VERSION = 2
"""Version 2 keeps strategy code once per distinct text and adds tags, notes, step metrics and
artifacts. A version 1 journal is read as it is and rewritten as version 2 on its first write,
after a copy of it is kept at `PATH.v1-backup`."""


class JsonRepository(Repository):
    """Repository on a JSON Lines journal; safe for many threads and processes."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        synchronous: Synchronous = "full",
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        if location.path is None:
            raise ValueError("a JSON store needs a file path")
        self.location = location
        self.path = Path(location.path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give the path of a .json or .jsonl file")
        prepare_path(location, create=create and not read_only)
        self.file = JournalFile(self.path, synchronous)
        self.blob_files = BlobFolder(self.path)
        self._thread_lock = threading.RLock()
        self._state = JournalState()
        self._position: Position | None = None
        self._in_house = False
        self._pending: list[bytes] | None = None  # the lines of an open transaction
        self._line = 0  # lines replayed, for error messages
        self._version = VERSION
        self._reads = 0  # depth of this thread's open read transactions
        self.read_only = read_only
        self._browser: Browser[Any] | None = None
        if not self.file.size():
            if not create or read_only:
                raise StoreNotFoundError(str(self.path), "the file is empty; a reader creates nothing")
            with self.file.locked():
                if not self.file.size():
                    header = {"format": FORMAT, "version": VERSION, "next_ids": dict.fromkeys(KINDS, 1)}
                    self.file.rewrite([codec.dumps(header).encode() + b"\n"])
        with self._reading():
            pass

    # reading and writing the journal -----------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[JournalState]:
        """The state, brought up to date with what other processes appended (no file lock); one
        state throughout a transaction."""
        with self._thread_lock:
            if self._pending is None and not self._reads:
                self._catch_up(repair=False)
            yield self._state

    @contextmanager
    def _writing(self) -> Iterator[JournalState]:
        """Hold the thread and file locks with the state up to date (a torn tail repaired)."""
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.path} is open read-only; open it with ExperimentTracker to write")
        with self._thread_lock:
            if self._pending is not None:  # inside this thread's transaction: the lock is held
                yield self._state
                return
            if self._reads:
                raise StoreError("cannot write inside a read transaction; open it with transaction(write=True)")
            with self.file.locked():
                self._catch_up(repair=True)
                if self._in_house:
                    self._convert(".inhouse-backup", "the in-house JSON file")
                elif self._version < VERSION:
                    self._convert(f".v{self._version}-backup", f"the version {self._version} journal")
                yield self._state

    def _catch_up(self, *, repair: bool) -> None:
        chunk = self.file.read(self._position)
        if chunk.fresh:
            self._state, self._in_house, self._line = JournalState(), False, 0
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
                    self._state.apply(op)
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
        self._state.take_ids(op)

    def _emit(self, *ops: dict[str, Any]) -> None:
        """Write operations as one line (held back until commit inside a transaction) and apply them."""
        op = ops[0] if len(ops) == 1 else {"op": "batch", "ops": list(ops)}
        line = codec.dumps(op).encode() + b"\n"
        if self._pending is not None:
            self._pending.append(line)
        else:
            self._append(line)
        self._state.apply(op)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        if not write:
            with self._reading():
                joined = self._pending is not None  # a read block inside a write block
                self._reads += 0 if joined else 1
                try:
                    yield
                finally:
                    self._reads -= 0 if joined else 1
            return
        with self._writing():
            if self._pending is not None:
                yield
                return
            self._pending = []
            try:
                yield
            except BaseException:
                self._pending = None
                self._state, self._position = JournalState(), None  # replayed afresh at the next call
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

    def compact(self) -> None:
        """Rewrite the journal as a snapshot of its current content, atomically, under the lock,
        and delete the artifact files nothing refers to any more."""
        with self._writing() as state:
            self._rewrite(state)
            self.blob_files.prune(self._state.referenced_blobs())

    def _rewrite(self, state: JournalState) -> None:
        header = {"format": FORMAT, "version": VERSION, "next_ids": dict(state.next_ids)}
        self.file.rewrite([codec.dumps(op).encode() + b"\n" for op in (header, *state.snapshot())])
        self._state, self._position = JournalState(), None
        self._catch_up(repair=True)

    # in-house files ---------------------------------------------------------------------------

    def _load_in_house(self) -> None:
        from tracker.journal.inhouse import read_in_house_json

        self._state = JournalState()
        for op in read_in_house_json(self.file.read_all(), self.path):
            self._state.apply(op)
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
        self._rewrite(self._state)
        self._in_house = False

    # the interface ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        item = codec.to_item(new)
        with self._writing() as state:
            experiment_id = state.next_ids["experiment"]
            self._emit({"op": "experiment", "experiment": {"id": experiment_id, **item}})
            return experiment_id

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._reading() as state:
            return queries.experiment(state, experiment_id)

    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        with self._reading() as state:
            found = (queries.stats(state, i) for i in sorted(state.experiments))
            return [s for s in found if queries.matches(s, query)]

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        values = codec.to_values(Experiment, {"summary": summary}, item=True)
        with self._writing() as state:
            queries.experiment(state, experiment_id)
            self._emit({"op": "summary", "experiment_id": experiment_id, **values})

    def delete_experiment(self, experiment_id: int) -> None:
        with self._writing() as state:
            queries.experiment(state, experiment_id)
            self._emit({"op": "delete", "experiment_id": experiment_id})

    def add_trials(self, experiment_id: int, trials: Sequence[NewTrial]) -> list[int]:
        items, checks = codec.trial_rows(trials, item=True)
        with self._writing() as state:
            queries.experiment(state, experiment_id)
            taken = state.by_experiment[experiment_id]
            clash = sorted(t.trial_number for t in trials if t.trial_number in taken)
            if clash:
                raise DuplicateTrialError(experiment_id, clash)
            if not trials:
                return []
            first, ttpt_id = state.next_ids["trial"], state.next_ids["ttpt"]
            texts = self._texts(state, items)
            for i, item in enumerate(items):
                item["id"] = first + i
                if i in checks:
                    item["ttpt"] = {"id": ttpt_id, "trial_id": item["id"], **checks[i]}
                    ttpt_id += 1
            self._emit(*texts, {"op": "trials", "experiment_id": experiment_id, "trials": items})
            return [item["id"] for item in items]

    @staticmethod
    def _texts(state: JournalState, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace each item's strategy code by its SHA-256; return `text` operations for the
        texts the journal does not hold yet."""
        new: dict[str, str] = {}
        for item in items:
            text = item.pop("strategy_code", None)
            sha = None if text is None else blobs.name_of(text)
            item["strategy_code_sha256"] = sha
            if sha is not None and sha not in state.texts:
                new[sha] = text
        return [{"op": "text", "sha256": sha, "text": text} for sha, text in new.items()]

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        values = {"strategy_code": code, "strategy_template": template, "generation_method": generation_method}
        checked = codec.to_values(Trial, values, item=True)
        with self._writing() as state:
            queries.trial_item(state, trial_id)
            texts = self._texts(state, [checked])
            self._emit(*texts, {"op": "strategy", "trial_id": trial_id, **checked})

    def get_trial(self, trial_id: int) -> Trial:
        with self._reading() as state:
            return queries.trial(state, queries.trial_item(state, trial_id))

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        with self._reading() as state:
            return queries.list_trials(state, experiment_id, query)

    def trial_numbers(self, experiment_id: int) -> set[int]:
        with self._reading() as state:
            queries.experiment(state, experiment_id)
            return set(state.by_experiment[experiment_id])

    def best_trial(self, experiment_id: int) -> Trial | None:
        with self._reading() as state:
            return queries.best_trial(state, experiment_id)

    def trial_table(
        self,
        experiment_ids: Sequence[int] | None,
        states: Sequence[TrialState] | None,
        consume: Callable[[TrialTable], None],
        chunk_size: int = 5_000,
        *,
        tags: Mapping[str, str] | None = None,
        with_code: bool = False,
    ) -> None:
        with self._reading() as state:
            queries.trial_table(state, experiment_ids, states, consume, chunk_size, tags, with_code)

    def set_tags(self, owner: Owner, tags: Mapping[str, str | None]) -> None:
        checked = codec.check_tag_changes(tags)
        with self._writing() as state:
            queries.owner_item(state, owner)
            if checked:
                self._emit({"op": "tags", "kind": owner.kind, "id": owner.id, "tags": checked})

    def set_note(self, owner: Owner, note: str | None) -> None:
        record_type = Experiment if owner.kind == "experiment" else Trial
        checked = codec.to_values(record_type, {"note": note}, item=True)["note"]
        with self._writing() as state:
            queries.owner_item(state, owner)
            self._emit({"op": "note", "kind": owner.kind, "id": owner.id, "note": checked})

    def add_step_metrics(self, trial_id: int, metrics: Sequence[NewStepMetric]) -> None:
        checked = codec.step_metrics(trial_id, metrics)
        items = [codec.to_item(m) for m in checked]
        with self._writing() as state:
            queries.trial_item(state, trial_id)
            have = state.steps.get(trial_id, {})
            taken = sorted((m.key, m.step) for m in checked if (m.key, m.step) in have)
            if taken:
                raise DuplicateStepError(trial_id, taken)
            if items:
                metrics_ = [[item["step"], item["key"], item["value"]] for item in items]
                self._emit({"op": "steps", "trial_id": trial_id, "metrics": metrics_})

    def list_step_metrics(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[StepMetric]:
        with self._reading() as state:
            return queries.step_metrics(state, trial_id, experiment_id)

    def add_artifact(self, owner: Owner, new: NewArtifact, *, replace: bool = False) -> Artifact:
        checked, sha = codec.check_artifact(new)
        with self._writing() as state:
            queries.owner_item(state, owner)
            if checked.name in state.artifacts.get((owner.kind, owner.id), {}) and not replace:
                raise DuplicateArtifactError(
                    f"{owner.kind} {owner.id} already has an artifact named {checked.name!r}; "
                    "choose another name, or pass replace=True to overwrite it"
                )
            self.blob_files.put(sha, checked.data)
            artifact = Artifact(owner, checked.name, checked.media_type, len(checked.data), sha, checked.created_at)
            self._emit(
                {
                    "op": "artifact",
                    "kind": owner.kind,
                    "id": owner.id,
                    "name": artifact.name,
                    "media_type": artifact.media_type,
                    "sha256": sha,
                    "size": artifact.size,
                    "created_at": artifact.created_at.isoformat(),
                }
            )
            return artifact

    def list_artifacts(self, owner: Owner, *, of_trials: bool = False) -> list[Artifact]:
        with self._reading() as state:
            if not of_trials:
                return queries.artifacts(state, owner)
            queries.owner_item(state, owner)
            mine = sorted(state.by_experiment.get(owner.id, {}).values()) if owner.kind == "experiment" else []
            return [a for trial_id in mine for a in queries.artifacts(state, Owner("trial", trial_id))]

    def read_artifact(self, owner: Owner, name: str) -> bytes:
        with self._reading() as state:
            queries.owner_item(state, owner)
            item = state.artifacts.get((owner.kind, owner.id), {}).get(name)
            if item is None:
                raise NotFoundError(f"{owner.kind} {owner.id} has no artifact named {name!r}")
            sha = str(item["sha256"])
        return self.blob_files.get(sha)

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        item = codec.to_item(new)
        with self._writing() as state:
            queries.trial_item(state, trial_id)
            ttpt_id = state.next_ids["ttpt"]
            self._emit({"op": "ttpt", "ttpt": {"id": ttpt_id, "trial_id": trial_id, **item}})
            return ttpt_id

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        with self._reading() as state:
            return queries.ttpt_results(state, trial_id, experiment_id)

    def browser(self) -> Browser[Any]:
        if self._browser is None:
            from tracker.journal.browse import JournalBrowser

            self._browser = JournalBrowser(self)
        return self._browser

    def close(self) -> None:
        with self._thread_lock:
            self._state, self._position = JournalState(), None
