"""Copying every experiment, trial, TTPT result and summary from one store to another.

Idempotent: an experiment already in the destination (same name, template, mode and creation
time) is matched, and only what it lacks is added, so running a copy twice adds nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from tracker.records import Experiment, ExperimentQuery, NewExperiment, NewTrial, NewTTPTResult, TrialQuery, TTPTResult
from tracker.repository import Repository
from tracker.values import to_storage

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
BATCH = 5000


def _repository(store: Any) -> tuple[Repository, bool]:
    """The repository behind `store`, and whether this module opened it (and must close it)."""
    if isinstance(store, Repository):
        return store, False
    repository = getattr(store, "repository", None)
    if isinstance(repository, Repository):
        return repository, False
    from tracker.stores import open_repository

    return open_repository(store), True


def _key(e: Experiment) -> tuple[str, str, str, str]:
    return (e.name, e.template, e.mode, e.created_at.isoformat())


def _ttpt(r: TTPTResult) -> NewTTPTResult:
    return NewTTPTResult(
        passed=r.passed,
        num_violations=r.num_violations,
        metrics=to_storage(r.metrics, "metrics"),
        violations=to_storage(r.violations, "violations"),
        created_at=r.created_at,
    )


def copy_store(source: Any, destination: Any, *, progress: bool = False) -> dict[str, int]:
    """Copy everything in `source` into `destination` (repositories, trackers, URLs or paths).

    Returns the counts added: experiments, trials, ttpt_results, summaries.
    """
    from tqdm import tqdm

    src, close_src = _repository(source)
    dst, close_dst = _repository(destination)
    added: Counter[str] = Counter()
    try:
        existing = {_key(s.experiment): s.experiment for s in dst.list_experiments(ExperimentQuery())}
        sources = [s.experiment for s in src.list_experiments(ExperimentQuery())]
        total = sum(s.n_trials for s in src.list_experiments(ExperimentQuery()))
        with tqdm(total=total, unit="trial", disable=not progress, desc="copy") as bar:
            for experiment in sources:
                target = existing.get(_key(experiment))
                if target is None:
                    target_id = dst.add_experiment(
                        NewExperiment(
                            name=experiment.name,
                            template=experiment.template,
                            mode=experiment.mode,
                            config=to_storage(experiment.config, "config"),
                            objective=experiment.objective,
                            direction=experiment.direction,
                            created_at=experiment.created_at,
                            summary=to_storage(experiment.summary, "summary"),
                        )
                    )
                    added["experiments"] += 1
                else:
                    target_id = target.id
                    if target.summary != experiment.summary and experiment.summary is not None:
                        dst.set_summary(target_id, to_storage(experiment.summary, "summary"))
                        added["summaries"] += 1
                _copy_trials(src, dst, experiment.id, target_id, added, bar)
    finally:
        if close_src:
            src.close()
        if close_dst:
            dst.close()
    return {key: added[key] for key in ("experiments", "trials", "ttpt_results", "summaries")}


def _copy_trials(
    src: Repository, dst: Repository, source_id: int, target_id: int, added: Counter[str], bar: Any
) -> None:
    have = dst.trial_numbers(target_id)
    results: dict[int, list[TTPTResult]] = {}
    for r in src.list_ttpt_results(experiment_id=source_id):
        results.setdefault(r.trial_id, []).append(r)
    dst_results: Counter[int] = Counter()
    by_number: dict[int, int] = {}
    if have:
        by_number = {t.trial_number: t.id for t in dst.list_trials(target_id, TrialQuery())}
        number_of = {trial_id: number for number, trial_id in by_number.items()}
        for r in dst.list_ttpt_results(experiment_id=target_id):
            dst_results[number_of[r.trial_id]] += 1
    batch: list[NewTrial] = []
    extra: list[tuple[int, list[TTPTResult]]] = []
    for trial in src.list_trials(source_id, TrialQuery()):
        checks = results.get(trial.id, [])
        if trial.trial_number in have:
            missing = checks[dst_results[trial.trial_number] :]
            for r in missing:
                dst.add_ttpt_result(by_number[trial.trial_number], _ttpt(r))
                added["ttpt_results"] += 1
            bar.update(1)
            continue
        batch.append(
            NewTrial(
                trial_number=trial.trial_number,
                params=to_storage(trial.params, "params"),
                performance=to_storage(trial.performance, "performance"),
                value=trial.value,
                state=trial.state,
                created_at=trial.created_at,
                strategy_code=trial.strategy_code,
                strategy_template=trial.strategy_template,
                generation_method=trial.generation_method,
                started_at=trial.started_at,
                completed_at=trial.completed_at,
                ttpt=_ttpt(checks[0]) if checks else None,
            )
        )
        extra.append((len(batch) - 1, checks[1:]))
        if len(batch) >= BATCH:
            _flush(dst, target_id, batch, extra, added, bar)
    _flush(dst, target_id, batch, extra, added, bar)


def _flush(
    dst: Repository,
    target_id: int,
    batch: list[NewTrial],
    extra: list[tuple[int, list[TTPTResult]]],
    added: Counter[str],
    bar: Any,
) -> None:
    if not batch:
        return
    ids = dst.add_trials(target_id, batch)
    added["trials"] += len(batch)
    added["ttpt_results"] += sum(1 for t in batch if t.ttpt is not None)
    for index, more in extra:
        for r in more:
            dst.add_ttpt_result(ids[index], _ttpt(r))
            added["ttpt_results"] += 1
    bar.update(len(batch))
    batch.clear()
    extra.clear()
