"""Per-experiment aggregates kept up to date from new rows only: counts, best trials, TTPT check
counts and a downsampled history. Backend-neutral: a browser feeds it rows.

Trials are only ever added, or deleted with their whole experiment, and ids only grow. So a
browser remembers the highest trial id and TTPT result id it has seen, and on each request feeds
the digests the rows above them (a primary-key range: work proportional to what changed, however
many trials there are). A deleted experiment's digest is dropped.

The history keeps, per experiment, at most `BUCKETS` buckets over the trial numbers; each bucket
holds its lowest and highest value, one pruned and one failed trial, and one passed and one failed
check, with counts. When the trial numbers outgrow the buckets, the bucket width doubles and
neighbours merge. The running best (a trial whose value beats every lower-numbered one) is kept
exactly, as the list of its steps.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tracker.store.records import TRIAL_STATES, Direction
from tracker.ttpt.verdict import BEST_K, Verdict, latest_check, verdict

BUCKETS = 2048


class TrialFeed(NamedTuple):
    """A trial as digests need it."""

    id: int
    experiment_id: int
    trial_number: int
    state: str
    value: float | None


class CheckFeed(NamedTuple):
    """A TTPT result with its trial's fields."""

    id: int
    trial_id: int
    experiment_id: int
    trial_number: int
    state: str
    value: float | None
    passed: bool
    num_violations: int
    boundaries: int | None = None
    """Boundaries the check compared (its metrics' `boundaries`), when it says."""


class Point(NamedTuple):
    """A trial on the history chart."""

    trial_id: int
    trial_number: int
    value: float | None
    state: str


class Check(NamedTuple):
    """A trial's latest check on the TTPT timeline."""

    trial_id: int
    trial_number: int
    passed: bool
    num_violations: int
    boundaries: int | None = None


@dataclass(slots=True)
class Bucket:
    low: Point | None = None
    high: Point | None = None
    pruned: Point | None = None
    failed: Point | None = None
    n_pruned: int = 0
    n_failed: int = 0
    passed_check: Check | None = None
    failed_check: Check | None = None
    n_passed_checks: int = 0
    n_failed_checks: int = 0

    def merge(self, other: Bucket, better: Direction) -> None:
        self.low = _pick(self.low, other.low, lower=True)
        self.high = _pick(self.high, other.high, lower=False)
        self.pruned = self.pruned or other.pruned
        self.failed = self.failed or other.failed
        self.n_pruned += other.n_pruned
        self.n_failed += other.n_failed
        self.passed_check = self.passed_check or other.passed_check
        self.failed_check = _worst(self.failed_check, other.failed_check)
        self.n_passed_checks += other.n_passed_checks
        self.n_failed_checks += other.n_failed_checks


def _pick(a: Point | None, b: Point | None, *, lower: bool) -> Point | None:
    if a is None or a.value is None:
        return b
    if b is None or b.value is None:
        return a
    if lower:
        return b if (b.value, b.trial_number) < (a.value, a.trial_number) else a
    return b if (b.value, -b.trial_number) > (a.value, -a.trial_number) else a


def _worst(a: Check | None, b: Check | None) -> Check | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b.num_violations, -b.trial_number) > (a.num_violations, -a.trial_number) else a


@dataclass(slots=True)
class Digest:
    """The aggregates of one experiment."""

    direction: Direction
    n_trials: int = 0
    n_by_state: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRIAL_STATES, 0))
    n_ranked: int = 0
    top: list[tuple[float, int, int]] = field(default_factory=list)
    """The best BEST_K complete trials: (sort key, trial number, trial id), best first."""
    best_value: float | None = None
    checks: int = 0
    failed_checks: int = 0
    latest: dict[int, CheckFeed] = field(default_factory=dict)
    """trial id -> the check that counts for it (`tracker.ttpt.verdict.latest_check`)."""
    checked_by: dict[tuple[str, bool], int] = field(default_factory=dict)
    """(trial state, latest check passed) -> number of trials."""
    last_trial_id: int = 0
    last_check_id: int = 0
    min_number: int | None = None
    max_number: int | None = None
    width: int = 1
    buckets: dict[int, Bucket] = field(default_factory=dict)
    steps: list[tuple[int, float, int]] = field(default_factory=list)
    """The running best: (trial number, value, trial id), by trial number."""
    keys: array[float] = field(default_factory=lambda: array("d"))
    """The sort keys of every ranked trial, ascending (best first): for ranks."""
    pending: list[float] = field(default_factory=list)
    numbers: array[int] = field(default_factory=lambda: array("q"))
    """The trial numbers of every ranked trial, ascending: for the improvement."""
    pending_numbers: list[int] = field(default_factory=list)

    # feeding ---------------------------------------------------------------------------------

    def add_trial(self, t: TrialFeed) -> None:
        self.n_trials += 1
        self.n_by_state[t.state] = self.n_by_state.get(t.state, 0) + 1
        self.last_trial_id = max(self.last_trial_id, t.id)
        self.min_number = t.trial_number if self.min_number is None else min(self.min_number, t.trial_number)
        self.max_number = t.trial_number if self.max_number is None else max(self.max_number, t.trial_number)
        point = Point(t.id, t.trial_number, t.value, t.state)
        bucket = self._bucket(t.trial_number)
        if t.state == "complete" and t.value is not None:
            self.n_ranked += 1
            self.pending.append(self._key(t.value))
            self.pending_numbers.append(t.trial_number)
            self._rank(t, t.value)
            self._step(t, t.value)
            bucket.low = _pick(bucket.low, point, lower=True)
            bucket.high = _pick(bucket.high, point, lower=False)
        elif t.state == "pruned":
            bucket.n_pruned += 1
            bucket.pruned = bucket.pruned or point
        elif t.state == "failed":
            bucket.n_failed += 1
            bucket.failed = bucket.failed or point

    def add_check(self, c: CheckFeed) -> None:
        self.checks += 1
        self.failed_checks += 0 if c.passed else 1
        self.last_check_id = max(self.last_check_id, c.id)
        previous = self.latest.get(c.trial_id)
        if previous is not None and latest_check((previous, c)) is previous:
            return  # e.g. an older check arriving late: the latest one stands
        bucket = self._bucket(c.trial_number)
        if previous is not None:
            key = (previous.state, previous.passed)
            self.checked_by[key] -= 1
            if previous.passed:
                bucket.n_passed_checks -= 1
            else:
                bucket.n_failed_checks -= 1
        self.latest[c.trial_id] = c
        key = (c.state, c.passed)
        self.checked_by[key] = self.checked_by.get(key, 0) + 1
        check = Check(c.trial_id, c.trial_number, c.passed, c.num_violations, c.boundaries)
        if c.passed:
            bucket.n_passed_checks += 1
            bucket.passed_check = bucket.passed_check or check
        else:
            bucket.n_failed_checks += 1
            bucket.failed_check = _worst(bucket.failed_check, check)

    def _key(self, value: float) -> float:
        return -value if self.direction == "maximize" else value

    def _rank(self, t: TrialFeed, value: float) -> None:
        entry = (self._key(value), t.trial_number, t.id)
        if len(self.top) < BEST_K or entry < self.top[-1]:
            bisect.insort(self.top, entry)
            del self.top[BEST_K:]
            self.best_value = self.top[0][0] if self.direction == "minimize" else -self.top[0][0]

    def _step(self, t: TrialFeed, value: float) -> None:
        """Keep `steps` the exact running best by trial number, whatever order trials arrive in."""
        key = self._key(value)
        at = bisect.bisect_left(self.steps, (t.trial_number,))
        if at and self._key(self.steps[at - 1][1]) <= key:
            return  # an earlier trial was at least as good
        end = at
        while end < len(self.steps) and self._key(self.steps[end][1]) >= key:
            end += 1  # later steps that no longer improve on this trial
        self.steps[at:end] = [(t.trial_number, value, t.id)]

    def _bucket(self, number: int) -> Bucket:
        index = number // self.width
        while index >= BUCKETS:
            self._widen()
            index = number // self.width
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = Bucket()
        return bucket

    def _widen(self) -> None:
        self.width *= 2
        merged: dict[int, Bucket] = {}
        for index in sorted(self.buckets):
            target = merged.get(index // 2)
            if target is None:
                merged[index // 2] = self.buckets[index]
            else:
                target.merge(self.buckets[index], self.direction)
        self.buckets = merged

    # reading ---------------------------------------------------------------------------------

    def verdict(self) -> Verdict:
        outcomes: list[bool | None] = []
        for _, _, trial_id in self.top:
            check = self.latest.get(trial_id)
            outcomes.append(None if check is None else check.passed)
        return verdict(outcomes, self.n_ranked, self.checks, self.failed_checks)

    def better_than(self, value: float) -> int:
        """How many ranked trials have a strictly better value."""
        if self.pending:
            self.keys = _merged(self.keys, self.pending)
            self.pending = []
        return bisect.bisect_left(self.keys, self._key(value))

    def improvement(self) -> float:
        """`compare_experiments`' improvement, exactly: the best value of the ranked trials minus
        the best of their first half by trial number (sign flipped when minimising); 0.0 with
        fewer than two."""
        if self.n_ranked < 2:
            return 0.0
        if self.pending_numbers:
            self.numbers = _merged(self.numbers, self.pending_numbers)
            self.pending_numbers = []
        last_of_first_half = self.numbers[self.n_ranked // 2 - 1]
        at = bisect.bisect_right([n for n, _, _ in self.steps], last_of_first_half) - 1
        gain = self.steps[-1][1] - self.steps[at][1]  # the running best at the end and at that trial
        return gain if self.direction == "maximize" else -gain

    @property
    def best_trial_id(self) -> int | None:
        return self.top[0][2] if self.top else None

    def check_of(self, trial_id: int) -> bool | None:
        check = self.latest.get(trial_id)
        return None if check is None else check.passed

    def count(self, states: Iterable[str] | None, ttpt: str | None) -> int:
        """How many trials have one of `states` (all when None) and the TTPT outcome `ttpt`
        ("passed", "failed", "unchecked" for their latest check; any when None)."""
        chosen = list(self.n_by_state) if states is None else list(states)
        total = 0
        for state in chosen:
            everything = self.n_by_state.get(state, 0)
            passed = self.checked_by.get((state, True), 0)
            failed = self.checked_by.get((state, False), 0)
            total += {None: everything, "passed": passed, "failed": failed}.get(ttpt, everything - passed - failed)
        return total

    def history(self, max_points: int) -> tuple[list[Point], list[Point], list[Check], bool]:
        """(points, marks, checks, sampled): at most `max_points` points in all, always keeping the
        running-best steps and the lowest and highest values, then per group of buckets its lowest
        and highest value, its failed check's trial, and its pruned and failed trials as marks."""
        steps = [Point(i, n, v, "complete") for n, v, i in self.steps]
        everything = [b for _, b in sorted(self.buckets.items())]
        extremes: list[Point] = []
        lows = [b.low for b in everything if b.low is not None]
        highs = [b.high for b in everything if b.high is not None]
        if lows:
            extremes = [
                min(lows, key=lambda p: (p.value, p.trial_number)),
                max(highs, key=lambda p: (p.value, -p.trial_number)),
            ]
        if len(steps) > max_points:  # too many steps for the budget: the best ones, evenly spread
            stride = len(steps) / max_points
            steps = [steps[int(i * stride)] for i in range(max_points - 1)] + [steps[-1]]
        budget = max(0, max_points - len(steps) - len(extremes))
        per_bucket = 6  # low, high, failed check, pruned, failed mark, passed check
        groups = max(1, -(-len(everything) * per_bucket // budget)) if budget else 0
        points: dict[int, Point] = {p.trial_id: p for p in (*steps, *extremes)}
        marks: dict[int, Point] = {}
        checks: dict[int, Check] = {}
        sampled = groups != 1 or len(steps) < len(self.steps)
        if groups:
            for start in range(0, len(everything), groups):
                group = Bucket()
                for bucket in everything[start : start + groups]:
                    group.merge(bucket, self.direction)
                for p in (group.low, group.high):
                    if p is not None:
                        points.setdefault(p.trial_id, p)
                for m in (group.pruned, group.failed):
                    if m is not None:
                        marks.setdefault(m.trial_id, m)
                for c in (group.failed_check, group.passed_check):
                    if c is not None:
                        checks.setdefault(c.trial_id, c)
                if groups > 1 and (group.n_pruned > 1 or group.n_failed > 1):
                    sampled = True
        spare = max_points - len(points) - len(marks) - len(checks)
        while spare < 0 and (checks or marks):  # the integer grouping overshot: drop from the tails
            (checks if len(checks) >= len(marks) else marks).popitem()
            spare += 1
            sampled = True
        n_checks = sum(b.n_passed_checks + b.n_failed_checks for b in everything)
        sampled = sampled or len(checks) < n_checks
        ordered = sorted(points.values(), key=lambda p: p.trial_number)
        return (
            ordered,
            sorted(marks.values(), key=lambda p: p.trial_number),
            sorted(checks.values(), key=lambda c: c.trial_number),
            sampled,
        )


class Digests:
    """The digests of a store's experiments, with the highest ids fed so far."""

    def __init__(self) -> None:
        self.by_experiment: dict[int, Digest] = {}
        self.trial_mark = 0
        self.check_mark = 0
        self.ready = False

    def keep(self, experiments: dict[int, Direction]) -> None:
        """Drop the digests of deleted experiments and start those of new ones."""
        for experiment_id in list(self.by_experiment):
            if experiment_id not in experiments:
                del self.by_experiment[experiment_id]
        for experiment_id, direction in experiments.items():
            if experiment_id not in self.by_experiment:
                self.by_experiment[experiment_id] = Digest(direction)

    def feed(self, trials: Iterable[TrialFeed], checks: Iterable[CheckFeed]) -> None:
        """Apply new trials, then new checks (a check's trial is fed before it, or was already)."""
        for t in trials:
            digest = self.by_experiment.get(t.experiment_id)
            if digest is not None:
                digest.add_trial(t)
            self.trial_mark = max(self.trial_mark, t.id)
        for c in checks:
            digest = self.by_experiment.get(c.experiment_id)
            if digest is not None:
                digest.add_check(c)
            self.check_mark = max(self.check_mark, c.id)


def _merged(ordered: array[Any], pending: list[Any]) -> array[Any]:
    """`ordered` with `pending` merged in, ascending: a few inserts, or one sort after a bulk."""
    if len(pending) < 2_000:
        for item in pending:
            bisect.insort(ordered, item)
        return ordered
    return array(ordered.typecode, sorted([*ordered, *pending]))
