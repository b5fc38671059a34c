"""The look-ahead check catches leaky strategies and passes honest ones (fixed seeds)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracker import ValidationError
from tracker.demo import leaky_signal, momentum_signal, synthetic_prices
from tracker.ttpt import LookaheadMonitor, check_lookahead


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


LEAKY = [
    (next_bar, {}),
    (centred_window, {"window": 21}),
    (full_sample_zscore, {}),
    (leaky_signal, {"lookback": 20, "peek": 3.0}),
]
HONEST = [
    (ma_crossover, {"fast": 10, "slow": 50}),
    (ema_strategy, {"span": 30}),
    (momentum_signal, {"lookback": 20, "threshold": 0.01}),
]


@pytest.mark.parametrize("perturbation", ["truncate", "noise"])
@pytest.mark.parametrize(("strategy", "params"), LEAKY, ids=[s.__name__ for s, _ in LEAKY])
def test_leaky_strategies_fail(
    data: dict[str, pd.DataFrame], strategy: Any, params: dict[str, Any], perturbation: str
) -> None:
    result = check_lookahead(strategy, data, params, checkpoints=6, perturbation=perturbation)  # type: ignore[arg-type]
    assert result.passed is False
    assert result.num_violations == len(result.violations) > 0
    assert result.metrics["first_violation_at"] == result.violations[0]["checkpoint"]
    assert all(v["changed_points"] > 0 for v in result.violations)


@pytest.mark.parametrize("perturbation", ["truncate", "noise"])
@pytest.mark.parametrize(("strategy", "params"), HONEST, ids=[s.__name__ for s, _ in HONEST])
def test_honest_strategies_pass(
    data: dict[str, pd.DataFrame], strategy: Any, params: dict[str, Any], perturbation: str
) -> None:
    result = check_lookahead(strategy, data, params, checkpoints=6, perturbation=perturbation)  # type: ignore[arg-type]
    assert result.passed is True
    assert result.num_violations == 0
    assert result.violations == []
    assert result.metrics["max_abs_diff"] == 0.0
    assert result.metrics["signal_correlation"] == pytest.approx(1.0)
    assert result.metrics["checked_points"] > 0


def test_a_plain_dataframe_and_a_series_signal_work(data: dict[str, pd.DataFrame]) -> None:
    close = data["close"]["ASSET1"].to_frame()
    result = check_lookahead(
        lambda d, p: d["ASSET1"].shift(-2), close, {}, checkpoints=[close.index[100], close.index[200]]
    )
    assert result.num_violations == 2
    assert result.metrics["checkpoints"] == 2


def test_performance_change_shows_what_the_leak_was_worth(data: dict[str, pd.DataFrame]) -> None:
    returns = data["close"].pct_change(fill_method=None)
    leaky = check_lookahead(next_bar, data, {}, checkpoints=40, returns=returns)
    honest = check_lookahead(ma_crossover, data, {"fast": 5, "slow": 20}, checkpoints=40, returns=returns)
    assert leaky.metrics["performance_change"] > 0
    assert honest.metrics["performance_change"] == 0.0


def test_the_result_maps_onto_log_ttpt_result(data: dict[str, pd.DataFrame], tmp_path: Any) -> None:
    from tracker import ExperimentTracker

    result = LookaheadMonitor(next_bar, data, checkpoints=3).check({})
    with ExperimentTracker(db_path=tmp_path / "t.db") as tracker:
        trial = tracker.log_trial(tracker.create_experiment("e", "t", "m"), 0, {}, {"sharpe": 1})
        tracker.log_ttpt_result(trial, **result.as_log_arguments())
        [stored] = tracker.get_ttpt_results(trial)
    assert stored["violations"] == result.violations
    assert stored["num_violations"] == 3


def test_bad_arguments_are_refused(data: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValidationError, match="perturbation"):
        check_lookahead(ma_crossover, data, {"fast": 1, "slow": 2}, perturbation="shift")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Series or DataFrame"):
        check_lookahead(lambda d, p: [1, 2], data, {})
    with pytest.raises(ValidationError, match="data"):
        check_lookahead(ma_crossover, [1, 2, 3], {})
