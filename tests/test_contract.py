"""The repository contract: every behaviour of the public API, run on every backend."""

from __future__ import annotations

import math
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import BACKENDS, make_store_url
from tracker import (
    AmbiguousNameError,
    DuplicateArtifactError,
    DuplicateStepError,
    DuplicateTrialError,
    ExperimentTracker,
    NotFoundError,
    Owner,
    StoreError,
    StoreNotFoundError,
    TrackerError,
    ValidationError,
)
from tracker.store.records import ExperimentQuery


def new_experiment(t: ExperimentTracker, name: str = "momentum", **kwargs: object) -> int:
    return t.create_experiment(name, "Momentum", "tpe_runtime_ttpt", {"n_trials": 50}, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=[*BACKENDS, "pgbouncer"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every backend, and PostgreSQL through PgBouncer in transaction mode (?pooler=transaction)."""
    return make_store_url(request.param, tmp_path, request)


class TestExperiments:
    def test_a_created_experiment_reads_back_with_the_in_house_keys(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        e = tracker.get_experiment(eid)
        assert {"id", "name", "template", "mode", "config", "created_at", "summary"} <= set(e)
        assert (e["id"], e["name"], e["template"], e["mode"]) == (eid, "momentum", "Momentum", "tpe_runtime_ttpt")
        assert e["config"] == {"n_trials": 50}
        assert e["summary"] == {}  # in-house: no summary reads as {}
        assert (e["objective"], e["direction"]) == ("sharpe", "maximize")
        created = datetime.fromisoformat(e["created_at"])
        assert created.tzinfo is not None
        assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)

    def test_an_omitted_config_and_summary_read_as_empty_dicts_and_are_stored_as_none(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = tracker.create_experiment("a", "b", "c")
        assert (tracker.get_experiment(eid)["config"], tracker.get_experiment(eid)["summary"]) == ({}, {})
        assert [(e["config"], e["summary"]) for e in tracker.list_experiments()] == [({}, {})]
        assert [(e["config"], e["summary"]) for e in tracker.filter_experiments()] == [({}, {})]
        stored = tracker.repository.get_experiment(eid)
        assert (stored.config, stored.summary) == (None, None)

    def test_ids_grow_in_insertion_order_and_are_never_reused_after_a_delete(self, tracker: ExperimentTracker) -> None:
        first, second = new_experiment(tracker), new_experiment(tracker)
        assert second > first
        tracker.delete_experiment(second)
        third = new_experiment(tracker)
        assert third > second
        t1 = tracker.log_trial(third, 0, {}, {"sharpe": 1})
        tracker.delete_experiment(third)
        fourth = new_experiment(tracker)
        assert tracker.log_trial(fourth, 0, {}, {"sharpe": 1}) > t1

    def test_list_experiments_returns_all_newest_first_as_in_house(self, tracker: ExperimentTracker) -> None:
        ids = [new_experiment(tracker, f"e{i}") for i in range(3)]
        assert [e["id"] for e in tracker.list_experiments()] == ids[::-1]
        assert [e["name"] for e in tracker.list_experiments()] == ["e2", "e1", "e0"]
        assert [e["id"] for e in tracker.filter_experiments()] == ids  # filter_experiments keeps id order

    def test_a_missing_experiment_raises_not_found_which_is_also_a_value_error(
        self, tracker: ExperimentTracker
    ) -> None:
        with pytest.raises(NotFoundError, match="experiment 999 does not exist"):
            tracker.get_experiment(999)
        with pytest.raises(ValueError, match="999"):
            tracker.get_experiment(999)

    def test_summary_replaces_the_previous_one(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_experiment_summary(eid, {"best_sharpe": 1.0})
        tracker.log_experiment_summary(eid, {"ttpt_summary": {"violation_rate": 0.1}, "best_sharpe": 2.0})
        assert tracker.get_experiment(eid)["summary"] == {"ttpt_summary": {"violation_rate": 0.1}, "best_sharpe": 2.0}

    def test_summary_of_a_missing_experiment_raises(self, tracker: ExperimentTracker) -> None:
        with pytest.raises(NotFoundError):
            tracker.log_experiment_summary(42, {"a": 1})

    def test_objective_and_direction_are_stored(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker, objective="drawdown", direction="minimize")
        e = tracker.get_experiment(eid)
        assert (e["objective"], e["direction"]) == ("drawdown", "minimize")

    def test_delete_cascades_to_trials_and_ttpt_results(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        keep = new_experiment(tracker)
        tid = tracker.log_trial(eid, 1, {"a": 1}, {"sharpe": 1.0})
        tracker.log_ttpt_result(tid, True, 0, {})
        kept = tracker.log_trial(keep, 1, {"a": 1}, {"sharpe": 1.0})
        tracker.delete_experiment(eid)
        with pytest.raises(NotFoundError):
            tracker.get_experiment(eid)
        with pytest.raises(NotFoundError):
            tracker.get_trial(tid)
        with pytest.raises(NotFoundError):
            tracker.get_ttpt_results(tid)
        assert tracker.get_trial(kept)["experiment_id"] == keep
        with pytest.raises(NotFoundError):
            tracker.delete_experiment(eid)


class TestTrials:
    def test_a_logged_trial_reads_back_with_the_in_house_keys(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 1, {"lookback": 20, "threshold": 0.05}, {"sharpe": 1.23, "returns": 0.15})
        [trial] = tracker.get_trials(eid)
        assert {
            "id",
            "experiment_id",
            "trial_number",
            "params",
            "performance",
            "strategy_code",
            "strategy_template",
            "generation_method",
            "created_at",
        } <= set(trial)
        assert trial["id"] == tid
        assert trial["params"] == {"lookback": 20, "threshold": 0.05}
        assert trial["performance"] == {"sharpe": 1.23, "returns": 0.15}
        assert trial["state"] == "complete"
        assert trial["value"] == 1.23
        assert trial["ttpt_result"] is None
        assert tracker.get_trial(tid) == trial

    def test_trials_are_ordered_by_trial_number_whatever_the_insert_order(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        for n in (5, 1, 3, 0, 4, 2):
            tracker.log_trial(eid, n, {"n": n}, {"sharpe": n})
        assert [t["trial_number"] for t in tracker.get_trials(eid)] == [0, 1, 2, 3, 4, 5]

    def test_optional_fields_are_stored(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        start = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        tid = tracker.log_trial(
            eid,
            0,
            {},
            {"sharpe": 0.5},
            state="pruned",
            strategy_code="def f(): pass",
            strategy_template="MA",
            generation_method="tpe",
            started_at=start,
            completed_at=start + timedelta(seconds=3),
        )
        t = tracker.get_trial(tid)
        assert (t["state"], t["strategy_code"], t["strategy_template"], t["generation_method"]) == (
            "pruned",
            "def f(): pass",
            "MA",
            "tpe",
        )
        assert datetime.fromisoformat(t["started_at"]) == start
        assert datetime.fromisoformat(t["completed_at"]) == start + timedelta(seconds=3)

    def test_naive_datetimes_are_taken_as_utc(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {}, started_at=datetime(2026, 5, 1, 12, 0))
        assert tracker.get_trial(tid)["started_at"] == "2026-05-01T12:00:00+00:00"

    def test_strategy_metadata_is_set_on_an_existing_trial(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1})
        tracker.log_strategy_metadata(tid, "code", "Momentum", "llm")
        t = tracker.get_trial(tid)
        assert (t["strategy_code"], t["strategy_template"], t["generation_method"]) == ("code", "Momentum", "llm")
        with pytest.raises(NotFoundError, match="trial 999"):
            tracker.log_strategy_metadata(999, "code", "Momentum", "llm")

    def test_a_duplicate_trial_number_raises_and_stores_nothing(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 7, {"a": 1}, {"sharpe": 1})
        with pytest.raises(DuplicateTrialError, match="7") as info:
            tracker.log_trial(eid, 7, {"a": 2}, {"sharpe": 2})
        assert isinstance(info.value, ValueError)
        assert info.value.trial_numbers == [7]
        assert [t["params"] for t in tracker.get_trials(eid)] == [{"a": 1}]

    def test_the_same_trial_number_may_be_used_in_another_experiment(self, tracker: ExperimentTracker) -> None:
        a, b = new_experiment(tracker), new_experiment(tracker)
        tracker.log_trial(a, 0, {}, {})
        tracker.log_trial(b, 0, {}, {})
        assert len(tracker.get_trials(b)) == 1

    def test_a_trial_for_a_missing_experiment_raises_not_found(self, tracker: ExperimentTracker) -> None:
        with pytest.raises(NotFoundError, match="experiment 77 does not exist"):
            tracker.log_trial(77, 0, {}, {"sharpe": 1})
        with pytest.raises(NotFoundError):
            tracker.get_trials(77)

    def test_the_objective_value_is_copied_out_of_performance(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker, objective="calmar")
        with_value = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0, "calmar": 3.5})
        without = tracker.log_trial(eid, 1, {}, {"sharpe": 1.0})
        nan = tracker.log_trial(eid, 2, {}, {"calmar": float("nan")})
        assert tracker.get_trial(with_value)["value"] == 3.5
        assert tracker.get_trial(without)["value"] is None
        assert tracker.get_trial(nan)["value"] is None
        assert math.isnan(tracker.get_trial(nan)["performance"]["calmar"])

    def test_an_objective_beyond_64_bits_is_a_number(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 2**63})
        assert tracker.get_trial(tid)["value"] == float(2**63)
        assert tracker.get_trial(tid)["performance"]["sharpe"] == 2**63

    def test_a_non_numeric_objective_is_refused(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        with pytest.raises(ValidationError, match=r"performance\.sharpe"):
            tracker.log_trial(eid, 0, {}, {"sharpe": "high"})
        assert tracker.get_trials(eid) == []


class TestBatches:
    def test_log_trials_returns_ids_in_input_order_with_ttpt(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        ids = tracker.log_trials(
            eid,
            [
                {
                    "trial_number": 2,
                    "params": {"x": 2},
                    "performance": {"sharpe": 0.2},
                    "ttpt": {
                        "passed": False,
                        "num_violations": 3,
                        "metrics": {"corr": 0.4},
                        "violations": [{"at": "2020-01-01"}],
                    },
                },
                {"trial_number": 1, "params": {"x": 1}, "performance": {"sharpe": 0.1}, "state": "pruned"},
            ],
        )
        assert len(ids) == 2
        assert tracker.get_trial(ids[0])["trial_number"] == 2
        assert tracker.get_trial(ids[1])["state"] == "pruned"
        [check] = tracker.get_ttpt_results(ids[0])
        assert (check["passed"], check["num_violations"], check["metrics"], check["violations"]) == (
            False,
            3,
            {"corr": 0.4},
            [{"at": "2020-01-01"}],
        )
        assert tracker.get_ttpt_results(ids[1]) == []

    def test_a_batch_is_written_whole_or_not_at_all(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 3, {}, {})
        with pytest.raises(DuplicateTrialError) as info:
            tracker.log_trials(eid, [{"trial_number": n, "params": {}, "performance": {}} for n in range(5)])
        assert info.value.trial_numbers == [3]
        assert [t["trial_number"] for t in tracker.get_trials(eid)] == [3]

    def test_a_batch_that_repeats_a_trial_number_is_refused(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        with pytest.raises(DuplicateTrialError):
            tracker.log_trials(eid, [{"trial_number": 1, "params": {}, "performance": {}}] * 2)
        assert tracker.get_trials(eid) == []

    def test_a_batch_with_one_bad_item_stores_nothing(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        with pytest.raises(ValidationError, match=r"trials\[1\]\.params"):
            tracker.log_trials(
                eid,
                [
                    {"trial_number": 0, "params": {}, "performance": {}},
                    {"trial_number": 1, "params": {"x": object()}, "performance": {}},
                ],
            )
        assert tracker.get_trials(eid) == []

    def test_an_empty_batch_returns_no_ids(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        assert tracker.log_trials(eid, []) == []
        with pytest.raises(NotFoundError):
            tracker.log_trials(eid + 100, [])

    def test_a_large_batch_keeps_input_order(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        numbers = list(range(1500, 0, -1))
        ids = tracker.log_trials(
            eid, [{"trial_number": n, "params": {"n": n}, "performance": {"sharpe": n}} for n in numbers]
        )
        assert ids == sorted(ids)
        assert [t["trial_number"] for t in tracker.get_trials(eid, order_by="value", limit=3)] == [1500, 1499, 1498]


class TestTTPT:
    def test_ttpt_results_read_back_and_the_latest_shows_on_the_trial(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1})
        first = tracker.log_ttpt_result(tid, True, 0, {"correlation": 0.98})
        second = tracker.log_ttpt_result(tid, False, 2, {"correlation": 0.5}, violations=[{"t": 1}, {"t": 2}])
        assert second > first
        results = tracker.get_ttpt_results(tid)
        assert [r["id"] for r in results] == [first, second]
        assert results[1]["violations"] == [{"t": 1}, {"t": 2}]
        assert tracker.get_trial(tid)["ttpt_result"]["id"] == second
        assert tracker.get_trials(eid)[0]["ttpt_result"]["passed"] is False

    def test_metrics_may_be_omitted(self, tracker: ExperimentTracker) -> None:
        tid = tracker.log_trial(new_experiment(tracker), 0, {}, {})
        tracker.log_ttpt_result(tid, True, 0)
        assert tracker.get_ttpt_results(tid)[0]["metrics"] is None

    def test_a_ttpt_result_for_a_missing_trial_raises(self, tracker: ExperimentTracker) -> None:
        with pytest.raises(NotFoundError, match="trial 5 does not exist"):
            tracker.log_ttpt_result(5, True, 0, {})

    def test_violation_rate_is_the_fraction_of_results_that_failed(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        assert tracker.violation_rate(eid) is None
        for n, passed in enumerate([True, False, True, True]):
            tid = tracker.log_trial(eid, n, {}, {"sharpe": n})
            tracker.log_ttpt_result(tid, passed, 0 if passed else 1, {})
        assert tracker.violation_rate(eid) == 0.25

    def test_in_house_zero_and_one_are_accepted_for_passed(self, tracker: ExperimentTracker) -> None:
        tid = tracker.log_trial(new_experiment(tracker), 0, {}, {})
        tracker.log_ttpt_result(tid, 1, 0, {})
        assert tracker.get_ttpt_results(tid)[0]["passed"] is True


class TestQueries:
    @pytest.fixture
    def filled(self, tracker: ExperimentTracker) -> tuple[ExperimentTracker, list[int]]:
        clean = tracker.create_experiment("clean run", "Momentum", "tpe")
        leaky = tracker.create_experiment("leaky run", "MeanRev", "tpe")
        unchecked = tracker.create_experiment("unchecked", "Momentum", "grid")
        loss = tracker.create_experiment("loss", "Momentum", "tpe", objective="loss", direction="minimize")
        for n in range(4):
            t = tracker.log_trial(clean, n, {"n": n}, {"sharpe": n / 2})
            tracker.log_ttpt_result(t, True, 0, {})
            t = tracker.log_trial(leaky, n, {"n": n}, {"sharpe": 3 + n})
            tracker.log_ttpt_result(t, n == 0, 0 if n == 0 else 2, {})
            tracker.log_trial(unchecked, n, {"n": n}, {"sharpe": 1.0})
            tracker.log_trial(loss, n, {"n": n}, {"loss": 10.0 - n})
        tracker.log_trial(clean, 10, {"n": 10}, {"sharpe": 99.0}, state="pruned")
        return tracker, [clean, leaky, unchecked, loss]

    def test_filter_by_violation_rate_leaves_out_experiments_without_ttpt(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, (clean, leaky, _, _) = filled
        assert [e["id"] for e in tracker.filter_experiments(max_violation_rate=0.2)] == [clean]
        assert [e["id"] for e in tracker.filter_experiments(max_violation_rate=0.75)] == [clean, leaky]
        rates = {e["id"]: e["violation_rate"] for e in tracker.filter_experiments(1.0)}
        assert rates == {clean: 0.0, leaky: 0.75}
        counts = {e["id"]: (e["ttpt_validations"], e["ttpt_violations"]) for e in tracker.filter_experiments(1.0)}
        assert counts == {clean: (4, 0), leaky: (4, 3)}
        listed = {e["id"]: (e["n_trials"], e["n_by_state"]["pruned"]) for e in tracker.list_experiments(stats=True)}
        assert listed[clean] == (5, 1)

    def test_filter_without_arguments_returns_every_experiment(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, ids = filled
        assert [e["id"] for e in tracker.filter_experiments()] == ids

    def test_filters_combine(self, filled: tuple[ExperimentTracker, list[int]]) -> None:
        tracker, (clean, leaky, unchecked, loss) = filled
        assert [e["id"] for e in tracker.filter_experiments(template="Momentum")] == [clean, unchecked, loss]
        assert [e["id"] for e in tracker.filter_experiments(template="Momentum", mode="tpe")] == [clean, loss]
        assert [e["id"] for e in tracker.filter_experiments(name_contains="run")] == [clean, leaky]
        assert [e["id"] for e in tracker.filter_experiments(name_contains="Run")] == []
        assert [e["id"] for e in tracker.filter_experiments(min_best_value=1.0)] == [clean, leaky, unchecked]
        assert [e["id"] for e in tracker.filter_experiments(min_best_value=7.5)] == [loss]
        future = datetime.now(UTC) + timedelta(days=1)
        assert tracker.filter_experiments(created_after=future) == []
        assert len(tracker.filter_experiments(created_before=future)) == 4

    def test_best_trial_follows_objective_direction_and_ignores_pruned(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, (clean, leaky, unchecked, loss) = filled
        assert tracker.best_trial(clean)["trial_number"] == 3  # type: ignore[index]
        assert tracker.best_value(clean) == 1.5
        assert tracker.best_value(leaky) == 6.0
        assert tracker.best_trial(unchecked)["trial_number"] == 0  # type: ignore[index]  # ties: lowest number
        assert tracker.best_value(loss) == 7.0
        empty = tracker.create_experiment("empty", "x", "y")
        assert tracker.best_trial(empty) is None
        assert tracker.best_value(empty) is None
        with pytest.raises(NotFoundError):
            tracker.best_trial(9999)

    def test_best_value_filter_follows_each_experiments_direction(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, ids = filled
        best = {e["id"]: e["best_value"] for e in tracker.list_experiments(stats=True)}
        assert best == {ids[0]: 1.5, ids[1]: 6.0, ids[2]: 1.0, ids[3]: 7.0}

    def test_get_trials_filters_and_orders_in_the_store(self, filled: tuple[ExperimentTracker, list[int]]) -> None:
        tracker, (clean, leaky, _, loss) = filled
        assert [t["trial_number"] for t in tracker.get_trials(clean, states=["pruned"])] == [10]
        assert [t["trial_number"] for t in tracker.get_trials(clean, order_by="value", limit=2)] == [10, 3]
        assert [t["trial_number"] for t in tracker.get_trials(loss, order_by="value")] == [3, 2, 1, 0]
        assert [t["trial_number"] for t in tracker.get_trials(leaky, ttpt_passed=True)] == [0]
        assert [t["trial_number"] for t in tracker.get_trials(leaky, ttpt_passed=False)] == [1, 2, 3]
        assert tracker.get_trials(clean, states="failed") == []

    def test_improvement_is_best_overall_minus_best_of_the_first_half(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, (clean, leaky, unchecked, loss) = filled
        assert tracker.get_performance_improvement(clean) == pytest.approx(1.5 - 0.5)
        assert tracker.get_performance_improvement(leaky) == pytest.approx(6.0 - 4.0)
        assert tracker.get_performance_improvement(unchecked) == 0.0
        assert tracker.get_performance_improvement(loss) == pytest.approx(9.0 - 7.0)  # minimised: flipped
        assert tracker.get_performance_improvement(tracker.create_experiment("e", "t", "m")) == 0.0

    def test_compare_keeps_the_in_house_keys_and_adds_statistics(
        self, filled: tuple[ExperimentTracker, list[int]]
    ) -> None:
        tracker, (clean, leaky, _, loss) = filled
        rows = tracker.compare_experiments([leaky, clean, loss])
        assert [r["id"] for r in rows] == [leaky, clean, loss]
        c = rows[1]
        assert (c["name"], c["best_sharpe"], c["n_trials"], c["best_value"]) == ("clean run", 1.5, 5, 1.5)
        assert (c["n_complete"], c["n_pruned"], c["ttpt_validations"], c["violation_rate"]) == (4, 1, 4, 0.0)
        assert c["mean_value"] == pytest.approx(0.75)
        assert c["std_value"] == pytest.approx(float(np.std([0, 0.5, 1, 1.5], ddof=1)))
        assert c["first_best_trial"] == 3
        assert rows[0]["violation_rate"] == 0.75
        assert rows[2]["best_loss"] == 7.0
        assert rows[2]["improvement"] == pytest.approx(2.0)
        with pytest.raises(NotFoundError):
            tracker.compare_experiments([clean, 12345])

    def test_compare_dataframe_has_one_row_per_experiment(self, filled: tuple[ExperimentTracker, list[int]]) -> None:
        tracker, ids = filled
        frame = tracker.compare_dataframe(ids)
        assert list(frame["id"]) == ids
        assert {"best_value", "violation_rate", "improvement", "n_trials"} <= set(frame.columns)

    def test_improvement_curve_is_the_running_best(self, filled: tuple[ExperimentTracker, list[int]]) -> None:
        tracker, (_, _, _, loss) = filled
        curve = tracker.improvement_curve(loss)
        assert list(curve["best_value"]) == [10.0, 9.0, 8.0, 7.0]
        assert list(curve["trial_number"]) == [0, 1, 2, 3]


class TestDataFrames:
    def test_export_to_dataframe_has_the_in_house_shape(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 1, {"lookback": 20, "sharpe": 9}, {"sharpe": 1.0, "returns": 0.1})
        tracker.log_trial(eid, 0, {"lookback": 10, "sharpe": 8}, {"sharpe": 0.5, "returns": 0.2})
        frame = tracker.export_to_dataframe(eid)
        assert list(frame["trial_number"]) == [0, 1]
        assert set(frame.columns) == {"trial_number", "lookback", "params.sharpe", "performance.sharpe", "returns"}
        assert list(frame["lookback"]) == [10, 20]
        assert list(frame["performance.sharpe"]) == [0.5, 1.0]

    def test_trials_dataframe_columns_and_dtypes(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        tid = tracker.log_trial(
            eid,
            0,
            {"a": 1, "nested": {"b": 2.5}},
            {"sharpe": 1.0, "flag": True},
            started_at=start,
            completed_at=start + timedelta(seconds=2),
        )
        tracker.log_ttpt_result(tid, False, 2, {"signal_correlation": 0.5})
        tracker.log_trial(eid, 1, {"a": 2, "nested": {"b": 1.5}, "extra": "x"}, {"sharpe": 2.0})
        frame = tracker.trials_dataframe([eid])
        assert list(frame.columns[:10]) == [
            "experiment_id",
            "experiment_name",
            "trial_id",
            "trial_number",
            "state",
            "value",
            "created_at",
            "started_at",
            "completed_at",
            "duration",
        ]
        assert frame["params.a"].dtype == "int64"
        assert frame["params.nested.b"].dtype == "float64"
        assert frame["performance.flag"].dtype == "boolean"
        assert frame["performance.flag"].isna().tolist() == [False, True]
        assert frame["params.extra"].isna().tolist() == [True, False]
        assert str(frame["created_at"].dtype).startswith("datetime64")
        assert str(frame["created_at"].dt.tz) == "UTC"
        assert frame["duration"].iloc[0] == pd.Timedelta(seconds=2)
        assert frame["ttpt.passed"].dtype == "boolean"
        assert frame["ttpt.passed"].tolist()[0] is False or frame["ttpt.passed"].tolist()[0] == False  # noqa: E712
        assert pd.isna(frame["ttpt.passed"].iloc[1])
        assert frame["ttpt.num_violations"].dtype == "Int64"
        assert frame["ttpt.signal_correlation"].iloc[0] == 0.5
        assert "None" not in frame.astype(str).to_numpy().ravel().tolist()

    def test_trials_dataframe_without_prefix_and_with_state_filter(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 0, {"a": 1}, {"sharpe": 1.0})
        tracker.log_trial(eid, 1, {"a": 2}, {"sharpe": 2.0}, state="failed")
        frame = tracker.trials_dataframe(eid, prefix=False, include_ttpt=False, states=["complete"])
        assert list(frame["a"]) == [1]
        assert "sharpe" in frame.columns
        assert not any(c.startswith("ttpt.") for c in frame.columns)

    def test_a_frame_built_in_small_chunks_equals_one_built_at_once(self, tracker: ExperimentTracker) -> None:
        from tracker.reports.analysis import _FrameBuilder

        eid = new_experiment(tracker)
        for n in range(9):
            params: dict[str, object] = {"a": n, "late": n * 1.5} if n > 5 else {"a": n, "early": "x" * n}
            if n % 4 == 0:
                params["flag"] = n % 8 == 0
            t = tracker.log_trial(eid, n, params, {"sharpe": n / 2, **({"big": 2**40} if n == 3 else {})})
            if n % 3 == 0:
                tracker.log_ttpt_result(t, n % 2 == 0, n % 2, {"corr": 1.0 - n / 10})
        whole = tracker.trials_dataframe([eid])
        builder = _FrameBuilder({eid: "momentum"}, identity=True, include_ttpt=True)
        tracker.repository.trial_table([eid], None, builder.add, chunk_size=2)
        pd.testing.assert_frame_equal(builder.frame(prefix=True), whole)
        assert whole["params.late"].isna().tolist() == [True] * 6 + [False] * 3
        assert str(whole["performance.big"].dtype) == "Int64"

    def test_an_empty_store_gives_an_empty_frame_with_identity_columns(self, tracker: ExperimentTracker) -> None:
        frame = tracker.trials_dataframe()
        assert len(frame) == 0
        assert "trial_number" in frame.columns
        with pytest.raises(NotFoundError):
            tracker.trials_dataframe([404])


class TestTrackerObject:
    def test_the_tracker_is_a_context_manager_and_repr_has_no_password(self, store_url: str) -> None:
        with ExperimentTracker(store_url) as t:
            assert "ExperimentTracker(" in repr(t)
        assert t.backend in ("sqlite", "postgresql", "mysql", "json")

    def test_data_survives_reopening(self, store_url: str) -> None:
        with ExperimentTracker(store_url) as t:
            eid = new_experiment(t)
            t.log_trial(eid, 0, {"x": [1, 2, {"y": None}]}, {"sharpe": float("-inf")})
        with ExperimentTracker(store_url) as t:
            [trial] = t.get_trials(eid)
            assert trial["params"] == {"x": [1, 2, {"y": None}]}
            assert trial["performance"]["sharpe"] == float("-inf")
            assert trial["value"] == float("-inf")

    def test_two_trackers_on_one_store_see_each_others_writes(self, store_url: str) -> None:
        with ExperimentTracker(store_url) as a, ExperimentTracker(store_url) as b:
            eid = new_experiment(a)
            b.log_trial(eid, 0, {}, {"sharpe": 1})
            assert len(a.get_trials(eid)) == 1
            with pytest.raises(DuplicateTrialError):
                a.log_trial(eid, 0, {}, {"sharpe": 1})

    def test_returned_records_do_not_change_when_the_store_changes(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {"a": {"b": 1}}, {})
        before = tracker.get_trial(tid)
        before["params"]["a"]["b"] = 99
        assert tracker.get_trial(tid)["params"] == {"a": {"b": 1}}

    def test_a_closed_tracker_refuses_further_calls(self, store_url: str) -> None:
        tracker = ExperimentTracker(store_url)
        eid = new_experiment(tracker)
        tracker.close()
        tracker.close()
        with pytest.raises(StoreError, match="is closed"):
            tracker.get_experiment(eid)
        with pytest.raises(StoreError, match="is closed"):
            tracker.log_trial(eid, 0, {}, {})
        with ExperimentTracker(store_url) as reopened:
            assert reopened.get_trials(eid) == []

    def test_every_error_derives_from_tracker_error(self, tracker: ExperimentTracker) -> None:
        with pytest.raises(TrackerError):
            tracker.get_trial(123)
        with pytest.raises(TrackerError):
            tracker.create_experiment("", "t", "m")


class TestTransactions:
    def test_calls_in_a_transaction_are_committed_together_and_unseen_before(
        self, tracker: ExperimentTracker, store_url: str
    ) -> None:
        with ExperimentTracker(store_url) as other:
            with tracker.transaction():
                eid = new_experiment(tracker)
                tid = tracker.log_trial(eid, 0, {"a": 1}, {"sharpe": 1.0})
                tracker.log_ttpt_result(tid, False, 1, {})
                assert tracker.get_trial(tid)["ttpt_result"]["passed"] is False  # reads see the block's writes
                assert other.list_experiments() == []  # other connections do not, yet
            assert [e["id"] for e in other.list_experiments()] == [eid]
            assert other.get_trial(tid)["ttpt_result"]["num_violations"] == 1

    def test_a_block_that_raises_stores_nothing_and_the_tracker_goes_on(self, tracker: ExperimentTracker) -> None:
        keep = new_experiment(tracker, "keep")

        def block() -> None:
            with tracker.transaction():
                eid = new_experiment(tracker, "gone")
                tracker.log_trials(eid, [{"trial_number": n, "params": {}, "performance": {}} for n in range(3)])
                tracker.log_trial(keep, 0, {}, {"sharpe": 2.0})
                raise RuntimeError("on purpose")

        with pytest.raises(RuntimeError, match="on purpose"):
            block()
        assert [e["name"] for e in tracker.list_experiments()] == ["keep"]
        assert tracker.get_trials(keep) == []
        later = tracker.log_trial(keep, 0, {}, {"sharpe": 3.0})
        assert tracker.get_trial(later)["value"] == 3.0

    def test_a_failed_call_inside_a_transaction_leaves_it_usable(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        with tracker.transaction():
            tracker.log_trial(eid, 0, {}, {"sharpe": 1.0})
            with pytest.raises(DuplicateTrialError):
                tracker.log_trial(eid, 0, {}, {"sharpe": 9.0})
            with pytest.raises(NotFoundError):
                tracker.log_ttpt_result(10**9, True, 0)
            tracker.log_trial(eid, 1, {}, {"sharpe": 2.0})
        assert [(t["trial_number"], t["value"]) for t in tracker.get_trials(eid)] == [(0, 1.0), (1, 2.0)]

    def test_nested_blocks_join_the_outer_one(self, tracker: ExperimentTracker) -> None:

        def block() -> None:
            with tracker.transaction():
                with tracker.transaction():
                    new_experiment(tracker, "inner")
                raise RuntimeError("the outer block fails after the inner one ended")

        with pytest.raises(RuntimeError, match="outer block"):
            block()
        assert tracker.list_experiments() == []

    def test_a_read_transaction_refuses_writes(self, tracker: ExperimentTracker) -> None:
        repo = tracker.repository
        with repo.transaction(write=False):
            assert repo.list_experiments(ExperimentQuery()) == []
            with pytest.raises(StoreError, match="read transaction"):
                new_experiment(tracker)
        assert tracker.list_experiments() == []


class TestTagsAndNotes:
    def test_tags_are_set_deleted_and_listed_on_experiments_and_trials(self, tracker: ExperimentTracker) -> None:
        eid = tracker.create_experiment("e", "t", "m", tags={"desk": "fx", "stage": "draft"})
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0}, tags={"fold": "1"})
        assert tracker.get_experiment(eid)["tags"] == {"desk": "fx", "stage": "draft"}
        tracker.set_tags(Owner("experiment", eid), {"stage": "final", "owner": "ana"})
        tracker.delete_tags(("experiment", eid), "desk", "never-set")
        assert tracker.get_tags(("experiment", eid)) == {"stage": "final", "owner": "ana"}
        tracker.set_tags(("trial", tid), {"fold": "2", "ü key/with.dots": "värde"})
        assert tracker.get_trial(tid)["tags"] == {"fold": "2", "ü key/with.dots": "värde"}
        assert tracker.get_trials(eid)[0]["tags"] == {"fold": "2", "ü key/with.dots": "värde"}

    def test_experiments_and_trials_are_filtered_by_tag_in_the_store(self, tracker: ExperimentTracker) -> None:
        fx = tracker.create_experiment("fx", "t", "m", tags={"desk": "fx"})
        rates = tracker.create_experiment("rates", "t", "m", tags={"desk": "rates", "live": "yes"})
        tracker.log_trials(
            fx,
            [
                {"trial_number": n, "params": {}, "performance": {"sharpe": n}, "tags": {"fold": str(n % 2)}}
                for n in range(4)
            ],
        )
        assert [e["id"] for e in tracker.filter_experiments(tags={"desk": "fx"})] == [fx]
        assert [e["id"] for e in tracker.list_experiments(tags={"desk": "rates", "live": "yes"})] == [rates]
        assert tracker.filter_experiments(tags={"desk": "rates", "live": "no"}) == []
        frame = tracker.trials_dataframe([fx], tags={"fold": "1"})
        assert frame["trial_number"].tolist() == [1, 3]
        assert frame["tags.fold"].tolist() == ["1", "1"]

    def test_notes_are_markdown_that_can_be_edited_and_removed(self, tracker: ExperimentTracker) -> None:
        eid = tracker.create_experiment("e", "t", "m", note="# Why\nstopped early: *regime change*")
        tid = tracker.log_trial(eid, 0, {}, {}, note="odd fill")
        assert tracker.get_experiment(eid)["note"] == "# Why\nstopped early: *regime change*"
        tracker.set_note(("experiment", eid), "edited")
        tracker.set_note(("trial", tid), None)
        assert (tracker.get_experiment(eid)["note"], tracker.get_trial(tid)["note"]) == ("edited", None)

    def test_tags_and_notes_of_a_missing_owner_raise(self, tracker: ExperimentTracker) -> None:
        with pytest.raises(NotFoundError, match="trial 99 does not exist"):
            tracker.set_tags(("trial", 99), {"a": "b"})
        with pytest.raises(NotFoundError, match="experiment 99 does not exist"):
            tracker.set_note(("experiment", 99), "x")


class TestAttributesAndProvenance:
    def test_attributes_hold_non_numeric_results_apart_from_the_metrics(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0}, attributes={"regime": "bull", "trades": [1, 2]})
        assert tracker.get_trial(tid)["attributes"] == {"regime": "bull", "trades": [1, 2]}
        assert tracker.get_trial(tid)["performance"] == {"sharpe": 1.0}
        frame = tracker.trials_dataframe([eid])
        assert frame["attributes.regime"].tolist() == ["bull"]

    def test_provenance_is_recorded_with_the_data_fingerprint_and_can_be_turned_off(
        self, tracker: ExperimentTracker
    ) -> None:
        from tracker import __version__, fingerprint

        prices = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.date_range("2026-01-01", periods=2))
        eid = tracker.create_experiment("e", "t", "m", data_fingerprint=fingerprint({"close": prices}))
        origin = tracker.get_experiment(eid)["provenance"]
        assert origin["versions"]["tracker"] == __version__
        assert origin["versions"]["pandas"] == pd.__version__
        assert origin["python"].count(".") == 2
        assert origin["data_fingerprint"] == fingerprint({"close": prices.copy()})
        assert origin["data_fingerprint"] != fingerprint({"close": prices * 2})
        assert {"git_commit", "git_dirty", "host", "user"} <= set(origin)
        assert tracker.get_experiment(tracker.create_experiment("f", "t", "m", provenance=False))["provenance"] is None


class TestStepMetrics:
    def test_metrics_per_step_read_back_in_step_order(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {})
        tracker.log_step_metrics(tid, 2, {"sharpe": 0.5})
        tracker.log_step_metrics_batch(tid, {0: {"sharpe": 0.1, "loss": math.nan}, 1: {"sharpe": -0.0}})
        assert tracker.get_step_metrics(tid)["sharpe"] == [(0, 0.1), (1, 0.0), (2, 0.5)]
        [(step, loss)] = tracker.get_step_metrics(tid)["loss"]
        assert step == 0 and math.isnan(loss)  # noqa: PT018 - one pair
        long = tracker.trials_dataframe([eid], steps=True)
        assert list(long.columns) == [
            "experiment_id",
            "experiment_name",
            "trial_id",
            "trial_number",
            "step",
            "key",
            "value",
        ]
        assert len(long) == 4

    def test_a_step_logged_twice_is_refused_and_nothing_of_the_batch_is_stored(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {})
        tracker.log_step_metrics(tid, 0, {"sharpe": 0.1})
        with pytest.raises(DuplicateStepError, match="sharpe@0"):
            tracker.log_step_metrics_batch(tid, {1: {"sharpe": 0.2}, 0: {"sharpe": 0.3}})
        assert tracker.get_step_metrics(tid) == {"sharpe": [(0, 0.1)]}
        with pytest.raises(NotFoundError):
            tracker.log_step_metrics(10**9, 0, {"a": 1.0})


class TestArtifacts:
    def test_files_and_bytes_are_attached_listed_and_read_back(self, tracker: ExperimentTracker, tmp_path: Any) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {})
        curve = tmp_path / "equity.csv"
        curve.write_text("day,equity\n1,100\n2,101\n")
        described = tracker.log_artifact(("trial", tid), curve)
        assert (described["name"], described["media_type"], described["size"]) == ("equity.csv", "text/csv", 23)
        png = bytes(range(256)) * 40
        tracker.log_artifact(Owner("experiment", eid), png, name="plots/history.png")
        assert tracker.get_artifact(("trial", tid), "equity.csv") == curve.read_bytes()
        assert tracker.get_artifact(("experiment", eid), "plots/history.png") == png
        assert [a["name"] for a in tracker.list_artifacts(("experiment", eid))] == ["plots/history.png"]
        assert tracker.list_artifacts(("experiment", eid))[0]["media_type"] == "image/png"

    def test_a_name_in_use_is_refused_unless_replaced(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_artifact(("experiment", eid), b"one", name="report.txt")
        with pytest.raises(DuplicateArtifactError, match="replace=True"):
            tracker.log_artifact(("experiment", eid), b"two", name="report.txt")
        assert tracker.get_artifact(("experiment", eid), "report.txt") == b"one"
        tracker.log_artifact(("experiment", eid), b"two", name="report.txt", replace=True)
        assert tracker.get_artifact(("experiment", eid), "report.txt") == b"two"

    def test_the_same_content_is_stored_once_and_survives_a_delete_of_one_owner(
        self, tracker: ExperimentTracker
    ) -> None:
        first, second = new_experiment(tracker, "a"), new_experiment(tracker, "b")
        data = b"shared trade log\n" * 1000
        for eid in (first, second):
            tracker.log_artifact(("experiment", eid), data, name="trades.log")
        shas = {a["sha256"] for eid in (first, second) for a in tracker.list_artifacts(("experiment", eid))}
        assert len(shas) == 1
        tracker.delete_experiment(first)
        assert tracker.get_artifact(("experiment", second), "trades.log") == data
        with pytest.raises(NotFoundError, match="no artifact named"):
            tracker.get_artifact(("experiment", second), "missing.png")


class TestStrategyCode:
    def test_code_shared_by_many_trials_reads_back_unchanged_and_can_be_left_out(
        self, tracker: ExperimentTracker
    ) -> None:
        eid = new_experiment(tracker)
        codes = ["def f(d, p):\n    return d['close'] > 0  # ü\n" * 200, "", "x" * 10]
        tracker.log_trials(
            eid, [{"trial_number": n, "params": {}, "performance": {}, "strategy_code": codes[n % 3]} for n in range(9)]
        )
        tid = tracker.log_trial(eid, 9, {}, {}, strategy_code=codes[0])
        tracker.log_strategy_metadata(tid, codes[2], "T", "llm")
        assert [t["strategy_code"] for t in tracker.get_trials(eid)] == [codes[n % 3] for n in range(9)] + [codes[2]]
        assert "strategy_code" not in tracker.trials_dataframe([eid]).columns
        assert tracker.trials_dataframe([eid], strategy_code=True)["strategy_code"].tolist()[:3] == codes


class TestOpeningWithoutCreating:
    def test_create_false_opens_an_existing_store_and_refuses_a_missing_one(self, store_url: str) -> None:
        with pytest.raises(StoreNotFoundError) as missing:
            ExperimentTracker(store_url, create=False)
        assert isinstance(missing.value, StoreError)
        assert "no tracker store at" in str(missing.value)
        if missing.value.path.startswith(("postgresql", "mysql", "mariadb")):
            assert "has no tracker tables" in str(missing.value)
        else:
            assert isinstance(missing.value, FileNotFoundError)
            assert not Path(missing.value.path).exists()  # nothing was created
        with ExperimentTracker(store_url) as t:  # the default creates, as the in-house class did
            eid = new_experiment(t)
        with ExperimentTracker(store_url, create=False) as t:
            assert [e["id"] for e in t.list_experiments()] == [eid]

    def test_create_false_never_creates_the_missing_folder(self, tmp_path: Path) -> None:
        for url in (tmp_path / "a" / "b" / "x.db", tmp_path / "c" / "runs.jsonl"):
            with pytest.raises(StoreNotFoundError, match=f"the folder {url.parent} does not exist"):
                ExperimentTracker(url, create=False)
        assert list(tmp_path.iterdir()) == []

    def test_copying_from_a_missing_store_creates_neither_store(self, tmp_path: Path) -> None:
        from tracker import copy_store

        with pytest.raises(StoreNotFoundError, match=r"missing\.db"):
            copy_store(tmp_path / "missing.db", tmp_path / "copy.jsonl")
        assert list(tmp_path.iterdir()) == []

    def test_an_empty_file_is_not_a_store_without_create(self, tmp_path: Path) -> None:
        for name in ("empty.db", "empty.jsonl"):
            (tmp_path / name).touch()
            with pytest.raises(StoreNotFoundError):
                ExperimentTracker(tmp_path / name, create=False)
            assert (tmp_path / name).stat().st_size == 0


class TestExperimentsByName:
    def test_experiment_id_takes_an_id_or_a_unique_name(self, tracker: ExperimentTracker) -> None:
        a = new_experiment(tracker, "alpha")
        b = new_experiment(tracker, "beta")
        new_experiment(tracker, "beta")
        assert tracker.experiment_id(a) == a
        assert tracker.experiment_id("alpha") == a
        with pytest.raises(AmbiguousNameError) as ambiguous:
            tracker.experiment_id("beta")
        assert ambiguous.value.ids == [b, b + 1]
        assert f"ids {b}, {b + 1}" in str(ambiguous.value)
        with pytest.raises(NotFoundError, match="no experiment is named 'alph'"):
            tracker.experiment_id("alph")  # exact names only
        with pytest.raises(NotFoundError, match="experiment 999 does not exist"):
            tracker.experiment_id(999)

    def test_experiment_gets_or_creates_by_name(self, tracker: ExperimentTracker) -> None:
        first = tracker.experiment("study", "Momentum", "tpe", {"n_trials": 5})
        assert tracker.experiment("study", "other template", "other mode", {"n_trials": 9}) == first
        assert tracker.get_experiment(first)["config"] == {"n_trials": 5}  # found as it is
        assert tracker.experiment("study", "T", "m", objective="sharpe", direction="maximize") == first
        with pytest.raises(ValidationError, match="has direction 'maximize', not 'minimize'"):
            tracker.experiment("study", "T", "m", direction="minimize")
        loss = tracker.experiment("loss study", "T", "m", objective="loss", direction="minimize")
        assert (tracker.get_experiment(loss)["objective"], tracker.get_experiment(loss)["direction"]) == (
            "loss",
            "minimize",
        )
        assert len(tracker.list_experiments()) == 2
        new_experiment(tracker, "study")
        with pytest.raises(AmbiguousNameError):
            tracker.experiment("study", "T", "m")
        assert len(tracker.list_experiments()) == 3

    def test_processes_getting_one_name_at_once_share_one_experiment(self, store_url: str) -> None:
        ExperimentTracker(store_url).close()  # the store exists before the workers start
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_get_or_create, args=(store_url, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        ids = [results.get() for _ in workers]
        for worker in workers:
            worker.join()
        assert [w.exitcode for w in workers] == [0] * 4, ids
        with ExperimentTracker(store_url) as t:
            assert [e["name"] for e in t.list_experiments()] == ["shared"]
        assert len(set(ids)) == 1


def _get_or_create(url: str, barrier: Any, results: Any) -> None:
    """Put the id `experiment` answers, or the error it raised (so the parent never waits in vain)."""
    try:
        with ExperimentTracker(url) as t:
            barrier.wait()  # all four ask at once
            results.put(t.experiment("shared", "T", "m"))
    except BaseException as exc:
        barrier.abort()  # the others stop waiting for this one
        results.put(f"{type(exc).__name__}: {exc}")
        raise


class TestReturns:
    """Returns series on every backend: lossless, in the trial's transaction, carried by copy,
    and the overfitting numbers computed from them alike everywhere."""

    @staticmethod
    def series(n: int = 40, seed: int = 0, **index: Any) -> Any:
        values = np.random.default_rng(seed).normal(0.0005, 0.01, n)
        if n > 5:
            values[3] = np.nan
            values[4] = -0.0
            values[5] = np.frombuffer(b"\x01\x00\x00\x00\x00\x00\xf8\x7f", dtype="<f8")[0]  # a NaN with a payload
        stamps = pd.date_range("2024-01-01", periods=n, freq="B", **index)
        return pd.Series(values, index=stamps)

    def test_a_dated_series_reads_back_bit_for_bit_with_its_index(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        for number, given in enumerate([self.series(), self.series(tz="America/New_York"), self.series(n=1)]):
            tid = tracker.log_trial(eid, number, {}, {"sharpe": 1.0}, returns=given)
            got = tracker.get_returns(tid)
            assert got.to_numpy().tobytes() == given.to_numpy().tobytes()
            pd.testing.assert_index_equal(got.index, given.index, exact=True)
            assert got.index.freq == given.index.freq

    def test_an_array_like_reads_back_with_positions(self, tracker: ExperimentTracker) -> None:
        tid = tracker.log_trial(new_experiment(tracker), 0, {}, {})
        tracker.log_returns(tid, (0.5, -0.25, 1e-300))
        got = tracker.get_returns(tid)
        assert got.tolist() == [0.5, -0.25, 1e-300]
        pd.testing.assert_index_equal(got.index, pd.RangeIndex(3))

    def test_log_returns_replaces_and_a_trial_without_returns_says_so(self, tracker: ExperimentTracker) -> None:
        tid = tracker.log_trial(new_experiment(tracker), 0, {}, {})
        with pytest.raises(NotFoundError, match=f"trial {tid} has no returns; store them with log_returns"):
            tracker.get_returns(tid)
        tracker.log_returns(tid, [1.0, 2.0])
        tracker.log_returns(tid, [3.0])
        assert tracker.get_returns(tid).tolist() == [3.0]

    def test_log_trials_stores_each_items_returns_in_the_batch(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        items = [{"trial_number": n, "params": {}, "performance": {}, "returns": self.series(seed=n)} for n in range(3)]
        items.append({"trial_number": 3, "params": {}, "performance": {}})
        ids = tracker.log_trials(eid, items)
        for tid, item in zip(ids[:3], items[:3], strict=True):
            assert tracker.get_returns(tid).to_numpy().tobytes() == item["returns"].to_numpy().tobytes()
        assert tracker.repository.returns_trial_ids([eid]) == ids[:3]

    def test_a_refused_batch_stores_no_returns(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 1, {}, {})
        with pytest.raises(DuplicateTrialError):
            tracker.log_trials(
                eid, [{"trial_number": n, "params": {}, "performance": {}, "returns": [0.1]} for n in (0, 1)]
            )
        assert tracker.repository.returns_trial_ids([eid], complete_only=False) == []

    def test_deleting_the_experiment_deletes_its_returns(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        tid = tracker.log_trial(eid, 0, {}, {}, returns=self.series())
        tracker.delete_experiment(eid)
        with pytest.raises(NotFoundError):
            tracker.get_returns(tid)
        assert tracker.repository.returns_trial_ids([eid]) == []

    def test_only_complete_trials_count_in_the_family(self, tracker: ExperimentTracker) -> None:
        eid = new_experiment(tracker)
        done = tracker.log_trial(eid, 0, {}, {}, returns=self.series(seed=1))
        tracker.log_trial(eid, 1, {}, {}, state="pruned", returns=self.series(seed=2))
        assert tracker.repository.returns_trial_ids([eid]) == [done]
        assert len(tracker.repository.returns_trial_ids([eid], complete_only=False)) == 2

    def test_overfitting_gives_every_key_and_the_same_numbers_on_every_backend(
        self, tracker: ExperimentTracker, tmp_path: Path
    ) -> None:
        eid = new_experiment(tracker, tags={"campaign": "q3"})
        items = [{"trial_number": n, "params": {}, "performance": {}, "returns": self.series(120, n)} for n in range(6)]
        tracker.log_trials(eid, items)
        found = tracker.overfitting(eid, splits=4)
        reference = ExperimentTracker(tmp_path / "reference.db")
        rid = new_experiment(reference)
        reference.log_trials(rid, items)
        expected = reference.overfitting(rid, splits=4)
        reference.close()
        assert set(found) == {*OVERFITTING_KEYS, "n_periods"}
        assert {k: v for k, v in found.items() if k != "best_trial_id"} == {
            k: v for k, v in expected.items() if k != "best_trial_id"
        }
        assert (
            found == tracker.overfitting(tags={"campaign": "q3"}, splits=4) == tracker.overfitting("momentum", splits=4)
        )
        assert found["n_trials"] == 6
        assert found["status"] in ("significant", "not-significant")

    def test_copy_carries_the_returns(self, tracker: ExperimentTracker, tmp_path: Path) -> None:
        eid = new_experiment(tracker)
        tracker.log_trial(eid, 0, {}, {}, returns=self.series())
        tracker.log_trial(eid, 1, {}, {}, returns=[0.25, math.nan])
        with ExperimentTracker(tmp_path / "copy.jsonl") as other:
            tracker.copy_to(other)
            tracker.copy_to(other)  # idempotent
            copied = [t["id"] for t in other.get_trials(other.list_experiments()[0]["id"])]
            assert other.get_returns(copied[0]).to_numpy().tobytes() == self.series().to_numpy().tobytes()
            assert (
                other.get_returns(copied[1]).to_numpy().tobytes()
                == tracker.get_returns(tracker.get_trials(eid)[1]["id"]).to_numpy().tobytes()
            )

    def test_archive_and_restore_carry_the_returns(self, tracker: ExperimentTracker, tmp_path: Path) -> None:
        eid = new_experiment(tracker)
        given = self.series()
        tracker.log_trial(eid, 0, {}, {}, returns=given)
        moved = tracker.archive(tmp_path / "archive.jsonl", ids=[eid])
        assert moved["returns"] == 1
        assert tracker.repository.returns_trial_ids([eid]) == []
        with ExperimentTracker(tmp_path / "archive.jsonl") as archive:
            archived = moved["moved"][0]["destination_id"]
            assert (
                archive.get_returns(archive.get_trials(archived)[0]["id"]).to_numpy().tobytes()
                == given.to_numpy().tobytes()
            )
        back = tracker.restore([moved["moved"][0]["destination_id"]], tmp_path / "archive.jsonl")
        restored = back["moved"][0]["destination_id"]
        got = tracker.get_returns(tracker.get_trials(restored)[0]["id"])
        assert got.to_numpy().tobytes() == given.to_numpy().tobytes()
        assert got.index.equals(given.index)


OVERFITTING_KEYS = (
    "n_trials",
    "n_effective",
    "best_trial_id",
    "sharpe",
    "psr",
    "expected_max_sharpe",
    "dsr",
    "min_track_record_length",
    "pbo",
    "degradation_slope",
    "prob_oos_loss",
    "status",
)
