"""A browser answers the first pages before its digests are built (`Browser.warm_in_background`):
while it counts, overviews, the experiments list in a column's order and unfiltered trial pages
come from the store's indexes, and they equal what the built digests give, but for what needs
every trial (left out, and said so). The other verbs wait for the digests.

Counting is made to last by holding the browser's digest lock while its builder thread waits for
it: real threads, real stores, no timing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from tracker import ExperimentTracker
from tracker.journal.browse import JournalBrowser
from tracker.read.browser import Browser, ExperimentPageQuery, TrialPageQuery
from tracker.stores import browser_of, open_reader
from tracker.ui import create_app

pytestmark = pytest.mark.early_answers


def seed(url: str) -> dict[str, int]:
    """Three experiments: a maximised one whose pruned trials beat its best complete ones, with
    re-checks that flip a trial's outcome both ways; a minimised one; an empty one."""
    with ExperimentTracker(url) as t:
        up = t.create_experiment("up", "Momentum", "tpe")
        items: list[dict[str, Any]] = []
        for n in range(40):
            state = "pruned" if n % 7 == 0 else "failed" if n % 11 == 0 else "complete"
            value = 100.0 + n if state == "pruned" else None if state == "failed" else float((n * 37) % 23)
            performance = {} if value is None else {"sharpe": value}
            item: dict[str, Any] = {"trial_number": n, "params": {"n": n}, "state": state, "performance": performance}
            if n % 3 == 0:
                item["ttpt"] = {"passed": n % 2 == 0, "num_violations": 0 if n % 2 == 0 else 3}
            items.append(item)
        ids = t.log_trials(up, items)
        for n in (1, 2, 4, 8, 15, 19):  # the best trials re-checked: the latest check counts
            t.log_ttpt_result(ids[n], False, 1)
            t.log_ttpt_result(ids[n], n % 2 == 1, 0 if n % 2 else 2)
        down = t.create_experiment("down", "MeanRev", "tpe", objective="drawdown", direction="minimize")
        t.log_trials(
            down, [{"trial_number": n, "params": {}, "performance": {"drawdown": float(n % 5)}} for n in range(12)]
        )
        empty = t.create_experiment("empty", "Carry", "grid")
    return {"up": up, "down": down, "empty": empty}


@contextmanager
def counting(browser: Browser[Any]) -> Iterator[threading.Thread]:
    """The browser between `warm_in_background` and the end of its build."""
    with browser._lock:  # the builder waits here, so the browser is still counting inside
        builder = browser.warm_in_background()
        yield builder
    builder.join(60)
    assert not builder.is_alive()


def test_early_answers_equal_the_built_ones_but_for_what_needs_every_trial(sql_url: str) -> None:
    ids = seed(sql_url)
    built = browser_of(open_reader(sql_url))
    early = browser_of(open_reader(sql_url))
    pages = [
        TrialPageQuery(sort="value", limit=7),
        TrialPageQuery(sort="trial_number", descending=True, limit=9),
        TrialPageQuery(sort="performance.sharpe", limit=5),
        TrialPageQuery(sort="value", limit=50, offset=30),
    ]
    with counting(early):
        listed = early.experiments(ExperimentPageQuery(sort="created_at", descending=True, limit=2, offset=1))
        views = {name: early.experiment_view(i, TrialPageQuery(sort="value", limit=5)) for name, i in ids.items()}
        trial_pages = {(i, q): early.trials(i, q) for i in ids.values() for q in pages}
        cursor = trial_pages[ids["up"], pages[0]].next
        following = early.trials(ids["up"], TrialPageQuery(sort="value", limit=4, after=cursor))
    reference = built.experiments(ExperimentPageQuery(sort="created_at", descending=True, limit=2, offset=1))
    assert listed.total == reference.total == 3
    assert [o.experiment.id for o in listed.items] == [o.experiment.id for o in reference.items]
    for name, experiment_id in ids.items():
        v, r = views[name], built.experiment_view(experiment_id, TrialPageQuery(sort="value", limit=5))
        o, want = v.overview, r.overview
        assert o.counting
        assert not want.counting
        assert (o.n_trials, o.best_value, o.best_trial_id, o.ttpt_total, o.ttpt_failed) == (
            want.n_trials,
            want.best_value,
            want.best_trial_id,
            want.ttpt_total,
            want.ttpt_failed,
        )
        exact = ("status", "best_k", "best_checked", "best_failed", "checks", "failed_checks")
        assert [getattr(o.verdict, k) for k in exact] == [getattr(want.verdict, k) for k in exact]
        assert (o.n_by_state, o.ttpt_checked_trials, o.improvement, o.verdict.n_ranked) == ({}, None, None, None)
        if want.verdict.best_k:  # the coverage says what is known, not a number of ranked trials yet
            assert o.verdict.coverage.startswith(
                f"{want.verdict.best_checked} of the best {want.verdict.best_k} checked"
            )
        assert v.trials == r.trials
        if r.best is None:
            assert v.best is None
        else:
            assert v.best is not None
            assert v.best.trial == r.best.trial
            assert v.best.results == r.best.results
            assert (v.best.rank, r.best.rank, v.best.n_ranked) == (1, 1, None)
    for (experiment_id, query), page in trial_pages.items():
        assert page == built.trials(experiment_id, query), query
    assert cursor is not None
    assert following == built.trials(ids["up"], TrialPageQuery(sort="value", limit=4, after=cursor))
    assert any(row.ttpt_passed is False for row in trial_pages[ids["up"], pages[0]].items)
    after = early.overview(ids["up"])
    assert not after.counting
    assert after == built.overview(ids["up"])


def test_what_needs_every_trial_waits_for_the_digests(sql_url: str) -> None:
    ids = seed(sql_url)
    browser = browser_of(open_reader(sql_url))
    waiting: list[Callable[[], Any]] = [
        lambda: browser.experiments(ExperimentPageQuery(sort="best_value")),
        lambda: browser.experiments(ExperimentPageQuery(max_violation_rate=0.5)),
        lambda: browser.trials(ids["up"], TrialPageQuery(states=("complete",))),
        lambda: browser.trials(ids["up"], TrialPageQuery(ttpt="failed")),
        lambda: browser.history(ids["up"]),
        lambda: browser.trial_view(browser.experiment_view(ids["up"], TrialPageQuery()).trials.items[0].trial.id),
    ]
    answers: list[Any] = []
    with counting(browser):
        threads = [threading.Thread(target=lambda w=w: answers.append(w())) for w in waiting]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(0.3)
        assert answers == []  # each is waiting for the lock the builder needs first
    for thread in threads:
        thread.join(60)
    assert len(answers) == len(waiting)


def test_the_journal_answers_only_once_it_has_replayed(tmp_path: Any) -> None:
    url = str(tmp_path / "store.jsonl")
    ids = seed(url)
    browser = browser_of(open_reader(url))
    assert isinstance(browser, JournalBrowser)
    assert not browser.answers_early
    with counting(browser):
        pass
    assert not browser.overview(ids["up"]).counting


def test_the_dashboard_shows_a_page_while_it_counts_and_says_so(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = seed(url)
    app = create_app(url)
    browser = app.app.state.dashboard.browser
    with browser._lock, TestClient(app, base_url="http://127.0.0.1") as client:  # start-up's builder waits
        page = client.get(f"/experiments/{ids['up']}")
        listed = client.get("/api/experiments?limit=10").json()
    app.app.state.dashboard.warming.join(60)  # the lock released, it builds
    with TestClient(app, base_url="http://127.0.0.1") as client:
        again = client.get(f"/experiments/{ids['up']}")
    assert page.status_code == 200
    assert "still reading the store" in page.text
    assert "overfitting: counting" in page.text
    assert listed["items"]
    assert all(row["counting"] and row["overfitting"] == "counting" for row in listed["items"])
    assert "still reading the store" not in again.text
    assert "overfitting: counting" not in again.text


def test_the_background_pass_also_computes_the_pareto_views(store_url: str) -> None:
    with ExperimentTracker(store_url) as t:
        two = t.create_experiment("two", "Momentum", "tpe", objectives={"sharpe": "maximize", "turnover": "minimize"})
        t.log_trials(
            two,
            [{"trial_number": n, "params": {}, "performance": {"sharpe": n % 7, "turnover": n % 5}} for n in range(30)],
        )
        one = t.create_experiment("one", "Momentum", "tpe")
        t.log_trials(one, [{"trial_number": 0, "params": {}, "performance": {"sharpe": 1.0}}])
    browser = browser_of(open_reader(store_url))
    browser.warm_in_background().join(60)
    assert set(browser._paretos) == {two}  # computed before anyone asked; none for one objective
    assert browser.pareto(two) == browser_of(open_reader(store_url)).pareto(two)


def test_the_page_does_not_wait_for_a_pareto_front_being_computed(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with ExperimentTracker(url) as t:
        two = t.create_experiment("two", "Momentum", "tpe", objectives={"sharpe": "maximize", "turnover": "minimize"})
        rows = [
            {"trial_number": n, "params": {}, "performance": {"sharpe": n % 7, "turnover": n % 5}} for n in range(30)
        ]
        t.log_trials(two, rows)
    app = create_app(url)
    browser = app.app.state.dashboard.browser
    answers: list[Any] = []
    # A front being computed: the background pass waits for this lock to compute it.
    with browser._pareto_lock, TestClient(app, base_url="http://127.0.0.1") as client:
        asking = threading.Thread(target=lambda: answers.append(client.get(f"/experiments/{two}")))
        asking.start()
        asking.join(30)
        assert answers, "the page waited for the front"
    pending = answers[0]
    app.app.state.dashboard.warming.join(60)  # the lock released, the pass computes the front
    with TestClient(app, base_url="http://127.0.0.1") as client:
        computed = client.get(f"/api/experiments/{two}/pareto").json()
        ready = client.get(f"/experiments/{two}")
    assert pending.status_code == 200
    assert "being computed in the background" in pending.text
    assert 'id="pareto-chart"' in pending.text
    assert 'id="pareto-table"' not in pending.text
    assert computed["front"]
    assert 'id="pareto-table"' in ready.text
    assert "being computed in the background" not in ready.text
