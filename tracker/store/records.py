"""The frozen records that cross the repository boundary, and the one list of their fields.

A record's dataclass fields are the single source of truth for that kind of record: the SQL
rows, the journal items, the API dicts, `copying`, the in-house mapping and the DataFrame columns
are all derived from them. Each field's metadata says how the codec stores it (`kind`) and how a
trials DataFrame shows it (`frame`).

`New*` records are what a caller hands to a repository, holding plain Python values; the
repository validates and encodes them (`tracker.store.checks`). The other records are what a repository
returns, with values decoded. A returned record never changes when the store is written later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import datetime
from types import EllipsisType
from typing import Any, Literal, TypeVar, dataclass_transform

from tracker.store.returns import ReturnSeries

Direction = Literal["maximize", "minimize"]
TrialState = Literal["complete", "pruned", "failed", "running"]
Synchronous = Literal["off", "normal", "full"]
"""Durability of a returned write: "off" leaves flushing to the OS, "normal" survives a killed
process, "full" also survives a power cut (fsync on every write)."""
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")
TRIAL_STATES: tuple[TrialState, ...] = ("complete", "pruned", "failed", "running")

T = TypeVar("T")
JSONValue = Any
"""A value that `tracker.store.codec` accepts: JSON types, possibly nested, with non-finite floats."""

Kind = Literal[
    "json", "time", "text", "name", "number", "metric", "count", "flag", "state", "direction", "id", "tags", "code"
]
"""How the codec checks and stores a field:

json: any JSON value, losslessly encoded; time: an aware UTC datetime; text: optional free text;
name: required non-blank text; number: a float (NaN stored as None); metric: a float, NaN kept;
count: an integer >= 0; flag: a bool; state, direction: one of TRIAL_STATES, DIRECTIONS; id: a
record id; tags: string keys to string values (kept in their own table); code: free text stored
once per distinct text (content-addressed, compressed).
"""
Frame = Literal["scalar", "flatten", "omit"]
"""How a trial field appears in a trials DataFrame: one column, dotted columns of its leaves
(`params.lookback`), or not at all."""


def _spec(kind: Kind, frame: Frame = "scalar", *, default: EllipsisType | None = ...) -> Any:
    """A record field of `kind`; a field given `default=None` is optional."""
    metadata = {"kind": kind, "frame": frame}
    return field(metadata=metadata) if default is ... else field(default=default, metadata=metadata)


@dataclass_transform(frozen_default=True, field_specifiers=(_spec,))
def record(cls: type[T]) -> type[T]:
    """Make `cls` a frozen, slotted dataclass whose fields are declared with `_spec`."""
    return dataclass(frozen=True, slots=True)(cls)


def kind_of(f: Field[Any]) -> Kind:
    kind: Kind = f.metadata["kind"]
    return kind


def frame_of(f: Field[Any]) -> Frame:
    frame: Frame = f.metadata["frame"]
    return frame


@record
class Experiment:
    id: int = _spec("id")
    name: str = _spec("name")
    template: str = _spec("name")
    mode: str = _spec("name")
    config: JSONValue = _spec("json")
    created_at: datetime = _spec("time")
    summary: JSONValue = _spec("json")
    objective: str = _spec("name")
    direction: Direction = _spec("direction")
    note: str | None = _spec("text")
    provenance: JSONValue = _spec("json")
    tags: dict[str, str] = _spec("tags")


@record
class NewExperiment:
    name: str = _spec("name")
    template: str = _spec("name")
    mode: str = _spec("name")
    objective: str = _spec("name")
    direction: Direction = _spec("direction")
    created_at: datetime = _spec("time")
    config: JSONValue = _spec("json", default=None)
    summary: JSONValue = _spec("json", default=None)
    note: str | None = _spec("text", default=None)
    provenance: JSONValue = _spec("json", default=None)
    tags: Mapping[str, str] | None = _spec("tags", default=None)


@record
class Trial:
    """A trial; field order is the order of the in-house dict keys, new fields after them."""

    id: int = _spec("id")
    experiment_id: int = _spec("id")
    trial_number: int = _spec("count")
    params: JSONValue = _spec("json", "flatten")
    performance: JSONValue = _spec("json", "flatten")
    strategy_code: str | None = _spec("code", "omit")
    strategy_template: str | None = _spec("text", "omit")
    generation_method: str | None = _spec("text", "omit")
    created_at: datetime = _spec("time")
    state: TrialState = _spec("state")
    value: float | None = _spec("number")
    started_at: datetime | None = _spec("time")
    completed_at: datetime | None = _spec("time")
    attributes: JSONValue = _spec("json", "flatten")
    note: str | None = _spec("text", "omit")
    tags: dict[str, str] = _spec("tags", "flatten")


@record
class NewTrial:
    trial_number: int = _spec("count")
    params: JSONValue = _spec("json")
    performance: JSONValue = _spec("json")
    state: TrialState = _spec("state")
    created_at: datetime = _spec("time")
    value: float | None = _spec("number", default=None)
    strategy_code: str | None = _spec("code", default=None)
    strategy_template: str | None = _spec("text", default=None)
    generation_method: str | None = _spec("text", default=None)
    started_at: datetime | None = _spec("time", default=None)
    completed_at: datetime | None = _spec("time", default=None)
    attributes: JSONValue = _spec("json", default=None)
    note: str | None = _spec("text", default=None)
    tags: Mapping[str, str] | None = _spec("tags", default=None)
    ttpt: NewTTPTResult | None = None
    """A TTPT result stored with the trial, in the same transaction."""
    returns: ReturnSeries | None = None
    """The trial's returns series, stored with the trial, in the same transaction."""


@record
class TTPTResult:
    id: int = _spec("id")
    trial_id: int = _spec("id")
    passed: bool = _spec("flag")
    num_violations: int = _spec("count")
    metrics: JSONValue = _spec("json")
    created_at: datetime = _spec("time")
    violations: JSONValue = _spec("json")


@record
class NewTTPTResult:
    passed: bool = _spec("flag")
    num_violations: int = _spec("count")
    created_at: datetime = _spec("time")
    metrics: JSONValue = _spec("json", default=None)
    violations: JSONValue = _spec("json", default=None)


OwnerKind = Literal["experiment", "trial"]


@dataclass(frozen=True, slots=True)
class Owner:
    """What tags, a note or an artifact belong to: an experiment or a trial, by id."""

    kind: OwnerKind
    id: int


@record
class NewStepMetric:
    """One metric of a trial at one step (a walk-forward fold, an Optuna intermediate value)."""

    step: int = _spec("count")
    key: str = _spec("name")
    value: float = _spec("metric")


@record
class StepMetric:
    trial_id: int = _spec("id")
    step: int = _spec("count")
    key: str = _spec("name")
    value: float = _spec("metric")


@dataclass(frozen=True, slots=True)
class NewArtifact:
    """A file to attach: its name within its owner, media type and bytes."""

    name: str
    media_type: str
    data: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Artifact:
    """An attached file's description; `Repository.read_artifact` gives its bytes."""

    owner: Owner
    name: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime


_STORED: dict[type, tuple[Field[Any], ...]] = {}


def stored_fields(record_type: type) -> tuple[Field[Any], ...]:
    """The fields of a record type that are stored as columns (the nested `ttpt` is not);
    computed once per type (dataclass fields do not change)."""
    found = _STORED.get(record_type)
    if found is None:
        found = _STORED[record_type] = tuple(f for f in fields(record_type) if "kind" in f.metadata)
    return found


def new_fields(record_type: type) -> tuple[str, ...]:
    """The names a `New*` record shares with its stored record (all but the ids)."""
    return tuple(f.name for f in stored_fields(record_type) if kind_of(f) != "id")


TRIAL_FRAME_FIELDS: tuple[Field[Any], ...] = tuple(f for f in fields(Trial) if frame_of(f) != "omit")
"""The trial fields a trials DataFrame (and `TrialTable`) carries, in record order."""
TTPT_FRAME_FIELDS = ("passed", "num_violations", "metrics")
"""The fields of a trial's latest TTPT result that a trials DataFrame carries."""


@dataclass(frozen=True, slots=True)
class ExperimentAggregates:
    """An experiment with the aggregates of its trials and TTPT results: the fields that
    `ExperimentStats` (a repository's listing) and the dashboard's `ExperimentOverview` share."""

    experiment: Experiment
    n_trials: int
    n_by_state: dict[str, int]
    """Trials per state; empty when the aggregates were skipped or are not counted yet."""
    best_value: float | None
    ttpt_total: int
    ttpt_failed: int

    @property
    def violation_rate(self) -> float | None:
        """Fraction of TTPT results that did not pass; None without TTPT results."""
        return self.ttpt_failed / self.ttpt_total if self.ttpt_total else None


@dataclass(frozen=True, slots=True)
class ExperimentStats(ExperimentAggregates):
    """An experiment with the aggregates that listings, filters and comparisons need."""

    n_ranked: int = 0
    """Complete trials with a value (the ones best values and verdicts rank)."""


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
    tags: tuple[tuple[str, str], ...] | None = None
    """(name, value) pairs: the experiment must have each tag with that value."""
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
    """Trials as columns, for building DataFrames fast: `columns` maps the name of each field in
    `TRIAL_FRAME_FIELDS`, and `ttpt.<name>` for each of `TTPT_FRAME_FIELDS` (the latest TTPT
    result, None where there is none), to a list of values; all lists have equal length.

    Timestamps are ISO 8601 text in UTC (naive text means UTC); JSON values are decoded.
    """

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns["trial_number"])


TRIAL_TABLE_COLUMNS: tuple[str, ...] = (
    *(f.name for f in TRIAL_FRAME_FIELDS),
    *(f"ttpt.{name}" for name in TTPT_FRAME_FIELDS),
)


def best_of(values: list[float], direction: Direction) -> float | None:
    """The best finite-or-infinite value for the direction; None for an empty list."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return None
    return max(clean) if direction == "maximize" else min(clean)
