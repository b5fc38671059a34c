"""The command line through its real entry point."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracker import ExperimentTracker


def tracker_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, "-m", "tracker.cli", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check:
        assert run.returncode == 0, run.stderr
    return run


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = str(tmp_path / "cli.db")
    with ExperimentTracker(url) as t:
        a = t.create_experiment("alpha", "Momentum", "tpe")
        b = t.create_experiment("beta", "MeanRev", "grid")
        for n in range(5):
            trial = t.log_trial(a, n, {"x": n}, {"sharpe": n / 2})
            t.log_ttpt_result(trial, n != 2, 0 if n != 2 else 1, {})
            t.log_trial(b, n, {"y": n}, {"sharpe": 1 - n}, state="pruned" if n == 4 else "complete")
    return url


def test_version_and_help() -> None:
    assert tracker_cli("--version").stdout.startswith("tracker ")
    assert "experiments" in tracker_cli("--help").stdout


def test_experiments_list_as_table_json_and_csv(store: str) -> None:
    table = tracker_cli("--url", store, "experiments", "list").stdout
    assert "alpha" in table
    assert "beta" in table
    rows = json.loads(tracker_cli("--url", store, "experiments", "list", "--format", "json").stdout)
    assert [(r["id"], r["trials"], r["best"], r["violation_rate"]) for r in rows] == [
        (1, 5, 2.0, 0.2),
        (2, 5, 1.0, None),
    ]
    parsed = list(
        csv.DictReader(io.StringIO(tracker_cli("--url", store, "experiments", "list", "--format", "csv").stdout))
    )
    assert [r["name"] for r in parsed] == ["alpha", "beta"]


def test_show_trials_and_compare(store: str) -> None:
    shown = json.loads(tracker_cli("--url", store, "experiments", "show", "1", "--format", "json").stdout)
    assert shown[0]["best_sharpe"] == 2.0
    trials = json.loads(
        tracker_cli("--url", store, "trials", "list", "2", "--sort", "value", "--limit", "2", "--format", "json").stdout
    )
    assert [t["number"] for t in trials] == [0, 1]
    pruned = json.loads(
        tracker_cli("--url", store, "trials", "list", "2", "--state", "pruned", "--format", "json").stdout
    )
    assert [t["number"] for t in pruned] == [4]
    compared = json.loads(tracker_cli("--url", store, "compare", "1", "2", "--format", "json").stdout)
    assert [c["violation_rate"] for c in compared] == [0.2, None]


def test_export_and_plot_write_files(store: str, tmp_path: Path) -> None:
    assert "wrote" in tracker_cli("--url", store, "export", "1", "2", "-o", str(tmp_path / "e.csv")).stdout
    assert (tmp_path / "e.csv").exists()
    for kind in ("history", "ttpt", "params"):
        tracker_cli("--url", store, "plot", "1", "--kind", kind, "-o", str(tmp_path / f"{kind}.png"))
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000
    tracker_cli("--url", store, "plot", "1", "2", "--kind", "compare", "-o", str(tmp_path / "compare.png"))


def test_a_missing_id_or_bad_option_is_one_line_on_stderr(store: str) -> None:
    run = tracker_cli("--url", store, "experiments", "show", "99", check=False)
    assert run.returncode == 1
    assert run.stderr.strip() == "tracker: error: experiment 99 does not exist"
    run = tracker_cli("--url", store, "trials", "list", "1", "--sort", "nonsense", check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr


def test_copy_and_json_compact(store: str, tmp_path: Path) -> None:
    journal = tmp_path / "copy.jsonl"
    first = tracker_cli("copy", store, str(journal), "-q").stdout
    assert "2 experiments, 10 trials, 5 ttpt_results" in first
    again = tracker_cli("copy", store, str(journal), "-q").stdout
    assert "0 experiments, 0 trials, 0 ttpt_results" in again
    assert "compacted" in tracker_cli("json", "compact", str(journal)).stdout
    with ExperimentTracker(journal) as t:
        assert len(t.get_trials(1)) == 5
