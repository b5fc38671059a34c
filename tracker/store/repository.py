"""The repository interface: the small set of verbs every backend (SQL, JSON journal) implements.

Only ids and the frozen records of `tracker.store.records` cross this boundary. Each call is atomic:
it is applied whole or, when it raises, not at all; `transaction()` makes a group of calls one
atomic unit. `New*` records hold plain Python values: the repository validates and encodes them
with `tracker.store.checks` (raising ValidationError before anything is written), so any value written
through it reads back identically, after reopening too. Returned records hold decoded values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

from tracker.store.location import StoreLocation
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
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
)


class Repository(ABC):
    """Storage of experiments, trials and TTPT results."""

    location: StoreLocation

    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[None]:
        """A block whose calls, on this thread, form one atomic unit: when it ends normally every
        write in it is committed, when it raises none is. Reads inside see the block's writes and
        one consistent state of the store. A nested block joins the outer one. A read block
        (`write=False`) does not keep writers out; a write inside it raises StoreError."""

    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether this thread is inside a `transaction()` block of this store."""

    @abstractmethod
    def add_experiment(self, new: NewExperiment) -> int:
        """Store a new experiment and return its id (ids grow and are never reused)."""

    @abstractmethod
    def get_experiment(self, experiment_id: int) -> Experiment:
        """The experiment; raises NotFoundError if there is none with that id."""

    @abstractmethod
    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        """Experiments matching every filter in `query`, with their aggregates, ordered by id."""

    @abstractmethod
    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        """Replace the experiment's summary; raises NotFoundError."""

    @abstractmethod
    def delete_experiment(self, experiment_id: int) -> None:
        """Delete the experiment with its trials and their TTPT results; raises NotFoundError."""

    @abstractmethod
    def add_trials(self, experiment_id: int, trials: Sequence[NewTrial]) -> list[int]:
        """Store all trials (and their TTPT results) or none; return their ids in input order.

        Raises NotFoundError for a missing experiment and DuplicateTrialError for a trial number
        the experiment already has. The batch itself holds distinct trial numbers.
        """

    @abstractmethod
    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        """Set the trial's strategy code, template and generation method; raises NotFoundError."""

    @abstractmethod
    def get_trial(self, trial_id: int) -> Trial:
        """The trial; raises NotFoundError."""

    @abstractmethod
    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        """The experiment's trials, filtered and ordered as `query` says; raises NotFoundError.

        Ordered by trial number, or by value (best first for the experiment's direction,
        trials without a value last, ties by trial number).
        """

    @abstractmethod
    def trial_numbers(self, experiment_id: int) -> set[int]:
        """The trial numbers the experiment already has; raises NotFoundError."""

    @abstractmethod
    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        """Store a TTPT result for the trial and return its id; raises NotFoundError."""

    @abstractmethod
    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        """TTPT results of one trial or of all trials of one experiment, ordered by id."""

    @abstractmethod
    def set_tags(self, owner: Owner, tags: Mapping[str, str | None]) -> None:
        """Set the owner's tags: a string sets one, None deletes it (deleting a missing tag is no
        error). Raises NotFoundError for a missing owner, ValidationError for a bad name or value."""

    @abstractmethod
    def set_note(self, owner: Owner, note: str | None) -> None:
        """Replace the owner's note (Markdown text; None removes it). Raises NotFoundError."""

    @abstractmethod
    def add_step_metrics(self, trial_id: int, metrics: Sequence[NewStepMetric]) -> None:
        """Store the trial's metrics at steps, all or none. Raises NotFoundError, and
        DuplicateStepError for a (key, step) the trial has or the batch repeats."""

    @abstractmethod
    def list_step_metrics(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[StepMetric]:
        """Step metrics of one trial or of one experiment's trials, by trial id, key and step;
        raises NotFoundError."""

    @abstractmethod
    def add_artifact(self, owner: Owner, new: NewArtifact, *, replace: bool = False) -> Artifact:
        """Attach a file to the owner; its bytes are stored once per distinct content, compressed.
        Raises NotFoundError, DuplicateArtifactError when the name is taken (unless `replace`), and
        ValidationError for a bad name or a file over `tracker.store.blobs.MAX_ARTIFACT_BYTES`."""

    @abstractmethod
    def list_artifacts(self, owner: Owner, *, of_trials: bool = False) -> list[Artifact]:
        """The owner's artifacts by name; with `of_trials`, an experiment's trials' artifacts
        instead (by trial id, then name). Raises NotFoundError."""

    @abstractmethod
    def read_artifact(self, owner: Owner, name: str) -> bytes:
        """The bytes of the owner's artifact `name`; raises NotFoundError."""

    @abstractmethod
    def best_trial(self, experiment_id: int) -> Trial | None:
        """The complete trial with the best value for the experiment's direction (lowest trial
        number among ties), or None; raises NotFoundError."""

    @abstractmethod
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
        """Pass the trials of the experiments (all when None), ordered by experiment id and trial
        number, each with its latest TTPT result, to `consume` as columns, `chunk_size` trials at a
        time (so memory stays bounded however many trials there are). `tags` keeps the trials
        that have every given tag; `with_code` adds a `strategy_code` column."""

    def serialize(self, key: str) -> None:  # noqa: B027 - optional: a no-op where writers exclude each other
        """Inside a write `transaction()`: wait until no other transaction that called
        `serialize` with the same key is open, and keep others out until this one ends. It makes
        a read-then-write block (get-or-create) safe between processes. Backends whose write
        transactions already exclude each other (SQLite, the journal) need do nothing."""

    @abstractmethod
    def close(self) -> None:
        """Release connections, locks and files. The repository is unusable afterwards."""
