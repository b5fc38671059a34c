"""Look-ahead checks on an executor: a real Dask LocalCluster of worker processes gives the local
run's results; batches are bounded and spread every check's boundaries; the CLI's --dask."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import distributed
import pytest

from bench.catalogue import HONEST, LEAKS, Case, ma_crossover, prices
from tests.executors import RecordingExecutor
from tests.test_cli import tracker_cli
from tracker import ExperimentTracker, ValidationError
from tracker.ttpt import LookaheadMonitor, LookaheadOptions, check_lookahead
from tracker.ttpt._executor import IN_FLIGHT

MARKER_ENV = "TRACKER_TEST_DIE_ONCE"


def outcome(case: Case, **options: Any) -> Any:
    return check_lookahead(case.strategy, case.data(seed=3, assets=2, years=1), case.params, budget=40, **options)


@pytest.mark.parametrize("case", LEAKS + HONEST, ids=[c.name for c in LEAKS + HONEST])
def test_a_dask_cluster_gives_the_local_result_on_every_catalogue_strategy(case: Case, cluster_executor: Any) -> None:
    local = outcome(case)
    on_cluster = outcome(case, executor=cluster_executor, batch_size=7)
    assert on_cluster == local
    assert on_cluster.passed is (case in HONEST)


def test_an_unpicklable_strategy_fails_with_an_error_naming_it(cluster_executor: Any) -> None:
    def local_strategy(data: Any, params: Any) -> Any:
        return ma_crossover(data, params)

    with pytest.raises(ValidationError, match=r"local_strategy.*cannot be pickled.*top level of an importable module"):
        check_lookahead(local_strategy, prices(1, 2, 1), {"fast": 5, "slow": 20}, budget=20, executor=cluster_executor)


def dies_once_in_a_worker(data: Any, params: Any) -> Any:
    """ma_crossover, but the first call in a Dask worker kills that worker's process."""
    marker = Path(os.environ[MARKER_ENV])
    try:
        distributed.get_worker()
    except ValueError:  # on the driver (the full runs)
        return ma_crossover(data, params)
    if not marker.exists():
        marker.write_text("killed")
        os._exit(1)
    return ma_crossover(data, params)


def test_a_worker_killed_mid_check_is_retried_and_the_result_is_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "died"
    monkeypatch.setenv(MARKER_ENV, str(marker))  # the workers start after this, and inherit it
    data, params = prices(2, 2, 1), {"fast": 5, "slow": 20}
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = check_lookahead(
            dies_once_in_a_worker, data, params, budget=60, executor=client.get_executor(), batch_size=4
        )
    assert marker.read_text() == "killed"  # a worker did die
    assert on_cluster == check_lookahead(ma_crossover, data, params, budget=60)
    assert on_cluster.passed


def test_many_checks_are_spread_together_in_bounded_batches_with_the_results_of_one_by_one() -> None:
    data = prices(4, 2, 1)
    many = [{"fast": fast, "slow": 30} for fast in (3, 5, 8, 13)]
    executor = RecordingExecutor()
    with executor:
        options = LookaheadOptions(exhaustive=True, executor=executor, batch_size=3)
        monitor = LookaheadMonitor(ma_crossover, data, options)
        results = monitor.check_many(many)
    assert results == [LookaheadMonitor(ma_crossover, data, exhaustive=True).check(params) for params in many]
    assert len(set(executor.firsts[:4])) == 4  # the first four batches belong to four different checks
    batches = [math.ceil(result.metrics["boundaries"] / 3) for result in results]  # type: ignore[union-attr]
    assert sorted(Counter(executor.firsts).values()) == sorted(batches)
    assert sum(batches) > IN_FLIGHT  # more batches than may be in flight: the bound was needed
    assert executor.most_pending <= IN_FLIGHT


def test_a_failing_check_among_many_is_returned_in_its_place() -> None:
    data = prices(4, 2, 1)
    with ThreadPoolExecutor(max_workers=2) as executor:
        monitor = LookaheadMonitor(ma_crossover, data, budget=20, executor=executor)
        results = monitor.check_many([{"fast": 5, "slow": 30}, {"fast": 5}, {"fast": 8, "slow": 30}])
        assert results[0] == monitor.check({"fast": 5, "slow": 30})
        assert isinstance(results[1], KeyError)
        assert results[2] == monitor.check({"fast": 8, "slow": 30})


def test_the_options_object_and_the_keywords_are_the_same_check() -> None:
    data, params = prices(5, 2, 1), {"fast": 5, "slow": 20}
    options = LookaheadOptions(budget=30, seed=4, perturbation="noise")
    assert check_lookahead(ma_crossover, data, params, options) == check_lookahead(
        ma_crossover, data, params, budget=30, seed=4, perturbation="noise"
    )
    assert check_lookahead(ma_crossover, data, params, options, seed=5) == check_lookahead(
        ma_crossover, data, params, budget=30, seed=5, perturbation="noise"
    )
    monitor = LookaheadMonitor(ma_crossover, data, options)
    assert (monitor.budget, monitor.seed, monitor.perturbation) == (30, 4, "noise")
    with pytest.raises(TypeError, match="unexpected keyword argument 'budgets'"):
        check_lookahead(ma_crossover, data, params, budgets=30)
    with pytest.raises(ValidationError, match=r"executor: must be a concurrent\.futures\.Executor"):
        LookaheadOptions(executor="tcp://localhost:8786")  # type: ignore[arg-type]


STRATEGIES = """
def crossover(close, params):
    fast = close.rolling(params["fast"]).mean()
    slow = close.rolling(params["slow"]).mean()
    return (fast > slow).astype(float)
"""


def test_the_cli_checks_many_experiments_on_a_local_dask_cluster_as_it_does_locally(tmp_path: Path) -> None:
    (tmp_path / "strats.py").write_text(STRATEGIES)
    close = prices(6, 2, 1)["close"]
    close.to_csv(tmp_path / "prices.csv")
    for store in ("local.db", "dask.db"):
        with ExperimentTracker(tmp_path / store) as t:
            for name in ("a", "b"):
                eid = t.create_experiment(name, "t", "m")
                t.log_trials(
                    eid,
                    [
                        {"trial_number": n, "params": {"fast": n + 3, "slow": 20}, "performance": {"sharpe": n}}
                        for n in range(4)
                    ],
                )
    common = ["a", "b", "--strategy", "strats:crossover", "--data", "prices.csv", "--k", "2", "--exhaustive"]
    common += ["--format", "json", "--n-jobs", "2"]
    local = tracker_cli("--url", "local.db", "ttpt", "check", *common, cwd=tmp_path)
    dask = tracker_cli("--url", "dask.db", "ttpt", "check", *common, "--dask", "local", cwd=tmp_path)
    assert json.loads(dask.stdout) == json.loads(local.stdout)
    assert [(r["experiment_id"], r["trial_number"], r["passed"]) for r in json.loads(dask.stdout)] == [
        (1, 3, True),
        (1, 2, True),
        (2, 3, True),
        (2, 2, True),
    ]

    def stored(store: str) -> list[dict[str, Any]]:
        with ExperimentTracker(tmp_path / store) as t:
            found = [r for e in (1, 2) for trial in t.get_trials(e) for r in t.get_ttpt_results(trial["id"])]
        return [{key: value for key, value in r.items() if key not in ("created_at", "timestamp")} for r in found]

    assert len(stored("dask.db")) == 4
    assert stored("dask.db") == stored("local.db")


def test_the_cli_connects_to_a_running_scheduler(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    prices(6, 2, 1)["close"].to_csv(tmp_path / "prices.csv")
    with ExperimentTracker(tmp_path / "runs.db") as t:
        eid = t.create_experiment("a", "t", "m")
        t.log_trials(
            eid,
            [
                {"trial_number": n, "params": {"fast": n + 3, "slow": 20}, "performance": {"sharpe": n}}
                for n in range(3)
            ],
        )
    args = ["--url", str(tmp_path / "runs.db"), "ttpt", "check", "a", "--strategy", "bench.catalogue:ma_crossover"]
    args += ["--data", str(tmp_path / "prices.csv"), "--data-key", "close", "--k", "2", "--budget", "30"]
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        address = client.scheduler.address
        run = tracker_cli(*args, "--format", "json", "--dask", address, cwd=root)
    assert [(r["trial_number"], r["passed"]) for r in json.loads(run.stdout)] == [(2, True), (1, True)]
    refused = tracker_cli(*args, "--dask", "scheduler-host:8786", cwd=root, check=False)
    assert refused.returncode == 1
    assert "expected a scheduler address such as tcp://HOST:8786" in refused.stderr
