"""`LookaheadOptions`: every option of a look-ahead check, checked once, in one object that
`check_lookahead` and `LookaheadMonitor` share (their keyword arguments build it)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.errors import ValidationError
from tracker.ttpt import _boundaries as plans
from tracker.ttpt._compare import Perturbation

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LookaheadOptions:
    """How a look-ahead check chooses its boundaries, compares signals and runs.

    `budget` strategy evaluations (default 122), `exhaustive=True` (every row) or `boundaries`
    (index labels); `min_history` skips that leading fraction of rows; `seed` seeds the uniform
    draws and the noise; `tolerance` is the absolute and relative difference allowed;
    `perturbation` is "truncate" or "noise"; with `returns`, the metrics include the performance
    change. Boundaries run in `n_jobs` local processes, or on `executor` (any
    concurrent.futures.Executor, e.g. a Dask client's `get_executor()`) in batches of `batch_size`
    boundaries. `checkpoints` is a deprecated alias of budget/boundaries. Raises ValidationError
    for a bad or contradictory option."""

    budget: int | None = None
    boundaries: Sequence[Any] | None = None
    exhaustive: bool = False
    n_jobs: int = 1
    tolerance: float = 1e-9
    perturbation: Perturbation = "truncate"
    returns: pd.Series | pd.DataFrame | None = None
    min_history: float = 0.0
    seed: int = 0
    checkpoints: int | Sequence[Any] | None = None
    executor: Executor | None = None
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.perturbation not in ("truncate", "noise"):
            raise ValidationError("perturbation", f"must be 'truncate' or 'noise', got {self.perturbation!r}")
        if not _number(self.tolerance) or not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValidationError("tolerance", f"must be a finite number >= 0, got {self.tolerance!r}")
        if not _number(self.min_history) or not 0 <= self.min_history < 1:
            raise ValidationError("min_history", f"must be a fraction in [0, 1), got {self.min_history!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError("seed", f"must be an integer >= 0, got {self.seed!r}")
        check_jobs(self.n_jobs)
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise ValidationError(
                "executor", f"must be a concurrent.futures.Executor, got {type(self.executor).__name__}"
            )
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ValidationError("batch_size", f"must be a positive integer, got {self.batch_size!r}")
        self._resolve_checkpoints()
        if self.budget is not None and self.boundaries is not None:
            raise ValidationError(
                "boundaries", "give either budget (boundaries are then chosen) or boundaries, not both"
            )
        if self.exhaustive and (self.budget is not None or self.boundaries is not None):
            raise ValidationError("exhaustive", "checks every boundary; do not give budget or boundaries with it")
        if isinstance(self.boundaries, str):
            raise ValidationError("boundaries", "expected a list of index labels, got a string")
        if self.budget is not None:
            plans.check_budget(self.budget)

    def _resolve_checkpoints(self) -> None:
        """Turn the deprecated `checkpoints` into budget (a number) or boundaries (labels)."""
        if self.checkpoints is None:
            return
        if self.budget is not None or self.boundaries is not None:
            raise ValidationError("checkpoints", "is a deprecated alias of budget and boundaries; give only those")
        warnings.warn(
            "checkpoints= is deprecated: give budget= (a number of strategy evaluations) or boundaries= (labels)",
            DeprecationWarning,
            stacklevel=6,
        )
        number = isinstance(self.checkpoints, int) and not isinstance(self.checkpoints, bool)
        object.__setattr__(self, "budget" if number else "boundaries", self.checkpoints)
        object.__setattr__(self, "checkpoints", None)

    @classmethod
    def of(cls, options: LookaheadOptions | None, keywords: Mapping[str, Any], where: str) -> LookaheadOptions:
        """`options` (or the defaults) with `keywords` given to `where` applied on top. Raises
        TypeError for a keyword that is not an option, ValidationError for a bad value."""
        unknown = sorted(set(keywords) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
        if options is None:
            return cls(**keywords)
        if not isinstance(options, LookaheadOptions):
            raise ValidationError("options", f"must be a LookaheadOptions, got {type(options).__name__}")
        return dataclasses.replace(options, **keywords) if keywords else options


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_jobs(n_jobs: object) -> int:
    """`n_jobs` as a worker count (-1: one per CPU); raises ValidationError otherwise."""
    import os

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or (n_jobs < 1 and n_jobs != -1):
        raise ValidationError("n_jobs", f"must be a positive integer or -1 (one per CPU), got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
