"""The overfitting numbers of experiments' trials: how much of the best Sharpe selection explains."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ParamSpec

from tracker.errors import ValidationError
from tracker.facade.arguments import check_int, check_number, check_tag_filter, tag_pairs
from tracker.facade.reading import Reading
from tracker.store.records import ExperimentQuery

if TYPE_CHECKING:
    from tracker.reports.overfitting import Overfitting


P = ParamSpec("P")


def _as_dict(report: Callable[P, Overfitting], name: str, doc: str) -> Callable[P, dict[str, Any]]:
    """The method `name`: `report`'s parameters, its record as a dict (`Overfitting.as_dict`)."""

    def method(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        found: dict[str, Any] = report(*args, **kwargs).as_dict()
        return found

    method.__name__, method.__qualname__, method.__doc__ = name, f"OverfittingAnalysis.{name}", doc
    method.__signature__ = inspect.signature(report).replace(return_annotation="dict[str, Any]")  # type: ignore[attr-defined]
    return method


class OverfittingAnalysis(Reading):
    """`overfitting()`: PSR, DSR, the expected maximum Sharpe, PBO by CSCV and more."""

    def overfitting_report(
        self,
        experiments: int | str | Sequence[int | str] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        periods_per_year: float = 252,
        n_effective: float | None = None,
        splits: int = 16,
        alpha: float = 0.05,
        executor: Executor | None = None,
    ) -> Overfitting:
        """`overfitting`'s numbers as a frozen `tracker.reports.overfitting.Overfitting` record,
        with CSCV's logits (for the dashboard's histogram)."""
        from tracker.reports.family import OverfittingSettings, overfitting_of
        from tracker.reports.parallel import check_executor

        pool = check_executor(executor)
        ids = self._family_ids(experiments, tags)
        ppy = check_number(periods_per_year, "periods_per_year")
        if ppy is None or not ppy > 0:
            raise ValidationError("periods_per_year", f"must be a positive number, got {periods_per_year!r}")
        if n_effective is not None:
            n_effective = check_number(n_effective, "n_effective")
            if n_effective is None or not n_effective >= 1:
                raise ValidationError("n_effective", "must be a number of trials, at least 1")
        splits = check_int(splits, "splits", minimum=2)
        if splits % 2:
            raise ValidationError("splits", f"must be even (CSCV halves the blocks), got {splits}")
        level = check_number(alpha, "alpha")
        if level is None or not 0 < level < 1:
            raise ValidationError("alpha", f"must be between 0 and 1, got {alpha!r}")
        return overfitting_of(self._repo, ids, OverfittingSettings(ppy, n_effective, splits, level), pool)

    overfitting = _as_dict(
        overfitting_report,
        "overfitting",
        """The overfitting numbers of the complete trials with returns of `experiments` (an id, a
        name, or a list of them) and/or of the experiments with every tag of `tags`, taken as one
        family: n_trials, n_effective, best_trial_id, sharpe (annualised), psr, expected_max_sharpe,
        dsr, min_track_record_length, pbo, degradation_slope, prob_oos_loss and status
        ("significant", "not-significant", "unknown"). Definitions: docs/analysis.md#overfitting.
        With `executor` (any concurrent.futures.Executor, e.g. a Dask client's `get_executor()`) the
        matrix passes and CSCV's splits run there in bounded batches, with identical numbers.
        Raises NotFoundError for an unknown experiment, ValidationError for bad settings.""",
    )

    def _family_ids(self, experiments: object, tags: Mapping[str, str] | None) -> list[int]:
        """The ids of the experiments named or tagged; raises NotFoundError, ValidationError."""
        if experiments is None and not tags:
            raise ValidationError("experiments", "name one or more experiments, or give tags")
        ids: list[int] = []
        if experiments is not None:
            given = [experiments] if isinstance(experiments, int | str) else experiments
            if not isinstance(given, Sequence):
                raise ValidationError("experiments", "expected an id, a name, or a list of them")
            for item in given:
                ids.append(self.experiment_id(item))
        if tags:
            pairs = tag_pairs(check_tag_filter(tags))
            ids += [
                s.experiment.id for s in self._repo.list_experiments(ExperimentQuery(tags=pairs, trial_stats=False))
            ]
        return sorted(set(ids))
