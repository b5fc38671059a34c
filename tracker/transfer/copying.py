"""Copying experiments between stores, with every part they hold (`tracker.transfer.parts`).

Idempotent: an experiment already in the destination (same name, template, mode and creation
time) is matched, and only what it lacks is added, so running a copy twice adds nothing. Each
experiment is copied in one destination transaction: the destination never holds half of one.
A verified copy (`copy_verified`, what archival uses) is compared with the source inside that
transaction, so a copy that differs is rolled back and leaves the destination as it was.
`snapshot` describes an experiment without its ids, so that two stores' copies can be compared.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tracker.errors import StoreError
from tracker.store.records import Experiment, ExperimentQuery, NewExperiment, Owner
from tracker.store.repository import Repository
from tracker.store.retry import atomically
from tracker.transfer.parts import PARTS, Copy, Side, annotate, as_new, fields_of
from tracker.transfer.sameness import refuse_same_store

log = logging.getLogger(__name__)
COUNTS = ("experiments", "trials", "ttpt_results", "summaries", "annotations", "step_metrics", "artifacts", "returns")
AfterCopy = Callable[[Repository, int], None]
"""Called inside the destination's transaction once a copy is written, before it is verified
(tests use it to make a wrong copy)."""

__all__ = ["COUNTS", "as_new", "copy_store", "copy_verified", "key_of", "repository_of", "snapshot"]


def repository_of(store: Any, *, create: bool) -> tuple[Repository, bool]:
    """The repository behind `store` (a repository, a tracker, a URL or a path), and whether this
    call opened it (and the caller must close it). A URL or path is opened creating the store only
    when `create` (a destination)."""
    if isinstance(store, Repository):
        return store, False
    repository = getattr(store, "repository", None)
    if isinstance(repository, Repository):
        return repository, False
    from tracker.stores import open_repository

    return open_repository(store, create=create), True


def open_pair(source: Any, destination: Any) -> tuple[Repository, Repository, Callable[[], None]]:
    """The source and destination repositories and a function that closes what was opened here.
    Raises ValidationError (creating and changing nothing) when they are the same store."""
    from tracker.store.location import resolve

    src, close_src = repository_of(source, create=False)
    try:
        if not isinstance(destination, Repository) and not isinstance(
            getattr(destination, "repository", None), Repository
        ):
            refuse_same_store(src.location, resolve(destination, None, None))  # before creating anything
        dst, close_dst = repository_of(destination, create=True)
    except BaseException:
        if close_src:
            src.close()
        raise

    def close() -> None:
        if close_src:
            src.close()
        if close_dst:
            dst.close()

    try:
        refuse_same_store(src, dst)
    except BaseException:
        close()
        raise
    return src, dst, close


def key_of(e: Experiment) -> tuple[str, str, str, str]:
    """What identifies an experiment across stores (ids differ)."""
    return (e.name, e.template, e.mode, e.created_at.isoformat())


def copy_store(
    source: Any, destination: Any, *, progress: bool = False, ids: Sequence[int] | None = None
) -> dict[str, int]:
    """Copy every experiment of `source` (or those with `ids`) into `destination` (repositories,
    trackers, URLs or paths). A source URL or path must name an existing store (else
    StoreNotFoundError, nothing created); a destination is created if new. Raises ValidationError
    when both are the same store. Returns the counts added (see COUNTS)."""
    from tqdm import tqdm

    src, dst, close = open_pair(source, destination)
    try:
        added: Counter[str] = Counter()
        query = ExperimentQuery(ids=None if ids is None else tuple(ids))
        sources = [s.experiment for s in src.list_experiments(query)]
        existing = matches(dst)
        with tqdm(total=len(sources), unit="experiment", disable=not progress, desc="copy") as bar:
            for experiment in sources:

                def one(experiment: Experiment = experiment) -> Counter[str]:
                    copy = _start(src, dst, experiment, existing.get(key_of(experiment)))
                    with src.transaction(write=False), dst.transaction():
                        _fill(copy, experiment)
                    return copy.added

                added.update(atomically(one, [src, dst]))
                bar.update(1)
        return {key: added[key] for key in COUNTS}
    finally:
        close()


def matches(dst: Repository) -> dict[tuple[str, str, str, str], Experiment]:
    """The destination's experiments by `key_of`."""
    return {key_of(s.experiment): s.experiment for s in dst.list_experiments(ExperimentQuery(trial_stats=False))}


def copy_verified(
    src: Repository,
    dst: Repository,
    experiment: Experiment,
    target: Experiment | None,
    added: Counter[str],
    after_copy: AfterCopy | None = None,
) -> tuple[int, dict[str, Any]]:
    """Copy one experiment into `target` (or a new one) and compare the copy with the source,
    both in one destination transaction; return the destination id and the source's snapshot
    the copy matched. Raises StoreError, with the destination rolled back, when they differ."""

    def once() -> tuple[int, dict[str, Any], Counter[str]]:
        copy = _start(src, dst, experiment, target)
        with src.transaction(write=False), dst.transaction():
            verified = snapshot(src, experiment.id)
            _fill(copy, experiment)
            if after_copy is not None:
                after_copy(dst, copy.target.experiment_id)
            differing = differences(verified, snapshot(dst, copy.target.experiment_id))
            if differing:
                raise StoreError(
                    f"the copy of experiment {experiment.id} ({experiment.name!r}) differs from the source in its "
                    f"{', '.join(differing)}, so it was rolled back: the destination is as it was and the source "
                    "keeps the experiment. Check that the destination store is in good health, then run again"
                )
        return copy.target.experiment_id, verified, copy.added

    target_id, verified, counts = atomically(once, [src, dst])
    added.update(counts)
    return target_id, verified


def _start(src: Repository, dst: Repository, experiment: Experiment, target: Experiment | None) -> Copy:
    return Copy(Side(src, experiment.id), Side(dst, target.id if target is not None else 0))


def _fill(copy: Copy, experiment: Experiment) -> None:
    """Inside the transactions: the experiment record, then every part."""
    dst = copy.target.repo
    if copy.target.experiment_id == 0:
        copy.target.experiment_id = dst.add_experiment(as_new(experiment, NewExperiment))
        copy.added["experiments"] += 1
    else:
        target = dst.get_experiment(copy.target.experiment_id)
        if target.summary != experiment.summary and experiment.summary is not None:
            dst.set_summary(target.id, experiment.summary)
            copy.added["summaries"] += 1
        annotate(dst, Owner("experiment", target.id), experiment, target, copy.added)
    for part in PARTS:
        if part.copy is not None:
            part.copy(copy)


def snapshot(repo: Repository, experiment_id: int) -> dict[str, Any]:
    """Everything an experiment holds, without ids, in one read transaction: equal snapshots of
    two stores' copies mean the same data (see `tracker.transfer.parts.canonical`)."""
    side = Side(repo, experiment_id)
    with repo.transaction(write=False):
        described = {"experiment": fields_of(repo.get_experiment(experiment_id), ("id",))}
        described.update({part.name: part.describe(side) for part in PARTS})
    return described


def differences(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """The names of the parts in which two snapshots differ."""
    return [name for name in one.keys() | other.keys() if one.get(name) != other.get(name)]
