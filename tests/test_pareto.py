"""Multi-objective views: the objectives an experiment declares, Pareto fronts and hypervolumes
against brute force written from the definitions, and `Browser.pareto` on every backend against
a plain-Python reference over all the trials."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_store_url
from tracker import ExperimentTracker, NotFoundError, ValidationError
from tracker.read.pareto import Staircase, history_nd, hypervolume, minimised, nondominated
from tracker.store.objectives import objectives_from
from tracker.stores import browser_of, open_reader

# brute force, from the definitions ---------------------------------------------------------------


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(p <= q for p, q in zip(a, b, strict=True)) and any(p < q for p, q in zip(a, b, strict=True))


def brute_front(points: list[tuple[float, ...]]) -> list[bool]:
    return [not any(dominates(q, p) for q in points) for p in points]


def brute_volume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    """The measure of the union of the boxes [p, reference], on the grid of all coordinates."""
    axes = [sorted({p[k] for p in points} | {reference[k]}) for k in range(len(reference))]
    total = 0.0
    for cell in np.ndindex(*[len(a) - 1 for a in axes]):
        corner = [axes[k][i] for k, i in enumerate(cell)]
        if any(all(p[k] <= corner[k] for k in range(len(p))) for p in points):
            total += math.prod(axes[k][i + 1] - axes[k][i] for k, i in enumerate(cell))
    return total


# a few values so that ties and duplicates are common
coordinate = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])


def point_lists(m: int, low: int = 1) -> st.SearchStrategy[list[tuple[float, ...]]]:
    return st.lists(st.tuples(*[coordinate] * m), min_size=low, max_size=25)


@given(point_lists(2, 0))
@settings(max_examples=300, deadline=None)
def test_the_2d_front_is_the_set_no_other_point_dominates(points: list[tuple[float, ...]]) -> None:
    mask = nondominated(np.array(points, dtype=float).reshape(-1, 2))
    assert mask.tolist() == brute_front(points)


@given(point_lists(3, 0))
@settings(max_examples=100, deadline=None)
def test_the_front_of_three_objectives_keeps_duplicates_and_agrees_with_brute_force(
    points: list[tuple[float, ...]],
) -> None:
    mask = nondominated(np.array(points, dtype=float).reshape(-1, 3))
    assert mask.tolist() == brute_front(points)


@given(point_lists(2), point_lists(3), st.lists(st.booleans(), min_size=3, max_size=3))
@settings(max_examples=100, deadline=None)
def test_hypervolumes_agree_with_the_measure_of_the_dominated_boxes(
    two: list[tuple[float, ...]], three: list[tuple[float, ...]], maximise: list[bool]
) -> None:
    for points, flags in ((two, maximise[:2]), (three, maximise)):
        table = minimised(np.array(points), flags)
        rows = [tuple(r) for r in table.tolist()]
        reference = tuple(table.max(axis=0) + np.array([0.0, 1.0, 0.5][: len(flags)]))
        assert hypervolume(table, reference) == pytest.approx(brute_volume(rows, reference), abs=1e-9)


def test_a_known_front_and_hypervolume() -> None:
    """(1,3), (2,2), (3,1) and a dominated (3,3), up to (4,4): 3 + 2 + 1 = 6 unit squares."""
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]])
    assert nondominated(points).tolist() == [True, True, True, False]
    assert hypervolume(points, (4.0, 4.0)) == 6.0
    cube = np.array([[0.0, 0.0, 0.0]])
    assert hypervolume(cube, (2.0, 3.0, 4.0)) == 24.0


@given(point_lists(2), st.lists(st.booleans(), min_size=2, max_size=2))
@settings(max_examples=200, deadline=None)
def test_the_incremental_2d_history_is_the_hypervolume_of_each_prefix(
    points: list[tuple[float, ...]], maximise: list[bool]
) -> None:
    table = minimised(np.array(points), maximise)
    reference = tuple(table.max(axis=0))
    stairs = Staircase()
    for number, (x, y) in enumerate(table.tolist()):
        stairs.add(number * 3, x, y)
    numbers, volumes = stairs.history(reference)
    expected = [brute_volume([tuple(r) for r in table[: n + 1].tolist()], reference) for n in range(len(points))]
    changes = [(3 * n, v) for n, v in enumerate(expected) if n == 0 or v != expected[n - 1]]
    assert len(numbers) == len(changes)
    for (n, v), got_n, got_v in zip(changes, numbers.tolist(), volumes.tolist(), strict=True):
        assert got_n == n
        assert got_v == pytest.approx(v, abs=1e-9)


@given(point_lists(3))
@settings(max_examples=50, deadline=None)
def test_the_history_of_three_objectives_is_the_hypervolume_at_each_checkpoint(points: list[tuple[float, ...]]) -> None:
    table = np.array(points)
    reference = tuple(table.max(axis=0) + 1.0)
    numbers, volumes = history_nd(np.arange(len(points)), table, reference, checkpoints=7)
    for n, v in zip(numbers.tolist(), volumes.tolist(), strict=True):
        assert v == pytest.approx(brute_volume([tuple(r) for r in table[: n + 1].tolist()], reference), abs=1e-9)
    assert numbers[-1] <= len(points) - 1
    assert len(numbers) <= 7


# the objectives ----------------------------------------------------------------------------------


def test_objectives_come_from_a_consistent_config_and_anything_else_is_one_objective() -> None:
    two = {"objectives": ["sharpe", "dd"], "directions": ["maximize", "minimize"]}
    assert objectives_from("sharpe", "maximize", two) == (("sharpe", "maximize"), ("dd", "minimize"))
    for bad in (
        {"objectives": ["sharpe", "dd"], "directions": ["maximize"]},
        {"objectives": ["sharpe", "dd"], "directions": ["maximize", "sideways"]},
        {"objectives": ["dd", "sharpe"], "directions": ["minimize", "maximize"]},
        {"objectives": ["sharpe", "sharpe"], "directions": ["maximize", "maximize"]},
        {"objectives": "sharpe", "directions": "maximize"},
        None,
    ):
        assert objectives_from("sharpe", "maximize", bad) == (("sharpe", "maximize"),)


def test_create_experiment_declares_objectives_and_refuses_malformed_ones(tmp_path: Path) -> None:
    with ExperimentTracker(f"sqlite:///{tmp_path / 'o.db'}") as t:
        e = t.create_experiment("mo", "T", "m", {"k": 1}, objectives={"sharpe": "maximize", "dd": "minimize"})
        got = t.get_experiment(e)
        assert (got["objective"], got["direction"]) == ("sharpe", "maximize")
        assert got["config"] == {"k": 1, "objectives": ["sharpe", "dd"], "directions": ["maximize", "minimize"]}
        single = t.create_experiment("one", "T", "m", objectives={"loss": "minimize"})
        assert (t.get_experiment(single)["objective"], t.get_experiment(single)["direction"]) == ("loss", "minimize")
        for bad, words in (
            ({"sharpe": "up"}, "'maximize' or 'minimize'"),
            ({}, "must map each objective"),
            ({"": "maximize"}, "non-empty"),
        ):
            with pytest.raises(ValidationError, match=words):
                t.create_experiment("x", "T", "m", objectives=bad)
        with pytest.raises(ValidationError, match="already declares"):
            t.create_experiment("x", "T", "m", {"objectives": ["a"]}, objectives={"a": "maximize", "b": "minimize"})


# the browser verb, on every backend --------------------------------------------------------------


def seed(t: ExperimentTracker, n_trials: int = 80) -> tuple[int, list[dict[str, Any]]]:
    """A study of sharpe (maximise), max_drawdown (minimise) and turnover (minimise) with ties,
    duplicates, pruned trials, a missing metric, NaN, inf, a -0.0 and a 1e20 (stored tagged)."""
    rng = random.Random(3)
    e = t.create_experiment(
        "mo", "T", "m", objectives={"sharpe": "maximize", "max_drawdown": "minimize", "turnover": "minimize"}
    )
    items = []
    odd: list[Any] = [math.nan, math.inf, -0.0, 1e20, None]
    for n in range(n_trials):
        perf: dict[str, Any] = {
            "sharpe": rng.choice([0.5, 1.0, 1.5, 2.0]),
            "max_drawdown": rng.choice([0.1, 0.2, 0.3]),
            "turnover": rng.choice([1.0, 2.0, 5.0]),
        }
        if n % 9 == 4:
            special = odd[(n // 9) % len(odd)]
            if special is None:
                del perf["max_drawdown"]
            else:
                perf["max_drawdown"] = special
        state = "pruned" if n % 13 == 6 else "complete"
        items.append({"trial_number": n, "params": {"n": n}, "performance": perf, "state": state})
    t.log_trials(e, items)
    return e, items


def reference_points(items: list[dict[str, Any]], names: list[str]) -> dict[int, tuple[float, ...]]:
    out = {}
    for item in items:
        values = [item["performance"].get(n) for n in names]
        if item["state"] == "complete" and all(isinstance(v, float) and math.isfinite(v) for v in values):
            out[item["trial_number"]] = tuple(values)
    return out


def test_the_pareto_view_agrees_with_the_reference_on_every_backend(store_url: str) -> None:
    names = ["sharpe", "max_drawdown", "turnover"]
    with ExperimentTracker(store_url) as t:
        e, items = seed(t)
    reader = open_reader(store_url)
    try:
        browser = browser_of(reader)
        view = browser.pareto(e, x="max_drawdown", y="sharpe")
        points = reference_points(items, names)
        assert -0.0 in [p[1] for p in points.values()]
        assert 1e20 in [p[1] for p in points.values()]
        numbers = sorted(points)
        rows = [(-points[n][0], points[n][1], points[n][2]) for n in numbers]
        front = {n for n, keep in zip(numbers, brute_front(rows), strict=True) if keep}
        assert view.objectives == (("sharpe", "maximize"), ("max_drawdown", "minimize"), ("turnover", "minimize"))
        assert (view.x, view.y) == (1, 0)
        assert {p.trial_number for p in view.front} == front
        assert all(p.values == points[p.trial_number] for p in (*view.front, *view.others))
        assert [p.values[1] for p in view.front] == sorted(p.values[1] for p in view.front)  # best x first
        assert view.n_points == len(points)
        assert view.n_trials == 80
        worst = tuple(np.max(np.array(rows), axis=0))
        assert view.reference == (-worst[0], worst[1], worst[2])
        assert view.hypervolume == pytest.approx(brute_volume([rows[numbers.index(n)] for n in front], worst))
        assert view.history[-1][1] == pytest.approx(view.hypervolume)
        with pytest.raises(ValidationError, match="must be one of the objectives"):
            browser.pareto(e, x="returns")
        with pytest.raises(ValidationError, match="must differ"):
            browser.pareto(e, x="sharpe", y="sharpe")
        with pytest.raises(NotFoundError):
            browser.pareto(e + 100)
    finally:
        reader.close()


def test_the_view_follows_new_and_late_trials_and_matches_a_fresh_reader(store_url: str) -> None:
    """Two objectives: the cached history grows with new trials; a late trial (a lower number)
    restarts it; either way the answer is a fresh reader's."""
    rng = random.Random(8)
    with ExperimentTracker(store_url) as t:
        e = t.create_experiment("mo2", "T", "m", objectives={"sharpe": "maximize", "dd": "minimize"})
        t.log_trials(
            e,
            [
                {"trial_number": n, "params": {}, "performance": {"sharpe": rng.random(), "dd": rng.random()}}
                for n in range(10, 40)
            ],
        )
        reader = open_reader(store_url)
        try:
            browser = browser_of(reader)
            first = browser.pareto(e)
            assert browser.pareto(e) is first  # warm: served from memory
            t.log_trial(e, 50, {}, {"sharpe": 0.99, "dd": 0.5})
            t.log_trial(e, 3, {}, {"sharpe": 2.0, "dd": 0.001})  # late, and it dominates everything
            for round_ in range(2):
                grown = browser.pareto(e)
                fresh_reader = open_reader(store_url)
                try:
                    fresh = browser_of(fresh_reader).pareto(e)
                finally:
                    fresh_reader.close()
                assert grown.front == fresh.front
                assert grown.history == fresh.history
                assert grown.hypervolume == pytest.approx(fresh.hypervolume)
                assert [p.trial_number for p in grown.front] == ([3] if round_ == 0 else [60, 3])
                assert grown.history[0][0] == 3  # the history restarted from the late trial
                if round_ == 0:
                    t.log_trial(e, 60, {}, {"sharpe": 2.5, "dd": 0.5})
        finally:
            reader.close()


def test_a_single_objective_experiment_has_no_pareto_view(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = make_store_url("sqlite", tmp_path, request)
    with ExperimentTracker(url) as t:
        e = t.create_experiment("one", "T", "m")
    reader = open_reader(url)
    try:
        with pytest.raises(ValidationError, match="has one objective"):
            browser_of(reader).pareto(e)
    finally:
        reader.close()


def test_the_chart_holds_the_whole_front_and_a_downsample_of_the_rest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    rng = np.random.default_rng(5)
    with ExperimentTracker(url) as t:
        e = t.create_experiment("big", "T", "m", objectives={"sharpe": "maximize", "dd": "maximize"})
        values = rng.normal(size=(5_000, 2))
        t.log_trials(
            e,
            [
                {"trial_number": n, "params": {}, "performance": {"sharpe": a, "dd": b}}
                for n, (a, b) in enumerate(values.tolist())
            ],
        )
    reader = open_reader(url)
    try:
        view = browser_of(reader).pareto(e, max_points=300)
        front = nondominated(-values)
        assert {p.trial_number for p in view.front} == set(np.flatnonzero(front).tolist())
        assert len(view.front) + len(view.others) <= 300
        assert view.sampled
        assert len(view.history) <= 300
    finally:
        reader.close()


def test_pareto_front_and_the_cli_list_the_front_by_name(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    names = ["sharpe", "max_drawdown", "turnover"]
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    with ExperimentTracker(url) as t:
        e, items = seed(t)
        found = t.pareto_front(e)
        single = t.create_experiment("one", "T", "m")
        with pytest.raises(ValidationError, match="declare them"):
            t.pareto_front(single)
    points = reference_points(items, names)
    numbers = sorted(points)
    keep = brute_front([(-points[n][0], points[n][1], points[n][2]) for n in numbers])
    front = [n for n, kept in zip(numbers, keep, strict=True) if kept]
    assert found["objectives"] == [
        {"name": "sharpe", "direction": "maximize"},
        {"name": "max_drawdown", "direction": "minimize"},
        {"name": "turnover", "direction": "minimize"},
    ]
    assert sorted(row["trial_number"] for row in found["front"]) == front
    assert all(tuple(row["values"][n] for n in names) == points[row["trial_number"]] for row in found["front"])
    assert found["n_points"] == len(points)
    cli = [sys.executable, "-m", "tracker.cli", "--url", url, "trials", "pareto", "mo", "--format", "json"]
    listed = subprocess.run(cli, capture_output=True, text=True, check=True)
    assert json.loads(listed.stdout) == found["front"]
    refused = subprocess.run([*cli[:-3], "one"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "a Pareto front needs two or more" in refused.stderr


def test_a_large_read_takes_the_index_and_the_tagged_values_from_the_json(sql_url: str) -> None:
    """From BULK complete trials on, a SQL store reads the other objectives from the
    trial_performance index, and the values it lacks (-0.0, 1e20: stored tagged) from the trials'
    JSON: the front still agrees with the definition, on every SQL backend."""
    from tracker.sql.browse_pareto import BULK

    names = ["sharpe", "max_drawdown", "turnover"]
    with ExperimentTracker(sql_url) as t:
        e, items = seed(t, BULK + 500)
    reader = open_reader(sql_url)
    try:
        view = browser_of(reader).pareto(e)
    finally:
        reader.close()
    points = reference_points(items, names)
    assert len(points) >= BULK
    assert {-0.0, 1e20} <= {p[1] for p in points.values()}
    distinct = sorted(set(points.values()))
    kept = dict(zip(distinct, brute_front([(-a, b, c) for a, b, c in distinct]), strict=True))
    assert {p.trial_number for p in view.front} == {n for n, p in points.items() if kept[p]}
    assert all(p.values == points[p.trial_number] for p in (*view.front, *view.others))
    assert view.n_points == len(points)


def test_a_front_read_from_an_older_snapshot_than_the_digests_is_read_again(tmp_path: Path) -> None:
    """A request whose snapshot predates a trial that the digests already counted (another request
    synced them from a newer snapshot meanwhile) answers from its snapshot, and the next request
    reads that trial: the cache is labelled with what it read, not with the digests' count."""
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'skew.db'}"
    objectives = {"sharpe": "maximize", "turnover": "minimize"}
    with ExperimentTracker(url) as t:
        e = t.create_experiment("two", "T", "m", objectives=objectives)
        t.log_trials(
            e, [{"trial_number": n, "params": {}, "performance": {"sharpe": n, "turnover": n}} for n in range(5)]
        )
        reader = open_reader(url)
        browser: Any = browser_of(reader)
        assert browser.pareto(e).n_points == 5
        answers: list[Any] = []
        with browser._lock:  # the request below takes its snapshot, then waits here
            older = threading.Thread(target=lambda: answers.append(browser.pareto(e)))
            older.start()
            time.sleep(0.5)
            t.log_trial(e, 5, {}, {"sharpe": 9.0, "turnover": 0.0})  # dominates every other trial
            browser._run(browser._sync)  # another request brings the digests up to date meanwhile
        older.join(30)
    try:
        latest = browser.pareto(e)
    finally:
        reader.close()
    assert [p.trial_number for p in latest.front] == [5]
    assert latest.n_points == 6
    assert answers[0].n_points in (5, 6)  # whichever snapshot that request had
