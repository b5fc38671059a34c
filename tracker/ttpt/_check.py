"""`check_lookahead`, its result, and the monitor that runs it for the Optuna callback."""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracker.errors import ValidationError
from tracker.ttpt import _boundaries as plans
from tracker.ttpt._compare import (
    Outcome,
    StrategyFn,
    Task,
    check_repeat,
    data_index,
    numbers,
    signal_frame,
)
from tracker.ttpt._executor import Job, run, run_each
from tracker.ttpt.options import LookaheadOptions

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


def check_lookahead(
    strategy_fn: StrategyFn,
    data: Any,
    params: Mapping[str, Any],
    options: LookaheadOptions | None = None,
    **keywords: Any,
) -> LookaheadResult:
    """Check `strategy_fn(data, params)` for look-ahead bias by re-running it on the data cut after
    boundary rows (`truncate`) or with the rows after them replaced by noise (`noise`): its signals
    at and before each boundary must equal the full run's within `tolerance`.

    The options are a LookaheadOptions, or its fields as keyword arguments (they override
    `options`): boundaries are `budget` strategy evaluations (default 122: the full run and its
    repeat, 90 rows drawn uniformly with `seed`, 30 where the full-run signal changes), or every row
    with `exhaustive=True`, or the index labels in `boundaries`; rows before the `min_history`
    fraction are skipped. `n_jobs` > 1 evaluates boundaries in that many processes (serially when
    the strategy cannot be pickled); `executor=` (any concurrent.futures.Executor, e.g. a Dask
    client's) evaluates them there, in batches, with the same result.

    Returns a LookaheadResult whose violations name each failed boundary, its first changed row and
    the number of changed points. Raises NondeterministicStrategyError when two full runs differ,
    ValidationError for bad arguments or output (or, with an executor, a strategy that cannot be
    pickled); an exception from `strategy_fn` propagates.
    """
    chosen = LookaheadOptions.of(options, keywords, "check_lookahead")
    check = prepare(strategy_fn, data, params, chosen)
    [outcomes] = run([Job(check.task, check.plan.positions)], chosen)
    return conclude(check, outcomes, chosen)


@dataclass(frozen=True)
class Prepared:
    """A check before its boundaries are evaluated: the full run (in `task`) and the plan."""

    task: Task
    plan: plans.Plan
    budget: int | None


def prepare(strategy_fn: StrategyFn, data: Any, params: Mapping[str, Any], options: LookaheadOptions) -> Prepared:
    """Run the strategy twice on the full data (refusing a nondeterministic one) and choose the
    boundaries. Raises as `check_lookahead` does."""
    import numpy as np

    index = data_index(data)
    full = signal_frame(strategy_fn(data, params), "strategy_fn on the full data")
    check_repeat(full, signal_frame(strategy_fn(data, params), "strategy_fn on the full data"), options.tolerance)
    if not full.index.is_monotonic_increasing:
        raise ValidationError("strategy_fn", "returned signals whose index is not sorted ascending; sort it")
    values = numbers(full, "strategy_fn on the full data")
    allowed = plans.candidates(len(index), float(options.min_history))
    budget = options.budget
    if options.boundaries is not None:
        plan = plans.explicit(index, options.boundaries)
    elif options.exhaustive:
        plan = plans.exhaustive(allowed)
    else:
        budget = plans.DEFAULT_BUDGET if budget is None else budget
        plan = plans.sampled(allowed, plans.signal_changes(values, full.index, index), budget, options.seed)
    finite = values[np.isfinite(values)]
    task = Task(
        strategy_fn=strategy_fn,
        data=data,
        index=index,
        params=params,
        full=full,
        values=values,
        tolerance=float(options.tolerance),
        perturbation=options.perturbation,
        seed=options.seed,
        centre=float(finite.mean()) if finite.size else 0.0,
    )
    return Prepared(task, plan, budget)


def conclude(check: Prepared, outcomes: list[Outcome], options: LookaheadOptions) -> LookaheadResult:
    """The result of a check from its boundaries' outcomes."""
    violations = [o.violation() for o in outcomes if o.changed]
    metrics = _metrics(outcomes, violations, check.plan, check.budget, float(options.tolerance))
    metrics["perturbation"] = options.perturbation
    metrics["seed"] = options.seed
    if options.returns is not None:
        at_boundary = {o.at_label: o.at_boundary for o in outcomes if o.at_label is not None}
        metrics["performance_change"] = _performance_change(check.task.full, at_boundary, options.returns)
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
    the same boundaries. The options are those of `check_lookahead`: a LookaheadOptions, or its
    fields as keyword arguments."""

    def __init__(
        self, strategy_fn: StrategyFn, data: Any, options: LookaheadOptions | None = None, **keywords: Any
    ) -> None:
        self.options = LookaheadOptions.of(options, keywords, "LookaheadMonitor")
        self.strategy_fn = strategy_fn
        self.data = data

    def __getattr__(self, name: str) -> Any:
        """The options as attributes, as before they were an object (`monitor.budget`, ...)."""
        if name in _OPTION_NAMES:
            return getattr(self.__dict__["options"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def seed_for(self, params: Mapping[str, Any]) -> int:
        """The seed of the check of `params`: a CRC-32 of the monitor's seed and the params."""
        text = repr(sorted((str(key), repr(value)) for key, value in params.items()))
        return zlib.crc32(f"{self.options.seed}:{text}".encode())

    def check(self, params: Mapping[str, Any]) -> LookaheadResult:
        """`check_lookahead` of the monitor's strategy and data with `params`; raises as it does."""
        return check_lookahead(self.strategy_fn, self.data, params, self.options, seed=self.seed_for(params))

    def check_many(self, many: Sequence[Mapping[str, Any]]) -> list[LookaheadResult | Exception]:
        """The checks of every params in `many`, their boundaries evaluated together (on the
        executor, all of them spread over its workers): for each, its result or the exception its
        check raised (as `check` would have). Results equal those of `check`."""
        prepared: list[tuple[Prepared, LookaheadOptions] | Exception] = []
        for params in many:
            options = dataclasses.replace(self.options, seed=self.seed_for(params))
            try:
                prepared.append((prepare(self.strategy_fn, self.data, params, options), options))
            except Exception as exc:  # noqa: BLE001 - the caller stores each check's failure
                prepared.append(exc)
        ready = [p for p in prepared if not isinstance(p, Exception)]
        outcomes = iter(run_each([Job(check.task, check.plan.positions) for check, _ in ready], self.options))
        results: list[LookaheadResult | Exception] = []
        for item in prepared:
            if isinstance(item, Exception):
                results.append(item)
                continue
            found = next(outcomes)
            results.append(found if isinstance(found, Exception) else conclude(item[0], found, item[1]))
        return results


_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(LookaheadOptions))
