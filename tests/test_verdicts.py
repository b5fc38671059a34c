"""Verdicts that cover the best trials, and an Optuna callback that cannot record nonsense."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from tests.test_cli import tracker_cli
from tests.test_ttpt import ma_crossover, next_bar
from tracker import ExperimentTracker, ValidationError
from tracker.demo import synthetic_prices
from tracker.integrations.optuna import TrackingCallback, check_best, import_study
from tracker.ttpt import LookaheadMonitor
from tracker.ttpt.verdict import BEST_K, verdict

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestTheRule:
    def test_valid_needs_every_one_of_the_best_checked_and_passed(self) -> None:
        assert verdict([True, True, True], 150, 30, 0).status == "valid"
        assert verdict([True, None, True], 150, 30, 0).status == "unchecked"
        assert verdict([], 0, 0, 0).status == "unchecked"
        assert verdict([True], 1, 1, 0).status == "valid"  # fewer ranked trials than BEST_K: all of them

    def test_look_ahead_when_a_best_trial_failed_or_most_checks_failed(self) -> None:
        assert verdict([True, False, True], 150, 30, 1).status == "look-ahead"
        assert verdict([None, None, None], 150, 30, 16).status == "look-ahead"  # more than half failed
        assert verdict([None, None, None], 150, 30, 15).status == "unchecked"  # exactly half is not more

    def test_the_coverage_says_how_many_of_the_best_and_of_all_were_checked(self) -> None:
        assert verdict([True, True, True], 150, 30, 0).coverage == "best 3 of 150 checked, 30 checks in all"
        assert verdict([True, None, True], 150, 1, 0).coverage == "2 of the best 3 of 150 checked, 1 check in all"
        assert verdict([True, True, True, True], 150, 4, 0).best_k == BEST_K


class TestTheLatestCheckCounts:
    """A trial's latest check is the one that counts: one rule (`tracker.ttpt.verdict.latest_check`),
    and every surface that shows a verdict gives the same answer after a re-check."""

    @staticmethod
    def rechecked(tracker: ExperimentTracker, first: bool, then: bool) -> int:
        """Three trials, all checked and passed but the best one, checked `first` then `then`."""
        eid = tracker.create_experiment("rechecked", "t", "m")
        for number in range(3):
            trial = tracker.log_trial(eid, number, {"n": number}, {"sharpe": float(number)})
            outcomes = (first, then) if number == 2 else (True,)
            for passed in outcomes:
                tracker.log_ttpt_result(trial, passed=passed, num_violations=0 if passed else 3)
        return eid

    @staticmethod
    def verdicts(tracker: ExperimentTracker, url: str, eid: int) -> dict[str, str]:
        """The verdict as the library, the command line and the dashboard's digest show it."""
        from tracker.read.browser import ExperimentPageQuery
        from tracker.stores import browser_of, open_reader

        listed = json.loads(tracker_cli("--url", url, "experiments", "list", "--format", "json").stdout)
        reader = open_reader(url)
        try:
            [overview] = browser_of(reader).experiments(ExperimentPageQuery(ids=(eid,))).items
        finally:
            reader.close()
        return {
            "library": tracker.verdict(eid)["status"],
            "summary": tracker.compare_experiments([eid])[0]["verdict"],
            "cli": next(row["verdict"] for row in listed if row["id"] == eid),
            "dashboard": overview.verdict.status,
        }

    def test_a_failing_recheck_of_a_best_trial_overrules_its_pass(
        self, tracker: ExperimentTracker, store_url: str
    ) -> None:
        eid = self.rechecked(tracker, first=True, then=False)
        assert set(self.verdicts(tracker, store_url, eid).values()) == {"look-ahead"}

    def test_a_passing_recheck_of_a_best_trial_overrules_its_failure(
        self, tracker: ExperimentTracker, store_url: str
    ) -> None:
        eid = self.rechecked(tracker, first=False, then=True)  # 1 failed check of 4: not most of them
        assert set(self.verdicts(tracker, store_url, eid).values()) == {"valid"}


def prices() -> dict[str, pd.DataFrame]:
    return {"close": synthetic_prices(seed=21, assets=2, years=1)}


def honest(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    return ma_crossover(data, {"fast": int(params["fast"]), "slow": 30})


def leaky(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    return next_bar(data, params)


def study_of(strategy: Any, tracker: ExperimentTracker, *, interval: int, n_trials: int = 12) -> TrackingCallback:
    data = prices()

    def run(trial: optuna.Trial) -> float:
        fast = trial.suggest_int("fast", 2, 20)
        return float(fast) + float(np.sin(fast))  # best trials are the ones with a large `fast`

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=3))
    with TrackingCallback(
        tracker, ttpt=LookaheadMonitor(strategy, data, budget=40), checkpoint_interval=interval, metric_names=["sharpe"]
    ) as callback:
        study.optimize(run, n_trials=n_trials, callbacks=[callback])
    return callback


def test_finish_checks_the_best_trials_so_an_honest_experiment_is_valid(tracker: ExperimentTracker) -> None:
    callback = study_of(honest, tracker, interval=1000)  # only trial 0 is checked while running
    assert callback.experiment_id is not None
    best = tracker.get_trials(callback.experiment_id, states="complete", order_by="value", limit=BEST_K)
    assert all(t["ttpt_result"] is not None and t["ttpt_result"]["passed"] for t in best)
    summary = tracker.get_experiment(callback.experiment_id)["summary"]
    assert summary["verdict"] == "valid"
    checks = sum(1 for t in tracker.get_trials(callback.experiment_id) if t["ttpt_result"] is not None)
    assert summary["verdict_coverage"] == f"best 3 of 12 checked, {checks} checks in all"
    [row] = tracker.compare_experiments([callback.experiment_id])
    assert (row["verdict"], row["verdict_coverage"]) == ("valid", summary["verdict_coverage"])


def test_a_leaky_experiment_is_look_ahead_even_when_sampling_missed_its_best_trials(
    tracker: ExperimentTracker,
) -> None:
    callback = study_of(leaky, tracker, interval=1000)
    assert callback.experiment_id is not None
    [row] = tracker.compare_experiments([callback.experiment_id])
    assert row["verdict"] == "look-ahead"
    assert row["verdict_coverage"].startswith("best 3 of 12 checked")


def test_without_checks_the_verdict_is_unchecked_and_check_best_fills_in(tracker: ExperimentTracker) -> None:
    eid = tracker.create_experiment("e", "t", "m")
    tracker.log_trials(
        eid, [{"trial_number": n, "params": {"fast": n + 2}, "performance": {"sharpe": n}} for n in range(6)]
    )
    assert tracker.compare_experiments([eid])[0]["verdict"] == "unchecked"
    checked = check_best(tracker, eid, LookaheadMonitor(honest, prices(), budget=20), k=3)
    assert [tracker.get_trial(i)["trial_number"] for i in checked] == [5, 4, 3]
    assert tracker.compare_experiments([eid])[0]["verdict"] == "valid"
    assert check_best(tracker, eid, LookaheadMonitor(honest, prices(), budget=20), k=3) == []  # already checked


class TestTheCallbackRefusesNonsense:
    def test_an_experiment_with_another_objective_is_refused_when_the_callback_is_made(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = tracker.create_experiment("e", "t", "m", objective="drawdown", direction="minimize")
        with pytest.raises(ValidationError, match="optimises drawdown"):
            TrackingCallback(tracker, eid, metric_names=["sharpe"])

    def test_a_direction_that_differs_is_refused_at_the_first_trial_even_when_told_to_warn(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = tracker.create_experiment("e", "t", "m", objective="sharpe", direction="maximize")
        study = optuna.create_study(direction="minimize")
        with pytest.raises(ValidationError, match=r"sharpe \(minimize\)"):
            study.optimize(
                lambda t: t.suggest_float("x", 0, 1),
                n_trials=1,
                callbacks=[TrackingCallback(tracker, eid, on_error="warn")],
            )
        assert tracker.get_trials(eid) == []
        with pytest.raises(ValidationError, match="optimises sharpe"):
            import_study(study, tracker, eid, progress=False)

    def test_an_unnamed_objective_takes_the_experiments_name_or_is_refused_with_how_to_name_it(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = tracker.create_experiment("e", "t", "m", objective="sortino")
        study = optuna.create_study(direction="maximize")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[TrackingCallback(tracker, eid)])
        assert [set(t["performance"]) for t in tracker.get_trials(eid)] == [{"sortino"}, {"sortino"}]
        with pytest.raises(ValidationError, match=r"metric_names=\['sharpe'\]"):
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, callbacks=[TrackingCallback(tracker)])

    def test_a_strategy_with_unseeded_randomness_stores_no_check_and_says_so(
        self, tracker: ExperimentTracker, caplog: pytest.LogCaptureFixture
    ) -> None:
        def noisy(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
            close = data["close"]
            return pd.DataFrame(np.random.default_rng().normal(size=close.shape), index=close.index)

        study = optuna.create_study(direction="maximize")
        callback = TrackingCallback(
            tracker, ttpt=LookaheadMonitor(noisy, prices(), budget=10), checkpoint_interval=1, metric_names=["sharpe"]
        )
        with caplog.at_level(logging.WARNING):
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[callback])
        assert callback.experiment_id is not None
        assert all(t["ttpt_result"] is None for t in tracker.get_trials(callback.experiment_id))
        assert "not stored" in caplog.text
        assert tracker.compare_experiments([callback.experiment_id])[0]["verdict"] == "unchecked"


STRATEGIES = """
import numpy as np


def honest(data, params):
    close = data["close"]
    return np.sign(close - close.rolling(int(params["fast"])).mean())


def leaky(data, params):
    close = data["close"]
    return np.sign(close.shift(-1) - close)


def noisy(data, params):
    close = data["close"]
    return close * 0 + np.random.default_rng().normal(size=close.shape)
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A research folder: a strategy module, the prices as CSV and a store with six unchecked trials."""
    (tmp_path / "strats.py").write_text(STRATEGIES)
    (tmp_path / "broken.py").write_text("1 / 0\n")
    prices()["close"].to_csv(tmp_path / "prices.csv")
    with ExperimentTracker(tmp_path / "runs.db") as t:
        eid = t.create_experiment("study", "t", "m")
        t.log_trials(
            eid, [{"trial_number": n, "params": {"fast": n + 2}, "performance": {"sharpe": n}} for n in range(6)]
        )
    return tmp_path


def stored_checks(folder: Path) -> list[tuple[int, bool]]:
    with ExperimentTracker(folder / "runs.db") as t:
        return [(r["trial_id"], r["passed"]) for trial in t.get_trials(1) for r in t.get_ttpt_results(trial["id"])]


def check_cli(folder: Path, strategy: str, *more: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return tracker_cli(
        "--url", "runs.db", "ttpt", "check", "study", "--strategy", strategy,
        "--data", "prices.csv", "--data-key", "close", *more, cwd=folder, check=check,
    )  # fmt: skip


class TestTheCheckCommand:
    def test_it_checks_the_best_trials_with_a_strategy_from_the_current_folder(self, folder: Path) -> None:
        run = check_cli(folder, "strats:honest", "--budget", "20")
        assert "verdict: valid (best 3 of 6 checked, 3 checks in all)" in run.stdout
        assert sorted(stored_checks(folder)) == [(4, True), (5, True), (6, True)]  # trials 3, 4 and 5
        again = check_cli(folder, "strats:honest", "--k", "1", "--format", "json")
        assert [(r["trial_number"], r["passed"]) for r in json.loads(again.stdout)] == [(5, True)]
        assert len(stored_checks(folder)) == 4  # a new check of the best trial; the latest counts

    def test_a_leak_makes_the_verdict_look_ahead(self, folder: Path) -> None:
        run = check_cli(folder, "strats:leaky", "--exhaustive", "--k", "2")
        assert "verdict: look-ahead (2 of the best 3 of 6 checked, 2 checks in all)" in run.stdout
        assert stored_checks(folder) == [(5, False), (6, False)]

    def test_a_nondeterministic_strategy_stores_nothing_and_says_why(self, folder: Path) -> None:
        run = check_cli(folder, "strats:noisy", "--budget", "5")
        assert "not stored" in run.stderr
        assert stored_checks(folder) == []

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"--strategy": "strats"}, "expected MODULE:FUNCTION"),
            ({"--strategy": "nowhere:f"}, "cannot import 'nowhere'"),
            ({"--strategy": "strats:missing"}, "has no function 'missing'"),
            ({"--strategy": "broken:f"}, "importing 'broken' raised ZeroDivisionError"),
            ({"--data": "absent.csv"}, "'absent.csv' does not exist"),
            ({"--data": "strats.py"}, "expected a .csv or .parquet file"),
            ({"--k": "0"}, "must be at least 1"),
            ({"study": "other"}, "experiment is named 'other'"),
        ],
    )
    def test_bad_arguments_are_one_line_on_stderr_and_store_nothing(
        self, folder: Path, change: dict[str, str], message: str
    ) -> None:
        options = {"study": "study", "--strategy": "strats:honest", "--data": "prices.csv", "--k": "3", **change}
        experiment = options.pop("study")
        args = [item for pair in options.items() for item in pair]
        run = tracker_cli("--url", "runs.db", "ttpt", "check", experiment, *args, cwd=folder, check=False)
        assert run.returncode == 1
        assert message in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert stored_checks(folder) == []

    def test_a_missing_store_is_an_error_and_is_not_created(self, folder: Path) -> None:
        run = tracker_cli(
            "--url", "absent.db", "ttpt", "check", "1", "--strategy", "strats:honest", "--data", "prices.csv",
            cwd=folder, check=False,
        )  # fmt: skip
        assert run.returncode == 1
        assert not (folder / "absent.db").exists()
