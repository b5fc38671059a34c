"""One boundary of a look-ahead check: perturb the data after it, run the strategy, and compare its
signals at and before the boundary with the full run's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tracker.errors import NondeterministicStrategyError, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

StrategyFn = Callable[[Any, Mapping[str, Any]], Any]
Perturbation = Literal["truncate", "noise"]


def label(moment: Any) -> Any:
    """A JSON-able form of an index label: ISO 8601 for timestamps, a Python scalar for numpy ones."""
    if hasattr(moment, "isoformat"):
        return moment.isoformat()
    return moment.item() if hasattr(moment, "item") else moment


def data_index(data: Any) -> pd.Index:
    """The time index of `data` (a DataFrame, a Series, or a dict of them; the first one's index).
    Raises ValidationError for anything else or an index that is not sorted ascending."""
    import pandas as pd

    frames: list[Any]
    if isinstance(data, pd.DataFrame | pd.Series):
        frames = [data]
    elif isinstance(data, Mapping) and data:
        frames = list(data.values())
    else:
        frames = []
    if not frames or not all(isinstance(f, pd.DataFrame | pd.Series) for f in frames):
        raise ValidationError("data", "expected a DataFrame or a dict of DataFrames indexed by time")
    for frame in frames:
        if not frame.index.is_monotonic_increasing:
            raise ValidationError("data", "the index must be sorted ascending by time; sort it with .sort_index()")
    index: pd.Index = frames[0].index
    return index


def signal_frame(signals: Any, where: str) -> pd.DataFrame:
    """The strategy's output as a DataFrame; raises ValidationError unless it is a Series or DataFrame."""
    import pandas as pd

    if isinstance(signals, pd.Series):
        return signals.to_frame(name=signals.name if signals.name is not None else "signal")
    if isinstance(signals, pd.DataFrame):
        return signals
    raise ValidationError(
        "strategy_fn", f"{where} returned {type(signals).__name__}; it must return a pandas Series or DataFrame"
    )


def numbers(frame: pd.DataFrame, where: str) -> np.ndarray:
    """The frame's values as floats; raises ValidationError when they are not numbers."""
    try:
        return frame.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "strategy_fn", f"{where} returned signals that are not numbers ({exc}); return numeric positions"
        ) from None


def perturb(data: Any, reference: pd.Index, position: int, how: Perturbation, seed: int) -> Any:
    """`data` as seen at row `position` of its index `reference`: cut after that row (truncate), or
    with the later rows replaced by a random walk from the last seen value, seeded by `seed` and
    `position` (noise). Frames whose index differs from `reference` are cut by label."""
    import numpy as np
    import pandas as pd

    at = reference[position]

    def one(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        aligned = frame.index is reference or frame.index.equals(reference)
        if how == "truncate":
            return frame.iloc[: position + 1] if aligned else frame.loc[:at]
        out = frame.copy()
        after = np.arange(len(out)) > position if aligned else np.asarray(out.index > at)
        values = out.to_numpy(dtype=float, copy=True).reshape(len(out), -1)
        width = int(values.shape[-1])
        rng = np.random.default_rng([seed, position])
        seen = values[~after]
        scale = np.nanstd(seen, axis=0) if len(seen) else np.ones(width)
        centre = seen[-1] if len(seen) else np.zeros(width)
        walk = np.cumsum(rng.normal(0.0, 1.0, size=(int(after.sum()), width)), axis=0) * (scale * 0.1 + 1e-12)
        values[after] = centre + walk
        if isinstance(out, pd.Series):
            return pd.Series(values[:, 0], index=out.index, name=out.name)
        return pd.DataFrame(values, index=out.index, columns=out.columns)

    if isinstance(data, Mapping):
        return {key: one(frame) for key, frame in data.items()}
    return one(data)


def same_values(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """Elementwise: equal within `tolerance` (absolute and relative), or both NaN."""
    import numpy as np

    same: np.ndarray = np.isclose(a, b, rtol=tolerance, atol=tolerance) | (np.isnan(a) & np.isnan(b))
    return same


def check_repeat(first: pd.DataFrame, second: pd.DataFrame, tolerance: float) -> None:
    """Raise NondeterministicStrategyError when two full runs on the same data differ."""
    import numpy as np

    advice = (
        "seed every random number generator from params (e.g. np.random.default_rng(params['seed'])) "
        "and do not change the input data in place, then check again"
    )
    if first.shape != second.shape or not (first.index.equals(second.index) and first.columns.equals(second.columns)):
        raise NondeterministicStrategyError(
            f"strategy_fn returned signals of different shapes on two runs over the same data "
            f"({first.shape} then {second.shape}); look-ahead cannot be judged. Fix: {advice}"
        )
    same = same_values(numbers(first, "strategy_fn"), numbers(second, "strategy_fn"), tolerance)
    if not same.all():
        row = int(np.flatnonzero(~same.all(axis=1))[0])
        raise NondeterministicStrategyError(
            f"strategy_fn returned different signals on two runs over the same data ({int((~same).sum())} "
            f"points differ, the first at {label(first.index[row])}); look-ahead cannot be judged. Fix: {advice}"
        )


@dataclass(frozen=True)
class Outcome:
    """What one boundary showed. `sums` (n, Σx, Σy, Σx², Σy², Σxy over finite pairs, shifted by the
    task's centre) merge into the signal correlation; `changed_max_abs_diff` is the largest
    difference among changed points where both signals are finite (None when every change is to or
    from NaN); `at_boundary` is the point-in-time signal row
    at the boundary and `at_label` its signal label (None when no signal row is at or before it)."""

    position: int
    boundary: Any
    checked: int
    changed: int
    first_changed_row: int | None
    first_changed_at: Any
    max_abs_diff: float | None
    changed_max_abs_diff: float | None
    sums: tuple[float, float, float, float, float, float]
    at_label: Any
    at_boundary: np.ndarray | None

    def violation(self) -> dict[str, Any]:
        """The JSON-able description of a failed boundary."""
        return {
            "boundary": self.boundary,
            "boundary_row": self.position,
            "first_changed_at": self.first_changed_at,
            "first_changed_row": self.first_changed_row,
            "changed_points": self.changed,
            "max_abs_diff": self.changed_max_abs_diff,
        }


@dataclass(frozen=True)
class Task:
    """Everything needed to check boundaries against the full run; picklable when the strategy is."""

    strategy_fn: StrategyFn
    data: Any
    index: pd.Index
    params: Mapping[str, Any]
    full: pd.DataFrame
    values: np.ndarray
    tolerance: float
    perturbation: Perturbation
    seed: int
    centre: float

    def evaluate(self, position: int) -> Outcome:
        """Run the strategy on the data as seen at row `position` and compare with the full run.
        An exception from the strategy propagates, with a note naming the boundary."""
        import numpy as np

        at = self.index[position]
        try:
            partial = signal_frame(
                self.strategy_fn(perturb(self.data, self.index, position, self.perturbation, self.seed), self.params),
                f"strategy_fn on the data up to {label(at)}",
            )
        except Exception as exc:
            exc.add_note(f"tracker.ttpt: raised by strategy_fn on the data cut after row {position} ({label(at)})")
            raise
        full = self.full
        rows = int(full.index.searchsorted(at, side="right"))
        a = self.values[:rows]
        if (
            len(partial) >= rows
            and partial.columns.equals(full.columns)
            and partial.index[:rows].equals(full.index[:rows])
        ):
            b = numbers(partial, f"strategy_fn up to {label(at)}")[:rows]
        else:
            b = numbers(partial.reindex(index=full.index[:rows], columns=full.columns), f"strategy_fn up to {at}")
        same = same_values(a, b, self.tolerance)
        finite = np.isfinite(a) & np.isfinite(b)
        x, y = a[finite] - self.centre, b[finite] - self.centre
        gaps = np.abs(x - y)
        changed_gaps = gaps[~same[finite]]
        changed_rows = np.flatnonzero(~same.all(axis=1)) if a.size else np.zeros(0, dtype=np.int64)
        first = int(changed_rows[0]) if len(changed_rows) else None
        return Outcome(
            position=position,
            boundary=label(at),
            checked=int(a.size),
            changed=int((~same).sum()),
            first_changed_row=first,
            first_changed_at=None if first is None else label(full.index[first]),
            max_abs_diff=float(gaps.max()) if gaps.size else None,
            changed_max_abs_diff=float(changed_gaps.max()) if changed_gaps.size else None,
            sums=(
                float(x.size),
                float(x.sum()),
                float(y.sum()),
                float((x * x).sum()),
                float((y * y).sum()),
                float((x * y).sum()),
            ),
            at_label=full.index[rows - 1] if rows else None,
            at_boundary=b[-1].copy() if rows else None,
        )
