"""The overfitting statistics of a family on an executor: a real Dask LocalCluster of worker
processes and a ProcessPoolExecutor give the local run's numbers bit for bit (logits in order
too); tasks are submitted in bounded batches; the CLI's --dask."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.executors import RecordingExecutor
from tests.test_cli import tracker_cli
from tracker import ExperimentTracker, ValidationError
from tracker.reports import family as family_module
from tracker.reports import overfitting as stats
from tracker.reports.parallel import IN_FLIGHT


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 7 trials and CSCV steps of a few splits, so a small family makes many tasks."""
    monkeypatch.setattr(family_module, "BLOCK", 7)
    monkeypatch.setattr(stats, "CELLS", 400)


def two_experiments(path: Path, n: int = 40, t: int = 260) -> tuple[ExperimentTracker, list[int]]:
    """Two experiments of correlated, fat-tailed trials over the same business days."""
    rng = np.random.default_rng(11)
    shared = rng.standard_t(4, t) * 0.01
    matrix = 0.5 * shared[:, None] + rng.standard_t(4, (t, n)) * 0.01 + np.linspace(0, 0.001, n)
    index = pd.bdate_range("2023-01-02", periods=t)
    tracker = ExperimentTracker(path)
    ids = [tracker.create_experiment(name, "T", "m") for name in ("first", "second")]
    for j in range(n):
        returns = pd.Series(matrix[:, j], index=index)
        tracker.log_trial(ids[j % 2], j, {"j": j}, {}, returns=returns)
    return tracker, ids


@pytest.mark.usefixtures("small_steps")
def test_a_dask_cluster_gives_the_local_numbers_bit_for_bit(tmp_path: Path, cluster_executor: Any) -> None:
    tracker, ids = two_experiments(tmp_path / "f.db")
    with tracker:
        local = tracker.overfitting_report(ids, splits=10)
        on_cluster = tracker.overfitting_report(ids, splits=10, executor=cluster_executor)
        assert local.pbo is not None
        assert len(local.logits) == 252
        assert on_cluster == local  # every field, the logits in their order
        assert tracker.overfitting(ids, splits=10, executor=cluster_executor) == local.as_dict()


@pytest.mark.usefixtures("small_steps")
def test_a_process_pool_gives_the_local_numbers_bit_for_bit(tmp_path: Path) -> None:
    tracker, ids = two_experiments(tmp_path / "f.db")
    with tracker, ProcessPoolExecutor(max_workers=2) as pool:
        for splits in (4, 8, 12):
            assert tracker.overfitting_report(ids, splits=splits, executor=pool) == tracker.overfitting_report(
                ids, splits=splits
            )


@pytest.mark.usefixtures("small_steps")
def test_every_pass_goes_to_the_executor_in_bounded_batches(tmp_path: Path) -> None:
    tracker, ids = two_experiments(tmp_path / "f.db")
    executor = RecordingExecutor()
    with tracker, executor:
        assert tracker.overfitting_report(ids, splits=12, executor=executor) == tracker.overfitting_report(
            ids, splits=12
        )
    blocks = -(-40 // 7)
    steps = -(-(924 // 2) // max(1, 400 // (2 * 40)))  # C(12, 6) / 2 pairs, 5 per step
    assert Counter(executor.functions) == {"standardized_sum": blocks, "block_stats": blocks, "cscv_step": steps}
    assert steps > IN_FLIGHT  # more tasks than may be in flight: the bound was needed
    assert executor.most_pending <= IN_FLIGHT


def test_an_executor_that_is_not_one_is_refused(tmp_path: Path) -> None:
    tracker, ids = two_experiments(tmp_path / "f.db", n=4, t=40)
    with tracker, pytest.raises(ValidationError, match=r"executor.*concurrent.futures.Executor, got str"):
        tracker.overfitting(ids, executor="local")  # type: ignore[arg-type]


def test_the_cli_with_dask_local_prints_the_local_numbers(tmp_path: Path) -> None:
    two_experiments(tmp_path / "f.db")[0].close()
    args = ("--url", "f.db", "--format", "json", "overfitting", "first", "second", "--splits", "8")
    local = json.loads(tracker_cli(*args, cwd=tmp_path).stdout)
    on_cluster = json.loads(tracker_cli(*args, "--dask", "local", "--n-jobs", "2", cwd=tmp_path).stdout)
    assert on_cluster == local
    assert local["n_trials"] == 40
    refused = tracker_cli(*args, "--dask", "scheduler-host:8786", cwd=tmp_path, check=False)
    assert refused.returncode != 0
    assert "tcp://HOST:8786" in refused.stderr
