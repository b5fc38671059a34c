"""What the browser's verbs take and give: page queries, keyset cursors and page records
(`tracker.read.browser` holds the verbs)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeVar

from tracker.errors import ValidationError
from tracker.read.digest import Check, Point
from tracker.read.downloads import Download
from tracker.store.checks import check_tag_key
from tracker.store.records import (
    TRIAL_STATES,
    Artifact,
    Experiment,
    ExperimentAggregates,
    StepMetric,
    Trial,
    TrialState,
    TTPTResult,
)
from tracker.ttpt.verdict import Verdict

T = TypeVar("T")
ID_LIMIT = 2**63
"""Ids, offsets and trial numbers are 64-bit signed integers in every store."""

EXPERIMENT_COLUMN_SORTS = ("id", "name", "template", "mode", "objective", "created_at")
"""Experiment sorts on stored columns (ordered by the store)."""
EXPERIMENT_DIGEST_SORTS = ("best_value", "n_trials", "ttpt_total", "violation_rate")
"""Experiment sorts on aggregates (ordered over the digests, one entry per experiment)."""
EXPERIMENT_SORTS = EXPERIMENT_COLUMN_SORTS + EXPERIMENT_DIGEST_SORTS
TTPT_FILTERS = ("passed", "failed", "unchecked")
TTPTFilter = Literal["passed", "failed", "unchecked"]
MAX_LIMIT = 500
SAMPLE_BEST = 2_000
SAMPLE_RANDOM = 2_000


@dataclass(frozen=True, slots=True)
class ExperimentPageQuery:
    """A page of experiments: every given filter must hold."""

    offset: int = 0
    limit: int = 50
    sort: str = "id"
    descending: bool = False
    text: str | None = None
    """A substring of the name or the template."""
    max_violation_rate: float | None = None
    min_best_value: float | None = None
    """Best value at least this (maximize) or at most this (minimize)."""
    created_after: datetime | None = None
    created_before: datetime | None = None
    tag: tuple[str, str | None] | None = None
    """(name, value): experiments that have the tag `name`, with that value unless it is None."""
    ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_window(self.offset, self.limit)
        if self.sort not in EXPERIMENT_SORTS:
            raise ValidationError("sort", f"must be one of {', '.join(EXPERIMENT_SORTS)}, got {self.sort!r}")
        if self.tag is not None:
            check_tag_key(self.tag[0], "tag")


@dataclass(frozen=True, slots=True)
class TrialPageQuery:
    """A page of an experiment's trials.

    `sort` is "trial_number", "value", "performance.<key>" or "params.<key>" (a dotted key reaches
    into nested dicts). `descending` None means the natural order: trial numbers ascending, values
    best first, metrics and params descending. Trials without a sort value come last. `after` is
    the `next` cursor of the previous page (keyset pagination, for trial number and value sorts).
    """

    offset: int = 0
    limit: int = 50
    sort: str = "trial_number"
    descending: bool | None = None
    states: tuple[TrialState, ...] | None = None
    ttpt: TTPTFilter | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        _check_window(self.offset, self.limit)
        if self.sort not in ("trial_number", "value"):
            field, _, key = self.sort.partition(".")
            if field not in ("performance", "params") or not key or any(not part for part in key.split(".")):
                raise ValidationError(
                    "sort",
                    f"must be trial_number, value, performance.<key> or params.<key>, got {self.sort!r}",
                )
            if '"' in key:
                raise ValidationError("sort", 'a sort key cannot contain a double quote (")')
        if self.states is not None:
            for state in self.states:
                if state not in TRIAL_STATES:
                    raise ValidationError("state", f"must be one of {', '.join(TRIAL_STATES)}, got {state!r}")
        if self.ttpt is not None and self.ttpt not in TTPT_FILTERS:
            raise ValidationError("ttpt", f"must be one of {', '.join(TTPT_FILTERS)}, got {self.ttpt!r}")
        if self.after is not None:
            if self.sort not in ("trial_number", "value"):
                raise ValidationError("after", "a cursor pages trial number and value sorts; use offset for the others")
            decode_cursor(self.after)

    @property
    def metric(self) -> tuple[str, tuple[str, ...]] | None:
        """("performance" or "params", the key's path) for a metric or param sort."""
        if self.sort in ("trial_number", "value"):
            return None
        field, _, key = self.sort.partition(".")
        return field, tuple(key.split("."))

    def is_descending(self, direction: str) -> bool:
        if self.descending is not None:
            return self.descending
        if self.sort == "trial_number":
            return False
        if self.sort == "value":
            return direction == "maximize"
        return True


def _check_window(offset: int, limit: int) -> None:
    if not 0 <= offset < ID_LIMIT:
        raise ValidationError("offset", f"must be between 0 and 2**63 - 1, got {offset}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")


Cursor = tuple[int, float | None, int]
"""(offset of the page it starts, the last row's sort value, the last row's trial number)."""


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor behind a `next` token; raises ValidationError for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        offset, value, number = raw
        if type(offset) is not int or type(number) is not int or not 0 <= offset < ID_LIMIT:
            raise ValueError
        if not -ID_LIMIT <= number < ID_LIMIT:
            raise ValueError
        if value is not None and not isinstance(value, int | float):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError("after", "is not a cursor from a page's `next`; start again from offset=0") from None
    return offset, None if value is None else float(value), number


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Some items of a longer, ordered list: `total` items match, these start at `offset`;
    `next` is the cursor of the following page (None on the last page, or for sorts without one)."""

    items: tuple[T, ...]
    total: int
    offset: int
    limit: int
    next: str | None = None


@dataclass(frozen=True, slots=True)
class ExperimentOverview(ExperimentAggregates):
    """An experiment with its aggregates (`ExperimentAggregates`) and verdict. While the browser
    is still reading the store (`counting`; `tracker.read.early`), what needs every trial is not
    known yet: `n_by_state` is empty, and `ttpt_checked_trials`, `improvement` and the verdict's
    `n_ranked` are None; the rest is exact."""

    best_trial_id: int | None
    ttpt_checked_trials: int | None
    verdict: Verdict
    improvement: float | None
    """As `compare_experiments` gives it."""
    version: tuple[int, int]
    """(highest trial id, highest TTPT id) of the experiment: changes whenever either is added;
    (0, 0) while counting."""
    counting: bool = False


@dataclass(frozen=True, slots=True)
class TrialRow:
    """A trial with its latest TTPT check (None when unchecked)."""

    trial: Trial
    ttpt_passed: bool | None


@dataclass(frozen=True, slots=True)
class History:
    """An experiment's history, downsampled to at most `max_points` points in all (`points`,
    `marks` and `checks` together). `points` are complete trials with a value; `best` the running
    best steps; `marks` pruned and failed trials; `checks` the TTPT timeline (latest check per
    trial). `sampled` says whether anything was left out."""

    experiment_id: int
    objective: str
    direction: str
    n_trials: int
    n_ranked: int
    points: tuple[Point, ...]
    best: tuple[Point, ...]
    marks: tuple[Point, ...]
    checks: tuple[Check, ...]
    check_outcomes: dict[int, bool]
    """Latest check outcome of the trials in `points` and `best` that have one."""
    max_points: int
    sampled: bool


@dataclass(frozen=True, slots=True)
class TrialDetail:
    """A trial with its experiment, its TTPT results and its rank (1 = best complete trial by
    value, ties by trial number; None for a trial that is not complete with a value). `n_ranked`
    is None while the browser is still counting (an experiment page's best trial, rank 1)."""

    trial: Trial
    experiment: Experiment
    results: tuple[TTPTResult, ...]
    rank: int | None
    n_ranked: int | None


@dataclass(frozen=True, slots=True)
class Sample:
    """Complete trials with a value for charts that need them whole: the `n_best` best and
    about `n_random` more drawn uniformly by trial number, `of` ranked trials in all."""

    trials: tuple[Trial, ...]
    n_best: int
    n_random: int
    of: int

    @property
    def description(self) -> str:
        if len(self.trials) >= self.of:
            return f"all {self.of} complete trials"
        return (
            f"a sample of {len(self.trials)} of {self.of} complete trials: "
            f"the best {self.n_best} and {self.n_random} drawn at random"
        )


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """The experiment page, read from one snapshot: the overview, the best trial, a page of
    trials and the experiment's artifacts."""

    overview: ExperimentOverview
    best: TrialDetail | None
    trials: Page[TrialRow]
    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True, slots=True)
class TrialView:
    """The trial page, read from one snapshot: the trial with its rank and TTPT results, its
    artifacts and its step metrics (ordered by key and step)."""

    detail: TrialDetail
    artifacts: tuple[Artifact, ...]
    step_metrics: tuple[StepMetric, ...]


@dataclass(frozen=True, slots=True)
class ParetoTrial:
    """A trial on the Pareto chart: its value of every objective, in the experiment's order."""

    trial_id: int
    trial_number: int
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ParetoView:
    """An experiment's Pareto front over all its objectives (`tracker.read.pareto`), shown for
    the pair of objectives `x` and `y` (indices into `objectives`).

    `front` holds every complete trial no other dominates (best `x` first); `others` at most
    `max_points` - len(front) of the rest, drawn evenly by trial number (`sampled` says whether
    some were left out). `reference` is the point the hypervolumes are measured from: the worst
    value of each objective among the `n_points` complete trials with a finite value for every
    objective. `history` is (trial number, hypervolume of the front of the trials up to it) at
    each change, at most `max_points` of them, the first and last kept (`history_sampled`)."""

    experiment_id: int
    objectives: tuple[tuple[str, str], ...]
    x: int
    y: int
    n_trials: int
    n_points: int
    front: tuple[ParetoTrial, ...]
    others: tuple[ParetoTrial, ...]
    sampled: bool
    reference: tuple[float, ...] | None
    hypervolume: float | None
    history: tuple[tuple[int, float], ...]
    history_sampled: bool
    max_points: int
    version: tuple[int, int]
    """(highest trial id, trials) of the experiment when it was computed."""


__all__ = ["Download"]
