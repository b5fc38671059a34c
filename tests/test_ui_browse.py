"""The browsing contract (`Repository.browser()`), on every backend: pages sorted, filtered and
paginated as a plain-Python reference over all the trials says; digests that follow later
writes; histories within their budget; and a reader that never writes."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_store_url
from tracker import ExperimentTracker, NotFoundError, ReadOnlyStoreError, SchemaError, StoreError, ValidationError
from tracker.read.browser import (
    EXPERIMENT_SORTS,
    ExperimentPageQuery,
    TrialPageQuery,
)
from tracker.store.repository import Repository
from tracker.stores import open_reader


def seed(t: ExperimentTracker) -> dict[str, int]:
    """Three experiments: a leaky one (maximise, failed checks among the best), a minimising one
    with no checks, and a valid one whose best three trials passed."""
    rng = random.Random(15)
    alpha = t.create_experiment("alpha momentum", "Momentum", "tpe")
    items = []
    for n in range(60):
        state = "pruned" if n % 11 == 5 else ("failed" if n % 13 == 7 else "complete")
        perf: dict[str, Any] = {}
        if state == "complete":
            perf = {"sharpe": rng.gauss(0, 1), "ret": rng.random()}
            if n % 9 == 0:
                perf["ret"] = "n/a"  # a text where numbers are expected: sorts after them
        params = {"x": rng.random(), "kind": rng.choice(["ema", "sma", "wma"]), "deep": {"depth": n % 4}}
        item: dict[str, Any] = {"trial_number": n, "params": params, "performance": perf, "state": state}
        if n % 4 == 0:
            item["ttpt"] = {"passed": n % 12 != 0, "num_violations": 0 if n % 12 else 3}
        items.append(item)
    t.log_trials(alpha, items)
    beta = t.create_experiment("beta reversion", "MeanRev", "grid", objective="loss", direction="minimize")
    t.log_trials(
        beta,
        [{"trial_number": n, "params": {"x": n}, "performance": {"loss": (n - 7) ** 2 + 0.5}} for n in range(15)],
    )
    gamma = t.create_experiment("gamma carry", "Carry", "tpe")
    ids = t.log_trials(
        gamma, [{"trial_number": n, "params": {"y": n}, "performance": {"sharpe": n / 10}} for n in range(12)]
    )
    for trial_id in ids[-3:]:
        t.log_ttpt_result(trial_id, True, 0, {})
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


@pytest.fixture
def seeded(store_url: str) -> Iterator[tuple[str, dict[str, int], Repository]]:
    with ExperimentTracker(store_url) as t:
        ids = seed(t)
    reader = open_reader(store_url)
    try:
        yield store_url, ids, reader
    finally:
        reader.close()


def all_trials(url: str, experiment_id: int) -> list[dict[str, Any]]:
    with ExperimentTracker(url) as t:
        return t.get_trials(experiment_id)


def leaf(value: Any, path: list[str]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def reference_order(trials: list[dict[str, Any]], sort: str, descending: bool) -> list[int]:
    """Trial numbers in the order the contract promises, computed over every trial."""
    if sort == "trial_number":
        return sorted((t["trial_number"] for t in trials), reverse=descending)
    if sort == "value":
        valued = [t for t in trials if t["value"] is not None]
        valued.sort(key=lambda t: (-t["value"] if descending else t["value"], t["trial_number"]))
        rest = sorted(t["trial_number"] for t in trials if t["value"] is None)
        return [t["trial_number"] for t in valued] + rest
    field, _, key = sort.partition(".")
    leaves = [(leaf(t[field], key.split(".")), t["trial_number"]) for t in trials]
    numbers = [(v, n) for v, n in leaves if type(v) in (int, float)]
    texts = [(v, n) for v, n in leaves if type(v) is str]
    numbers.sort(key=lambda e: (-e[0] if descending else e[0], e[1]))
    texts.sort(key=lambda e: e[1])
    texts.sort(key=lambda e: e[0], reverse=descending)
    missing = sorted(n for v, n in leaves if type(v) not in (int, float, str))
    return [n for _, n in numbers] + [n for _, n in texts] + missing


def outcome(t: dict[str, Any]) -> str:
    check = t["ttpt_result"]
    return "unchecked" if check is None else ("passed" if check["passed"] else "failed")


def page_through(reader: Repository, experiment_id: int, query: dict[str, Any], limit: int) -> tuple[list[int], int]:
    numbers: list[int] = []
    offset = 0
    while True:
        page = reader.browser().trials(experiment_id, TrialPageQuery(offset=offset, limit=limit, **query))
        numbers += [row.trial.trial_number for row in page.items]
        offset += limit
        if offset >= page.total:
            return numbers, page.total


class TestTrialPages:
    @pytest.mark.parametrize(
        "sort", ["trial_number", "value", "performance.ret", "performance.sharpe", "params.kind", "params.deep.depth"]
    )
    @pytest.mark.parametrize("descending", [None, True, False])
    def test_every_sort_pages_through_in_the_reference_order(
        self, seeded: tuple[str, dict[str, int], Repository], sort: str, descending: bool | None
    ) -> None:
        url, ids, reader = seeded
        trials = all_trials(url, ids["alpha"])
        natural = {"trial_number": False, "value": True}.get(sort, True)
        expected = reference_order(trials, sort, natural if descending is None else descending)
        numbers, total = page_through(reader, ids["alpha"], {"sort": sort, "descending": descending}, 7)
        assert total == len(trials)
        assert numbers == expected

    def test_a_minimising_experiment_lists_its_lowest_values_first(
        self, seeded: tuple[str, dict[str, int], Repository]
    ) -> None:
        _, ids, reader = seeded
        page = reader.browser().trials(ids["beta"], TrialPageQuery(sort="value", limit=3))
        assert [row.trial.trial_number for row in page.items] == [7, 6, 8]
        assert [row.trial.value for row in page.items] == [0.5, 1.5, 1.5]

    @pytest.mark.parametrize("states", [("complete",), ("pruned", "failed"), None])
    @pytest.mark.parametrize("ttpt", ["passed", "failed", "unchecked", None])
    @pytest.mark.parametrize("sort", ["value", "trial_number", "params.x"])
    def test_state_and_ttpt_filters_give_the_reference_rows_and_totals(
        self,
        seeded: tuple[str, dict[str, int], Repository],
        states: tuple[str, ...] | None,
        ttpt: str | None,
        sort: str,
    ) -> None:
        url, ids, reader = seeded
        trials = [
            t
            for t in all_trials(url, ids["alpha"])
            if (states is None or t["state"] in states) and (ttpt is None or outcome(t) == ttpt)
        ]
        numbers, total = page_through(reader, ids["alpha"], {"sort": sort, "states": states, "ttpt": ttpt}, 4)
        assert total == len(trials)
        assert numbers == reference_order(trials, sort, sort != "trial_number")
        rows = reader.browser().trials(ids["alpha"], TrialPageQuery(limit=100, states=states, ttpt=ttpt)).items
        by_number = {t["trial_number"]: t for t in trials}
        assert all((r.ttpt_passed is None) == (by_number[r.trial.trial_number]["ttpt_result"] is None) for r in rows)

    @pytest.mark.parametrize("sort", ["value", "trial_number"])
    @pytest.mark.parametrize("descending", [True, False])
    @pytest.mark.parametrize("ttpt", [None, "unchecked"])
    def test_following_next_cursors_gives_the_same_rows_as_offsets(
        self, seeded: tuple[str, dict[str, int], Repository], sort: str, descending: bool, ttpt: str | None
    ) -> None:
        _, ids, reader = seeded
        by_offset, total = page_through(reader, ids["alpha"], {"sort": sort, "descending": descending, "ttpt": ttpt}, 6)
        by_cursor: list[int] = []
        offsets = []
        page = reader.browser().trials(
            ids["alpha"], TrialPageQuery(limit=6, sort=sort, descending=descending, ttpt=ttpt)
        )
        while True:
            by_cursor += [row.trial.trial_number for row in page.items]
            offsets.append(page.offset)
            if page.next is None:
                break
            page = reader.browser().trials(
                ids["alpha"], TrialPageQuery(limit=6, sort=sort, descending=descending, ttpt=ttpt, after=page.next)
            )
        assert by_cursor == by_offset
        assert len(by_cursor) == total
        assert offsets == list(range(0, total, 6))


class TestExperimentPages:
    @pytest.mark.parametrize("sort", EXPERIMENT_SORTS)
    @pytest.mark.parametrize("descending", [False, True])
    def test_every_sort_orders_like_the_reference(
        self, seeded: tuple[str, dict[str, int], Repository], sort: str, descending: bool
    ) -> None:
        url, _, reader = seeded
        with ExperimentTracker(url) as t:
            rows = t.list_experiments(stats=True)
        key = {"ttpt_total": "ttpt_validations"}.get(sort, sort)
        valued = [r for r in rows if r[key] is not None]
        valued.sort(key=lambda r: r["id"])
        valued.sort(key=lambda r: r[key], reverse=descending)
        expected = [r["id"] for r in valued] + [r["id"] for r in rows if r[key] is None]
        found = [
            o.experiment.id
            for o in reader.browser().experiments(ExperimentPageQuery(sort=sort, descending=descending)).items
        ]
        assert found == expected

    def test_filters_and_pages(self, seeded: tuple[str, dict[str, int], Repository]) -> None:
        _, _, reader = seeded
        browse = reader.browser()

        def names(**query: Any) -> list[str]:
            return [o.experiment.name for o in browse.experiments(ExperimentPageQuery(**query)).items]

        assert names(text="MOMENTUM") == ["alpha momentum"]
        assert names(text="meanrev") == ["beta reversion"]
        assert names(max_violation_rate=0.0) == ["gamma carry"]
        assert names(max_violation_rate=0.5) == ["alpha momentum", "gamma carry"]
        best = {
            o.experiment.name: (o.best_value, o.experiment.direction)
            for o in browse.experiments(ExperimentPageQuery()).items
        }
        for threshold in (0.5, 1.05, 2.0):
            expected = [
                n
                for n, (b, d) in best.items()
                if b is not None and (b >= threshold if d == "maximize" else b <= threshold)
            ]
            assert names(min_best_value=threshold) == expected
        assert names(min_best_value=0.5, text="beta") == ["beta reversion"]  # minimising: best 0.5 <= 0.5
        assert names(min_best_value=0.4, text="beta") == []
        assert names(created_after=datetime.now(UTC) + timedelta(days=1)) == []
        assert names(created_before=datetime.now(UTC) + timedelta(days=1)) == [
            "alpha momentum",
            "beta reversion",
            "gamma carry",
        ]
        assert names(tag=("anything", None)) == []
        first = browse.experiments(ExperimentPageQuery(limit=2))
        second = browse.experiments(ExperimentPageQuery(limit=2, offset=2))
        assert (first.total, second.total) == (3, 3)
        assert [o.experiment.name for o in first.items + second.items] == names()

    def test_the_tag_filter_matches_a_tag_name_or_an_exact_pair(
        self, seeded: tuple[str, dict[str, int], Repository]
    ) -> None:
        url, ids, reader = seeded
        with ExperimentTracker(url) as t:
            t.set_tags(("experiment", ids["alpha"]), {"desk": "fx", "stage": "final"})
            t.set_tags(("experiment", ids["beta"]), {"desk": "rates", "empty": ""})
            t.set_tags(("experiment", ids["gamma"]), {"stage": "a=b"})
            gamma_trial = t.get_trials(ids["gamma"], limit=1)[0]["id"]
            t.set_tags(("trial", gamma_trial), {"desk": "fx"})  # a trial's tag is not its experiment's
        browse = reader.browser()

        def names(tag: tuple[str, str | None], **query: Any) -> list[str]:
            return [
                o.experiment.name.split()[0] for o in browse.experiments(ExperimentPageQuery(tag=tag, **query)).items
            ]

        assert names(("desk", None)) == ["alpha", "beta"]
        assert names(("desk", "fx")) == ["alpha"]
        assert names(("desk", "FX")) == []
        assert names(("stage", "a=b")) == ["gamma"]
        assert names(("empty", "")) == ["beta"]
        assert names(("empty", None)) == ["beta"]
        best = {n: browse.overview(ids[n]).best_value or 0.0 for n in ("alpha", "gamma")}
        assert names(("stage", None), sort="best_value", descending=True) == sorted(best, key=best.__getitem__)[::-1]
        assert names(("desk", None), text="reversion") == ["beta"]
        assert browse.experiments(ExperimentPageQuery(tag=("desk", None), limit=1, offset=1)).total == 2
        with pytest.raises(ValidationError, match=r"^tag: tag name 'a!' is not valid"):
            ExperimentPageQuery(tag=("a!", None))

    def test_overviews_count_trials_checks_and_give_verdicts(
        self, seeded: tuple[str, dict[str, int], Repository]
    ) -> None:
        url, ids, reader = seeded
        with ExperimentTracker(url) as t:
            expected = {r["id"]: r for r in t.list_experiments(stats=True)}
            best = {i: t.best_trial(i) for i in ids.values()}
            judged = {i: t.verdict(i) for i in ids.values()}
            compared = {r["id"]: r for r in t.compare_experiments(list(ids.values()))}
        for experiment_id in ids.values():
            o = reader.browser().overview(experiment_id)
            assert {**asdict(o.verdict), "coverage": o.verdict.coverage} == judged[experiment_id]  # one rule
            assert o.improvement == compared[experiment_id]["improvement"]
            row = expected[experiment_id]
            assert (o.n_trials, o.best_value, o.ttpt_total) == (
                row["n_trials"],
                row["best_value"],
                row["ttpt_validations"],
            )
            assert o.ttpt_failed == row["ttpt_violations"]
            assert o.n_by_state == row["n_by_state"]
            assert o.best_trial_id == best[experiment_id]["id"]
        assert reader.browser().overview(ids["gamma"]).verdict.status == "valid"
        assert reader.browser().overview(ids["gamma"]).verdict.coverage == "best 3 of 12 checked, 3 checks in all"
        assert reader.browser().overview(ids["beta"]).verdict.status == "unchecked"
        leaky = reader.browser().overview(ids["alpha"]).verdict
        assert leaky.status == ("look-ahead" if leaky.best_failed else "unchecked")


class TestDigests:
    def test_later_writes_new_experiments_and_deletes_show_on_the_next_call(
        self, seeded: tuple[str, dict[str, int], Repository]
    ) -> None:
        url, ids, reader = seeded
        browse = reader.browser()
        before = browse.overview(ids["beta"])
        with ExperimentTracker(url) as t:
            t.log_trial(ids["beta"], 100, {"x": 100}, {"loss": -1.0})
            [trial] = t.get_trials(ids["beta"], order_by="value", limit=1)
            t.log_ttpt_result(trial["id"], False, 4, {})
            t.log_ttpt_result(t.get_trials(ids["beta"], order_by="value", limit=2)[1]["id"], True, 0, {})
            t.delete_experiment(ids["gamma"])
            delta = t.create_experiment("delta", "T", "m")
            t.log_trial(delta, 0, {}, {"sharpe": 2.0})
        after = browse.overview(ids["beta"])
        assert (after.n_trials, after.best_value, after.ttpt_total) == (before.n_trials + 1, -1.0, 2)
        assert after.verdict.status == "look-ahead"
        assert after.version != before.version
        listed = [o.experiment.name for o in browse.experiments(ExperimentPageQuery()).items]
        assert listed == ["alpha momentum", "beta reversion", "delta"]
        assert browse.trials(ids["beta"], TrialPageQuery(sort="value", limit=1)).items[0].trial.trial_number == 100
        assert browse.history(ids["beta"], 100).best[-1].value == -1.0
        with pytest.raises(NotFoundError, match=f"experiment {ids['gamma']} does not exist"):
            browse.overview(ids["gamma"])


def test_history_keeps_every_running_best_step_and_both_extremes_within_max_points(store_url: str) -> None:
    rng = random.Random(3)
    with ExperimentTracker(store_url) as t:
        e = t.create_experiment("long", "T", "m")
        numbers = list(range(3_000))
        rng.shuffle(numbers)  # logged out of order, as parallel workers do
        items = []
        for n in numbers:
            state = "pruned" if n % 50 == 3 else "complete"
            item: dict[str, Any] = {
                "trial_number": n,
                "params": {},
                "performance": {"sharpe": math.sin(n / 40) * n / 100 + rng.gauss(0, 1)} if state == "complete" else {},
                "state": state,
            }
            if n % 10 == 0:
                item["ttpt"] = {"passed": n % 30 != 0, "num_violations": 0 if n % 30 else 1}
            items.append(item)
        for start in range(0, len(items), 700):
            t.log_trials(e, items[start : start + 700])
        trials = t.get_trials(e)
    valued = sorted((x["trial_number"], x["value"]) for x in trials if x["value"] is not None)
    steps, best = [], -math.inf
    for n, v in valued:
        if v > best:
            steps.append((n, v))
            best = v
    with _reader(store_url) as reader:
        h = reader.browser().history(e, 200)
    assert len(h.points) + len(h.marks) + len(h.checks) <= 200
    assert [(p.trial_number, p.value) for p in h.best] == steps
    shown = {(p.trial_number, p.value) for p in h.points}
    assert set(steps) <= shown
    assert min(valued, key=lambda p: p[1]) in shown
    assert max(valued, key=lambda p: p[1]) in shown
    assert h.sampled
    assert h.marks
    assert all(p.state == "pruned" for p in h.marks)
    assert any(not c.passed for c in h.checks)
    assert {c.trial_number % 10 for c in h.checks} == {0}


class _reader:
    def __init__(self, url: str) -> None:
        self.repository = open_reader(url)

    def __enter__(self) -> Repository:
        return self.repository

    def __exit__(self, *_: object) -> None:
        self.repository.close()


def test_trial_detail_gives_the_rank_among_complete_trials_and_every_result(
    seeded: tuple[str, dict[str, int], Repository],
) -> None:
    url, ids, reader = seeded
    trials = all_trials(url, ids["alpha"])
    ranked = sorted(
        (t for t in trials if t["state"] == "complete" and t["value"] is not None),
        key=lambda t: (-t["value"], t["trial_number"]),
    )
    for t in ranked[:5] + ranked[-2:]:
        detail = reader.browser().trial(t["id"])
        assert detail.rank == ranked.index(t) + 1
        assert detail.n_ranked == len(ranked)
    pruned = next(t for t in trials if t["state"] == "pruned")
    assert reader.browser().trial(pruned["id"]).rank is None
    checked = next(t for t in trials if t["ttpt_result"] is not None)
    assert [r.passed for r in reader.browser().trial(checked["id"]).results] == [checked["ttpt_result"]["passed"]]


def test_the_sample_holds_the_best_trials_and_random_others(seeded: tuple[str, dict[str, int], Repository]) -> None:
    url, ids, reader = seeded
    trials = all_trials(url, ids["alpha"])
    ranked = sorted((t for t in trials if t["state"] == "complete"), key=lambda t: (-t["value"], t["trial_number"]))
    sample = reader.browser().sample(ids["alpha"], best=5, drawn=10)
    assert [t.id for t in sample.trials[:5]] == [t["id"] for t in ranked[:5]]
    assert sample.n_random == len(sample.trials) - 5 <= 10
    assert len({t.id for t in sample.trials}) == len(sample.trials)
    assert all(t.state == "complete" for t in sample.trials)
    assert sample.of == len(ranked)
    assert "drawn at random" in sample.description


class TestReadOnly:
    def test_a_reader_refuses_every_write(self, seeded: tuple[str, dict[str, int], Repository]) -> None:
        from tracker.store.records import NewExperiment

        _, ids, reader = seeded
        with pytest.raises(ReadOnlyStoreError):
            reader.add_experiment(NewExperiment("x", "t", "m", "sharpe", "maximize", datetime.now(UTC)))
        with pytest.raises(ReadOnlyStoreError):
            reader.delete_experiment(ids["alpha"])
        assert reader.get_experiment(ids["alpha"]).name == "alpha momentum"

    @pytest.mark.parametrize("name", ["missing/deeper/store.db", "missing/deeper/store.jsonl"])
    def test_a_missing_store_is_refused_and_nothing_is_created(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(StoreError, match="creates nothing"):
            open_reader(str(tmp_path / name))
        assert list(tmp_path.iterdir()) == []

    def test_an_empty_database_is_refused(self, tmp_path: Path) -> None:
        import sqlite3

        path = tmp_path / "empty.db"
        sqlite3.connect(path).close()
        path.write_bytes(b"")
        sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
        with pytest.raises(SchemaError, match="holds no tracker tables"):
            open_reader(f"sqlite:///{path}")


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_trial_committed_after_a_higher_id_is_still_counted_on_a_server(
    server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL and MariaDB hand out ids before commit: a transaction holding a lower id can
    commit after a higher id is visible. The browser keeps such gaps and finds the late row on a
    later call."""
    url = make_store_url(server, tmp_path, request)
    with ExperimentTracker(url) as slow, ExperimentTracker(url) as fast:
        experiment = slow.create_experiment("race", "T", "m")
        with _reader(url) as reader:
            browse = reader.browser()
            assert browse.overview(experiment).n_trials == 0
            with slow.transaction():
                slow.log_trial(experiment, 0, {}, {"sharpe": 5.0})  # takes the lower id, not yet committed
                fast.log_trial(experiment, 1, {}, {"sharpe": 1.0})  # a higher id, committed at once
                seen = browse.overview(experiment)
                assert (seen.n_trials, seen.best_value) == (1, 1.0)
            after = browse.overview(experiment)
            assert (after.n_trials, after.best_value) == (2, 5.0)
            assert browse.trials(experiment, TrialPageQuery(sort="value")).items[0].trial.trial_number == 0


def test_sorting_by_a_metric_on_the_index_agrees_with_the_json_order(store_url: str) -> None:
    """Ties across a page's edge, filters, and trials whose metric is a string, NaN, a tagged
    float or missing (they follow the numbers): every page as a reference sort says."""
    from tracker.read.browser import TrialPageQuery
    from tracker.stores import browser_of, open_reader

    odd: list[Any] = ["n/a", math.nan, 1e20, None]
    with ExperimentTracker(store_url) as t:
        e = t.create_experiment("ties", "T", "grid")
        for n in range(40):
            metric = odd[n % 4] if n % 10 == 9 else (n % 3) * 0.5
            perf = {"sharpe": n / 10} if metric is None else {"sharpe": n / 10, "m": metric}
            t.log_trial(e, n, {"x": n}, perf, state="pruned" if n % 7 == 0 else "complete")
    reader = open_reader(store_url)
    try:
        browser = browser_of(reader)
        for descending in (True, False):
            for states in (None, ("complete",)):
                numbers = [n for n in range(40) if states is None or n % 7 != 0]
                valued = [n for n in numbers if n % 10 != 9]
                sign = -1 if descending else 1
                reference = sorted(valued, key=lambda n: (sign * (n % 3) * 0.5, n))
                for offset in (0, 5, 11, len(valued) - 3):
                    query = TrialPageQuery(
                        offset=offset, limit=4, sort="performance.m", descending=descending, states=states
                    )
                    page = browser.trials(e, query)
                    shown = [r.trial.trial_number for r in page.items]
                    assert shown[: max(0, len(reference) - offset)] == reference[offset : offset + 4], (
                        descending,
                        states,
                        offset,
                    )
    finally:
        reader.close()
