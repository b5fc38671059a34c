"""The frozen records that cross the repository boundary. ORM objects never leave the SQL layer.

`New*` records are what the facade hands to a repository, with values already validated and in
storage form (see `tracker.values`). The other records are what a repository returns, with values
decoded back into Python objects. A returned record never changes when the store is written later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]
TrialState = Literal["complete", "pruned", "failed", "running"]
Synchronous = Literal["off", "normal", "full"]
"""Durability of a returned write: "off" leaves flushing to the OS, "normal" survives a killed
process, "full" also survives a power cut (fsync on every write)."""
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")
TRIAL_STATES: tuple[TrialState, ...] = ("complete", "pruned", "failed", "running")

JSONValue = Any
"""A value that `tracker.values` accepts: JSON types, possibly nested, with non-finite floats."""


@dataclass(frozen=True, slots=True)
class NewExperiment:
    name: str
    template: str
    mode: str
    config: JSONValue
    objective: str
    direction: Direction
    created_at: datetime
    summary: JSONValue = None


@dataclass(frozen=True, slots=True)
class NewTTPTResult:
    passed: bool
    num_violations: int
    metrics: JSONValue
    violations: JSONValue
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewTrial:
    trial_number: int
    params: JSONValue
    performance: JSONValue
    value: float | None
    state: TrialState
    created_at: datetime
    strategy_code: str | None = None
    strategy_template: str | None = None
    generation_method: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    ttpt: NewTTPTResult | None = None


@dataclass(frozen=True, slots=True)
class Experiment:
    id: int
    name: str
    template: str
    mode: str
    config: JSONValue
    objective: str
    direction: Direction
    created_at: datetime
    summary: JSONValue


@dataclass(frozen=True, slots=True)
class Trial:
    id: int
    experiment_id: int
    trial_number: int
    params: JSONValue
    performance: JSONValue
    value: float | None
    state: TrialState
    created_at: datetime
    strategy_code: str | None
    strategy_template: str | None
    generation_method: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TTPTResult:
    id: int
    trial_id: int
    passed: bool
    num_violations: int
    metrics: JSONValue
    violations: JSONValue
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExperimentStats:
    """An experiment with the aggregates that listings, filters and comparisons need."""

    experiment: Experiment
    n_trials: int
    n_by_state: dict[str, int]
    best_value: float | None
    ttpt_total: int
    ttpt_failed: int

    @property
    def violation_rate(self) -> float | None:
        """Fraction of TTPT results that did not pass; None without TTPT results."""
        return self.ttpt_failed / self.ttpt_total if self.ttpt_total else None


@dataclass(frozen=True, slots=True)
class ExperimentQuery:
    """Filters for `Repository.list_experiments`; every given filter must hold (AND)."""

    ids: tuple[int, ...] | None = None
    max_violation_rate: float | None = None
    template: str | None = None
    mode: str | None = None
    name_contains: str | None = None
    min_best_value: float | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    trial_stats: bool = True
    """False lets a backend skip the per-trial aggregates (n_trials, n_by_state, best_value are then
    0, {} and None) unless a filter needs them."""


@dataclass(frozen=True, slots=True)
class TrialQuery:
    """Filters and order for `Repository.list_trials`."""

    states: tuple[TrialState, ...] | None = None
    ttpt_passed: bool | None = None
    order_by: Literal["trial_number", "value"] = "trial_number"
    limit: int | None = None


@dataclass(slots=True)
class TrialTable:
    """Trials as columns (one list per field, all of equal length) for building DataFrames fast.

    `ttpt_*` columns hold the latest TTPT result of each trial, or None where there is none.
    Timestamps are aware datetimes, or ISO 8601 text in UTC (without offset) where that is faster.
    """

    experiment_id: list[int] = field(default_factory=list)
    trial_id: list[int] = field(default_factory=list)
    trial_number: list[int] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    created_at: list[datetime | str] = field(default_factory=list)
    started_at: list[datetime | str | None] = field(default_factory=list)
    completed_at: list[datetime | str | None] = field(default_factory=list)
    params: list[JSONValue] = field(default_factory=list)
    performance: list[JSONValue] = field(default_factory=list)
    ttpt_passed: list[bool | None] = field(default_factory=list)
    ttpt_num_violations: list[int | None] = field(default_factory=list)
    ttpt_metrics: list[JSONValue] = field(default_factory=list)


def best_of(values: list[float], direction: Direction) -> float | None:
    """The best finite-or-infinite value for the direction; None for an empty list."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return None
    return max(clean) if direction == "maximize" else min(clean)
