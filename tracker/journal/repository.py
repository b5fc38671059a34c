"""The JSON-file repository: the `Repository` verbs over an append-only JSON Lines journal of
operations (`tracker.journal.replica`), with artifact files beside it. It does not import
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.errors import (
    DuplicateArtifactError,
    DuplicateStepError,
    DuplicateTrialError,
    NotFoundError,
    StoreError,
)
from tracker.journal import queries
from tracker.journal.blob_folder import BlobFolder
from tracker.journal.replica import JournalReplica
from tracker.journal.state import JournalState
from tracker.store import blobs, codec
from tracker.store.location import StoreLocation, prepare_path
from tracker.store.records import (
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
from tracker.store.repository import Repository

if TYPE_CHECKING:
    from tracker.read.browser import Browser


class JsonRepository(Repository):
    """Repository on a JSON Lines journal; safe for many threads and processes."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        synchronous: Synchronous = "full",
        create: bool = True,
        read_only: bool = False,
        strict: bool = False,
    ) -> None:
        if location.path is None:
            raise ValueError("a JSON store needs a file path")
        self.location = location
        self.path = Path(location.path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give the path of a .json or .jsonl file")
        prepare_path(location, create=create and not read_only)
        self.journal = JournalReplica(self.path, synchronous, create=create, read_only=read_only, strict=strict)
        self.blob_files = BlobFolder(self.path)
        self.read_only = read_only
        self._browser: Browser[Any] | None = None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        with self.journal.transaction(write=write):
            yield

    def in_transaction(self) -> bool:
        return self.journal.in_transaction()

    def compact(self) -> None:
        """Rewrite the journal as a snapshot of its current content, atomically, under the lock,
        and delete the artifact files nothing refers to any more."""
        self.journal.compact(then=lambda state: self.blob_files.prune(state.referenced_blobs()))

    def add_experiment(self, new: NewExperiment) -> int:
        item = codec.to_item(new)
        with self.journal.writing() as state:
            experiment_id = state.next_ids["experiment"]
            self.journal.emit({"op": "experiment", "experiment": {"id": experiment_id, **item}})
            return experiment_id

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self.journal.reading() as state:
            return queries.experiment(state, experiment_id)

    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        with self.journal.reading() as state:
            found = (queries.stats(state, i) for i in sorted(state.experiments))
            return [s for s in found if queries.matches(s, query)]

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        values = codec.to_values(Experiment, {"summary": summary}, item=True)
        with self.journal.writing() as state:
            queries.experiment(state, experiment_id)
            self.journal.emit({"op": "summary", "experiment_id": experiment_id, **values})

    def delete_experiment(self, experiment_id: int) -> None:
        with self.journal.writing() as state:
            queries.experiment(state, experiment_id)
            self.journal.emit({"op": "delete", "experiment_id": experiment_id})

    def add_trials(self, experiment_id: int, trials: Sequence[NewTrial]) -> list[int]:
        items, checks = codec.trial_rows(trials, item=True)
        with self.journal.writing() as state:
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
            self.journal.emit(*texts, {"op": "trials", "experiment_id": experiment_id, "trials": items})
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
        with self.journal.writing() as state:
            queries.trial_item(state, trial_id)
            texts = self._texts(state, [checked])
            self.journal.emit(*texts, {"op": "strategy", "trial_id": trial_id, **checked})

    def get_trial(self, trial_id: int) -> Trial:
        with self.journal.reading() as state:
            return queries.trial(state, queries.trial_item(state, trial_id))

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        with self.journal.reading() as state:
            return queries.list_trials(state, experiment_id, query)

    def trial_numbers(self, experiment_id: int) -> set[int]:
        with self.journal.reading() as state:
            queries.experiment(state, experiment_id)
            return set(state.by_experiment[experiment_id])

    def best_trial(self, experiment_id: int) -> Trial | None:
        with self.journal.reading() as state:
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
        with self.journal.reading() as state:
            queries.trial_table(state, experiment_ids, states, consume, chunk_size, tags, with_code)

    def set_tags(self, owner: Owner, tags: Mapping[str, str | None]) -> None:
        checked = codec.check_tag_changes(tags)
        with self.journal.writing() as state:
            queries.owner_item(state, owner)
            if checked:
                self.journal.emit({"op": "tags", "kind": owner.kind, "id": owner.id, "tags": checked})

    def set_note(self, owner: Owner, note: str | None) -> None:
        record_type = Experiment if owner.kind == "experiment" else Trial
        checked = codec.to_values(record_type, {"note": note}, item=True)["note"]
        with self.journal.writing() as state:
            queries.owner_item(state, owner)
            self.journal.emit({"op": "note", "kind": owner.kind, "id": owner.id, "note": checked})

    def add_step_metrics(self, trial_id: int, metrics: Sequence[NewStepMetric]) -> None:
        checked = codec.step_metrics(trial_id, metrics)
        items = [codec.to_item(m) for m in checked]
        with self.journal.writing() as state:
            queries.trial_item(state, trial_id)
            have = state.steps.get(trial_id, {})
            taken = sorted((m.key, m.step) for m in checked if (m.key, m.step) in have)
            if taken:
                raise DuplicateStepError(trial_id, taken)
            if items:
                metrics_ = [[item["step"], item["key"], item["value"]] for item in items]
                self.journal.emit({"op": "steps", "trial_id": trial_id, "metrics": metrics_})

    def list_step_metrics(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[StepMetric]:
        with self.journal.reading() as state:
            return queries.step_metrics(state, trial_id, experiment_id)

    def add_artifact(self, owner: Owner, new: NewArtifact, *, replace: bool = False) -> Artifact:
        checked, sha = codec.check_artifact(new)
        with self.journal.writing() as state:
            queries.owner_item(state, owner)
            if checked.name in state.artifacts.get((owner.kind, owner.id), {}) and not replace:
                raise DuplicateArtifactError(f"{owner.kind} {owner.id}", checked.name)
            self.blob_files.put(sha, checked.data)
            artifact = Artifact(owner, checked.name, checked.media_type, len(checked.data), sha, checked.created_at)
            self.journal.emit(
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
        with self.journal.reading() as state:
            if not of_trials:
                return queries.artifacts(state, owner)
            queries.owner_item(state, owner)
            mine = sorted(state.by_experiment.get(owner.id, {}).values()) if owner.kind == "experiment" else []
            return [a for trial_id in mine for a in queries.artifacts(state, Owner("trial", trial_id))]

    def read_artifact(self, owner: Owner, name: str) -> bytes:
        with self.journal.reading() as state:
            queries.owner_item(state, owner)
            item = state.artifacts.get((owner.kind, owner.id), {}).get(name)
            if item is None:
                raise NotFoundError(f"{owner.kind} {owner.id} has no artifact named {name!r}")
            sha = str(item["sha256"])
        return self.blob_files.get(sha)

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        item = codec.to_item(new)
        with self.journal.writing() as state:
            queries.trial_item(state, trial_id)
            ttpt_id = state.next_ids["ttpt"]
            self.journal.emit({"op": "ttpt", "ttpt": {"id": ttpt_id, "trial_id": trial_id, **item}})
            return ttpt_id

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        with self.journal.reading() as state:
            return queries.ttpt_results(state, trial_id, experiment_id)

    def browser(self) -> Browser[Any]:
        if self._browser is None:
            from tracker.journal.browse import JournalBrowser

            self._browser = JournalBrowser(self.journal)
        return self._browser

    def close(self) -> None:
        self.journal.forget()
