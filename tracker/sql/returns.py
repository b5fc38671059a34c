"""Trials' returns series on SQL: one `trial_returns` row per trial (values packed by
`tracker.store.returns`), the index a blob stored once per distinct index. Each function works
inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from tracker.errors import NotFoundError, StoreError, TrackerError
from tracker.sql.blob_store import CHUNK, BlobStore
from tracker.sql.fast_insert import Writer
from tracker.sql.models import blobs, trial_returns, trials
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store import blobs as content
from tracker.store import returns as packing
from tracker.store.returns import ReturnSeries

_INSERT = trial_returns.insert()
_DELETE = delete(trial_returns).where(trial_returns.c.trial_id == bindparam("trial_id"))


def rows(writer: Writer, store: BlobStore, by_trial: Sequence[tuple[int, ReturnSeries]]) -> list[dict[str, Any]]:
    """The `trial_returns` rows of checked series, their index blobs ensured."""
    shas: dict[int, str] = {}
    wanted: dict[str, bytes] = {}
    for i, (_, series) in enumerate(by_trial):
        if series.index is not None:
            shas[i] = store.name_of_index(series.index)
            wanted[shas[i]] = series.index
    ids = store.ensure(writer, wanted) if wanted else {}
    return [
        {
            "trial_id": trial_id,
            "length": len(series),
            "index_id": ids[shas[i]] if i in shas else None,
            "codec": packing.CODEC,
            "data": packing.pack(series.values),
        }
        for i, (trial_id, series) in enumerate(by_trial)
    ]


def insert(writer: Writer, store: BlobStore, by_trial: Sequence[tuple[int, ReturnSeries]]) -> None:
    """Insert the series of trials that have none yet."""
    if by_trial:
        writer.execute(_INSERT, rows(writer, store, by_trial), keep=True)


def replace(writer: Writer, store: BlobStore, trial_id: int, series: ReturnSeries) -> None:
    """Store the trial's series in place of any it had."""
    writer.execute(_DELETE, [{"trial_id": trial_id}], keep=True)
    insert(writer, store, [(trial_id, series)])


def trial_ids(conn: Connection, experiment_ids: Sequence[int], complete_only: bool) -> list[int]:
    found: list[int] = []
    for start in range(0, len(experiment_ids), CHUNK):
        query = (
            select(trials.c.id)
            .join(trial_returns, trial_returns.c.trial_id == trials.c.id)
            .where(trials.c.experiment_id.in_(list(experiment_ids[start : start + CHUNK])))
            .order_by(trials.c.experiment_id, trials.c.trial_number)
        )
        if complete_only:
            query = query.where(trials.c.state == "complete")
        found += [int(i) for i in conn.execute(query).scalars()]
    return found


def read(
    conn: Connection,
    trial_ids: Sequence[int],
    consume: Callable[[list[tuple[int, ReturnSeries]]], None],
    chunk_size: int,
) -> None:
    indexes: dict[int, bytes] = {}
    for start in range(0, len(trial_ids), chunk_size):
        chunk = list(trial_ids[start : start + chunk_size])
        query = select(trial_returns.c.trial_id, trial_returns.c.index_id, trial_returns.c.codec, trial_returns.c.data)
        found = {int(r.trial_id): r for r in conn.execute(query.where(trial_returns.c.trial_id.in_(chunk)))}
        missing = {int(r.index_id) for r in found.values() if r.index_id is not None} - set(indexes)
        if missing:
            stmt = select(blobs.c.id, blobs.c.codec, blobs.c.data).where(blobs.c.id.in_(sorted(missing)))
            indexes.update({int(i): content.unpack(codec, data) for i, codec, data in conn.execute(stmt)})
        consume(
            [
                (
                    trial_id,
                    ReturnSeries(
                        packing.unpack(row.codec, row.data),
                        None if row.index_id is None else indexes[int(row.index_id)],
                    ),
                )
                for trial_id in chunk
                if (row := found.get(trial_id)) is not None
            ]
        )


class SqlReturns:
    """The `Repository` verbs of returns series, for `SqlRepository` (its unit of work and blobs)."""

    uow: UnitOfWork
    blobs: BlobStore

    def set_returns(self, trial_id: int, returns: ReturnSeries) -> None:
        series = packing.check(returns)

        def fill(writer: Writer) -> None:
            if not writer.execute(select(trials.c.id).where(trials.c.id == trial_id)):
                raise NotFoundError(f"trial {trial_id} does not exist")
            replace(writer, self.blobs, trial_id, series)

        def stale(exc: IntegrityError) -> TrackerError:
            return StoreError(f"the index of trial {trial_id}'s returns refers to a blob that is gone: {exc.orig}")

        try:
            self.uow.insert(fill, on_integrity=stale)
        except StoreError:
            if series.index is None:
                raise
            self.blobs.forget()  # a cached index blob another thread or process has not kept: add it again
            self.uow.insert(fill, on_integrity=stale)

    def get_returns(self, trial_id: int) -> ReturnSeries | None:
        def work(conn: Connection) -> ReturnSeries | None:
            found: list[ReturnSeries] = []
            read(conn, [trial_id], lambda chunk: found.extend(s for _, s in chunk), 1)
            if not found and conn.execute(select(trials.c.id).where(trials.c.id == trial_id)).first() is None:
                raise NotFoundError(f"trial {trial_id} does not exist")
            return found[0] if found else None

        return self.uow.read(work)

    def returns_trial_ids(self, experiment_ids: Sequence[int], *, complete_only: bool = True) -> list[int]:
        return self.uow.read(lambda conn: trial_ids(conn, experiment_ids, complete_only))

    def read_returns(
        self,
        trial_ids: Sequence[int],
        consume: Callable[[list[tuple[int, ReturnSeries]]], None],
        chunk_size: int = 2_000,
    ) -> None:
        self.uow.read(lambda conn: read(conn, trial_ids, consume, chunk_size))
