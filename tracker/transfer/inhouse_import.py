"""Putting the in-house optimizer's TTPT records on the trials they belong to.

Matching, for a record whose in-house `trial_number` is N (the in-house optimizer counts from 1,
Optuna from 0, so its trial is Optuna's N - 1):
1. by params: the one trial of the experiment with equal params (20 and 20.0 are equal);
2. by number, only where several trials have those params: the one of them numbered N - 1.
A record no rule places is reported, not dropped. Each row of the report says which rule matched.
An import is idempotent: a record already imported (same in-house number and timestamp, from a
log or from the history) is not added again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracker.store.records import Trial, TrialQuery
from tracker.store.repository import Repository
from tracker.store.retry import atomically
from tracker.transfer.inhouse_logs import Check, new_result, params_key, stored_key

BY_PARAMS = "params"
BY_NUMBER = "params, then number"
"""The rules, as reports name them: the params alone, or the params and then the number N - 1."""
STATUSES = ("imported", "already imported", "unmatched", "unusable")


@dataclass(frozen=True)
class Match:
    """The trial a record belongs to and the rule that found it, or why none was found."""

    trial: Trial | None
    rule: str | None = None
    reason: str | None = None


class TrialIndex:
    """An experiment's trials by their params."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        self._by_params: dict[str, list[Trial]] = defaultdict(list)
        for trial in trials:
            self._by_params[params_key(trial.params)].append(trial)

    def match(self, params: Any, in_house_number: int) -> Match:
        """The trial with these params; where several have them, the one numbered N - 1."""
        found = self._by_params.get(params_key(params), [])
        if len(found) == 1:
            return Match(found[0], BY_PARAMS)
        if not found:
            return Match(None, reason="no trial of the experiment has these params")
        wanted = in_house_number - 1
        numbered = [trial for trial in found if trial.trial_number == wanted]
        if numbered:
            return Match(numbered[0], BY_NUMBER)
        numbers = ", ".join(str(trial.trial_number) for trial in found)
        return Match(
            None, reason=f"trials {numbers} have these params, and none is number {wanted} (in-house {in_house_number})"
        )


def import_checks(repository: Repository, experiment_id: int, checks: Sequence[Check]) -> dict[str, Any]:
    """Store each usable record as a TTPT result on its trial, in one transaction (run again
    whole if the database rolls it back); return the report: one row per record, and counts."""
    repository.get_experiment(experiment_id)  # NotFoundError before anything else

    def block() -> list[dict[str, Any]]:
        with repository.transaction():
            repository.serialize(f"in-house ttpt import {experiment_id}")
            index = TrialIndex(repository.list_trials(experiment_id, TrialQuery()))
            done = {stored_key(r.metrics) for r in repository.list_ttpt_results(experiment_id=experiment_id)}
            now = datetime.now(UTC)
            return [_place(repository, index, done, check, now) for check in checks]

    rows = atomically(block, [repository])
    counts = {status.replace(" ", "_"): sum(1 for row in rows if row["status"] == status) for status in STATUSES}
    return {"experiment_id": experiment_id, **counts, "records": rows}


def _place(repository: Repository, index: TrialIndex, done: set[Any], check: Check, now: datetime) -> dict[str, Any]:
    """Store one record (unless it is unusable, unmatched or already there); its report row."""
    row: dict[str, Any] = {
        "source": check.source,
        "in_house_trial_number": check.number,
        "trial_number": None,
        "trial_id": None,
        "matched_by": None,
        "status": "unusable",
        "passed": check.fields.get("passed"),
        "lost": None if check.cut is None else f"the file stops at {check.cut or 'its start'}",
        "reason": check.problem,
    }
    if check.problem is not None:
        return row
    match = index.match(check.fields["params"], check.number)
    if match.trial is None:
        return {**row, "status": "unmatched", "reason": match.reason}
    row.update(trial_number=match.trial.trial_number, trial_id=match.trial.id, matched_by=match.rule)
    if check.key() in done:
        return {**row, "status": "already imported"}
    repository.add_ttpt_result(match.trial.id, new_result(check, match.rule or BY_PARAMS, now))
    done.add(check.key())
    return {**row, "status": "imported"}
