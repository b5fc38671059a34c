"""The browser of a JSON journal: pages over the replayed state, with per-experiment orders kept
up to date like the digests.

The state is already in memory. What would grow with the number of trials is sorting it on each
call, so each experiment keeps its trial ids in value order and in trial-number order (sorted
lists, updated by insertion from the trials added since the last call). New trials and checks are
the newest entries of the state's id-ordered dicts; a replay from the top (after a compaction)
starts everything again.
"""

from __future__ import annotations

import bisect
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from tracker.errors import NotFoundError
from tracker.journal import queries
from tracker.journal.items import from_item
from tracker.journal.state import JournalState
from tracker.read.browser import Browser, ExperimentPageQuery, TrialPageQuery, decode_cursor
from tracker.read.digest import CheckFeed, Digests, TrialFeed
from tracker.read.downloads import Download
from tracker.read.pareto_cache import ObjectiveRow
from tracker.store import codec
from tracker.store.objectives import Objectives
from tracker.store.records import Artifact, Experiment, Owner, StepMetric, Trial, TTPTResult

if TYPE_CHECKING:
    from tracker.journal.replica import JournalReplica

T = TypeVar("T")


class _Orders:
    """An experiment's trial ids in the two indexed orders. Value entries are (key, trial number,
    id) with key = -value when maximising, so ascending order is best first."""

    def __init__(self, direction: str) -> None:
        self.sign = -1.0 if direction == "maximize" else 1.0
        self.by_value: list[tuple[float, int, int]] = []  # trials with a value, any state
        self.ranked: list[tuple[float, int, int]] = []  # complete trials with a value
        self.unvalued: list[tuple[int, int]] = []  # (trial number, id)
        self.by_number: list[tuple[int, int]] = []  # (trial number, id)

    def add(self, t: TrialFeed) -> None:
        entry = (t.trial_number, t.id)
        if not self.by_number or entry > self.by_number[-1]:
            self.by_number.append(entry)
        else:
            bisect.insort(self.by_number, entry)
        if t.value is None or math.isnan(t.value):
            bisect.insort(self.unvalued, entry)
            return
        keyed = (self.sign * t.value, t.trial_number, t.id)
        bisect.insort(self.by_value, keyed)
        if t.state == "complete":
            bisect.insort(self.ranked, keyed)

    def key(self, value: float) -> float:
        return self.sign * value

    def numeric(self, descending: bool) -> bool:
        """Whether `descending` (by value) is the best-first order of the keys."""
        return descending == (self.sign < 0)


Rows = list[ObjectiveRow]


class JournalBrowser(Browser[JournalState]):
    answers_early = False  # its best trials come from the orders kept with the digests

    def __init__(self, replica: JournalReplica) -> None:
        super().__init__()
        self.replica = replica
        self._state: JournalState | None = None
        self._orders: dict[int, _Orders] = {}

    def _run(self, work: Callable[[JournalState], T]) -> T:
        with self.replica.reading() as state:
            return work(state)

    def _objective_rows(self, state: JournalState, e: Experiment, objectives: Objectives, after: int) -> Rows:
        return _objective_rows(state, e.id, objectives, after)

    def _artifacts(self, state: JournalState, owner: Owner) -> list[Artifact]:
        return queries.artifacts(state, owner)

    def _step_metrics(self, state: JournalState, trial_id: int) -> list[StepMetric]:
        return queries.step_metrics(state, trial_id, None)

    def download(self, owner: Owner, name: str) -> Download:
        """Read from the artifact's file (`tracker.journal.blob_folder`): one tag byte, then the
        packed bytes."""
        from tracker.journal.blob_folder import BlobFolder

        def find(state: JournalState) -> Artifact:
            found = [a for a in queries.artifacts(state, owner) if a.name == name]
            if not found:
                raise NotFoundError(f"{owner.kind} {owner.id} has no artifact named {name!r}")
            return found[0]

        artifact = self._run(find)
        path = BlobFolder(self.replica.path).file(artifact.sha256)
        try:
            with path.open("rb") as f:
                codec = "zstd" if f.read(1) == b"Z" else "none"
        except OSError:
            raise NotFoundError(f"the artifact file {path} is missing; restore it from a backup") from None

        def read_packed(offset: int, n: int) -> bytes:
            with path.open("rb") as f:
                f.seek(1 + offset)
                return f.read(n)

        return Download(artifact, codec, read_packed)

    # digests ---------------------------------------------------------------------------------

    def _sync(self, state: JournalState) -> None:
        digests = self._digests
        if state is not self._state:  # a new replay: start again
            self._digests = digests = Digests()
            self._orders = {}
            self._state = state
        digests.keep({i: e["direction"] for i, e in state.experiments.items()})
        for experiment_id in list(self._orders):
            if experiment_id not in state.experiments:
                del self._orders[experiment_id]
        new_trials = list(_newer(state.trials, digests.trial_mark))
        new_checks = list(_newer(state.ttpt, digests.check_mark))
        feeds = [_trial_feed(t) for t in new_trials]
        for feed in feeds:
            orders = self._orders.get(feed.experiment_id)
            if orders is None:
                direction = state.experiments[feed.experiment_id]["direction"]
                orders = self._orders[feed.experiment_id] = _Orders(direction)
            orders.add(feed)
        checks = []
        for item in new_checks:
            t = state.trials[item["trial_id"]]
            checks.append(
                CheckFeed(
                    item["id"],
                    t["id"],
                    t["experiment_id"],
                    t["trial_number"],
                    t["state"],
                    t["value"],
                    bool(item["passed"]),
                    int(item["num_violations"]),
                    _boundaries(item.get("metrics")),
                )
            )
        digests.feed(feeds, checks)
        digests.ready = True

    # experiments -----------------------------------------------------------------------------

    def _experiment_ids(
        self, state: JournalState, query: ExperimentPageQuery, sort: str, descending: bool
    ) -> list[int]:
        needle = query.text.lower() if query.text else None
        chosen = []
        for experiment_id, item in state.experiments.items():
            if query.ids is not None and experiment_id not in query.ids:
                continue
            if needle and needle not in item["name"].lower() and needle not in item["template"].lower():
                continue
            if query.tag is not None and not _tagged(item["tags"], *query.tag):
                continue
            if query.created_after is not None or query.created_before is not None:
                created = codec.parse_time(item["created_at"])
                if query.created_after is not None and created < query.created_after:
                    continue
                if query.created_before is not None and created >= query.created_before:
                    continue
            chosen.append(experiment_id)
        if sort == "created_at":
            key: Callable[[int], Any] = lambda i: codec.parse_time(state.experiments[i]["created_at"])  # noqa: E731
        elif sort == "id":
            key = lambda i: i  # noqa: E731
        else:
            key = lambda i: state.experiments[i][sort]  # noqa: E731
        chosen.sort()
        chosen.sort(key=key, reverse=descending)
        if descending:  # ties by id ascending, as the SQL order says
            chosen = _ties_ascending(chosen, key)
        return chosen

    def _experiments(self, state: JournalState, ids: Sequence[int]) -> dict[int, Experiment]:
        return {i: queries.experiment(state, i) for i in ids}

    # trials ----------------------------------------------------------------------------------

    def _trial_page(
        self, state: JournalState, experiment: Experiment, query: TrialPageQuery
    ) -> tuple[list[Trial], tuple[float | None, int] | None]:
        orders = self._orders.get(experiment.id) or _Orders(experiment.direction)
        descending = query.is_descending(experiment.direction)
        cursor = decode_cursor(query.after) if query.after else None
        skip = 0 if cursor else query.offset

        def wanted(trial_id: int) -> bool:
            t = state.trials[trial_id]
            if query.states is not None and t["state"] not in query.states:
                return False
            if query.ttpt is not None:
                latest = queries.latest_ttpt(state, trial_id)
                outcome = "unchecked" if latest is None else ("passed" if latest["passed"] else "failed")
                return outcome == query.ttpt
            return True

        ids: Iterator[int]
        metric = query.metric
        if metric is not None:
            ids = iter(self._by_metric(state, experiment.id, *metric, descending))
        elif query.sort == "trial_number":
            entries = reversed(orders.by_number) if descending else iter(orders.by_number)
            if cursor:
                entries = (e for e in entries if (e[0] < cursor[2] if descending else e[0] > cursor[2]))
            ids = (i for _, i in entries)
        else:
            ids = self._by_value(orders, descending, cursor)
        stop = min(skip + query.limit, sys.maxsize)  # islice's bound; offsets are below 2**63
        page_ids = list(islice((i for i in ids if wanted(i)), skip, stop))
        page = [queries.trial(state, state.trials[i]) for i in page_ids]
        if metric is not None or not page:
            return page, None
        last = page[-1]
        return page, (None if query.sort == "trial_number" else last.value, last.trial_number)

    @staticmethod
    def _by_value(orders: _Orders, descending: bool, cursor: tuple[int, float | None, int] | None) -> Iterator[int]:
        """Valued trials (ties by trial number), then the others by trial number."""
        forward = orders.numeric(descending)
        values = orders.by_value
        if cursor is None or cursor[1] is not None:
            if cursor is None or cursor[1] is None:
                ordered: Iterator[tuple[float, int, int]] = (
                    iter(values) if forward else _reversed_ties(values, len(values))
                )
            else:
                k, n = orders.key(cursor[1]), cursor[2]
                if forward:
                    start = bisect.bisect_left(values, (k, n + 1, -1))
                    ordered = (values[j] for j in range(start, len(values)))
                else:
                    end = bisect.bisect_right(values, (k, math.inf, math.inf))
                    ordered = (e for e in _reversed_ties(values, end) if e[0] < k or e[1] > n)
            yield from (i for _, _, i in ordered)
            after = -1
        else:
            after = cursor[2]
        yield from (i for number, i in orders.unvalued if number > after)

    @staticmethod
    def _by_metric(
        state: JournalState, experiment_id: int, field: str, path: tuple[str, ...], descending: bool
    ) -> list[int]:
        numbers: list[tuple[float, int, int]] = []
        texts: list[tuple[str, int, int]] = []
        missing: list[tuple[int, int]] = []
        for number, trial_id in state.by_experiment[experiment_id].items():
            leaf: Any = state.trials[trial_id].get(field)
            for part in path:
                leaf = leaf.get(part) if isinstance(leaf, dict) else None
            if type(leaf) in (int, float) and not (isinstance(leaf, float) and math.isnan(leaf)):
                numbers.append((float(leaf), number, trial_id))
            elif type(leaf) is str:
                texts.append((leaf, number, trial_id))
            else:
                missing.append((number, trial_id))
        numbers.sort(key=lambda e: (-e[0] if descending else e[0], e[1]))
        texts.sort(key=lambda e: e[1])
        texts.sort(key=lambda e: e[0], reverse=descending)
        missing.sort()
        return [e[2] for e in numbers] + [e[2] for e in texts] + [e[1] for e in missing]

    def _trial_detail(self, state: JournalState, trial_id: int) -> tuple[Trial, Experiment, list[TTPTResult]]:
        trial = queries.trial(state, queries.trial_item(state, trial_id))
        experiment = queries.experiment(state, trial.experiment_id)
        ids = sorted(state.ttpt_by_trial.get(trial_id, []))  # not queries.ttpt_results: it scans every result
        return trial, experiment, [from_item(TTPTResult, state.ttpt[i]) for i in ids]

    def _ties_before(self, state: JournalState, trial: Trial) -> int:
        with self._lock:
            self._sync(state)
        orders = self._orders.get(trial.experiment_id)
        if orders is None or trial.value is None:
            return 0
        key = orders.key(trial.value)
        ranked = orders.ranked
        return bisect.bisect_left(ranked, (key, trial.trial_number, -1)) - bisect.bisect_left(ranked, (key, -1, -1))

    def _early_counts(self, state: JournalState, experiment_id: int, checks: bool = True) -> tuple[int, int, int]:
        return _counts(state, experiment_id, checks)

    def _latest_outcomes(self, state: JournalState, trial_ids: Sequence[int]) -> dict[int, bool]:
        return {
            t: bool(state.ttpt[max(state.ttpt_by_trial[t])]["passed"]) for t in trial_ids if state.ttpt_by_trial.get(t)
        }

    def _best_trials(self, state: JournalState, experiment_id: int, n: int) -> list[Trial]:
        orders = self._orders.get(experiment_id)
        if orders is None:
            return []
        return [queries.trial(state, state.trials[i]) for _, _, i in orders.ranked[:n]]

    def _trials_by_number(self, state: JournalState, experiment_id: int, numbers: Sequence[int]) -> list[Trial]:
        mine = state.by_experiment.get(experiment_id, {})
        found = []
        for number in sorted(numbers):
            trial_id = mine.get(number)
            if trial_id is not None:
                t = state.trials[trial_id]
                if t["state"] == "complete" and t["value"] is not None:
                    found.append(queries.trial(state, t))
        return found


def _objective_rows(state: JournalState, experiment_id: int, objectives: Objectives, after: int) -> Rows:
    """From the replayed state: every trial of the experiment at first, then the newest entries
    of the id-ordered trials."""
    if after:
        items = [t for t in _newer(state.trials, after) if t["experiment_id"] == experiment_id]
    else:
        items = [state.trials[i] for i in state.by_experiment.get(experiment_id, {}).values()]
    others = [name for name, _ in objectives[1:]]
    out: list[ObjectiveRow] = []
    for t in items:
        values: tuple[float, ...] | None = None
        first = codec.number(t["value"])
        if t["state"] == "complete" and first is not None and math.isfinite(first):
            performance = t["performance"]
            rest = [codec.number(performance.get(n)) if type(performance) is dict else None for n in others]
            if all(v is not None and math.isfinite(v) for v in rest):
                values = (float(first), *(float(v) for v in rest if v is not None))
        out.append((t["id"], t["trial_number"], values))
    return out


def _counts(state: JournalState, experiment_id: int, checks: bool) -> tuple[int, int, int]:
    """(trials, TTPT checks, failed checks) of the experiment; (trials, 0, 0) without `checks`."""
    mine = state.by_experiment.get(experiment_id, {}).values()
    found = [state.ttpt[c] for t in mine for c in state.ttpt_by_trial.get(t, [])] if checks else []
    return len(mine), len(found), sum(1 for c in found if not c["passed"])


def _tagged(tags: dict[str, str], name: str, value: str | None) -> bool:
    return name in tags and (value is None or tags[name] == value)


def _newer(items: dict[int, dict[str, Any]], mark: int) -> list[dict[str, Any]]:
    """The items with ids above `mark`: the newest entries of an id-ordered dict."""
    if not mark:
        return list(items.values())
    found = []
    for item in reversed(items.values()):
        if item["id"] <= mark:
            break
        found.append(item)
    found.reverse()
    return found


def _trial_feed(t: dict[str, Any]) -> TrialFeed:
    value = t["value"]
    return TrialFeed(
        t["id"], t["experiment_id"], t["trial_number"], t["state"], None if value is None else float(value)
    )


def _reversed_ties(entries: list[tuple[float, int, int]], end: int) -> Iterator[tuple[float, int, int]]:
    """entries[:end] from the last, equal keys still by ascending trial number (lazily)."""
    position = end - 1
    while position >= 0:
        start = position
        while start > 0 and entries[start - 1][0] == entries[position][0]:
            start -= 1
        yield from entries[start : position + 1]
        position = start - 1


def _ties_ascending(ids: list[int], key: Callable[[int], Any]) -> list[int]:
    out: list[int] = []
    start = 0
    while start < len(ids):
        end = start + 1
        while end < len(ids) and key(ids[end]) == key(ids[start]):
            end += 1
        out.extend(sorted(ids[start:end]))
        start = end
    return out


def _boundaries(metrics: Any) -> int | None:
    """The `boundaries` count in a check's metrics, when it is a whole number."""
    found = metrics.get("boundaries") if isinstance(metrics, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None
