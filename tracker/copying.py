"""Copying every experiment, trial, TTPT result and summary from one store to another.

Idempotent: an experiment already in the destination (same name, template, mode and creation
time) is matched, and only what it lacks is added, so running a copy twice adds nothing. Each
experiment is copied in one destination transaction: the destination never holds half of one.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from tracker.records import (
    Experiment,
    ExperimentQuery,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    TrialQuery,
    TTPTResult,
    new_fields,
)
from tracker.repository import Repository

log = logging.getLogger(__name__)
BATCH = 5000


def as_new(record: Any, new_type: type[Any], **extra: Any) -> Any:
    """The `new_type` record (`NewTrial`, ...) holding `record`'s values, plus `extra`."""
    return new_type(**{name: getattr(record, name) for name in new_fields(new_type)}, **extra)


def _repository(store: Any, *, create: bool) -> tuple[Repository, bool]:
    """The repository behind `store`, and whether this module opened it (and must close it). A
    URL or path is opened creating the store only when `create` (the destination)."""
    if isinstance(store, Repository):
        return store, False
    repository = getattr(store, "repository", None)
    if isinstance(repository, Repository):
        return repository, False
    from tracker.stores import open_repository

    return open_repository(store, create=create), True


def _key(e: Experiment) -> tuple[str, str, str, str]:
    return (e.name, e.template, e.mode, e.created_at.isoformat())


def copy_store(source: Any, destination: Any, *, progress: bool = False) -> dict[str, int]:
    """Copy everything in `source` into `destination` (repositories, trackers, URLs or paths).
    A source URL or path must name an existing store (else StoreNotFoundError, nothing created);
    a destination is created if new.

    Returns the counts added: experiments, trials, ttpt_results, summaries.
    """
    from tqdm import tqdm

    src, close_src = _repository(source, create=False)
    dst, close_dst = _repository(destination, create=True)
    added: Counter[str] = Counter()
    try:
        existing = {_key(s.experiment): s.experiment for s in dst.list_experiments(ExperimentQuery())}
        sources = src.list_experiments(ExperimentQuery())
        with tqdm(total=sum(s.n_trials for s in sources), unit="trial", disable=not progress, desc="copy") as bar:
            for stats in sources:
                with src.transaction(write=False), dst.transaction():
                    _copy_experiment(src, dst, stats.experiment, existing.get(_key(stats.experiment)), added, bar)
    finally:
        if close_src:
            src.close()
        if close_dst:
            dst.close()
    return {key: added[key] for key in ("experiments", "trials", "ttpt_results", "summaries")}


def _copy_experiment(
    src: Repository, dst: Repository, experiment: Experiment, target: Experiment | None, added: Counter[str], bar: Any
) -> None:
    if target is None:
        target_id = dst.add_experiment(as_new(experiment, NewExperiment))
        added["experiments"] += 1
    else:
        target_id = target.id
        if target.summary != experiment.summary and experiment.summary is not None:
            dst.set_summary(target_id, experiment.summary)
            added["summaries"] += 1
    results: dict[int, list[TTPTResult]] = {}
    for r in src.list_ttpt_results(experiment_id=experiment.id):
        results.setdefault(r.trial_id, []).append(r)
    have: dict[int, int] = {}  # trial number -> id, in the destination
    have_results: Counter[int] = Counter()  # trial number -> TTPT results, in the destination
    if target is not None:
        have = {t.trial_number: t.id for t in dst.list_trials(target_id, TrialQuery())}
        number_of = {trial_id: number for number, trial_id in have.items()}
        for r in dst.list_ttpt_results(experiment_id=target_id):
            have_results[number_of[r.trial_id]] += 1
    batch: list[tuple[NewTrial, list[TTPTResult]]] = []
    for trial in src.list_trials(experiment.id, TrialQuery()):
        checks = results.get(trial.id, [])
        if trial.trial_number in have:
            for r in checks[have_results[trial.trial_number] :]:
                dst.add_ttpt_result(have[trial.trial_number], as_new(r, NewTTPTResult))
                added["ttpt_results"] += 1
            bar.update(1)
            continue
        first = as_new(checks[0], NewTTPTResult) if checks else None
        batch.append((as_new(trial, NewTrial, ttpt=first), checks[1:]))
        if len(batch) >= BATCH:
            _flush(dst, target_id, batch, added, bar)
    _flush(dst, target_id, batch, added, bar)


def _flush(
    dst: Repository, target_id: int, batch: list[tuple[NewTrial, list[TTPTResult]]], added: Counter[str], bar: Any
) -> None:
    if not batch:
        return
    ids = dst.add_trials(target_id, [new for new, _ in batch])
    added["trials"] += len(batch)
    added["ttpt_results"] += sum(1 for new, _ in batch if new.ttpt is not None)
    for trial_id, (_, more) in zip(ids, batch, strict=True):
        for r in more:
            dst.add_ttpt_result(trial_id, as_new(r, NewTTPTResult))
            added["ttpt_results"] += 1
    bar.update(len(batch))
    batch.clear()
