"""Browsing a store, read-only: the records of pages and queries, and the `Browser` whose verbs
answer them (`Repository.browser()`). The dashboard is built on these verbs, and on the
repository's own reads of one owner's artifacts and one trial's step metrics.

Tables are filtered, sorted and paginated in the store (the SQL backend in SQL, on its indexes;
the journal on its replayed state). Counts, best values, TTPT figures, verdicts and histories come
from per-experiment digests (`tracker.digest`) that each browser keeps in memory and brings up to
date, on every call, from the rows added since its last call: a request costs the same at 10,000
and at 1,000,000 trials, except sorting by a metric or a param, which no index serves.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from tracker.errors import NotFoundError, ValidationError
from tracker.read.digest import Check, Digest, Digests, Point
from tracker.store.checks import check_tag_key
from tracker.store.records import TRIAL_STATES, Experiment, Trial, TrialState, TTPTResult
from tracker.ttpt.verdict import Verdict

T = TypeVar("T")
H = TypeVar("H")

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
    if offset < 0:
        raise ValidationError("offset", f"must be 0 or more, got {offset}")
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
        if type(offset) is not int or type(number) is not int or offset < 0:
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
class ExperimentOverview:
    """An experiment with its aggregates and verdict."""

    experiment: Experiment
    n_trials: int
    n_by_state: dict[str, int]
    best_value: float | None
    best_trial_id: int | None
    ttpt_total: int
    ttpt_failed: int
    ttpt_checked_trials: int
    verdict: Verdict
    improvement: float
    """As `compare_experiments` gives it."""
    version: tuple[int, int]
    """(highest trial id, highest TTPT id) of the experiment: changes whenever either is added."""

    @property
    def violation_rate(self) -> float | None:
        return self.ttpt_failed / self.ttpt_total if self.ttpt_total else None


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
    value, ties by trial number; None for a trial that is not complete with a value)."""

    trial: Trial
    experiment: Experiment
    results: tuple[TTPTResult, ...]
    rank: int | None
    n_ranked: int


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


class Browser(ABC, Generic[H]):
    """The read verbs of a store, over one kind of snapshot handle `H` (a connection, a journal
    state). Safe to call from many threads. It never writes."""

    def __init__(self) -> None:
        self._digests = Digests()
        self._lock = threading.Lock()

    # the verbs -------------------------------------------------------------------------------

    def experiments(self, query: ExperimentPageQuery) -> Page[ExperimentOverview]:
        """A page of experiments matching the query, in its order (ties by id)."""

        def work(handle: H) -> Page[ExperimentOverview]:
            by_column = query.sort in EXPERIMENT_COLUMN_SORTS
            ids = self._experiment_ids(
                handle, query, query.sort if by_column else "id", query.descending if by_column else False
            )
            with self._lock:
                self._sync(handle)
                digests = {i: self._digests.by_experiment[i] for i in ids if i in self._digests.by_experiment}
                facts = {i: _facts(d) for i, d in digests.items()}
            chosen = [i for i in ids if i in facts and _keeps(facts[i], query)]
            if query.sort in EXPERIMENT_DIGEST_SORTS:
                valued = [i for i in chosen if facts[i][query.sort] is not None]
                valued.sort(key=lambda i: (facts[i][query.sort], i), reverse=query.descending)
                chosen = valued + [i for i in chosen if facts[i][query.sort] is None]
            window = chosen[query.offset : query.offset + query.limit]
            records = self._experiments(handle, window)
            items = tuple(_overview(records[i], digests[i]) for i in window)
            return Page(items, len(chosen), query.offset, query.limit)

        return self._run(work)

    def overview(self, experiment_id: int) -> ExperimentOverview:
        """The experiment's overview; raises NotFoundError."""
        return self.overviews([experiment_id])[0]

    def overviews(self, experiment_ids: Sequence[int]) -> list[ExperimentOverview]:
        """The overviews of the experiments, in the order given; raises NotFoundError."""

        def work(handle: H) -> list[ExperimentOverview]:
            records = self._experiments(handle, list(experiment_ids))
            with self._lock:
                self._sync(handle)
                digests = {i: self._digest(i) for i in experiment_ids}
                return [_overview(records[i], digests[i]) for i in experiment_ids]

        return self._run(work)

    def trials(self, experiment_id: int, query: TrialPageQuery) -> Page[TrialRow]:
        """A page of the experiment's trials; raises NotFoundError."""

        def work(handle: H) -> Page[TrialRow]:
            experiment = self._experiments(handle, [experiment_id])[experiment_id]
            with self._lock:
                self._sync(handle)
                digest = self._digest(experiment_id)
                total = digest.count(query.states, query.ttpt)
            offset = decode_cursor(query.after)[0] if query.after else query.offset
            trials, last = self._trial_page(handle, experiment, query)
            with self._lock:
                rows = tuple(TrialRow(t, digest.check_of(t.id)) for t in trials)
            following = None
            if last is not None and len(trials) == query.limit and offset + len(trials) < total:
                following = encode_cursor((offset + len(trials), *last))
            return Page(rows, total, offset, query.limit, following)

        return self._run(work)

    def history(self, experiment_id: int, max_points: int = 2_000) -> History:
        """The experiment's downsampled history; raises NotFoundError, ValidationError."""
        if not 10 <= max_points <= 100_000:
            raise ValidationError("max_points", f"must be between 10 and 100000, got {max_points}")

        def work(handle: H) -> History:
            with self._lock:
                self._sync(handle)
                digest = self._digest(experiment_id)
                points, marks, checks, sampled = digest.history(max_points)
                best = tuple(Point(i, n, v, "complete") for n, v, i in digest.steps)
                outcomes = {}
                for p in (*points, *best):
                    outcome = digest.check_of(p.trial_id)
                    if outcome is not None:
                        outcomes[p.trial_id] = outcome
                return History(
                    experiment_id,
                    digest.direction,
                    digest.n_trials,
                    digest.n_ranked,
                    tuple(points),
                    best,
                    tuple(marks),
                    tuple(checks),
                    outcomes,
                    max_points,
                    sampled,
                )

        return self._run(work)

    def trial(self, trial_id: int) -> TrialDetail:
        """The trial with its experiment, TTPT results and rank; raises NotFoundError."""

        def work(handle: H) -> TrialDetail:
            trial, experiment, results = self._trial_detail(handle, trial_id)
            ranked = trial.state == "complete" and trial.value is not None and not math.isnan(trial.value)
            ties = self._ties_before(handle, trial) if ranked else 0
            with self._lock:
                self._sync(handle)
                digest = self._digest(experiment.id)
                rank = 1 + digest.better_than(trial.value) + ties if ranked and trial.value is not None else None
                return TrialDetail(trial, experiment, tuple(results), rank, digest.n_ranked)

        return self._run(work)

    def sample(self, experiment_id: int, best: int = SAMPLE_BEST, drawn: int = SAMPLE_RANDOM) -> Sample:
        """The best `best` complete trials with a value and about `drawn` more drawn uniformly by
        trial number (seeded by the experiment, so a chart is stable while the study is)."""

        def work(handle: H) -> Sample:
            with self._lock:
                self._sync(handle)
                digest = self._digest(experiment_id)
                low, high, ranked = digest.min_number, digest.max_number, digest.n_ranked
            tops = self._best_trials(handle, experiment_id, best)
            if low is None or high is None or ranked <= len(tops):
                return Sample(tuple(tops), len(tops), 0, ranked)
            span = high - low + 1
            numbers = random.Random(experiment_id).sample(  # noqa: S311 - a chart's sample, not a secret
                range(low, high + 1), min(span, drawn * 2)
            )
            seen = {t.id for t in tops}
            extra = [t for t in self._trials_by_number(handle, experiment_id, numbers) if t.id not in seen][:drawn]
            return Sample(tuple(tops + extra), len(tops), len(extra), ranked)

        return self._run(work)

    # what a backend provides -----------------------------------------------------------------

    @abstractmethod
    def _run(self, work: Callable[[H], T]) -> T:
        """Run `work` on one consistent snapshot of the store (read-only)."""

    @abstractmethod
    def _sync(self, handle: H) -> None:
        """Bring `self._digests` up to date (called with `self._lock` held)."""

    @abstractmethod
    def _experiment_ids(self, handle: H, query: ExperimentPageQuery, sort: str, descending: bool) -> list[int]:
        """Ids of the experiments matching the query's ids, text, date and tag filters, ordered by
        the column `sort` (ties by id)."""

    @abstractmethod
    def _experiments(self, handle: H, ids: Sequence[int]) -> dict[int, Experiment]:
        """The experiments by id; raises NotFoundError for a missing one."""

    @abstractmethod
    def _trial_page(
        self, handle: H, experiment: Experiment, query: TrialPageQuery
    ) -> tuple[list[Trial], tuple[float | None, int] | None]:
        """The page's trials and the (sort value, trial number) of the last one (None for sorts
        without a cursor)."""

    @abstractmethod
    def _trial_detail(self, handle: H, trial_id: int) -> tuple[Trial, Experiment, list[TTPTResult]]:
        """The trial, its experiment and its TTPT results by id; raises NotFoundError."""

    @abstractmethod
    def _ties_before(self, handle: H, trial: Trial) -> int:
        """How many complete trials of its experiment have the trial's value and a lower number."""

    @abstractmethod
    def _best_trials(self, handle: H, experiment_id: int, n: int) -> list[Trial]:
        """The `n` best complete trials with a value, best first."""

    @abstractmethod
    def _trials_by_number(self, handle: H, experiment_id: int, numbers: Sequence[int]) -> list[Trial]:
        """The complete trials with a value among these trial numbers."""

    # helpers ---------------------------------------------------------------------------------

    def _digest(self, experiment_id: int) -> Digest:
        digest = self._digests.by_experiment.get(experiment_id)
        if digest is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return digest


def _facts(d: Digest) -> dict[str, Any]:
    return {
        "best_value": d.best_value,
        "n_trials": d.n_trials,
        "ttpt_total": d.checks,
        "violation_rate": d.failed_checks / d.checks if d.checks else None,
        "direction": d.direction,
    }


def _keeps(f: dict[str, Any], query: ExperimentPageQuery) -> bool:
    if query.max_violation_rate is not None and (
        f["violation_rate"] is None or f["violation_rate"] > query.max_violation_rate
    ):
        return False
    if query.min_best_value is not None:
        best = f["best_value"]
        if best is None:
            return False
        return bool(best >= query.min_best_value if f["direction"] == "maximize" else best <= query.min_best_value)
    return True


def _overview(e: Experiment, d: Digest) -> ExperimentOverview:
    return ExperimentOverview(
        experiment=e,
        n_trials=d.n_trials,
        n_by_state=dict(d.n_by_state),
        best_value=d.best_value,
        best_trial_id=d.best_trial_id,
        ttpt_total=d.checks,
        ttpt_failed=d.failed_checks,
        ttpt_checked_trials=len(d.latest),
        verdict=d.verdict(),
        improvement=d.improvement(),
        version=(d.last_trial_id, d.last_check_id),
    )
