"""The look-ahead check catches leaky strategies, passes honest ones, and keeps its stated power
(fixed seeds). The catalogue of leaks and honest strategies is shared with bench/power.py."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.catalogue import (
    HONEST,
    Case,
    monday_peek,
    month_end_peek,
    partial_mix,
    prices,
    seeded_noise,
    warmup_bfill,
)
from tracker import NondeterministicStrategyError, TrackerError, ValidationError
from tracker.demo import leaky_signal, momentum_signal, synthetic_prices
from tracker.ttpt import DEFAULT_BUDGET, LookaheadMonitor, LookaheadResult, check_lookahead, guarantee, uniform_part
from tracker.ttpt import _boundaries as plans


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {"close": synthetic_prices(seed=11, assets=3, years=2)}


def next_bar(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    return np.sign(data["close"].pct_change(fill_method=None).shift(-1))


def centred_window(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    close = data["close"]
    return close - close.rolling(int(params["window"]), center=True).mean()


def full_sample_zscore(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    close = data["close"]
    return (close - close.mean()) / close.std()


def ma_crossover(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    close = data["close"]
    return np.sign(close.rolling(int(params["fast"])).mean() - close.rolling(int(params["slow"])).mean())


def ema_strategy(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    close = data["close"]
    return close.ewm(span=int(params["span"])).mean() / close - 1.0


def unseeded_noise(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    close = data["close"]
    return np.sign(close.pct_change(20, fill_method=None) + np.random.default_rng().normal(0, 0.01, close.shape))


def peeks_two_ahead_at(rows: set[int]) -> Any:
    """A signal equal to the price, except at `rows`, where it is the price two rows later."""

    def strategy(data: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        x = data["x"]
        ahead = x.shift(-2)
        at = np.isin(np.arange(len(x)), sorted(rows))
        return x.where(~at, ahead)

    return strategy


_PARENT = os.getpid()


def dies_in_worker_processes(data: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    if os.getpid() != _PARENT:
        os._exit(3)
    return warmup_bfill(data, params)


def numbered(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype=float) + 1.0}, index=pd.RangeIndex(rows))


LEAKY = [
    (next_bar, {}),
    (centred_window, {"window": 21}),
    (full_sample_zscore, {}),
    (leaky_signal, {"lookback": 20, "peek": 3.0}),
]
OLD_HONEST = [
    (ma_crossover, {"fast": 10, "slow": 50}),
    (ema_strategy, {"span": 30}),
    (momentum_signal, {"lookback": 20, "threshold": 0.01}),
]
PARTIAL_LEAKS = [
    Case("warm-up bfill", warmup_bfill, {"window": 50}),
    Case("Monday peek", monday_peek, {}),
    Case("month-end peek", month_end_peek, {}),
    Case("partial mix", partial_mix, {"peek": 0.5}),
]
VIOLATION_KEYS = {"boundary", "boundary_row", "first_changed_at", "first_changed_row", "changed_points", "max_abs_diff"}


@pytest.mark.parametrize("perturbation", ["truncate", "noise"])
@pytest.mark.parametrize(("strategy", "params"), LEAKY, ids=[s.__name__ for s, _ in LEAKY])
def test_leaky_strategies_fail(
    data: dict[str, pd.DataFrame], strategy: Any, params: dict[str, Any], perturbation: str
) -> None:
    result = check_lookahead(strategy, data, params, perturbation=perturbation)  # type: ignore[arg-type]
    assert result.passed is False
    assert result.num_violations == len(result.violations) > 0
    assert result.metrics["first_violation_at"] == result.violations[0]["boundary"]
    assert all(set(v) == VIOLATION_KEYS and v["changed_points"] > 0 for v in result.violations)


@pytest.mark.parametrize("perturbation", ["truncate", "noise"])
@pytest.mark.parametrize(("strategy", "params"), OLD_HONEST, ids=[s.__name__ for s, _ in OLD_HONEST])
def test_honest_strategies_pass(
    data: dict[str, pd.DataFrame], strategy: Any, params: dict[str, Any], perturbation: str
) -> None:
    result = check_lookahead(strategy, data, params, perturbation=perturbation)  # type: ignore[arg-type]
    assert result.passed is True
    assert result.num_violations == 0
    assert result.violations == []
    assert result.metrics["max_abs_diff"] == 0.0
    assert result.metrics["signal_correlation"] == pytest.approx(1.0)
    assert result.metrics["checked_points"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", PARTIAL_LEAKS, ids=[c.name for c in PARTIAL_LEAKS])
def test_leaks_on_some_rows_only_are_caught_at_the_default_budget(case: Case, seed: int) -> None:
    result = check_lookahead(case.strategy, case.data(seed), case.params, seed=seed)
    assert result.passed is False
    assert 0 < result.metrics["failed_boundary_fraction"] < 1


def test_the_old_ten_late_checkpoints_miss_the_warm_up_leak_and_the_default_budget_catches_it() -> None:
    data = prices(3)
    index = data["close"].index
    start, stop = int(len(index) * 0.2), len(index) - 2
    old = [index[start + round(i * (stop - start) / 9)] for i in range(10)]
    assert check_lookahead(warmup_bfill, data, {"window": 50}, boundaries=old).passed is True
    result = check_lookahead(warmup_bfill, data, {"window": 50})
    assert result.passed is False
    assert {v["boundary_row"] for v in result.violations} <= set(range(49))


def test_every_row_up_to_the_boundary_is_compared_not_only_the_boundary_row() -> None:
    frame = numbered(30)
    result = check_lookahead(peeks_two_ahead_at({10}), frame, {}, boundaries=[11])
    assert result.passed is False
    [violation] = result.violations
    assert violation == {
        "boundary": 11,
        "boundary_row": 11,
        "first_changed_at": 10,
        "first_changed_row": 10,
        "changed_points": 1,
        "max_abs_diff": None,
    }


def test_failed_boundary_fraction_and_changed_points_are_exact_on_a_constructed_leak() -> None:
    frame = numbered(50).assign(y=lambda f: -f["x"])

    def two_columns(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        peek = peeks_two_ahead_at({10, 20})
        return pd.DataFrame({"x": peek(data, params), "y": peek(data[["y"]].rename(columns={"y": "x"}), params)})

    result = check_lookahead(two_columns, frame, {}, exhaustive=True)
    assert [v["boundary_row"] for v in result.violations] == [10, 11, 20, 21]
    assert [v["first_changed_row"] for v in result.violations] == [10, 10, 20, 20]
    assert [v["changed_points"] for v in result.violations] == [2, 2, 2, 2]
    assert result.metrics["boundaries"] == result.metrics["candidate_boundaries"] == 49
    assert result.metrics["failed_boundaries"] == 4
    assert result.metrics["failed_boundary_fraction"] == pytest.approx(4 / 49)
    assert result.metrics["first_violation_at"] == 10
    chosen = check_lookahead(two_columns, frame, {}, boundaries=[11, 15, 30])
    assert chosen.metrics["failed_boundary_fraction"] == pytest.approx(1 / 3)


def test_a_leak_at_the_one_row_where_the_signal_changes_is_caught_at_a_tiny_budget() -> None:
    frame = numbered(1000)

    def switches_a_day_early(data: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        return (data["x"].shift(-1).fillna(data["x"]) > 600).astype(float)  # unknown tomorrow: today

    for seed in range(5):
        result = check_lookahead(switches_a_day_early, frame, {}, budget=10, seed=seed)
        assert result.metrics["signal_change_boundaries"] == 1
        assert [v["boundary_row"] for v in result.violations] == [599]


@pytest.mark.parametrize("case", HONEST, ids=[c.name for c in HONEST])
def test_honest_strategies_pass_at_the_default_budget_and_exhaustively(case: Case) -> None:
    sampled = check_lookahead(case.strategy, case.data(4), case.params)
    assert (sampled.passed, sampled.metrics["evaluations"]) == (True, DEFAULT_BUDGET)
    small = case.data(5, assets=2, years=1)
    exhaustive = check_lookahead(case.strategy, small, case.params, exhaustive=True)
    assert exhaustive.passed is True
    assert exhaustive.metrics["boundaries"] == len(small["close"]) - 1
    assert exhaustive.metrics["max_abs_diff"] == 0.0


def test_unseeded_randomness_is_reported_as_nondeterminism_and_seeded_randomness_passes() -> None:
    data = prices(6, assets=2, years=1)
    with pytest.raises(NondeterministicStrategyError, match=r"seed .* from params") as caught:
        check_lookahead(unseeded_noise, data, {})
    assert isinstance(caught.value, TrackerError)
    assert isinstance(caught.value, ValueError)
    assert check_lookahead(seeded_noise, data, {"seed": 1}).passed is True


def test_a_strategy_whose_output_changes_shape_between_runs_is_nondeterministic() -> None:
    calls = iter(range(10))

    def grows(data: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        return data["x"].iloc[: 10 + next(calls)]

    with pytest.raises(NondeterministicStrategyError, match="different shapes"):
        check_lookahead(grows, numbered(30), {})


def test_the_guarantee_is_one_minus_the_miss_rate_of_the_uniform_draws() -> None:
    assert uniform_part(DEFAULT_BUDGET) == 90
    assert uniform_part(10) == 6
    for p, budget in [(0.05, DEFAULT_BUDGET), (0.01, DEFAULT_BUDGET), (0.2, 10), (0.0, 50), (1.0, 3)]:
        assert guarantee(p, budget) == pytest.approx(1 - (1 - p) ** uniform_part(budget))
    assert guarantee(0.05) >= 0.99
    assert 1 - 0.95 ** (uniform_part(DEFAULT_BUDGET) - 1) < 0.99  # 90 draws are the fewest that keep 99 %
    with pytest.raises(ValidationError, match="p:"):
        guarantee(1.5)
    with pytest.raises(ValidationError, match="budget"):
        guarantee(0.05, 2)


def test_the_uniform_draws_catch_a_leak_on_5_percent_of_rows_at_least_as_often_as_guaranteed() -> None:
    rows = range(0, 1000)
    touched = np.arange(0, 1000, 20)  # 5 %, none of them a signal change
    changes = np.arange(5, 1000, 7)
    missed = 0
    for seed in range(2000):
        plan = plans.sampled(rows, changes, DEFAULT_BUDGET, seed)
        assert (plan.uniform, plan.signal_changes) == (90, 30)
        missed += not np.isin(touched, plan.positions).any()
    assert missed / 2000 <= (1 - guarantee(0.05)) * 1.6  # 0.0099 expected; 1.6x leaves room for chance


def test_the_uniform_draws_spread_over_the_whole_range_warm_up_included() -> None:
    rows = range(0, 1000)
    none = np.zeros(0, dtype=int)
    drawn = np.concatenate([plans.sampled(rows, none, DEFAULT_BUDGET, seed).positions for seed in range(300)])
    share = np.bincount(drawn // 100, minlength=10) / len(drawn)
    assert share == pytest.approx(np.full(10, 0.1), abs=0.01)


def test_the_metrics_state_the_budget_spent_and_each_evaluation_is_counted() -> None:
    data = prices(7)
    calls = []

    def counted(d: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
        calls.append(1)
        return momentum_signal(d, params)

    params = {"lookback": 20, "threshold": 0.0}
    result = check_lookahead(counted, data, params)
    metrics = result.metrics
    assert len(calls) == metrics["evaluations"] == metrics["budget"] == DEFAULT_BUDGET
    assert (metrics["uniform_boundaries"], metrics["signal_change_boundaries"]) == (90, 30)
    assert metrics["detection_guarantee_5pct"] == pytest.approx(guarantee(0.05))
    assert metrics["mode"] == "sampled"
    again = check_lookahead(momentum_signal, data, params)
    other = check_lookahead(momentum_signal, data, params, seed=1)
    assert again.metrics == metrics
    assert other.metrics["checked_points"] != metrics["checked_points"]  # other seed, other boundaries
    calls.clear()
    small = check_lookahead(counted, data, params, budget=12)
    assert len(calls) == small.metrics["evaluations"] == 12


def test_exhaustive_mode_checks_every_row_and_processes_give_the_same_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = prices(8, assets=2, years=1)
    serial = check_lookahead(warmup_bfill, data, {"window": 50}, exhaustive=True)
    parallel = check_lookahead(warmup_bfill, data, {"window": 50}, exhaustive=True, n_jobs=2)
    assert serial == parallel
    assert serial.metrics["boundaries"] == len(data["close"]) - 1
    assert serial.metrics["detection_guarantee_5pct"] == 1.0
    assert [v["boundary_row"] for v in serial.violations] == list(range(49))
    with caplog.at_level(logging.WARNING, logger="tracker.ttpt"):
        fallback = check_lookahead(lambda d, p: warmup_bfill(d, p), data, {"window": 50}, exhaustive=True, n_jobs=2)
    assert fallback == serial
    assert "cannot be pickled" in caplog.text
    with caplog.at_level(logging.WARNING, logger="tracker.ttpt"):
        broken = check_lookahead(dies_in_worker_processes, data, {"window": 50}, exhaustive=True, n_jobs=2)
    assert broken == serial
    assert "worker processes failed" in caplog.text


def test_the_noise_perturbation_is_seeded_by_boundary_and_reproducible() -> None:
    data = prices(9, assets=2, years=1)
    first = check_lookahead(full_sample_zscore, data, {}, perturbation="noise", exhaustive=True)
    again = check_lookahead(full_sample_zscore, data, {}, perturbation="noise", exhaustive=True, n_jobs=2)
    other = check_lookahead(full_sample_zscore, data, {}, perturbation="noise", exhaustive=True, seed=1)
    assert first == again
    assert first.violations != other.violations


def test_a_strategy_error_propagates_with_the_boundary_it_happened_at() -> None:
    def fails_on_short_data(data: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        if len(data) < 20:
            raise RuntimeError("too short")
        return data["x"]

    with pytest.raises(RuntimeError, match="too short") as caught:
        check_lookahead(fails_on_short_data, numbered(30), {}, boundaries=[5])
    assert "cut after row 5" in "".join(caught.value.__notes__)
    assert check_lookahead(fails_on_short_data, numbered(30), {}, min_history=0.7, exhaustive=True).passed


def test_a_plain_dataframe_and_a_series_signal_work(data: dict[str, pd.DataFrame]) -> None:
    close = data["close"]["ASSET1"].to_frame()
    result = check_lookahead(
        lambda d, p: d["ASSET1"].shift(-2), close, {}, boundaries=[close.index[100], close.index[200]]
    )
    assert result.num_violations == 2
    assert result.metrics["boundaries"] == 2
    assert result.metrics["mode"] == "explicit"
    assert result.metrics["detection_guarantee_5pct"] is None


def test_performance_change_shows_what_the_leak_was_worth(data: dict[str, pd.DataFrame]) -> None:
    returns = data["close"].pct_change(fill_method=None)
    leaky = check_lookahead(next_bar, data, {}, returns=returns)
    honest = check_lookahead(ma_crossover, data, {"fast": 5, "slow": 20}, returns=returns)
    assert leaky.metrics["performance_change"] > 0
    assert honest.metrics["performance_change"] == 0.0


def test_the_result_maps_onto_log_ttpt_result(data: dict[str, pd.DataFrame], tmp_path: Any) -> None:
    from tracker import ExperimentTracker

    result = LookaheadMonitor(next_bar, data, budget=5).check({})
    assert isinstance(result, LookaheadResult)
    with ExperimentTracker(db_path=tmp_path / "t.db") as tracker:
        trial = tracker.log_trial(tracker.create_experiment("e", "t", "m"), 0, {}, {"sharpe": 1})
        tracker.log_ttpt_result(trial, **result.as_log_arguments())
        [stored] = tracker.get_ttpt_results(trial)
    assert stored["violations"] == result.violations
    assert stored["metrics"] == {**result.metrics, "violations_stored": 3}
    assert stored["num_violations"] == 3


def test_an_exhaustive_leak_stores_its_first_violations_and_counts_them_all(data: dict[str, pd.DataFrame]) -> None:
    from tracker.ttpt._check import MAX_STORED_VIOLATIONS

    result = check_lookahead(next_bar, data, {}, exhaustive=True)
    assert result.num_violations > 400
    stored = result.as_log_arguments()
    assert stored["violations"] == result.violations[:MAX_STORED_VIOLATIONS]
    assert MAX_STORED_VIOLATIONS == 25
    assert stored["num_violations"] == result.num_violations
    assert stored["metrics"]["violations_stored"] == 25


def test_the_monitor_draws_boundaries_per_params_and_repeats_itself(data: dict[str, pd.DataFrame]) -> None:
    monitor = LookaheadMonitor(momentum_signal, data, seed=3)
    first = monitor.check({"lookback": 20, "threshold": 0.0})
    assert first == monitor.check({"lookback": 20, "threshold": 0.0})
    assert first.metrics["seed"] == monitor.seed_for({"threshold": 0.0, "lookback": 20})
    assert monitor.seed_for({"lookback": 21, "threshold": 0.0}) != first.metrics["seed"]
    exhaustive = LookaheadMonitor(momentum_signal, data, exhaustive=True, n_jobs=2).check(
        {"lookback": 5, "threshold": 0}
    )
    assert exhaustive.metrics["boundaries"] == len(data["close"]) - 1


def test_checkpoints_and_ttpt_result_still_work_with_a_deprecation_warning(data: dict[str, pd.DataFrame]) -> None:
    with pytest.warns(DeprecationWarning, match="budget"):
        result = check_lookahead(next_bar, data, {}, checkpoints=8)
    assert result.metrics["evaluations"] == result.metrics["budget"] == 8
    with pytest.warns(DeprecationWarning, match="boundaries"):
        monitor = LookaheadMonitor(next_bar, data, checkpoints=[data["close"].index[50]])
    assert monitor.check({}).metrics["boundaries"] == 1
    with pytest.warns(DeprecationWarning, match="LookaheadResult"):
        from tracker.ttpt import TTPTResult
    assert TTPTResult is LookaheadResult


def test_bad_arguments_are_refused(data: dict[str, pd.DataFrame]) -> None:
    crossover = {"fast": 1, "slow": 2}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"perturbation": "shift"}, "perturbation"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"budget": 2}, "budget"),
        ({"budget": 10, "boundaries": [data["close"].index[5]]}, "boundaries"),
        ({"budget": 10, "exhaustive": True}, "exhaustive"),
        ({"boundaries": []}, "boundaries"),
        ({"boundaries": [pd.Timestamp("1990-01-01", tz="UTC")]}, "before the first row"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"seed": -1}, "seed"),
        ({"min_history": 1.0}, "min_history"),
    ]
    for options, message in refused:
        with pytest.raises(ValidationError, match=message):
            check_lookahead(ma_crossover, data, crossover, **options)
    with pytest.raises(ValidationError, match="Series or DataFrame"):
        check_lookahead(lambda d, p: [1, 2], data, {})
    with pytest.raises(ValidationError, match="data"):
        check_lookahead(ma_crossover, [1, 2, 3], {})
    with pytest.raises(ValidationError, match="sorted"):
        check_lookahead(ma_crossover, {"close": data["close"].iloc[::-1]}, crossover)


def test_tolerance_forgives_rounding_but_not_more() -> None:
    def rounding_by_length(data: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        return data["x"] + params["size"] * len(data)  # depends on the future, by a tiny amount

    frame = numbered(40)
    assert check_lookahead(rounding_by_length, frame, {"size": 1e-13}, exhaustive=True).passed is True
    assert check_lookahead(rounding_by_length, frame, {"size": 1e-13}, exhaustive=True, tolerance=0).passed is False
    assert check_lookahead(rounding_by_length, frame, {"size": 1e-6}, exhaustive=True).passed is False
