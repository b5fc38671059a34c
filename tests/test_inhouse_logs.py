"""The in-house optimizer's TTPT records adopted: its monitor's violation logs (cut short, as the
monitor leaves them, and at every other point) and its validation history, on every backend."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.inhouse_optimizer import RuntimeTTPTMonitor, TPEOptimizer, TTPTViolation, leaky, prices, sharpe
from tracker import ExperimentTracker, NotFoundError, ValidationError
from tracker.integrations.optuna import import_study
from tracker.transfer.salvage import Unreadable, salvage

SPACE = {"lookback": ("int", 5, 60), "peek": ("float", 0.0, 20.0)}


def violation(days: int = 1) -> TTPTViolation:
    return TTPTViolation(days, "signal_change", "changed_signals", 0.0, 0.25, 0.25, "high")


def log_record(number: int, params: dict[str, Any], *, passed: bool = False, stamp: str = "") -> dict[str, Any]:
    """A record as the monitor keeps it: TTPTViolation objects inside metrics.shift_results."""
    found = [] if passed else [violation(1), violation(5)]
    return {
        "trial_number": number,
        "timestamp": stamp or f"2025-11-27T10:{number:02d}:00.123456",
        "params": params,
        "passed": passed,
        "violations": [v.to_dict() for v in found],
        "metrics": {"n_shifts": 2, "sharpe": math.inf, "shift_results": [{"shift_days": 1, "violations": found}]},
    }


def write_log(folder: Path, record: dict[str, Any]) -> Path:
    """Write a record the way the monitor does: json.dump stops at the first TTPTViolation."""
    monitor = RuntimeTTPTMonitor(leaky, {}, log_dir=folder)
    monitor._log_violation(record)
    assert monitor.printed == ["Failed to log violation: Object of type TTPTViolation is not JSON serializable"]
    [path] = folder.glob(f"violation_trial_{record['trial_number']}_*.json")
    return path


def cut_text() -> str:
    """The text of a log as the monitor cuts it."""
    return write_log_text(log_record(10, {"lookback": 20, "peek": 0.5, "name": 'a "q" \\ é'}))


def write_log_text(record: dict[str, Any]) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return write_log(Path(folder), record).read_text()


# -- reading a file cut short ----------------------------------------------------------------------


def test_a_log_cut_by_the_monitor_keeps_every_key_written_before_metrics() -> None:
    text = cut_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    read = salvage(text)
    record = log_record(10, {"lookback": 20, "peek": 0.5, "name": 'a "q" \\ é'})
    for key in ("trial_number", "timestamp", "params", "passed", "violations"):
        assert read.complete(key)
        assert read.value[key] == record[key]
    assert not read.complete("metrics")
    assert read.cut == "metrics.shift_results[0].violations[0]"
    assert read.value["metrics"]["n_shifts"] == 2
    assert read.value["metrics"]["sharpe"] == math.inf


def test_a_log_cut_at_every_point_yields_only_whole_values_and_everything_once_whole() -> None:
    full = json.dumps(log_record(7, {"lookback": 20, "peek": 0.05}, passed=True), indent=2)
    whole = json.loads(full)
    read_keys: list[int] = []
    for end in range(len(full) + 1):
        try:
            read = salvage(full[:end])
        except Unreadable:
            assert full[:end].strip() == "", end  # only an empty prefix is unreadable
            continue
        complete = [key for key in read.value if read.complete(key)]
        assert complete == list(whole)[: len(complete)], end  # keys in order, none skipped
        for key in complete:
            assert json.dumps(read.value[key]) == json.dumps(whole[key]), (end, key)
        read_keys.append(len(complete))
    assert read_keys == sorted(read_keys)  # a longer prefix never yields less
    assert salvage(full).cut is None
    assert read_keys[-1] == len(whole)


JSON_LEAF = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=8)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    document=st.dictionaries(st.text(max_size=6), JSON_VALUE, min_size=1, max_size=6),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
    where=st.floats(0.0, 1.0),
)
def test_a_random_document_cut_at_a_random_point_yields_its_whole_values(
    document: dict[str, Any], indent: int | None, ascii_only: bool, where: float
) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    end = round(where * len(text))
    try:
        read = salvage(text[:end])
    except Unreadable:
        assert text[:end].strip() == ""
        return
    for key in read.value:
        if read.complete(key):
            assert json.dumps(read.value[key]) == json.dumps(document[key])
    if end == len(text):
        assert read.cut is None
        assert json.dumps(read.value) == json.dumps(document)


def test_text_that_is_not_a_json_object_is_unreadable() -> None:
    for text in ("", "   ", "[1, 2]", "garbage", '{"a": 1} trailing', '{"a" 1}', '{"a": tru, "b": 1}'):
        with pytest.raises(Unreadable):
            salvage(text)


# -- importing, on every backend --------------------------------------------------------------------


def ambiguous_experiment(tracker: ExperimentTracker) -> int:
    """Trials 0..9; trials 2 and 7 share params {"lookback": 20, "peek": 1.0}, the others are unique."""
    eid = tracker.create_experiment("in-house study", "Momentum", "tpe_runtime_ttpt")
    for number in range(10):
        params = {"lookback": 20, "peek": 1.0} if number in (2, 7) else {"lookback": 10 + number, "peek": 0.5}
        tracker.log_trial(eid, number, params, {"sharpe": number / 10})
    return eid


def test_logs_are_matched_by_params_then_by_number_and_the_rest_reported(
    tracker: ExperimentTracker, tmp_path: Path
) -> None:
    eid = ambiguous_experiment(tracker)
    folder = tmp_path / "logs" / "ttpt_violations"
    write_log(folder, log_record(5, {"lookback": 14, "peek": 0.5}))  # unique params: trial 4, N - 1 agrees
    write_log(folder, log_record(1, {"lookback": 16, "peek": 0.5}))  # unique params of trial 6: params first
    write_log(folder, log_record(8, {"lookback": 20, "peek": 1.0}))  # trials 2 and 7: number 7 decides
    write_log(folder, log_record(4, {"lookback": 20, "peek": 1.0}))  # trials 2 and 7, neither is 3
    write_log(folder, log_record(9, {"lookback": 99, "peek": 0.5}))  # no trial has these params
    (folder / "violation_trial_6_20251127_100600.json").write_text('{"trial_number": 6, "timestamp": "2025-11-2')
    (folder / "violation_trial_3_20251127_100300.json").write_text("")

    report = tracker.import_ttpt_logs(eid, tmp_path / "logs")

    rows = {row["in_house_trial_number"] or int(row["source"].split("_")[3]): row for row in report["records"]}
    assert [row["source"] for row in report["records"]] == sorted(
        (row["source"] for row in report["records"]), key=lambda s: int(s.split("_")[3])
    )
    assert (rows[5]["trial_number"], rows[5]["matched_by"], rows[5]["status"]) == (4, "params", "imported")
    assert (rows[1]["trial_number"], rows[1]["matched_by"], rows[1]["status"]) == (6, "params", "imported")
    assert (rows[8]["trial_number"], rows[8]["matched_by"], rows[8]["status"]) == (7, "params, then number", "imported")
    assert rows[4]["status"] == "unmatched"
    assert "trials 2, 7 have these params" in rows[4]["reason"]
    assert rows[9]["status"] == "unmatched"
    assert rows[9]["reason"] == "no trial of the experiment has these params"
    assert rows[6]["status"] == "unusable"
    assert "params, passed, violations missing" in rows[6]["reason"]
    assert rows[3]["status"] == "unusable"
    assert "nothing readable" in rows[3]["reason"]
    assert {k: report[k] for k in ("imported", "already_imported", "unmatched", "unusable")} == {
        "imported": 3,
        "already_imported": 0,
        "unmatched": 2,
        "unusable": 2,
    }
    by_number = {t["trial_number"]: t for t in tracker.get_trials(eid)}
    assert [n for n, t in by_number.items() if t["ttpt_result"] is not None] == [4, 6, 7]
    [stored] = tracker.get_ttpt_results(by_number[7]["id"])
    record = log_record(8, {"lookback": 20, "peek": 1.0})
    assert (stored["passed"], stored["num_violations"], stored["violations"]) == (False, 2, record["violations"])
    assert stored["created_at"].startswith("2025-11-27T10:08:00.123456")
    assert stored["metrics"]["metrics_truncated"] is True
    assert stored["metrics"]["n_shifts"] == 2
    assert stored["metrics"]["sharpe"] == math.inf
    origin = stored["metrics"]["in_house_log"]
    assert {k: origin[k] for k in ("trial_number", "timestamp", "params", "matched_by")} == {
        "trial_number": 8,
        "timestamp": record["timestamp"],
        "params": record["params"],
        "matched_by": "params, then number",
    }
    assert origin["cut_at"] == "metrics.shift_results[0].violations[0]"
    assert origin["source"].startswith("ttpt_violations/violation_trial_8_")

    again = tracker.import_ttpt_logs(eid, tmp_path / "logs")
    assert (again["imported"], again["already_imported"], again["unmatched"], again["unusable"]) == (0, 3, 2, 2)
    assert sum(len(tracker.get_ttpt_results(t["id"])) for t in by_number.values()) == 3


def test_the_history_brings_the_passed_checks_and_nothing_a_log_brought(
    tracker: ExperimentTracker, tmp_path: Path
) -> None:
    eid = ambiguous_experiment(tracker)
    failed = log_record(5, {"lookback": 14, "peek": 0.5})
    write_log(tmp_path, failed)
    tracker.import_ttpt_logs(eid, tmp_path)
    in_memory = log_record(9, {"lookback": 18, "peek": 0.5})  # objects, as the monitor holds them
    in_memory.update(violations=[violation(3)], metrics={"sharpe": np.float64(2.5), "worst": violation(3)})
    history = [log_record(4, {"lookback": 13, "peek": 0.5}, passed=True), failed, in_memory, "not a dict"]
    report = tracker.import_ttpt_history(eid, history)
    assert [row["status"] for row in report["records"]] == ["imported", "already imported", "imported", "unusable"]
    [plain] = tracker.get_ttpt_results(tracker.get_trials(eid)[8]["id"])
    assert plain["violations"] == [violation(3).to_dict()]
    assert plain["num_violations"] == 1
    assert plain["metrics"]["sharpe"] == 2.5
    assert plain["metrics"]["worst"] == violation(3).to_dict()
    passed = tracker.get_trials(eid)[3]
    assert passed["trial_number"] == 3
    assert passed["ttpt_result"]["passed"] is True
    metrics = passed["ttpt_result"]["metrics"]
    assert "metrics_truncated" not in metrics
    assert metrics["in_house_log"]["source"] == "validation_history[0]"
    whole = tracker.get_trials(eid)[4]["ttpt_result"]
    assert whole["metrics"]["metrics_truncated"] is True  # the log came first; the history added nothing
    assert tracker.import_ttpt_history(eid, history)["imported"] == 0


def test_bad_arguments_are_refused_before_anything_is_read(tracker: ExperimentTracker, tmp_path: Path) -> None:
    eid = ambiguous_experiment(tracker)
    with pytest.raises(NotFoundError, match="experiment 99 does not exist"):
        tracker.import_ttpt_logs(99, tmp_path)
    with pytest.raises(ValidationError, match="is not a folder"):
        tracker.import_ttpt_logs(eid, tmp_path / "missing")
    with pytest.raises(ValidationError, match="history: expected the monitor's validation_history list, got dict"):
        tracker.import_ttpt_history(eid, {"trial_number": 1})  # type: ignore[arg-type]
    assert tracker.import_ttpt_logs(eid, tmp_path)["records"] == []


# -- the workflow of docs/compatibility.md ------------------------------------------------------------


def test_the_in_house_optimizer_run_unchanged_then_imported_keeps_every_check(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "ttpt_violations"
    optimizer = TPEOptimizer(seed=3, log_dir=logs)
    result = optimizer.optimize_with_runtime_ttpt(
        objective_fn=sharpe,
        strategy_fn=leaky,
        data={"close": prices()},
        n_trials=30,
        param_space=SPACE,
        checkpoint_interval=5,
    )
    assert result["ttpt_summary"] == {"validations": 6, "violations": 6}
    files = sorted(logs.iterdir())
    assert len(files) == 6
    for path in files:  # every log on disk is invalid JSON, as the in-house report found
        with pytest.raises(json.JSONDecodeError):
            json.loads(path.read_text())
    with ExperimentTracker(tmp_path / "experiments.db") as tracker:
        eid = import_study(optimizer.study, tracker, experiment_name="leaky", metric_names=["sharpe"], progress=False)
        report = tracker.import_ttpt_logs(eid, tmp_path / "logs")
        assert report["imported"] == 6
        checked = {t["trial_number"]: t for t in tracker.get_trials(eid) if t["ttpt_result"] is not None}
        assert sorted(checked) == [4, 9, 14, 19, 24, 29]  # the in-house checkpoints 5, 10, ... 30, from 0
        history = {h["trial_number"] - 1: h for h in optimizer.monitor.validation_history}  # type: ignore[union-attr]
        for number, trial in checked.items():
            stored = trial["ttpt_result"]
            assert trial["params"] == history[number]["params"]
            assert stored["violations"] == history[number]["violations"]
            assert stored["metrics"]["in_house_log"]["matched_by"] == "params"
            assert stored["metrics"]["metrics_truncated"] is True
        assert tracker.verdict(eid)["status"] != "valid"
        again = tracker.import_ttpt_history(eid, optimizer.monitor.validation_history)  # type: ignore[union-attr]
        assert (again["imported"], again["already_imported"]) == (0, 6)


def test_the_command_imports_the_logs_and_says_what_it_did(tmp_path: Path) -> None:
    store = tmp_path / "cli.db"
    with ExperimentTracker(store) as tracker:
        eid = ambiguous_experiment(tracker)
    write_log(tmp_path / "logs", log_record(8, {"lookback": 20, "peek": 1.0}))
    write_log(tmp_path / "logs", log_record(9, {"lookback": 99, "peek": 0.5}))
    command = [sys.executable, "-m", "tracker.cli", "--url", str(store), "ttpt", "import-logs"]
    run = subprocess.run([*command, "in-house study", str(tmp_path / "logs")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "in-house TTPT logs into experiment" in run.stdout
    assert "2 log(s) in" in run.stdout
    assert "1 imported, 0 already imported; 1 not imported" in run.stdout
    again = subprocess.run(
        [*command, str(eid), str(tmp_path / "logs"), "--format", "json"], capture_output=True, text=True
    )
    rows = json.loads(again.stdout)
    assert [(r["status"], r["matched_by"], r["trial_number"]) for r in rows] == [
        ("already imported", "params, then number", 7),
        ("unmatched", None, None),
    ]
    assert rows[1]["reason"] == "no trial of the experiment has these params"
    missing = subprocess.run([*command, str(eid), str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert "is not a folder" in missing.stderr
