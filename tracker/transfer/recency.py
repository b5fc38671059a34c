"""When an experiment was last written: the latest time it records (its creation, its trials'
creation, start and end, its TTPT results and its artifacts). Tags, notes and step metrics carry
no time, so they do not count; archival's check-and-delete still keeps an experiment that one of
them changed during a move."""

from __future__ import annotations

from datetime import datetime

from tracker.store.records import Owner, TrialQuery
from tracker.store.repository import Repository


def last_write(repo: Repository, experiment_id: int) -> datetime:
    """The latest time the experiment records (see the module); raises NotFoundError."""
    with repo.transaction(write=False):
        times = [repo.get_experiment(experiment_id).created_at]
        for t in repo.list_trials(experiment_id, TrialQuery()):
            times.extend(moment for moment in (t.created_at, t.started_at, t.completed_at) if moment is not None)
        times.extend(r.created_at for r in repo.list_ttpt_results(experiment_id=experiment_id))
        owner = Owner("experiment", experiment_id)
        times.extend(
            a.created_at for of_trials in (False, True) for a in repo.list_artifacts(owner, of_trials=of_trials)
        )
    return max(times)
