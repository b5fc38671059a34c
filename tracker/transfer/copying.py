"""Copying experiments between stores, with everything they hold: trials, TTPT results, summary,
tags, notes, provenance, attributes, step metrics, artifacts and returns series.

Idempotent: an experiment already in the destination (same name, template, mode and creation
time) is matched, and only what it lacks is added, so running a copy twice adds nothing. Each
experiment is copied in one destination transaction: the destination never holds half of one.
`snapshot` describes an experiment without its ids, so that two stores' copies can be compared
record by record.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tracker.store.records import (
    Experiment,
    ExperimentQuery,
    NewArtifact,
    NewExperiment,
    NewStepMetric,
    NewTrial,
    NewTTPTResult,
    Owner,
    Trial,
    TrialQuery,
    TTPTResult,
    new_fields,
)
from tracker.store.repository import Repository
from tracker.store.retry import atomically
from tracker.store.returns import ReturnSeries

log = logging.getLogger(__name__)
BATCH = 5000
COUNTS = ("experiments", "trials", "ttpt_results", "summaries", "annotations", "step_metrics", "artifacts", "returns")


def as_new(record: Any, new_type: type[Any], **extra: Any) -> Any:
    """The `new_type` record (`NewTrial`, ...) holding `record`'s values, plus `extra`."""
    return new_type(**{name: getattr(record, name) for name in new_fields(new_type)}, **extra)


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


def key_of(e: Experiment) -> tuple[str, str, str, str]:
    """What identifies an experiment across stores (ids differ)."""
    return (e.name, e.template, e.mode, e.created_at.isoformat())


def copy_store(
    source: Any, destination: Any, *, progress: bool = False, ids: Sequence[int] | None = None
) -> dict[str, int]:
    """Copy every experiment of `source` (or those with `ids`) into `destination` (repositories,
    trackers, URLs or paths). A source URL or path must name an existing store (else
    StoreNotFoundError, nothing created); a destination is created if new. Returns the counts
    added (see COUNTS)."""
    src, close_src = repository_of(source, create=False)
    dst, close_dst = repository_of(destination, create=True)
    try:
        added: Counter[str] = Counter()
        query = ExperimentQuery(ids=None if ids is None else tuple(ids))
        copy_experiments(src, dst, [s.experiment for s in src.list_experiments(query)], added, progress=progress)
        return {key: added[key] for key in COUNTS}
    finally:
        if close_src:
            src.close()
        if close_dst:
            dst.close()


def copy_experiments(
    src: Repository, dst: Repository, sources: list[Experiment], added: Counter[str], *, progress: bool = False
) -> dict[int, int]:
    """Copy the experiments, one destination transaction each; return source id -> destination id."""
    from tqdm import tqdm

    existing = {key_of(s.experiment): s.experiment for s in dst.list_experiments(ExperimentQuery(trial_stats=False))}
    targets: dict[int, int] = {}
    with tqdm(total=len(sources), unit="experiment", disable=not progress, desc="copy") as bar:
        for experiment in sources:

            def copy_one(experiment: Experiment = experiment) -> tuple[int, Counter[str]]:
                counts: Counter[str] = Counter()  # counted again from zero if the copy is run again
                with src.transaction(write=False), dst.transaction():
                    target = _copy_experiment(src, dst, experiment, existing.get(key_of(experiment)), counts)
                return target, counts

            targets[experiment.id], counts = atomically(copy_one, [src, dst])
            added.update(counts)
            bar.update(1)
    return targets


def _copy_experiment(
    src: Repository, dst: Repository, experiment: Experiment, target: Experiment | None, added: Counter[str]
) -> int:
    if target is None:
        target_id = dst.add_experiment(as_new(experiment, NewExperiment))
        added["experiments"] += 1
    else:
        target_id = target.id
        if target.summary != experiment.summary and experiment.summary is not None:
            dst.set_summary(target_id, experiment.summary)
            added["summaries"] += 1
        _annotate(dst, Owner("experiment", target_id), experiment, target, added)
    numbers = _copy_trials(src, dst, experiment.id, target_id, added)
    _copy_steps(src, dst, experiment.id, target_id, numbers, added)
    _copy_artifacts(src, dst, experiment.id, target_id, numbers, added)
    _copy_returns(src, dst, experiment.id, target_id, numbers, added)
    return target_id


def _annotate(
    dst: Repository, owner: Owner, source: Experiment | Trial, target: Experiment | Trial, added: Counter[str]
) -> None:
    """Give a matched record the source's tags and note."""
    if source.tags != target.tags:
        dst.set_tags(owner, {**dict.fromkeys(set(target.tags) - set(source.tags)), **source.tags})
        added["annotations"] += 1
    if source.note != target.note:
        dst.set_note(owner, source.note)
        added["annotations"] += 1


def _copy_trials(
    src: Repository, dst: Repository, source_id: int, target_id: int, added: Counter[str]
) -> dict[int, int]:
    """Copy the trials the destination lacks (and TTPT results it lacks); return source trial id ->
    destination trial id."""
    results: dict[int, list[TTPTResult]] = {}
    for r in src.list_ttpt_results(experiment_id=source_id):
        results.setdefault(r.trial_id, []).append(r)
    have = {t.trial_number: t for t in dst.list_trials(target_id, TrialQuery())}
    have_results: Counter[int] = Counter(r.trial_id for r in dst.list_ttpt_results(experiment_id=target_id))
    mapping: dict[int, int] = {}
    batch: list[tuple[Trial, list[TTPTResult]]] = []
    for trial in src.list_trials(source_id, TrialQuery()):
        checks = results.get(trial.id, [])
        existing = have.get(trial.trial_number)
        if existing is None:
            batch.append((trial, checks))
            if len(batch) >= BATCH:
                mapping.update(_flush(dst, target_id, batch, added))
            continue
        mapping[trial.id] = existing.id
        for r in checks[have_results[existing.id] :]:
            dst.add_ttpt_result(existing.id, as_new(r, NewTTPTResult))
            added["ttpt_results"] += 1
        _annotate(dst, Owner("trial", existing.id), trial, existing, added)
    mapping.update(_flush(dst, target_id, batch, added))
    return mapping


def _flush(
    dst: Repository, target_id: int, batch: list[tuple[Trial, list[TTPTResult]]], added: Counter[str]
) -> dict[int, int]:
    if not batch:
        return {}
    news = [as_new(t, NewTrial, ttpt=as_new(checks[0], NewTTPTResult) if checks else None) for t, checks in batch]
    ids = dst.add_trials(target_id, news)
    added["trials"] += len(batch)
    added["ttpt_results"] += sum(1 for new in news if new.ttpt is not None)
    for trial_id, (_, checks) in zip(ids, batch, strict=True):
        for r in checks[1:]:
            dst.add_ttpt_result(trial_id, as_new(r, NewTTPTResult))
            added["ttpt_results"] += 1
    mapping = {t.id: trial_id for (t, _), trial_id in zip(batch, ids, strict=True)}
    batch.clear()
    return mapping


def _copy_steps(
    src: Repository, dst: Repository, source_id: int, target_id: int, numbers: dict[int, int], added: Counter[str]
) -> None:
    have = {(m.trial_id, m.key, m.step) for m in dst.list_step_metrics(experiment_id=target_id)}
    wanted: dict[int, list[NewStepMetric]] = {}
    for m in src.list_step_metrics(experiment_id=source_id):
        trial_id = numbers[m.trial_id]
        if (trial_id, m.key, m.step) not in have:
            wanted.setdefault(trial_id, []).append(NewStepMetric(step=m.step, key=m.key, value=m.value))
    for trial_id, metrics in wanted.items():
        dst.add_step_metrics(trial_id, metrics)
        added["step_metrics"] += len(metrics)


def _copy_artifacts(
    src: Repository, dst: Repository, source_id: int, target_id: int, numbers: dict[int, int], added: Counter[str]
) -> None:
    owners = {("experiment", source_id): Owner("experiment", target_id)}
    owners.update({("trial", s): Owner("trial", d) for s, d in numbers.items()})
    have = {
        (a.owner, a.name, a.sha256)
        for of_trials in (False, True)
        for a in dst.list_artifacts(Owner("experiment", target_id), of_trials=of_trials)
    }
    for of_trials in (False, True):
        for a in src.list_artifacts(Owner("experiment", source_id), of_trials=of_trials):
            target = owners[(a.owner.kind, a.owner.id)]
            if (target, a.name, a.sha256) in have:
                continue
            data = src.read_artifact(a.owner, a.name)
            dst.add_artifact(target, NewArtifact(a.name, a.media_type, data, a.created_at), replace=True)
            added["artifacts"] += 1


def _copy_returns(
    src: Repository, dst: Repository, source_id: int, target_id: int, numbers: dict[int, int], added: Counter[str]
) -> None:
    """Give the destination's trials the returns series they lack."""
    have = set(dst.returns_trial_ids([target_id], complete_only=False))
    wanted = [i for i in src.returns_trial_ids([source_id], complete_only=False) if numbers[i] not in have]

    def store(chunk: list[tuple[int, ReturnSeries]]) -> None:
        for trial_id, series in chunk:
            dst.set_returns(numbers[trial_id], series)
        added["returns"] += len(chunk)

    src.read_returns(wanted, store)


def snapshot(repo: Repository, experiment_id: int) -> dict[str, Any]:
    """Everything an experiment holds, without ids: for comparing two stores' copies."""
    with repo.transaction(write=False):
        experiment = repo.get_experiment(experiment_id)
        trials = repo.list_trials(experiment_id, TrialQuery())
        number = {t.id: t.trial_number for t in trials}
        results: dict[int, list[Any]] = {}
        for r in repo.list_ttpt_results(experiment_id=experiment_id):
            results.setdefault(number[r.trial_id], []).append(_without(r, ("id", "trial_id")))
        steps = sorted(
            (number[m.trial_id], m.key, m.step, repr(m.value))
            for m in repo.list_step_metrics(experiment_id=experiment_id)
        )
        artifacts = sorted(
            (a.owner.kind, number.get(a.owner.id) if a.owner.kind == "trial" else None, a.name, a.media_type, a.sha256)
            for of_trials in (False, True)
            for a in repo.list_artifacts(Owner("experiment", experiment_id), of_trials=of_trials)
        )
        returns: dict[int, tuple[bytes, bytes | None]] = {}
        repo.read_returns(
            repo.returns_trial_ids([experiment_id], complete_only=False),
            lambda chunk: returns.update({number[i]: (s.values, s.index) for i, s in chunk}),
        )
    return {
        "experiment": _without(experiment, ("id",)),
        "trials": {t.trial_number: _without(t, ("id", "experiment_id")) for t in trials},
        "ttpt": results,
        "steps": steps,
        "artifacts": artifacts,
        "returns": returns,
    }


def _without(record: Any, ids: tuple[str, ...]) -> dict[str, Any]:
    """A record's fields but the ids, with floats as their repr (so NaN equals NaN)."""
    from tracker.store import codec

    return {
        name: codec.dumps(codec.encode(value, name)) if not isinstance(value, str) else value
        for name, value in ((f, getattr(record, f)) for f in record.__dataclass_fields__ if f not in ids)
    }
