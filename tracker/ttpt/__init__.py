"""A look-ahead (time-travel perturbation) test whose power is stated.

A strategy is causal when its signal at time t depends only on data up to t. So the strategy is
run again on the data cut just after a boundary row t (`truncate`), or with the rows after t
replaced by noise (`noise`), and its signals at every row up to t must equal the full run's within
`tolerance`. A deterministic causal strategy passes exactly; a leak shows at the boundaries it
crosses. Boundaries cover the whole range, warm-up included: a budget of evaluations is spent on
rows drawn uniformly (which gives the guarantee: a leak that shows at a fraction p of the rows is
caught with probability at least 1 - (1 - p)^k after k uniform draws) and on rows where the signal
changes; `exhaustive=True` checks every row.

    from tracker.ttpt import check_lookahead, LookaheadMonitor, LookaheadOptions, guarantee

The boundaries run serially, in local processes (`n_jobs`), or on any concurrent.futures.Executor
(`executor=`, e.g. a Dask cluster's), with the same result.
"""

from __future__ import annotations

import warnings
from typing import Any

from tracker.ttpt._boundaries import DEFAULT_BUDGET, guarantee, uniform_part
from tracker.ttpt._check import LookaheadMonitor, LookaheadResult, check_lookahead
from tracker.ttpt._compare import Perturbation, StrategyFn
from tracker.ttpt.options import LookaheadOptions

__all__ = [
    "DEFAULT_BUDGET",
    "LookaheadMonitor",
    "LookaheadOptions",
    "LookaheadResult",
    "Perturbation",
    "StrategyFn",
    "check_lookahead",
    "guarantee",
    "uniform_part",
]


def __getattr__(name: str) -> Any:
    if name == "TTPTResult":
        warnings.warn(
            "tracker.ttpt.TTPTResult is renamed LookaheadResult "
            "(tracker.store.records.TTPTResult is the stored record)",
            DeprecationWarning,
            stacklevel=2,
        )
        return LookaheadResult
    raise AttributeError(f"module 'tracker.ttpt' has no attribute {name!r}")
