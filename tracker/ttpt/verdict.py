"""The look-ahead verdict of an experiment: valid, look-ahead or unchecked, with its coverage.

One rule for every place that shows a verdict (summaries, `compare_experiments`, the CLI, the
demo, the dashboard): `latest_check` says which of a trial's checks counts, `verdict` takes the
outcomes of the best trials and the counts; `experiment_verdict` reads them from a store, and the
dashboard's digests (`tracker.read.digest`) apply the same two functions as rows arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from tracker.store.repository import Repository

VerdictStatus = Literal["valid", "look-ahead", "unchecked"]


class CheckOf(Protocol):
    """A TTPT check of a trial: its id (ids grow with time) and its outcome."""

    @property
    def id(self) -> int: ...

    @property
    def passed(self) -> bool: ...


C = TypeVar("C", bound=CheckOf)


def latest_check(checks: Iterable[C]) -> C | None:
    """The check of one trial whose outcome counts: its latest (the highest id), whatever order
    the checks come in; None when the trial is unchecked. A failing re-check overrules an earlier
    pass, and a passing one an earlier failure."""
    ordered = sorted(checks, key=lambda check: check.id)
    return ordered[-1] if ordered else None


BEST_K = 3
"""How many of the best complete trials must be checked (and pass) for a `valid` verdict."""
FAILED_SHARE = 0.5
"""A larger share of failed checks, over all checks, makes the verdict `look-ahead`."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the TTPT checks say about an experiment, and how much of it they cover."""

    status: VerdictStatus
    best_k: int
    """How many best trials were looked at: BEST_K, or fewer when fewer trials are ranked."""
    best_checked: int
    """How many of those have a check (their latest one counts)."""
    best_failed: int
    n_ranked: int | None
    """Complete trials with a value (None while a dashboard is still counting them)."""
    checks: int
    failed_checks: int

    @property
    def coverage(self) -> str:
        """E.g. "best 3 of 150 checked, 30 checks in all"."""
        if self.best_k == 0:
            best = "no complete trial with a value"
        elif self.n_ranked is None:
            best = f"{self.best_checked} of the best {self.best_k} checked"
        elif self.best_checked == self.best_k:
            best = f"best {self.best_k} of {self.n_ranked} checked"
        else:
            best = f"{self.best_checked} of the best {self.best_k} of {self.n_ranked} checked"
        return f"{best}, {self.checks} check{'' if self.checks == 1 else 's'} in all"


def verdict(best: Sequence[bool | None], n_ranked: int | None, checks: int, failed_checks: int) -> Verdict:
    """The verdict from the latest check outcome of each of the best trials (best first, at most
    BEST_K; None where a trial is unchecked), the number of ranked trials and the check counts.

    `look-ahead` when a checked trial among the best failed, or when more than half of all checks
    failed; `valid` when the best trials (BEST_K, or all when fewer) were all checked and passed;
    `unchecked` otherwise.
    """
    top = list(best[:BEST_K])
    checked = sum(1 for outcome in top if outcome is not None)
    failed = sum(1 for outcome in top if outcome is False)
    status: VerdictStatus
    if failed or (checks and failed_checks > FAILED_SHARE * checks):
        status = "look-ahead"
    elif top and checked == len(top):
        status = "valid"
    else:
        status = "unchecked"
    return Verdict(status, len(top), checked, failed, n_ranked, checks, failed_checks)


def experiment_verdict(repo: Repository, experiment_id: int) -> Verdict:
    """The verdict of an experiment from its store: the latest checks of its BEST_K best complete
    trials (by value, for its direction; ties by trial number) and its check counts. Raises
    NotFoundError."""
    from tracker.store.records import ExperimentQuery, TrialQuery

    stats = repo.list_experiments(ExperimentQuery(ids=(experiment_id,)))
    if not stats:
        repo.get_experiment(experiment_id)  # raises NotFoundError
    best = repo.list_trials(experiment_id, TrialQuery(states=("complete",), order_by="value", limit=BEST_K))
    outcomes: list[bool | None] = []
    for trial in best:
        if trial.value is None:
            continue
        latest = latest_check(repo.list_ttpt_results(trial_id=trial.id))
        outcomes.append(None if latest is None else latest.passed)
    s = stats[0]
    return verdict(outcomes, s.n_ranked, s.ttpt_total, s.ttpt_failed)
