"""The SQL repository's verbs for what is recorded beside the numbers: tags, notes, step metrics
and artifacts (the statements are in `tracker.sql.attachments`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from tracker.errors import DuplicateStepError, NotFoundError, TrackerError
from tracker.sql import attachments
from tracker.sql.blob_store import BlobStore
from tracker.sql.fast_insert import Writer
from tracker.sql.rows import OWNERS
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store import checks
from tracker.store.records import Artifact, Experiment, NewArtifact, NewStepMetric, Owner, StepMetric, Trial


def missing(kind: str, record_id: int) -> NotFoundError:
    """The error for an experiment or trial that does not exist."""
    return NotFoundError(f"{kind} {record_id} does not exist")


_missing = missing


class AnnotationVerbs:
    """Tags, notes, step metrics and artifacts of experiments and trials (a part of SqlRepository)."""

    uow: UnitOfWork
    blobs: BlobStore

    if TYPE_CHECKING:  # provided by SqlRepository

        def get_trial(self, trial_id: int) -> Trial: ...

        def _outside(self) -> bool: ...

    def set_tags(self, owner: Owner, tags: Mapping[str, str | None]) -> None:
        checked = checks.check_tag_changes(tags)
        self.uow.write(lambda conn: attachments.set_tags(conn, owner, checked))

    def set_note(self, owner: Owner, note: str | None) -> None:
        record_type = Experiment if owner.kind == "experiment" else Trial
        checked = checks.to_values(record_type, {"note": note})["note"]
        self.uow.write(lambda conn: attachments.set_note(conn, owner, checked))

    def add_step_metrics(self, trial_id: int, metrics: Sequence[NewStepMetric]) -> None:
        checked = checks.step_metrics(trial_id, metrics)

        def work(conn: Connection) -> None:
            taken = attachments.add_step_metrics(conn, trial_id, checked)
            if taken:
                raise DuplicateStepError(trial_id, taken)

        if checked:
            self.uow.write(work)
        else:
            self.get_trial(trial_id)

    def list_step_metrics(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[StepMetric]:
        return self.uow.read(lambda conn: attachments.list_step_metrics(conn, trial_id, experiment_id))

    def add_artifact(self, owner: Owner, new: NewArtifact, *, replace: bool = False) -> Artifact:
        checked, sha = checks.check_artifact(new)

        table = OWNERS[owner.kind].records

        def fill(writer: Writer) -> None:
            if not writer.execute(select(table.c.id).where(table.c.id == owner.id)):
                raise _missing(owner.kind, owner.id)
            attachments.add_artifact(writer, self.blobs, owner, checked, sha, replace)

        def missing(_: IntegrityError) -> TrackerError:
            return _missing(owner.kind, owner.id)

        self.blobs.fresh(lambda: self.uow.insert(fill, on_integrity=missing), retry=self._outside())
        return Artifact(owner, checked.name, checked.media_type, len(checked.data), sha, checked.created_at)

    def list_artifacts(self, owner: Owner, *, of_trials: bool = False) -> list[Artifact]:
        return self.uow.read(lambda conn: attachments.list_artifacts(conn, owner, of_trials))

    def read_artifact(self, owner: Owner, name: str) -> bytes:
        return self.uow.read(lambda conn: attachments.read_artifact(conn, self.blobs, owner, name))
