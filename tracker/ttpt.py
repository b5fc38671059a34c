"""A sound time-travel perturbation test (TTPT) for look-ahead bias.

A strategy is causal when its signal at time t depends only on data up to t. So for each
checkpoint t, the strategy is run again on data that ends at t (`truncate`) or whose rows after t
are replaced by noise (`noise`). Its signals at times <= t must equal those of the full run
within `tolerance`; each checkpoint where they differ is a violation. Unlike shifting the data and
correlating signals, this cannot be fooled by a signal's autocorrelation: an honest strategy
passes exactly, and one that reads the next bar, a centred window or full-sample statistics fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tracker.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

StrategyFn = Callable[[Any, Mapping[str, Any]], Any]
Perturbation = Literal["truncate", "noise"]


@dataclass(frozen=True)
class TTPTResult:
    """The outcome of a look-ahead check; maps one-to-one onto `ExperimentTracker.log_ttpt_result`."""

    passed: bool
    num_violations: int
    metrics: dict[str, Any]
    violations: list[dict[str, Any]] = field(default_factory=list)

    def as_log_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `log_ttpt_result`, or the `ttpt` item of `log_trials`."""
        return {
            "passed": self.passed,
            "num_violations": self.num_violations,
            "metrics": dict(self.metrics),
            "violations": list(self.violations),
        }


def _frame(signals: Any, where: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(signals, pd.Series):
        return signals.to_frame(name=signals.name if signals.name is not None else "signal")
    if isinstance(signals, pd.DataFrame):
        return signals
    raise ValidationError(
        "strategy_fn", f"{where} returned {type(signals).__name__}; it must return a pandas Series or DataFrame"
    )


def _index(data: Any) -> pd.Index:
    import pandas as pd

    if isinstance(data, pd.DataFrame | pd.Series):
        return data.index
    if isinstance(data, Mapping) and data:
        first = next(iter(data.values()))
        if isinstance(first, pd.DataFrame | pd.Series):
            return first.index
    raise ValidationError("data", "expected a DataFrame or a dict of DataFrames indexed by time")


def _perturb(data: Any, at: Any, how: Perturbation, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    def one(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        if how == "truncate":
            return frame.loc[:at]
        out = frame.copy()
        after = out.index > at
        values = out.to_numpy(dtype=float, copy=True).reshape(len(out), -1)
        width = int(values.shape[-1])
        rng = np.random.default_rng(seed)
        scale = np.nanstd(values[~after], axis=0) if (~after).any() else np.ones(width)
        centre = values[~after][-1] if (~after).any() else np.zeros(width)
        walk = np.cumsum(rng.normal(0.0, 1.0, size=(int(after.sum()), width)), axis=0) * (scale * 0.1 + 1e-12)
        values[after] = centre + walk
        if isinstance(out, pd.Series):
            return pd.Series(values[:, 0], index=out.index, name=out.name)
        return pd.DataFrame(values, index=out.index, columns=out.columns)

    if isinstance(data, Mapping):
        return {key: one(frame) for key, frame in data.items()}
    return one(data)


def _choose_checkpoints(index: pd.Index, checkpoints: int | Sequence[Any], min_history: float) -> list[Any]:
    if isinstance(checkpoints, int):
        if checkpoints < 1:
            raise ValidationError("checkpoints", "must be at least 1")
        if len(index) < 3:
            raise ValidationError("data", "needs at least 3 rows to check for look-ahead")
        start = max(1, int(len(index) * min_history))
        stop = len(index) - 2
        if stop <= start:
            start = 0
        count = min(checkpoints, stop - start + 1)
        positions = sorted({start + round(i * (stop - start) / max(count - 1, 1)) for i in range(count)})
        return [index[p] for p in positions]
    chosen = list(checkpoints)
    if not chosen:
        raise ValidationError("checkpoints", "give at least one checkpoint")
    return chosen


def check_lookahead(
    strategy_fn: StrategyFn,
    data: Any,
    params: Mapping[str, Any],
    *,
    checkpoints: int | Sequence[Any] = 10,
    tolerance: float = 1e-9,
    perturbation: Perturbation = "truncate",
    returns: pd.Series | pd.DataFrame | None = None,
    min_history: float = 0.2,
    seed: int = 0,
) -> TTPTResult:
    """Check `strategy_fn(data, params)` for look-ahead bias at `checkpoints` (a count spread over
    the data, after the first `min_history` fraction, or explicit timestamps).

    Metrics: signal_correlation (full run vs point-in-time runs), max_abs_diff, checked_points,
    first_violation_at, and performance_change (mean next-period return of the full signal minus
    that of the point-in-time signal) when `returns` is given. Raises ValidationError for bad
    arguments; an exception from `strategy_fn` propagates.
    """
    import numpy as np

    if perturbation not in ("truncate", "noise"):
        raise ValidationError("perturbation", f"must be 'truncate' or 'noise', got {perturbation!r}")
    if not (isinstance(tolerance, int | float) and tolerance >= 0 and math.isfinite(tolerance)):
        raise ValidationError("tolerance", f"must be a finite number >= 0, got {tolerance!r}")
    index = _index(data)
    full = _frame(strategy_fn(data, params), "strategy_fn on the full data")
    points = _choose_checkpoints(index, checkpoints, min_history)
    violations: list[dict[str, Any]] = []
    full_values: list[float] = []
    point_values: list[float] = []
    pit_signal: dict[Any, np.ndarray] = {}
    max_diff = 0.0
    checked = 0
    for number, at in enumerate(points):
        partial = _frame(
            strategy_fn(_perturb(data, at, perturbation, seed + number), params), f"strategy_fn up to {at}"
        )
        left = full.loc[:at]
        right = partial.reindex(index=left.index, columns=left.columns)
        a = left.to_numpy(dtype=float)
        b = right.to_numpy(dtype=float)
        same = np.isclose(a, b, rtol=tolerance, atol=tolerance) | (np.isnan(a) & np.isnan(b))
        checked += int(a.size)
        finite = np.isfinite(a) & np.isfinite(b)
        full_values.extend(a[finite].tolist())
        point_values.extend(b[finite].tolist())
        if len(right.index):
            pit_signal[right.index[-1]] = b[-1]
        gaps = np.abs(a - b)[finite]
        if gaps.size:
            max_diff = max(max_diff, float(gaps.max()))
        if not same.all():
            rows = np.where(~same.all(axis=1))[0]
            violations.append(
                {
                    "checkpoint": _label(at),
                    "changed_points": int((~same).sum()),
                    "first_changed_at": _label(left.index[rows[0]]),
                    "max_abs_diff": float(gaps.max()) if gaps.size else None,
                }
            )
    metrics: dict[str, Any] = {
        "signal_correlation": _correlation(full_values, point_values),
        "max_abs_diff": max_diff,
        "checked_points": checked,
        "checkpoints": len(points),
        "first_violation_at": violations[0]["checkpoint"] if violations else None,
        "perturbation": perturbation,
    }
    if returns is not None:
        metrics["performance_change"] = _performance_change(full, pit_signal, returns)
    return TTPTResult(passed=not violations, num_violations=len(violations), metrics=metrics, violations=violations)


def _label(moment: Any) -> Any:
    return (
        moment.isoformat() if hasattr(moment, "isoformat") else (moment.item() if hasattr(moment, "item") else moment)
    )


def _correlation(a: list[float], b: list[float]) -> float | None:
    import numpy as np

    if len(a) < 2:
        return None
    x, y = np.asarray(a), np.asarray(b)
    if np.std(x) == 0 or np.std(y) == 0:
        return 1.0 if np.allclose(x, y) else 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _performance_change(full: pd.DataFrame, pit_signal: dict[Any, Any], returns: Any) -> float | None:
    """Mean next-period return earned by the full-run signal minus by the point-in-time signal."""
    import numpy as np
    import pandas as pd

    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    gained_full, gained_pit = [], []
    for at, signal in pit_signal.items():
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
    """Runtime TTPT for `TrackingCallback`: knows the strategy and the data, checks given params."""

    def __init__(
        self,
        strategy_fn: StrategyFn,
        data: Any,
        *,
        checkpoints: int | Sequence[Any] = 10,
        tolerance: float = 1e-9,
        perturbation: Perturbation = "truncate",
        returns: pd.Series | pd.DataFrame | None = None,
    ) -> None:
        self.strategy_fn = strategy_fn
        self.data = data
        self.checkpoints = checkpoints
        self.tolerance = tolerance
        self.perturbation: Perturbation = perturbation
        self.returns = returns

    def check(self, params: Mapping[str, Any]) -> TTPTResult:
        return check_lookahead(
            self.strategy_fn,
            self.data,
            params,
            checkpoints=self.checkpoints,
            tolerance=self.tolerance,
            perturbation=self.perturbation,
            returns=self.returns,
        )
