"""What the SQL repository keeps beside experiments and trials: tags, notes, step metrics and
artifacts. Each function works inside the caller's transaction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, select, tuple_, update

from tracker.errors import DuplicateArtifactError, NotFoundError
from tracker.sql.blob_store import CHUNK, BlobStore
from tracker.sql.models import blobs, trial_metrics, trials
from tracker.sql.rows import OWNERS
from tracker.sql.unit_of_work import Writer
from tracker.store.records import Artifact, NewArtifact, NewStepMetric, Owner, StepMetric


def require(conn: Connection, owner: Owner) -> None:
    """Raise NotFoundError unless the owner exists."""
    table = OWNERS[owner.kind].records
    if conn.execute(select(table.c.id).where(table.c.id == owner.id)).first() is None:
        raise NotFoundError(f"{owner.kind} {owner.id} does not exist")


def set_tags(conn: Connection, owner: Owner, tags: Mapping[str, str | None]) -> None:
    """Set (a string) or delete (None) each tag of the owner."""
    require(conn, owner)
    tables = OWNERS[owner.kind]
    key = tables.tags.c[tables.key]
    if tags:
        conn.execute(delete(tables.tags).where(key == owner.id, tables.tags.c.key.in_(list(tags))))
    rows = [{tables.key: owner.id, "key": name, "value": value} for name, value in tags.items() if value is not None]
    if rows:
        conn.execute(tables.tags.insert(), rows)


def set_note(conn: Connection, owner: Owner, note: str | None) -> None:
    table = OWNERS[owner.kind].records
    if conn.execute(update(table).where(table.c.id == owner.id).values(note=note)).rowcount == 0:
        raise NotFoundError(f"{owner.kind} {owner.id} does not exist")


def add_step_metrics(conn: Connection, trial_id: int, metrics: Sequence[NewStepMetric]) -> list[tuple[str, int]]:
    """Insert the metrics; return the (key, step) pairs already present instead, if any."""
    require(conn, Owner("trial", trial_id))
    wanted = [(m.key, m.step) for m in metrics]
    taken = []
    for start in range(0, len(wanted), CHUNK):
        query = select(trial_metrics.c.key, trial_metrics.c.step).where(
            trial_metrics.c.trial_id == trial_id,
            tuple_(trial_metrics.c.key, trial_metrics.c.step).in_(wanted[start : start + CHUNK]),
        )
        taken += [(key, int(step)) for key, step in conn.execute(query)]
    if taken:
        return sorted(taken)
    rows = [
        {"trial_id": trial_id, "key": m.key, "step": m.step, "value": None if math.isnan(m.value) else m.value}
        for m in metrics
    ]
    conn.execute(trial_metrics.insert(), rows)
    return []


def list_step_metrics(conn: Connection, trial_id: int | None, experiment_id: int | None) -> list[StepMetric]:
    query = select(trial_metrics).order_by(trial_metrics.c.trial_id, trial_metrics.c.key, trial_metrics.c.step)
    if trial_id is not None:
        require(conn, Owner("trial", trial_id))
        query = query.where(trial_metrics.c.trial_id == trial_id)
    if experiment_id is not None:
        require(conn, Owner("experiment", experiment_id))
        mine = select(trials.c.id).where(trials.c.experiment_id == experiment_id)
        query = query.where(trial_metrics.c.trial_id.in_(mine.scalar_subquery()))
    return [
        StepMetric(trial_id=r.trial_id, step=r.step, key=r.key, value=math.nan if r.value is None else r.value)
        for r in conn.execute(query)
    ]


def add_artifact(writer: Writer, store: BlobStore, owner: Owner, new: NewArtifact, sha: str, replace: bool) -> None:
    """Attach the artifact (its blob already ensured); raises DuplicateArtifactError."""
    tables = OWNERS[owner.kind]
    key = tables.artifacts.c[tables.key]
    where = and_(key == owner.id, tables.artifacts.c.name == new.name)
    if writer.execute(select(tables.artifacts.c.blob_id).where(where)):
        if not replace:
            raise DuplicateArtifactError(f"{owner.kind} {owner.id}", new.name)
        writer.execute(delete(tables.artifacts).where(where))
    [blob_id] = store.ensure(writer, {sha: new.data}).values()
    row = {tables.key: owner.id, "name": new.name, "media_type": new.media_type, "blob_id": blob_id}
    writer.execute(tables.artifacts.insert(), [{**row, "created_at": new.created_at}])


def list_artifacts(conn: Connection, owner: Owner, of_trials: bool) -> list[Artifact]:
    require(conn, owner)
    kind = "trial" if of_trials else owner.kind
    tables = OWNERS[kind]
    key = tables.artifacts.c[tables.key]
    query = select(tables.artifacts, blobs.c.sha256, blobs.c.size).join(blobs, blobs.c.id == tables.artifacts.c.blob_id)
    if of_trials:
        mine = select(trials.c.id).where(trials.c.experiment_id == owner.id).scalar_subquery()
        query = query.where(key.in_(mine)).order_by(key, tables.artifacts.c.name)
    else:
        query = query.where(key == owner.id).order_by(tables.artifacts.c.name)
    return [
        Artifact(Owner(kind, r._mapping[tables.key]), r.name, r.media_type, int(r.size), r.sha256, r.created_at)
        for r in conn.execute(query)
    ]


def read_artifact(conn: Connection, store: BlobStore, owner: Owner, name: str) -> bytes:
    tables = OWNERS[owner.kind]
    query = select(tables.artifacts.c.blob_id).where(
        tables.artifacts.c[tables.key] == owner.id, tables.artifacts.c.name == name
    )
    blob_id = conn.execute(query).scalar()
    if blob_id is None:
        require(conn, owner)
        raise NotFoundError(f"{owner.kind} {owner.id} has no artifact named {name!r}")
    return store.read(conn, blob_id)


def owned_blobs(conn: Connection, experiment_id: int) -> set[int]:
    """The blobs an experiment's records reference: candidates for collection once it is deleted."""
    mine = select(trials.c.id).where(trials.c.experiment_id == experiment_id).scalar_subquery()
    found: set[int] = set()
    queries: list[Any] = [
        select(trials.c.strategy_code_id).where(trials.c.experiment_id == experiment_id),
        select(OWNERS["trial"].artifacts.c.blob_id).where(OWNERS["trial"].artifacts.c.trial_id.in_(mine)),
        select(OWNERS["experiment"].artifacts.c.blob_id).where(
            OWNERS["experiment"].artifacts.c.experiment_id == experiment_id
        ),
    ]
    for query in queries:
        found.update(i for i in conn.execute(query.distinct()).scalars() if i is not None)
    return found
