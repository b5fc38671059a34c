"""The part of a browser that answers before its digests are built: the dashboard starts reading
the store into them in a thread of its own (`warm_in_background`), and until that is done the
first pages are answered from the store's indexes, marked `counting`
(`tracker.read.records.ExperimentOverview`). What a backend provides for it is declared here."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from tracker.read.digest import Digests
from tracker.read.records import ExperimentOverview, TrialDetail
from tracker.store.records import Experiment, Trial, TTPTResult
from tracker.ttpt.verdict import BEST_K, verdict

T = TypeVar("T")
H = TypeVar("H")


class EarlyAnswers(ABC, Generic[H]):
    """Digests, their lock, and the answers given before the digests are built."""

    answers_early = True
    """Whether it answers before its digests are built (`warm_in_background`)."""

    def __init__(self) -> None:
        self._digests = Digests()
        self._lock = threading.Lock()
        self._early = False

    def warm_in_background(self) -> threading.Thread:
        """Start reading the whole store into the digests in a thread of its own (the dashboard
        does at start; at a million trials it takes seconds). Until it is done, overviews, the
        experiments list in a column's order and trial pages without a state or TTPT filter are
        answered at once from the store's indexes, marked `counting`
        (`tracker.read.records.ExperimentOverview`); the other verbs wait for the digests. A
        failed read is left to the next verb, which reads the store itself. Then, still in that
        thread, `_after_build` (the browser's Pareto views)."""
        self._early = True

        def build() -> None:
            try:
                self._run(self._build)
            except Exception as exc:  # noqa: BLE001 - the next verb reads again and raises it
                logging.getLogger("tracker").warning("reading the store into the digests failed: %s", exc)
                return
            finally:
                self._early = False
            try:
                self._after_build()
            except Exception as exc:  # noqa: BLE001 - a view asked for later computes it again
                logging.getLogger("tracker").warning("computing views in the background failed: %s", exc)

        thread = threading.Thread(target=build, name="tracker-digests", daemon=True)
        thread.start()
        return thread

    def _after_build(self) -> None:
        """What else to compute in the background once the digests are built (nothing here)."""

    def _build(self, handle: H) -> None:
        with self._lock:
            self._sync(handle)

    def _counting(self) -> bool:
        """Whether the digests are still being built in the background (`warm_in_background`)."""
        return self.answers_early and self._early and not self._digests.ready

    @abstractmethod
    def _run(self, work: Callable[[H], T]) -> T:
        """Run `work` on one consistent snapshot of the store (read-only)."""

    @abstractmethod
    def _sync(self, handle: H) -> None:
        """Bring `self._digests` up to date (called with `self._lock` held; see `_update`)."""

    @abstractmethod
    def _trial_detail(self, handle: H, trial_id: int) -> tuple[Trial, Experiment, list[TTPTResult]]:
        """The trial, its experiment and its TTPT results by id; raises NotFoundError."""

    @abstractmethod
    def _best_trials(self, handle: H, experiment_id: int, n: int) -> list[Trial]:
        """The `n` best complete trials with a value, best first."""

    @abstractmethod
    def _early_counts(self, handle: H, experiment_id: int, checks: bool = True) -> tuple[int, int, int]:
        """(trials, TTPT checks, failed checks) of the experiment, on its indexes; without
        `checks`, (trials, 0, 0)."""

    @abstractmethod
    def _latest_outcomes(self, handle: H, trial_ids: Sequence[int]) -> dict[int, bool]:
        """Whether each trial's latest check passed (`tracker.ttpt.verdict.latest_check`); the
        unchecked trials left out."""

    def _early_overview(self, handle: H, e: Experiment) -> ExperimentOverview:
        """The overview from the store's indexes, before the digests are built: exact, but for
        what needs every trial (left out, see `ExperimentOverview`)."""
        best = self._best_trials(handle, e.id, BEST_K)
        return _early(e, self._early_counts(handle, e.id), best, self._latest_outcomes(handle, [t.id for t in best]))

    def _early_best(self, handle: H, trial_id: int) -> TrialDetail:
        """The best trial of an early overview: rank 1, of a number of ranked trials not known yet."""
        trial, experiment, results = self._trial_detail(handle, trial_id)
        return TrialDetail(trial, experiment, tuple(results), 1, None)


def _early(
    e: Experiment, counts: tuple[int, int, int], best: list[Trial], outcomes: dict[int, bool]
) -> ExperimentOverview:
    n_trials, checks, failed = counts
    return ExperimentOverview(
        experiment=e,
        n_trials=n_trials,
        n_by_state={},
        best_value=best[0].value if best else None,
        best_trial_id=best[0].id if best else None,
        ttpt_total=checks,
        ttpt_failed=failed,
        ttpt_checked_trials=None,
        verdict=verdict([outcomes.get(t.id) for t in best], None, checks, failed),
        improvement=None,
        version=(0, 0),
        counting=True,
    )
