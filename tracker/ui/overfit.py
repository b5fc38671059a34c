"""The dashboard's overfitting views: a family's numbers (`tracker.reports.family.overfitting_of`)
as the API serves them, each with its meaning in one line, and a cache keyed by the family's
experiments' versions, so a page and its charts compute a family once while it does not change."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from tracker.reports.family import overfitting_of
from tracker.reports.overfitting import Overfitting
from tracker.store.repository import Repository

CACHE_SIZE = 256
"""Families kept (oldest dropped first)."""

MEANINGS: dict[str, str] = {
    "n_trials": "complete trials with returns: the family the best was picked from",
    "n_effective": "effective number of independent trials (mean correlation of returns taken into account)",
    "sharpe": "annualised Sharpe of the best trial (by per-period Sharpe)",
    "psr": "Probabilistic Sharpe Ratio: probability that the best trial's true Sharpe is above 0",
    "expected_max_sharpe": "annualised Sharpe the best of n_effective trials would show by luck alone",
    "dsr": "Deflated Sharpe Ratio: probability that the best Sharpe beats that expected maximum",
    "min_track_record_length": "periods of returns needed for the best Sharpe to be significant at alpha",
    "pbo": "probability of backtest overfitting: share of CSCV splits whose in-sample best is below median OOS",
    "degradation_slope": "slope of OOS on in-sample Sharpe of the chosen trials (0 or less: no skill carries over)",
    "prob_oos_loss": "share of CSCV splits whose in-sample best loses money out of sample",
}
"""One line per number shown in the panel (definitions and sources: docs/analysis.md#overfitting)."""


def is_sharpe(objective: str) -> bool:
    """Whether the history plot's values are a Sharpe ratio, by the objective's name."""
    return "sharpe" in objective.lower()


def answer(found: Overfitting, objective: str | None = None) -> dict[str, Any]:
    """The numbers of `found` as the API serves them (no logits), with their meanings; with an
    `objective`, `max_sharpe_line`: the expected maximum Sharpe to draw on the history plot, or
    None when the objective is not a Sharpe."""
    out = {**found.as_dict(), "meanings": MEANINGS}
    if objective is not None:
        line = found.expected_max_sharpe if is_sharpe(objective) else None
        out["max_sharpe_line"] = line if line is not None and math.isfinite(line) else None
    return out


def logits(found: Overfitting) -> dict[str, Any]:
    """`GET /api/experiments/{id}/overfitting`: the numbers and CSCV's logits λ (one per split)."""
    return {**found.as_dict(), "logits": list(found.logits)}


class Families:
    """Overfitting numbers per family of experiment ids, cached while the family's `stamp` (its
    experiments' versions, which change with every write to them) stays the same."""

    def __init__(self, repository: Repository) -> None:
        self._repository = repository
        self._found: dict[tuple[int, ...], tuple[str, Overfitting]] = {}
        self._lock = threading.Lock()

    def of(self, ids: Sequence[int], stamp: str) -> Overfitting:
        """The family's numbers at the default settings (252 periods a year, 16 splits, alpha
        0.05), computed when `stamp` differs from the cached one."""
        key = tuple(sorted(set(ids)))
        with self._lock:
            cached = self._found.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = overfitting_of(self._repository, key)
        with self._lock:
            self._found.pop(key, None)
            while len(self._found) >= CACHE_SIZE:
                self._found.pop(next(iter(self._found)))
            self._found[key] = (stamp, found)
        return found

    def status(self, experiment_id: int, stamp: str) -> str:
        return self.of((experiment_id,), stamp).status
