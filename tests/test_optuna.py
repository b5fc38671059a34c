"""The Optuna callback and study import, on every backend."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.test_ttpt import ma_crossover, next_bar
from tracker import ExperimentTracker, NotFoundError
from tracker.demo import synthetic_prices
from tracker.integrations.optuna import TrackingCallback, import_study
from tracker.ttpt import LookaheadMonitor

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    n = trial.suggest_int("n", 1, 4)
    trial.set_user_attr("returns", x / 10)
    trial.set_user_attr("label", "not numeric")
    if n == 4 and x > 4:
        raise optuna.TrialPruned()
    return -((x - 1) ** 2) + n


def test_every_finished_trial_is_logged_with_state_times_and_user_attrs(tracker: ExperimentTracker) -> None:
    def flaky(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 3:
            raise optuna.TrialPruned()
        if trial.number == 5:
            raise ValueError("strategy crashed")
        trial.set_user_attr("drawdown", -x)
        return x

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    with TrackingCallback(tracker, metric_names=["sharpe"]) as callback:
        study.optimize(flaky, n_trials=8, callbacks=[callback], catch=(ValueError,))
    eid = callback.experiment_id
    assert eid is not None
    experiment = tracker.get_experiment(eid)
    assert (experiment["objective"], experiment["direction"]) == ("sharpe", "maximize")
    trials = tracker.get_trials(eid)
    assert [t["trial_number"] for t in trials] == list(range(8))
    assert trials[3]["state"] == "pruned"
    assert trials[5]["state"] == "failed"
    done = trials[0]
    assert done["performance"]["sharpe"] == study.trials[0].value
    assert done["performance"]["drawdown"] == -study.trials[0].params["x"]
    assert done["params"] == study.trials[0].params
    assert done["started_at"] is not None
    assert done["completed_at"] is not None
    summary = tracker.get_experiment(eid)["summary"]
    assert summary["best_sharpe"] == study.best_value
    assert summary["n_trials_completed"] == 6
    assert summary["ttpt_summary"] == {"total_validations": 0, "total_violations": 0, "violation_rate": None}


def test_multi_objective_values_are_stored_under_their_names(tracker: ExperimentTracker) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=2))
    callback = TrackingCallback(tracker, metric_names=["sharpe", "drawdown"])
    study.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=4, callbacks=[callback])
    assert callback.experiment_id is not None
    trials = tracker.get_trials(callback.experiment_id)
    assert len(trials) == 4
    assert trials[2]["performance"] == {"sharpe": study.trials[2].values[0], "drawdown": study.trials[2].values[1]}
    assert trials[2]["value"] == study.trials[2].values[0]


def test_runtime_ttpt_is_logged_at_checkpoints_and_errors_are_recorded(tracker: ExperimentTracker) -> None:
    data = {"close": synthetic_prices(seed=3, assets=2, years=1)}

    def strategy(d: dict[str, Any], params: dict[str, Any]) -> Any:
        if params["fast"] == 7:
            raise RuntimeError("boom")
        return next_bar(d, params) if params["leak"] else ma_crossover(d, {"fast": params["fast"], "slow": 30})

    def run(trial: optuna.Trial) -> float:
        trial.suggest_int("fast", 2, 9)
        trial.suggest_categorical("leak", [True, False])
        return 1.0

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=4))
    for params in ({"fast": 7, "leak": False}, {"fast": 3, "leak": True}, {"fast": 7, "leak": True}):
        study.enqueue_trial(params)  # trials 0 and 2 are checked and their strategy raises; 1 is not checked
    monitor = LookaheadMonitor(strategy, data, budget=8)
    callback = TrackingCallback(tracker, ttpt=monitor, checkpoint_interval=2, metric_names=["score"])
    study.optimize(run, n_trials=12, callbacks=[callback])
    assert callback.experiment_id is not None
    trials = tracker.get_trials(callback.experiment_id)
    raised = [t for t in trials if t["ttpt_result"] is not None and t["params"]["fast"] == 7]
    assert [t["trial_number"] for t in raised][:2] == [0, 2]
    assert len(trials) == 12
    for trial in trials:
        result = trial["ttpt_result"]
        if trial["trial_number"] % 2:
            assert result is None
            continue
        params = trial["params"]
        if params["fast"] == 7:
            assert result["passed"] is False
            assert "boom" in result["metrics"]["error"]
        else:
            assert result["passed"] is (not params["leak"])


def test_the_same_trial_delivered_twice_is_stored_once_and_threads_work(tracker: ExperimentTracker) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    callback = TrackingCallback(tracker, metric_names=["loss"])
    study.optimize(objective, n_trials=20, n_jobs=2, callbacks=[callback])
    for trial in study.trials[:5]:
        callback(study, trial)
    assert callback.experiment_id is not None
    assert sorted(t["trial_number"] for t in tracker.get_trials(callback.experiment_id)) == list(range(20))


def test_a_storage_error_raises_by_default_and_warns_on_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = ExperimentTracker(db_path=tmp_path / "x.db")
    eid = tracker.create_experiment("e", "t", "m", objective="loss", direction="minimize")
    tracker.delete_experiment(eid)
    study = optuna.create_study()
    with pytest.raises(NotFoundError):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, callbacks=[TrackingCallback(tracker, eid)])
    warned = TrackingCallback(tracker, eid, on_error="warn")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[warned])
    assert len(study.trials) == 3
    assert "could not log trial" in caplog.text
    tracker.close()


def test_import_study_is_idempotent_and_uses_any_storage(tracker: ExperimentTracker, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=storage, study_name="imported", sampler=optuna.samplers.RandomSampler(seed=6))
    study.optimize(objective, n_trials=15)
    eid = import_study(study, tracker, metric_names=["loss"], progress=False)
    assert len(tracker.get_trials(eid)) == 15
    study.optimize(objective, n_trials=5)
    assert import_study(optuna.load_study(study_name="imported", storage=storage), tracker, eid, progress=False) == eid
    trials = tracker.get_trials(eid)
    assert [t["trial_number"] for t in trials] == list(range(20))
    assert tracker.get_experiment(eid)["name"] == "imported"


def test_four_processes_share_one_study_on_postgresql_and_log_every_trial_once(pg_url: str) -> None:
    study_name = "shared-study"
    with ExperimentTracker(pg_url) as tracker:
        eid = tracker.create_experiment("shared", "t", "m", objective="value")
    optuna_schema = pg_url.rsplit("%3D", 1)[-1] + "_optuna"
    from sqlalchemy import create_engine, text

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{optuna_schema}"'))
    storage_url = pg_url.replace(pg_url.rsplit("%3D", 1)[-1], optuna_schema)
    optuna.create_study(storage=storage_url, study_name=study_name, direction="maximize")
    start = time.time() + 2
    code = f"""
import sys, time, optuna
from tracker import ExperimentTracker
from tracker.integrations.optuna import TrackingCallback
optuna.logging.set_verbosity(optuna.logging.WARNING)
time.sleep(max(0, {start} - time.time()))
study = optuna.load_study(study_name={study_name!r}, storage={storage_url!r}, sampler=optuna.samplers.RandomSampler())
with ExperimentTracker({pg_url!r}) as tracker:
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=10, callbacks=[TrackingCallback(tracker, {eid})])
"""
    try:
        workers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
        errors = [w.communicate(timeout=300)[1].decode() for w in workers]
        assert [w.returncode for w in workers] == [0] * 4, errors
        study = optuna.load_study(study_name=study_name, storage=storage_url)
        with ExperimentTracker(pg_url) as tracker:
            logged = tracker.get_trials(eid)
        assert len(study.trials) == 40
        assert sorted(t["trial_number"] for t in logged) == sorted(t.number for t in study.trials)
        assert {t["trial_number"]: t["value"] for t in logged} == {t.number: t.value for t in study.trials}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{optuna_schema}" CASCADE'))
        admin.dispose()


def test_the_demo_flags_the_leaky_strategy(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--url", str(tmp_path / "demo.db"), "demo", "--trials", "20"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "INVALID: look-ahead" in run.stdout
    assert "valid" in run.stdout
    assert "DSR" in run.stdout  # the overfitting status beside the verdict
    with ExperimentTracker(db_path=tmp_path / "demo.db") as tracker:
        honest, leaky = tracker.compare_experiments([1, 2])
        assert tracker.overfitting(1)["n_trials"] == 20  # the honest study logged every trial's returns
        assert f"DSR {honest['overfitting_dsr']:.2f}" in run.stdout
    assert honest["violation_rate"] == 0.0
    assert leaky["violation_rate"] == 1.0
    assert leaky["best_value"] > honest["best_value"]
    assert (honest["objective"], leaky["objective"]) == ("sharpe", "sharpe")
    assert list(tmp_path.glob("demo_1_2_trials.csv"))
    assert list(tmp_path.glob("demo_1_2_compare.png"))  # the plot is a comparison, and named so


def test_reuse_logs_a_re_run_into_the_experiment_of_that_name(tracker: ExperimentTracker) -> None:
    def run(n_trials: int, reuse: bool) -> int | None:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=n_trials))
        callback = TrackingCallback(tracker, experiment_name="nightly", reuse=reuse, metric_names=["sharpe"])
        study.optimize(objective, n_trials=n_trials, callbacks=[callback])
        return callback.experiment_id

    first = run(3, reuse=True)
    assert run(6, reuse=True) == first  # a re-run: trials 0-2 are there already, 3-5 are added
    assert tracker.experiment_ids("nightly") == [first]
    assert [t["trial_number"] for t in tracker.get_trials(first)] == list(range(6))
    other = run(2, reuse=False)
    assert other != first
    assert tracker.experiment_ids("nightly") == [first, other]


def test_text_attributes_and_intermediate_values_are_kept_so_pruned_trials_show_where_they_stopped(
    tracker: ExperimentTracker,
) -> None:
    def run(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("regime", "bull" if x > 0.5 else "bear")
        trial.set_user_attr("folds", [1, 2, 3])
        trial.set_user_attr("returns", x / 2)
        for step in range(5):
            trial.report(x * step, step)
            if trial.number % 2 and step == 2:
                raise optuna.TrialPruned()
        return x

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=9))
    callback = TrackingCallback(tracker, metric_names=["sharpe"])
    study.optimize(run, n_trials=4, callbacks=[callback])
    assert callback.experiment_id is not None
    stored = tracker.get_trials(callback.experiment_id)
    for trial, optuna_trial in zip(stored, study.trials, strict=True):
        assert trial["attributes"] == {"regime": optuna_trial.user_attrs["regime"], "folds": [1, 2, 3]}
        assert trial["performance"]["returns"] == optuna_trial.user_attrs["returns"]
        steps = [step for step, _ in tracker.get_step_metrics(trial["id"])["sharpe"]]
        assert steps == ([0, 1, 2] if trial["state"] == "pruned" else [0, 1, 2, 3, 4])
    assert [t["state"] for t in stored] == ["complete", "pruned", "complete", "pruned"]


def test_the_objective_hands_its_returns_to_the_callback_and_they_are_stored_with_the_trial(
    tracker: ExperimentTracker,
) -> None:
    import numpy as np
    import pandas as pd

    index = pd.bdate_range("2024-01-01", periods=250)
    callback = TrackingCallback(tracker, metric_names=["sharpe"])
    sent: dict[int, pd.Series] = {}

    def with_returns(trial: optuna.Trial) -> float:
        returns = pd.Series(np.random.default_rng(trial.number).normal(0, 0.01, 250), index=index)
        sent[trial.number] = returns
        callback.report_returns(trial, returns)
        if trial.number == 3:
            raise optuna.TrialPruned()
        return float(returns.mean() / returns.std())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(with_returns, n_trials=8, n_jobs=2, callbacks=[callback])
    assert callback.experiment_id is not None
    for trial in tracker.get_trials(callback.experiment_id):
        got = tracker.get_returns(trial["id"])
        assert got.to_numpy().tobytes() == sent[trial["trial_number"]].to_numpy().tobytes()
        assert trial["state"] == ("pruned" if trial["trial_number"] == 3 else "complete")
    assert callback._returns == {}  # nothing kept once the trials are stored
    assert tracker.overfitting(callback.experiment_id, splits=4)["n_trials"] == 7  # the pruned one is not counted
    assert not any(study.trials[0].user_attrs)  # nothing went through the Optuna storage
