"""Browsing a store, read-only: the `Browser` whose verbs answer the dashboard's pages and API
(`Repository.browser()`); what they take and give is in `tracker.read.records`.

Tables are filtered, sorted and paginated in the store (the SQL backend in SQL, on its indexes;
the journal on its replayed state). Counts, best values, TTPT figures, verdicts and histories come
from per-experiment digests (`tracker.digest`) that each browser keeps in memory and brings up to
date, on every call, from the rows added since its last call: a request costs the same at 10,000
and at 1,000,000 trials, except sorting by a metric or a param, which no index serves. A page's
composite verb (`experiment_view`, `trial_view`) reads everything it shows from one snapshot,
with one digest update.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tracker.errors import NotFoundError, TrackerError, ValidationError
from tracker.read.digest import Digest, Digests, Point
from tracker.read.downloads import Download
from tracker.read.early import EarlyAnswers
from tracker.read.pareto_cache import ObjectiveRow, ParetoCache, pick_pair
from tracker.read.records import (
    EXPERIMENT_COLUMN_SORTS,
    EXPERIMENT_DIGEST_SORTS,
    EXPERIMENT_SORTS,
    ID_LIMIT,
    MAX_LIMIT,
    SAMPLE_BEST,
    SAMPLE_RANDOM,
    TTPT_FILTERS,
    Cursor,
    ExperimentOverview,
    ExperimentPageQuery,
    ExperimentView,
    History,
    Page,
    ParetoTrial,
    ParetoView,
    Sample,
    TrialDetail,
    TrialPageQuery,
    TrialRow,
    TrialView,
    TTPTFilter,
    decode_cursor,
    encode_cursor,
)
from tracker.store.objectives import Objectives, objectives_of
from tracker.store.records import Artifact, Experiment, Owner, StepMetric, Trial

T = TypeVar("T")
H = TypeVar("H")

__all__ = [
    "EXPERIMENT_COLUMN_SORTS",
    "EXPERIMENT_DIGEST_SORTS",
    "EXPERIMENT_SORTS",
    "ID_LIMIT",
    "MAX_LIMIT",
    "TTPT_FILTERS",
    "Browser",
    "Cursor",
    "ExperimentOverview",
    "ExperimentPageQuery",
    "ExperimentView",
    "History",
    "ObjectiveRow",
    "Page",
    "ParetoTrial",
    "ParetoView",
    "Sample",
    "TTPTFilter",
    "TrialDetail",
    "TrialPageQuery",
    "TrialRow",
    "TrialView",
    "decode_cursor",
    "encode_cursor",
]


class Browser(EarlyAnswers[H]):
    """The read verbs of a store, over one kind of snapshot handle `H` (a connection, a journal
    state). Safe to call from many threads. It never writes."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._paretos: dict[int, ParetoCache] = {}
        self._paretos_of: Digests | None = None
        self._pareto_lock = threading.Lock()

    # the verbs -------------------------------------------------------------------------------

    def experiments(self, query: ExperimentPageQuery) -> Page[ExperimentOverview]:
        """A page of experiments matching the query, in its order (ties by id)."""

        def work(handle: H) -> Page[ExperimentOverview]:
            by_column = query.sort in EXPERIMENT_COLUMN_SORTS
            ids = self._experiment_ids(
                handle, query, query.sort if by_column else "id", query.descending if by_column else False
            )
            if by_column and query.max_violation_rate is None and query.min_best_value is None and self._counting():
                window = ids[query.offset : query.offset + query.limit]
                found = self._experiments(handle, window)
                early = tuple(self._early_overview(handle, found[i]) for i in window)
                return Page(early, len(ids), query.offset, query.limit)
            with self._lock:
                self._update(handle)
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
        return self._run(lambda handle: self._overviews_in(handle, experiment_ids))

    def trials(self, experiment_id: int, query: TrialPageQuery) -> Page[TrialRow]:
        """A page of the experiment's trials; raises NotFoundError."""
        return self._run(lambda handle: self._trials_in(handle, experiment_id, query))

    def trial(self, trial_id: int) -> TrialDetail:
        """The trial with its experiment, TTPT results and rank; raises NotFoundError."""
        return self._run(lambda handle: self._trial_in(handle, trial_id))

    def experiment_view(self, experiment_id: int, query: TrialPageQuery) -> ExperimentView:
        """The overview, the best trial, a page of trials and the artifacts of the experiment,
        from one snapshot with one digest update; raises NotFoundError."""

        def work(handle: H) -> ExperimentView:
            o = self._overviews_in(handle, [experiment_id])[0]
            best, chosen = None, o.best_trial_id
            if chosen is not None:
                best = self._early_best(handle, chosen) if o.counting else self._trial_in(handle, chosen)
            page = self._trials_in(handle, experiment_id, query)
            return ExperimentView(o, best, page, tuple(self._artifacts(handle, Owner("experiment", experiment_id))))

        return self._run(lambda handle: self._once(handle, work))

    def trial_view(self, trial_id: int) -> TrialView:
        """The trial with its rank and TTPT results, its artifacts and its step metrics, from one
        snapshot; raises NotFoundError."""

        def work(handle: H) -> TrialView:
            detail = self._trial_in(handle, trial_id)
            found = tuple(self._artifacts(handle, Owner("trial", trial_id)))
            return TrialView(detail, found, tuple(self._step_metrics(handle, trial_id)))

        return self._run(lambda handle: self._once(handle, work))

    def history(self, experiment_id: int, max_points: int = 2_000) -> History:
        """The experiment's downsampled history; raises NotFoundError, ValidationError."""
        if not 10 <= max_points <= 100_000:
            raise ValidationError("max_points", f"must be between 10 and 100000, got {max_points}")

        def work(handle: H) -> History:
            objective = self._experiments(handle, [experiment_id])[experiment_id].objective
            with self._lock:
                self._update(handle)
                return _history(experiment_id, objective, self._digest(experiment_id), max_points)

        return self._run(work)

    def sample(self, experiment_id: int, best: int = SAMPLE_BEST, drawn: int = SAMPLE_RANDOM) -> Sample:
        """The best `best` complete trials with a value and about `drawn` more drawn uniformly by
        trial number (seeded by the experiment, so a chart is stable while the study is)."""

        def work(handle: H) -> Sample:
            with self._lock:
                self._update(handle)
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

    def pareto(
        self, experiment_id: int, x: str | None = None, y: str | None = None, max_points: int = 2_000
    ) -> ParetoView:
        """The experiment's Pareto front over all its objectives (`tracker.store.objectives`),
        shown for the objectives named `x` and `y` (by default the first two), with the
        hypervolume history (`ParetoView`). Kept per experiment and brought up to date from the
        trials added since the last call. Raises NotFoundError; ValidationError for an
        experiment with one objective, an objective name it does not have, or `max_points`
        outside 10-100,000."""
        if not 10 <= max_points <= 100_000:
            raise ValidationError("max_points", f"must be between 10 and 100000, got {max_points}")

        def work(handle: H) -> ParetoView:
            experiment = self._experiments(handle, [experiment_id])[experiment_id]
            objectives = objectives_of(experiment)
            pair = pick_pair(objectives, x, y)
            with self._lock:
                self._update(handle)
                digest = self._digest(experiment_id)
                key = (digest.last_trial_id, digest.n_trials)
                alive = set(self._digests.by_experiment) if self._paretos_of is self._digests else set()
                self._paretos_of = self._digests
            with self._pareto_lock:
                for gone in set(self._paretos) - alive:  # deleted experiments, or a new journal replay
                    del self._paretos[gone]
                cache = self._paretos.get(experiment_id)
                if cache is None or cache.objectives != objectives:
                    cache = self._paretos[experiment_id] = ParetoCache(objectives)
                if cache.key != key:  # new trials, read from this snapshot (the digests' may be newer)
                    cache.add(self._objective_rows(handle, experiment, objectives, cache.mark))
                    if cache.n_seen != self._early_counts(handle, experiment_id, checks=False)[0]:
                        cache = self._paretos[experiment_id] = ParetoCache(objectives)  # a late commit below
                        cache.add(self._objective_rows(handle, experiment, objectives, 0))  # the mark: read all
                    cache.key = (cache.mark, cache.n_seen)
                return cache.view(experiment_id, pair, cache.n_seen, max_points)

        return self._run(work)

    def pareto_ready(self, experiment_id: int) -> bool:
        """Whether `pareto` would answer without reading all the experiment's trials: they were
        read for it before (those added since are read then; all again only after a late commit
        below the highest id), and neither the digests nor another Pareto view are being computed."""
        if self._counting() or not self._pareto_lock.acquire(blocking=False):
            return False
        try:
            return experiment_id in self._paretos
        finally:
            self._pareto_lock.release()

    def _after_build(self) -> None:
        """Compute the Pareto view of each multi-objective experiment, so that the first one
        asked for is answered from memory too."""
        for experiment_id in list(self._digests.by_experiment):
            with contextlib.suppress(TrackerError):  # deleted meanwhile: nothing to keep
                if len(objectives_of(self.overview(experiment_id).experiment)) > 1:
                    self.pareto(experiment_id)

    # what a backend provides -----------------------------------------------------------------

    @abstractmethod
    def download(self, owner: Owner, name: str) -> Download:
        """The artifact `name` of `owner`, to stream (`tracker.read.downloads`); raises NotFoundError."""

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
    def _ties_before(self, handle: H, trial: Trial) -> int:
        """How many complete trials of its experiment have the trial's value and a lower number."""

    @abstractmethod
    def _trials_by_number(self, handle: H, experiment_id: int, numbers: Sequence[int]) -> list[Trial]:
        """The complete trials with a value among these trial numbers."""

    @abstractmethod
    def _objective_rows(
        self, handle: H, experiment: Experiment, objectives: Objectives, after: int
    ) -> list[ObjectiveRow]:
        """One row per trial of the experiment with an id above `after`, any state: its id,
        number and its value of each objective (the trial's `value` for the first, its
        performance's number under the name for the others), or None when it is not complete or
        some value is missing or not finite."""

    @abstractmethod
    def _artifacts(self, handle: H, owner: Owner) -> list[Artifact]:
        """The owner's artifacts by name; raises NotFoundError for a missing owner."""

    @abstractmethod
    def _step_metrics(self, handle: H, trial_id: int) -> list[StepMetric]:
        """The trial's step metrics ordered by key and step."""

    # helpers ---------------------------------------------------------------------------------

    def _update(self, handle: H) -> None:
        """Bring the digests up to date (with `self._lock` held), unless this thread already did
        within the composite verb it runs."""
        if not getattr(self._local, "synced", False):
            self._sync(handle)

    def _once(self, handle: H, work: Callable[[H], T]) -> T:
        """`work` with one digest update for all its reads (none while counting: early answers
        do not read the digests)."""
        if self._counting():
            return work(handle)
        with self._lock:
            self._sync(handle)
        self._local.synced = True
        try:
            return work(handle)
        finally:
            self._local.synced = False

    def _overviews_in(self, handle: H, experiment_ids: Sequence[int]) -> list[ExperimentOverview]:
        records = self._experiments(handle, list(experiment_ids))
        if self._counting():
            return [self._early_overview(handle, records[i]) for i in experiment_ids]
        with self._lock:
            self._update(handle)
            digests = {i: self._digest(i) for i in experiment_ids}
            return [_overview(records[i], digests[i]) for i in experiment_ids]

    def _trials_in(self, handle: H, experiment_id: int, query: TrialPageQuery) -> Page[TrialRow]:
        experiment = self._experiments(handle, [experiment_id])[experiment_id]
        early = query.states is None and query.ttpt is None and self._counting()
        if early:
            total = self._early_counts(handle, experiment_id, checks=False)[0]
        else:
            with self._lock:
                self._update(handle)
                digest = self._digest(experiment_id)
                total = digest.count(query.states, query.ttpt)
        offset = decode_cursor(query.after)[0] if query.after else query.offset
        trials, last = self._trial_page(handle, experiment, query)
        if early:
            outcomes = self._latest_outcomes(handle, [t.id for t in trials])
            rows = tuple(TrialRow(t, outcomes.get(t.id)) for t in trials)
        else:
            with self._lock:
                rows = tuple(TrialRow(t, digest.check_of(t.id)) for t in trials)
        following = None
        if last is not None and len(trials) == query.limit and offset + len(trials) < total:
            following = encode_cursor((offset + len(trials), *last))
        return Page(rows, total, offset, query.limit, following)

    def _trial_in(self, handle: H, trial_id: int) -> TrialDetail:
        trial, experiment, results = self._trial_detail(handle, trial_id)
        ranked = trial.state == "complete" and trial.value is not None and not math.isnan(trial.value)
        ties = self._ties_before(handle, trial) if ranked else 0
        with self._lock:
            self._update(handle)
            digest = self._digest(experiment.id)
            rank = 1 + digest.better_than(trial.value) + ties if ranked and trial.value is not None else None
            return TrialDetail(trial, experiment, tuple(results), rank, digest.n_ranked)

    def _digest(self, experiment_id: int) -> Digest:
        digest = self._digests.by_experiment.get(experiment_id)
        if digest is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return digest


def _history(experiment_id: int, objective: str, digest: Digest, max_points: int) -> History:
    points, marks, checks, sampled = digest.history(max_points)
    best = tuple(Point(i, n, v, "complete") for n, v, i in digest.steps)
    outcomes = {}
    for p in (*points, *best):
        outcome = digest.check_of(p.trial_id)
        if outcome is not None:
            outcomes[p.trial_id] = outcome
    return History(
        experiment_id,
        objective,
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
