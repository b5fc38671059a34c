"""The dashboard's multi-objective views: a real Optuna multi-objective study shown on the
experiment page and by `/api/experiments/{id}/pareto`, its errors in the API's JSON shape, and
(in Chromium) the chart, the pair selector and hostile objective names that stay text."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from starlette.testclient import TestClient

from tracker import ExperimentTracker
from tracker.integrations.optuna import TrackingCallback
from tracker.read.pareto import nondominated
from tracker.ui import create_app

LOCAL = "http://127.0.0.1"
LINK = '<a href="https://evil.example/">x</a>'
BOLD = "<b>dd</b>"


def optuna_study(url: str) -> tuple[int, optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize", "minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=7)
    )
    with ExperimentTracker(url) as tracker:
        callback = TrackingCallback(tracker, metric_names=["sharpe", "max_drawdown", "turnover"])

        def objective(trial: optuna.Trial) -> tuple[float, float, float]:
            a, b = trial.suggest_float("a", 0, 1), trial.suggest_float("b", 0, 1)
            return a + b, a * a + 0.1 * b, round(b * 4) / 4

        study.optimize(objective, n_trials=60, callbacks=[callback])
        assert callback.experiment_id is not None
        return callback.experiment_id, study


def test_an_optuna_multi_objective_study_ends_on_the_dashboard_with_optunas_front(store_url: str) -> None:
    experiment, study = optuna_study(store_url)
    expected = {t.number for t in study.best_trials}  # Optuna's own Pareto front
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        answer = client.get(f"/api/experiments/{experiment}/pareto").json()
        assert [o["name"] for o in answer["objectives"]] == ["sharpe", "max_drawdown", "turnover"]
        assert [o["direction"] for o in answer["objectives"]] == ["maximize", "minimize", "minimize"]
        assert {t["trial_number"] for t in answer["front"]} == expected
        assert (answer["x"], answer["y"], answer["n_points"]) == ("sharpe", "max_drawdown", 60)
        assert answer["history"][-1][1] == pytest.approx(answer["hypervolume"])
        values = {t.number: t.values for t in study.trials}
        assert all(t["values"] == values[t["trial_number"]] for t in answer["front"])
        chosen = client.get(f"/api/experiments/{experiment}/pareto", params={"x": "turnover", "y": "sharpe"}).json()
        assert (chosen["x"], chosen["y"]) == ("turnover", "sharpe")
        assert [t["values"][2] for t in chosen["front"]] == sorted(t["values"][2] for t in chosen["front"])
        page = client.get(f"/experiments/{experiment}").text
        assert 'id="pareto-chart"' in page
        assert 'id="hypervolume-chart"' in page
        assert 'id="pareto-pair"' in page
        assert "sharpe ↑" in page
        assert "max_drawdown ↓" in page
        for number in expected:
            trial_id = next(t["trial_id"] for t in answer["front"] if t["trial_number"] == number)
            assert f'href="/trials/{trial_id}"' in page
        overview = client.get(f"/api/experiments/{experiment}").json()
        assert overview["objectives"][0] == {"name": "sharpe", "direction": "maximize"}


def test_pareto_errors_answer_in_the_json_shape(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with ExperimentTracker(url) as t:
        one = t.create_experiment("one", "T", "m")
        two = t.create_experiment("two", "T", "m", objectives={"sharpe": "maximize", "dd": "minimize"})
        t.log_trial(two, 0, {}, {"sharpe": 1.0, "dd": 0.5})
    with TestClient(create_app(url), base_url=LOCAL) as client:
        cases = [
            (f"/api/experiments/{two}/pareto?x=nope", 400, "x: must be one of the objectives"),
            (f"/api/experiments/{two}/pareto?x=dd&y=dd", 400, "must differ"),
            (f"/api/experiments/{two}/pareto?max_points=5", 400, "max_points"),
            (f"/api/experiments/{one}/pareto", 400, "has one objective"),
            (f"/api/experiments/{two + 50}/pareto", 404, "does not exist"),
            (f"/api/experiments/{2**63}/pareto", 404, ""),
            (f"/api/experiments/{two}/pareto?max_points={2**64}", 400, "max_points"),
        ]
        for path, status, words in cases:
            got = client.get(path)
            assert got.status_code == status, path
            assert set(got.json()) == {"error", "message"}, path
            assert words in got.json()["message"], path
        assert 'id="pareto"' not in client.get(f"/experiments/{one}").text
        assert 'id="pareto-pair"' not in client.get(f"/experiments/{two}").text  # a pair needs no choice


def test_the_front_of_many_trials_is_exact_and_the_chart_stays_within_its_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    rng = np.random.default_rng(11)
    values = rng.normal(size=(6_000, 2))
    with ExperimentTracker(url) as t:
        e = t.create_experiment("big", "T", "m", objectives={"sharpe": "maximize", "max_drawdown": "maximize"})
        t.log_trials(
            e,
            [
                {"trial_number": n, "params": {}, "performance": {"sharpe": a, "max_drawdown": b}}
                for n, (a, b) in enumerate(values.tolist())
            ],
        )
    with TestClient(create_app(url), base_url=LOCAL) as client:
        answer = client.get(f"/api/experiments/{e}/pareto").json()
    assert {t["trial_number"] for t in answer["front"]} == set(np.flatnonzero(nondominated(-values)).tolist())
    assert len(answer["front"]) + len(answer["others"]) <= 2_000
    assert answer["sampled"]
    assert all(math.isfinite(v) for t in answer["others"] for v in t["values"])
