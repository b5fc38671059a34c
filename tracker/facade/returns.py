"""Trials' returns series: logging and reading them."""

from __future__ import annotations

from typing import Any

from tracker.errors import NotFoundError
from tracker.facade.arguments import check_id
from tracker.facade.core import Core
from tracker.facade.series import to_pandas, to_returns


class Returns(Core):
    """Logging and reading a trial's per-period returns."""

    def log_returns(self, trial_id: int, returns: Any, *, index: Any = None) -> None:
        """Store the trial's per-period simple returns, replacing any it had: a pandas Series with
        a DatetimeIndex (or positions 0..T-1), or an array-like with, optionally, `index` (one
        timestamp per value). Stored losslessly (float64 bit for bit, NaN kept, the index exact).
        Raises NotFoundError, and ValidationError for an empty series, an infinity, text, or an
        index of another length, unsorted or repeated; the store is then unchanged."""
        self._repo.set_returns(check_id(trial_id, "trial_id"), to_returns(returns, "returns", index))

    def get_returns(self, trial_id: int) -> Any:
        """The trial's returns as a pandas Series (float64; its DatetimeIndex, or a RangeIndex).
        Raises NotFoundError for a missing trial or one without returns."""
        trial_id = check_id(trial_id, "trial_id")
        found = self._repo.get_returns(trial_id)
        if found is None:
            raise NotFoundError(f"trial {trial_id} has no returns; store them with log_returns({trial_id}, returns)")
        return to_pandas(found, "returns")
