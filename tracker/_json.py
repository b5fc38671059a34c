"""The JSON-file repository: an append-only JSON Lines journal of operations, replayed into memory.

Line 1 is a header (`{"format": "tracker-journal", "version": 1, "next_ids": {...}}`); every
later line is one operation. Writers append one line per call under a file lock, after reading
what other processes appended since their last read. It does not import SQLAlchemy.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from tracker.errors import (
    CorruptStoreError,
    DuplicateTrialError,
    NotFoundError,
    ReadOnlyStoreError,
    StoreError,
)
from tracker.records import (
    TRIAL_STATES,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    JSONValue,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    Synchronous,
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
    best_of,
)
from tracker.repository import Repository
from tracker.urls import StoreLocation
from tracker.values import dumps, from_storage, loads, storage_number, to_storage

log = logging.getLogger(__name__)

FORMAT = "tracker-journal"
VERSION = 1
LOCK_TIMEOUT_S = 60.0
_KINDS = ("experiment", "trial", "ttpt")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class _State:
    """The replayed store: records in storage form, indexed the ways the queries need."""

    def __init__(self) -> None:
        self.experiments: dict[int, dict[str, Any]] = {}
        self.trials: dict[int, dict[str, Any]] = {}
        self.by_experiment: dict[int, dict[int, int]] = {}  # experiment id -> number -> trial id
        self.ttpt: dict[int, dict[str, Any]] = {}
        self.ttpt_by_trial: dict[int, list[int]] = {}
        self.next_ids = dict.fromkeys(_KINDS, 1)

    def take_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    def seen_id(self, kind: str, value: int) -> None:
        if value >= self.next_ids[kind]:
            self.next_ids[kind] = value + 1

    def apply(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "experiment":
            record = dict(op["experiment"])
            record["created_at"] = _time(record["created_at"])
            self.experiments[record["id"]] = record
            self.by_experiment.setdefault(record["id"], {})
            self.seen_id("experiment", record["id"])
        elif kind == "trials":
            for item in op["trials"]:
                self._add_trial(op["experiment_id"], item)
        elif kind == "ttpt":
            self._add_ttpt(op["ttpt"])
        elif kind == "summary":
            self.experiments[op["experiment_id"]]["summary"] = op["summary"]
        elif kind == "strategy":
            trial = self.trials[op["trial_id"]]
            trial.update(
                strategy_code=op["strategy_code"],
                strategy_template=op["strategy_template"],
                generation_method=op["generation_method"],
            )
        elif kind == "delete":
            self._delete(op["experiment_id"])
        else:
            raise KeyError(f"unknown operation {kind!r}")

    def _add_trial(self, experiment_id: int, item: dict[str, Any]) -> None:
        record = {k: v for k, v in item.items() if k != "ttpt"}
        record["experiment_id"] = experiment_id
        record["value"] = storage_number(record.get("value"))
        for key in ("created_at", "started_at", "completed_at"):
            record[key] = _time(record.get(key))
        self.trials[record["id"]] = record
        self.by_experiment[experiment_id][record["trial_number"]] = record["id"]
        self.seen_id("trial", record["id"])
        if item.get("ttpt") is not None:
            self._add_ttpt({**item["ttpt"], "trial_id": record["id"]})

    def _add_ttpt(self, item: dict[str, Any]) -> None:
        record = dict(item)
        record["created_at"] = _time(record["created_at"])
        self.ttpt[record["id"]] = record
        self.ttpt_by_trial.setdefault(record["trial_id"], []).append(record["id"])
        self.seen_id("ttpt", record["id"])

    def _delete(self, experiment_id: int) -> None:
        del self.experiments[experiment_id]
        for trial_id in self.by_experiment.pop(experiment_id).values():
            del self.trials[trial_id]
            for ttpt_id in self.ttpt_by_trial.pop(trial_id, []):
                del self.ttpt[ttpt_id]


class JsonRepository(Repository):
    """Repository on a JSON Lines journal; safe for many threads and processes."""

    def __init__(self, location: StoreLocation, *, synchronous: Synchronous = "full") -> None:
        if location.path is None:
            raise ValueError("a JSON store needs a file path")
        self.location = location
        self.path = Path(location.path)
        self.synchronous = synchronous
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S, thread_local=False)
        self._state = _State()
        self._offset = 0
        self._line_no = 0
        self._inode: int | None = None
        self._in_house = False
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give the path of a .json or .jsonl file")
        with self._locked(write=False):
            pass

    # journal plumbing ------------------------------------------------------------------------

    @contextmanager
    def _locked(self, *, write: bool) -> Iterator[_State]:
        """Hold the thread and file locks, bring the state up to date, and yield it."""
        with self._thread_lock:
            try:
                self._file_lock.acquire()
            except Timeout:
                raise StoreError(
                    f"could not lock {self.path} within {LOCK_TIMEOUT_S:.0f} s; another process holds it"
                ) from None
            except OSError as exc:
                raise ReadOnlyStoreError(f"cannot create the lock file for {self.path}: {exc.strerror}") from None
            try:
                self._refresh()
                if write and self._in_house:
                    self._convert_in_house()
                yield self._state
            finally:
                self._file_lock.release()

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._create()
            stat = self.path.stat()
        if stat.st_size == 0:
            self._create()
            stat = self.path.stat()
        if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self._offset):
            self._state, self._offset, self._line_no, self._inode = _State(), 0, 0, None
        if stat.st_size == self._offset:
            return
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        if self._offset == 0 and not data.lstrip().startswith(b'{"format"'):
            self._load_foreign(data)
            self._offset, self._inode = stat.st_size, stat.st_ino
            return
        self._replay(data, stat.st_ino)

    def _replay(self, data: bytes, inode: int) -> None:
        end = data.rfind(b"\n") + 1
        for raw in data[:end].splitlines():
            self._line_no += 1
            try:
                op = loads(raw)
                if self._line_no == 1:
                    self._check_header(op)
                else:
                    self._state.apply(op)
            except CorruptStoreError:
                raise
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptStoreError(
                    f"{self.path}, line {self._line_no}: damaged journal record ({exc}); "
                    "restore the file from a backup or remove that line"
                ) from None
        if end < len(data):
            torn = len(data) - end
            log.warning(
                "%s: the last record is incomplete (%d bytes, a write was interrupted); "
                "it is dropped and every complete record is kept",
                self.path,
                torn,
            )
            self._truncate(self._offset + end)
        self._offset += end
        self._inode = inode

    def _check_header(self, op: Any) -> None:
        if not isinstance(op, dict) or op.get("format") != FORMAT:
            raise CorruptStoreError(f"{self.path} is not a tracker journal (bad header)")
        if op.get("version") != VERSION:
            raise CorruptStoreError(
                f"{self.path} is journal version {op.get('version')}; this tracker reads version "
                f"{VERSION}: upgrade tracker"
            )
        for kind, value in op.get("next_ids", {}).items():
            self._state.next_ids[kind] = max(self._state.next_ids[kind], int(value))

    def _truncate(self, size: int) -> None:
        try:
            with open(self.path, "r+b") as handle:
                handle.truncate(size)
        except OSError as exc:
            raise ReadOnlyStoreError(f"cannot repair the torn end of {self.path}: {exc.strerror}") from None

    def _create(self) -> None:
        header = {"format": FORMAT, "version": VERSION, "next_ids": dict.fromkeys(_KINDS, 1)}
        self._write_atomic([header])

    def _append(self, op: dict[str, Any]) -> None:
        line = (dumps(op) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    os.ftruncate(fd, self._offset)
                    raise ReadOnlyStoreError(f"short write to {self.path}; is the disk full?")
                if self.synchronous == "full":
                    os.fsync(fd)
            finally:
                os.close(fd)
        except ReadOnlyStoreError:
            raise
        except OSError as exc:
            self._drop_partial()
            raise ReadOnlyStoreError(f"cannot write to {self.path}: {exc.strerror}") from None
        self._offset += len(line)
        self._line_no += 1
        self._state.apply(op)

    def _drop_partial(self) -> None:
        try:
            if self.path.stat().st_size > self._offset:
                self._truncate(self._offset)
        except (OSError, StoreError):
            log.warning("%s: could not remove a partial record after a failed write", self.path)

    def _write_atomic(self, ops: list[dict[str, Any]]) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with open(temporary, "wb") as handle:
                for op in ops:
                    handle.write((dumps(op) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ReadOnlyStoreError(f"cannot write {self.path}: {exc.strerror}") from None
        self._state, self._offset, self._line_no, self._inode = _State(), 0, 0, None

    def _snapshot(self) -> list[dict[str, Any]]:
        state = self._state
        ops: list[dict[str, Any]] = [{"format": FORMAT, "version": VERSION, "next_ids": dict(state.next_ids)}]
        for experiment_id, experiment in state.experiments.items():
            ops.append({"op": "experiment", "experiment": {**experiment, "created_at": _iso(experiment["created_at"])}})
            trials = [state.trials[i] for i in state.by_experiment[experiment_id].values()]
            if trials:
                ops.append(
                    {
                        "op": "trials",
                        "experiment_id": experiment_id,
                        "trials": [
                            {
                                **{k: v for k, v in t.items() if k != "experiment_id"},
                                **{k: _iso(t[k]) for k in ("created_at", "started_at", "completed_at")},
                                "value": _stored_value(t["value"]),
                            }
                            for t in trials
                        ],
                    }
                )
        ops.extend({"op": "ttpt", "ttpt": {**r, "created_at": _iso(r["created_at"])}} for r in state.ttpt.values())
        return ops

    def compact(self) -> None:
        """Rewrite the journal as a snapshot of its current content, atomically, under the lock."""
        with self._locked(write=True):
            self._write_atomic(self._snapshot())
            self._refresh()

    # in-house files ---------------------------------------------------------------------------

    def _load_foreign(self, data: bytes) -> None:
        from tracker.inhouse import read_in_house_json

        self._state = _State()
        for op in read_in_house_json(data, self.path):
            self._state.apply(op)
        self._in_house = True

    def _convert_in_house(self) -> None:
        backup = self.path.with_name(self.path.name + ".inhouse-backup")
        number = 1
        while backup.exists():
            number += 1
            backup = self.path.with_name(f"{self.path.name}.inhouse-backup{number}")
        shutil.copy2(self.path, backup)
        log.warning(
            "converted the in-house JSON file %s to a tracker journal; the original is kept at %s", self.path, backup
        )
        self._write_atomic(self._snapshot())
        self._in_house = False
        self._refresh()

    # records ---------------------------------------------------------------------------------

    def _experiment_record(self, state: _State, experiment_id: int) -> Experiment:
        e = state.experiments.get(experiment_id)
        if e is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return Experiment(
            id=e["id"],
            name=e["name"],
            template=e["template"],
            mode=e["mode"],
            config=from_storage(e["config"]),
            objective=e["objective"],
            direction=e["direction"],
            created_at=e["created_at"],
            summary=from_storage(e["summary"]),
        )

    @staticmethod
    def _trial_record(t: dict[str, Any]) -> Trial:
        return Trial(
            id=t["id"],
            experiment_id=t["experiment_id"],
            trial_number=t["trial_number"],
            params=from_storage(t["params"]),
            performance=from_storage(t["performance"]),
            value=t["value"],
            state=t["state"],
            created_at=t["created_at"],
            strategy_code=t["strategy_code"],
            strategy_template=t["strategy_template"],
            generation_method=t["generation_method"],
            started_at=t["started_at"],
            completed_at=t["completed_at"],
        )

    @staticmethod
    def _ttpt_record(r: dict[str, Any]) -> TTPTResult:
        return TTPTResult(
            id=r["id"],
            trial_id=r["trial_id"],
            passed=r["passed"],
            num_violations=r["num_violations"],
            metrics=from_storage(r["metrics"]),
            violations=from_storage(r["violations"]),
            created_at=r["created_at"],
        )

    # the interface ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        with self._locked(write=True) as state:
            experiment_id = state.next_ids["experiment"]
            self._append(
                {
                    "op": "experiment",
                    "experiment": {
                        "id": experiment_id,
                        "name": new.name,
                        "template": new.template,
                        "mode": new.mode,
                        "config": new.config,
                        "objective": new.objective,
                        "direction": new.direction,
                        "created_at": _iso(new.created_at),
                        "summary": new.summary,
                    },
                }
            )
            return experiment_id

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._locked(write=False) as state:
            return self._experiment_record(state, experiment_id)

    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        with self._locked(write=False) as state:
            out = []
            for experiment_id in sorted(state.experiments):
                stats = self._stats(state, experiment_id)
                if _matches(stats, query):
                    out.append(stats)
            return out

    def _stats(self, state: _State, experiment_id: int) -> ExperimentStats:
        experiment = self._experiment_record(state, experiment_id)
        trials = [state.trials[i] for i in state.by_experiment[experiment_id].values()]
        by_state: dict[str, int] = dict.fromkeys(TRIAL_STATES, 0)
        for t in trials:
            by_state[t["state"]] += 1
        values = [t["value"] for t in trials if t["state"] == "complete" and t["value"] is not None]
        best = best_of(values, experiment.direction)
        results = [state.ttpt[r] for t in trials for r in state.ttpt_by_trial.get(t["id"], [])]
        return ExperimentStats(
            experiment=experiment,
            n_trials=len(trials),
            n_by_state=by_state,
            best_value=best,
            ttpt_total=len(results),
            ttpt_failed=sum(1 for r in results if not r["passed"]),
        )

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        with self._locked(write=True) as state:
            self._experiment_record(state, experiment_id)
            self._append({"op": "summary", "experiment_id": experiment_id, "summary": summary})

    def delete_experiment(self, experiment_id: int) -> None:
        with self._locked(write=True) as state:
            self._experiment_record(state, experiment_id)
            self._append({"op": "delete", "experiment_id": experiment_id})

    def add_trials(self, experiment_id: int, trials: Sequence[NewTrial]) -> list[int]:
        with self._locked(write=True) as state:
            self._experiment_record(state, experiment_id)
            taken = state.by_experiment[experiment_id]
            clash = sorted(t.trial_number for t in trials if t.trial_number in taken)
            if clash:
                raise DuplicateTrialError(experiment_id, clash)
            if not trials:
                return []
            first_trial, first_ttpt = state.next_ids["trial"], state.next_ids["ttpt"]
            items = []
            ttpt_id = first_ttpt
            for offset, t in enumerate(trials):
                item: dict[str, Any] = {
                    "id": first_trial + offset,
                    "trial_number": t.trial_number,
                    "params": t.params,
                    "performance": t.performance,
                    "value": _stored_value(t.value),
                    "state": t.state,
                    "created_at": _iso(t.created_at),
                    "strategy_code": t.strategy_code,
                    "strategy_template": t.strategy_template,
                    "generation_method": t.generation_method,
                    "started_at": _iso(t.started_at),
                    "completed_at": _iso(t.completed_at),
                }
                if t.ttpt is not None:
                    item["ttpt"] = _ttpt_item(ttpt_id, item["id"], t.ttpt)
                    ttpt_id += 1
                items.append(item)
            self._append({"op": "trials", "experiment_id": experiment_id, "trials": items})
            return [item["id"] for item in items]

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        with self._locked(write=True) as state:
            if trial_id not in state.trials:
                raise NotFoundError(f"trial {trial_id} does not exist")
            self._append(
                {
                    "op": "strategy",
                    "trial_id": trial_id,
                    "strategy_code": code,
                    "strategy_template": template,
                    "generation_method": generation_method,
                }
            )

    def get_trial(self, trial_id: int) -> Trial:
        with self._locked(write=False) as state:
            trial = state.trials.get(trial_id)
            if trial is None:
                raise NotFoundError(f"trial {trial_id} does not exist")
            return self._trial_record(trial)

    def _trials(self, state: _State, experiment_id: int) -> list[dict[str, Any]]:
        self._experiment_record(state, experiment_id)
        numbers = state.by_experiment[experiment_id]
        return [state.trials[numbers[n]] for n in sorted(numbers)]

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        with self._locked(write=False) as state:
            trials = self._trials(state, experiment_id)
            if query.states is not None:
                trials = [t for t in trials if t["state"] in query.states]
            if query.ttpt_passed is not None:
                outcome = {t["id"]: (self._latest_ttpt(state, t["id"]) or {}).get("passed") for t in trials}
                trials = [t for t in trials if outcome[t["id"]] is query.ttpt_passed]
            if query.order_by == "value":
                sign = -1.0 if state.experiments[experiment_id]["direction"] == "maximize" else 1.0
                trials.sort(key=lambda t: (t["value"] is None, 0.0 if t["value"] is None else sign * t["value"]))
            if query.limit is not None:
                trials = trials[: query.limit]
            return [self._trial_record(t) for t in trials]

    def _latest_ttpt(self, state: _State, trial_id: int) -> dict[str, Any] | None:
        ids = state.ttpt_by_trial.get(trial_id)
        return state.ttpt[ids[-1]] if ids else None

    def trial_numbers(self, experiment_id: int) -> set[int]:
        with self._locked(write=False) as state:
            self._experiment_record(state, experiment_id)
            return set(state.by_experiment[experiment_id])

    def best_trial(self, experiment_id: int) -> Trial | None:
        with self._locked(write=False) as state:
            direction = self._experiment_record(state, experiment_id).direction
            complete = [
                t for t in self._trials(state, experiment_id) if t["state"] == "complete" and t["value"] is not None
            ]
            best = best_of([t["value"] for t in complete], direction)
            return next((self._trial_record(t) for t in complete if t["value"] == best), None)

    def trial_table(
        self,
        experiment_ids: Sequence[int] | None,
        states: Sequence[TrialState] | None,
        consume: Callable[[TrialTable], None],
        chunk_size: int = 5_000,
    ) -> None:
        with self._locked(write=False) as state:
            table = TrialTable()
            ids = sorted(state.experiments if experiment_ids is None else set(experiment_ids) & set(state.experiments))
            for experiment_id in ids:
                for t in self._trials(state, experiment_id):
                    if states is not None and t["state"] not in states:
                        continue
                    latest = self._latest_ttpt(state, t["id"])
                    table.experiment_id.append(experiment_id)
                    table.trial_id.append(t["id"])
                    table.trial_number.append(t["trial_number"])
                    table.state.append(t["state"])
                    table.value.append(t["value"])
                    table.created_at.append(t["created_at"])
                    table.started_at.append(t["started_at"])
                    table.completed_at.append(t["completed_at"])
                    table.params.append(from_storage(t["params"]))
                    table.performance.append(from_storage(t["performance"]))
                    table.ttpt_passed.append(None if latest is None else latest["passed"])
                    table.ttpt_num_violations.append(None if latest is None else latest["num_violations"])
                    table.ttpt_metrics.append(None if latest is None else from_storage(latest["metrics"]))
                    if len(table.trial_id) >= chunk_size:
                        consume(table)
                        table = TrialTable()
            if table.trial_id:
                consume(table)

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        with self._locked(write=True) as state:
            if trial_id not in state.trials:
                raise NotFoundError(f"trial {trial_id} does not exist")
            ttpt_id = state.next_ids["ttpt"]
            self._append({"op": "ttpt", "ttpt": _ttpt_item(ttpt_id, trial_id, new)})
            return ttpt_id

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        with self._locked(write=False) as state:
            if trial_id is not None and trial_id not in state.trials:
                raise NotFoundError(f"trial {trial_id} does not exist")
            if experiment_id is not None:
                self._experiment_record(state, experiment_id)
            out = []
            for record in state.ttpt.values():
                trial = state.trials[record["trial_id"]]
                if trial_id is not None and record["trial_id"] != trial_id:
                    continue
                if experiment_id is not None and trial["experiment_id"] != experiment_id:
                    continue
                out.append(self._ttpt_record(record))
            out.sort(key=lambda r: r.id)
            return out

    def close(self) -> None:
        with self._thread_lock:
            self._state = _State()


def _stored_value(value: float | None) -> Any:
    """A trial's value in storage form (JSON has no infinity)."""
    return None if value is None else to_storage(value, "value")


def _ttpt_item(ttpt_id: int, trial_id: int, new: NewTTPTResult) -> dict[str, Any]:
    return {
        "id": ttpt_id,
        "trial_id": trial_id,
        "passed": new.passed,
        "num_violations": new.num_violations,
        "metrics": new.metrics,
        "violations": new.violations,
        "created_at": _iso(new.created_at),
    }


def _matches(stats: ExperimentStats, query: ExperimentQuery) -> bool:
    e = stats.experiment
    best = stats.best_value
    checks = (
        query.ids is None or e.id in query.ids,
        query.max_violation_rate is None
        or (stats.ttpt_total > 0 and stats.ttpt_failed <= query.max_violation_rate * stats.ttpt_total),
        query.template is None or e.template == query.template,
        query.mode is None or e.mode == query.mode,
        query.name_contains is None or query.name_contains in e.name,
        query.min_best_value is None
        or (
            best is not None
            and (best >= query.min_best_value if e.direction == "maximize" else best <= query.min_best_value)
        ),
        query.created_after is None or e.created_at >= query.created_after,
        query.created_before is None or e.created_at < query.created_before,
    )
    return all(checks)
