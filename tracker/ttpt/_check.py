"""`check_lookahead`, its result, and the monitor that runs it for the Optuna callback."""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracker.errors import ValidationError
from tracker.ttpt import _boundaries as plans
from tracker.ttpt._compare import (
    Outcome,
    Perturbation,
    StrategyFn,
    Task,
    check_repeat,
    data_index,
    numbers,
    signal_frame,
)
from tracker.ttpt._runner import check_jobs, evaluate

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LookaheadResult:
    """The outcome of a look-ahead check; `as_log_arguments()` maps it onto
    `ExperimentTracker.log_ttpt_result(trial_id, **result.as_log_arguments())`."""

    passed: bool
    num_violations: int
    metrics: dict[str, Any]
    violations: list[dict[str, Any]] = field(default_factory=list)

    def as_log_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `log_ttpt_result`, or the `ttpt` item of `log_trials`. Only the
        first MAX_STORED_VIOLATIONS violations (the earliest boundaries) are stored, so a leaky
        strategy checked every boundary does not store hundreds; `num_violations` and the metrics
        count them all, and `violations_stored` says how many are kept."""
        kept = self.violations[:MAX_STORED_VIOLATIONS]
        return {
            "passed": self.passed,
            "num_violations": self.num_violations,
            "metrics": {**self.metrics, "violations_stored": len(kept)},
            "violations": list(kept),
        }


MAX_STORED_VIOLATIONS = 25


def _checked_options(
    budget: int | None,
    boundaries: Sequence[Any] | None,
    exhaustive: bool,
    checkpoints: int | Sequence[Any] | None,
) -> tuple[int | None, Sequence[Any] | None]:
    """Resolve the deprecated `checkpoints` and refuse contradictory options."""
    if checkpoints is not None:
        if budget is not None or boundaries is not None:
            raise ValidationError("checkpoints", "is a deprecated alias of budget and boundaries; give only those")
        warnings.warn(
            "checkpoints= is deprecated: give budget= (a number of strategy evaluations) or boundaries= (labels)",
            DeprecationWarning,
            stacklevel=3,
        )
        if isinstance(checkpoints, int) and not isinstance(checkpoints, bool):
            budget = checkpoints
        else:
            boundaries = checkpoints  # type: ignore[assignment]
    if budget is not None and boundaries is not None:
        raise ValidationError("boundaries", "give either budget (boundaries are then chosen) or boundaries, not both")
    if exhaustive and (budget is not None or boundaries is not None):
        raise ValidationError("exhaustive", "checks every boundary; do not give budget or boundaries with it")
    if isinstance(boundaries, str):
        raise ValidationError("boundaries", "expected a list of index labels, got a string")
    return budget, boundaries


def check_lookahead(
    strategy_fn: StrategyFn,
    data: Any,
    params: Mapping[str, Any],
    *,
    budget: int | None = None,
    boundaries: Sequence[Any] | None = None,
    exhaustive: bool = False,
    n_jobs: int = 1,
    tolerance: float = 1e-9,
    perturbation: Perturbation = "truncate",
    returns: pd.Series | pd.DataFrame | None = None,
    min_history: float = 0.0,
    seed: int = 0,
    checkpoints: int | Sequence[Any] | None = None,
) -> LookaheadResult:
    """Check `strategy_fn(data, params)` for look-ahead bias by re-running it on the data cut after
    boundary rows (`truncate`) or with the rows after them replaced by noise (`noise`): its signals
    at and before each boundary must equal the full run's within `tolerance`.

    Boundaries: `budget` strategy evaluations (default 122: the full run and its repeat, 90 rows
    drawn uniformly with `seed`, 30 where the full-run signal changes), or every row with
    `exhaustive=True`, or the index labels in `boundaries`. Rows before the `min_history` fraction
    are skipped (default none). `n_jobs` > 1 evaluates boundaries in that many processes (serially
    when the strategy cannot be pickled). `checkpoints` is a deprecated alias of budget/boundaries.

    Returns a LookaheadResult whose violations name each failed boundary, its first changed row and
    the number of changed points. Raises NondeterministicStrategyError when two full runs differ,
    ValidationError for bad arguments or output; an exception from `strategy_fn` propagates.
    """
    import numpy as np

    if perturbation not in ("truncate", "noise"):
        raise ValidationError("perturbation", f"must be 'truncate' or 'noise', got {perturbation!r}")
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float) and tolerance >= 0 and math.isfinite(tolerance)
    ):
        raise ValidationError("tolerance", f"must be a finite number >= 0, got {tolerance!r}")
    if isinstance(min_history, bool) or not (isinstance(min_history, int | float) and 0 <= min_history < 1):
        raise ValidationError("min_history", f"must be a fraction in [0, 1), got {min_history!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError("seed", f"must be an integer >= 0, got {seed!r}")
    jobs = check_jobs(n_jobs)
    budget, boundaries = _checked_options(budget, boundaries, exhaustive, checkpoints)
    if budget is not None:
        plans.check_budget(budget)
    index = data_index(data)
    full = signal_frame(strategy_fn(data, params), "strategy_fn on the full data")
    check_repeat(full, signal_frame(strategy_fn(data, params), "strategy_fn on the full data"), tolerance)
    if not full.index.is_monotonic_increasing:
        raise ValidationError("strategy_fn", "returned signals whose index is not sorted ascending; sort it")
    values = numbers(full, "strategy_fn on the full data")
    allowed = plans.candidates(len(index), float(min_history))
    if boundaries is not None:
        plan = plans.explicit(index, boundaries)
    elif exhaustive:
        plan = plans.exhaustive(allowed)
    else:
        budget = plans.DEFAULT_BUDGET if budget is None else budget
        changes = plans.signal_changes(values, full.index, index)
        plan = plans.sampled(allowed, changes, budget, seed)
    finite = values[np.isfinite(values)]
    task = Task(
        strategy_fn=strategy_fn,
        data=data,
        index=index,
        params=params,
        full=full,
        values=values,
        tolerance=float(tolerance),
        perturbation=perturbation,
        seed=seed,
        centre=float(finite.mean()) if finite.size else 0.0,
    )
    outcomes = evaluate(task, plan.positions, jobs)
    violations = [o.violation() for o in outcomes if o.changed]
    metrics = _metrics(outcomes, violations, plan, budget, float(tolerance))
    metrics["perturbation"] = perturbation
    metrics["seed"] = seed
    if returns is not None:
        at_boundary = {o.at_label: o.at_boundary for o in outcomes if o.at_label is not None}
        metrics["performance_change"] = _performance_change(full, at_boundary, returns)
    return LookaheadResult(
        passed=not violations, num_violations=len(violations), metrics=metrics, violations=violations
    )


def _metrics(
    outcomes: list[Outcome],
    violations: list[dict[str, Any]],
    plan: plans.Plan,
    budget: int | None,
    tolerance: float,
) -> dict[str, Any]:
    diffs = [o.max_abs_diff for o in outcomes if o.max_abs_diff is not None]
    max_diff = max(diffs, default=0.0)
    return {
        "passed_boundaries": len(outcomes) - len(violations),
        "failed_boundaries": len(violations),
        "failed_boundary_fraction": len(violations) / len(outcomes),
        "boundaries": len(outcomes),
        "first_violation_at": violations[0]["boundary"] if violations else None,
        "mode": plan.mode,
        "budget": budget if plan.mode == "sampled" else None,
        "evaluations": plans.FULL_RUNS + len(outcomes),
        "uniform_boundaries": plan.uniform,
        "signal_change_boundaries": plan.signal_changes,
        "candidate_boundaries": plan.candidates,
        "detection_guarantee_5pct": plan.detection_guarantee(0.05),
        "signal_correlation": _correlation([o.sums for o in outcomes], max_diff, tolerance),
        "max_abs_diff": max_diff,
        "checked_points": sum(o.checked for o in outcomes),
    }


def _correlation(sums: list[tuple[float, ...]], max_diff: float, tolerance: float) -> float | None:
    """Pearson correlation of full-run and point-in-time signals, from per-boundary sums."""
    n, sx, sy, sxx, syy, sxy = (math.fsum(column) for column in zip(*sums, strict=True)) if sums else (0.0,) * 6
    if n < 2:
        return None
    vx, vy = sxx / n - (sx / n) ** 2, syy / n - (sy / n) ** 2
    if vx <= 0 or vy <= 0:
        return 1.0 if max_diff <= tolerance else 0.0
    return max(-1.0, min(1.0, (sxy / n - sx * sy / n**2) / math.sqrt(vx * vy)))


def _performance_change(full: pd.DataFrame, at_boundary: dict[Any, Any], returns: Any) -> float | None:
    """Mean next-period return earned by the full-run signal minus by the point-in-time signal, at
    each boundary's signal row."""
    import numpy as np
    import pandas as pd

    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    gained_full, gained_pit = [], []
    for at, signal in at_boundary.items():
        later = frame.index[frame.index > at]
        if not len(later):
            continue
        following = (
            frame.loc[later[0]].reindex(full.columns).to_numpy(dtype=float)
            if frame.shape[1] > 1
            else frame.loc[later[0]].to_numpy(dtype=float)
        )
        full_signal = full.loc[at].to_numpy(dtype=float)
        following = np.nan_to_num(following)  # a missing signal or return means a flat position
        gained_full.append(float(np.mean(np.nan_to_num(full_signal) * following)))
        gained_pit.append(float(np.mean(np.nan_to_num(np.asarray(signal, dtype=float)) * following)))
    if not gained_full:
        return None
    return float(np.mean(gained_full) - np.mean(gained_pit))


class LookaheadMonitor:
    """Runtime look-ahead check for `TrackingCallback`: knows the strategy and the data, checks the
    params of a trial. Each params get their own uniform boundaries (seeded by `seed` and the
    params), so the checks of a study do not all look at the same rows; the same params always get
    the same boundaries. The options are those of `check_lookahead`."""

    def __init__(
        self,
        strategy_fn: StrategyFn,
        data: Any,
        *,
        budget: int | None = None,
        boundaries: Sequence[Any] | None = None,
        exhaustive: bool = False,
        n_jobs: int = 1,
        tolerance: float = 1e-9,
        perturbation: Perturbation = "truncate",
        returns: pd.Series | pd.DataFrame | None = None,
        min_history: float = 0.0,
        seed: int = 0,
        checkpoints: int | Sequence[Any] | None = None,
    ) -> None:
        self.budget, self.boundaries = _checked_options(budget, boundaries, exhaustive, checkpoints)
        self.strategy_fn = strategy_fn
        self.data = data
        self.exhaustive = exhaustive
        self.n_jobs = n_jobs
        self.tolerance = tolerance
        self.perturbation: Perturbation = perturbation
        self.returns = returns
        self.min_history = min_history
        self.seed = seed

    def seed_for(self, params: Mapping[str, Any]) -> int:
        """The seed of the check of `params`: a CRC-32 of the monitor's seed and the params."""
        text = repr(sorted((str(key), repr(value)) for key, value in params.items()))
        return zlib.crc32(f"{self.seed}:{text}".encode())

    def check(self, params: Mapping[str, Any]) -> LookaheadResult:
        """`check_lookahead` of the monitor's strategy and data with `params`; raises as it does."""
        return check_lookahead(
            self.strategy_fn,
            self.data,
            params,
            budget=self.budget,
            boundaries=self.boundaries,
            exhaustive=self.exhaustive,
            n_jobs=self.n_jobs,
            tolerance=self.tolerance,
            perturbation=self.perturbation,
            returns=self.returns,
            min_history=self.min_history,
            seed=self.seed_for(params),
        )
