"""Strategies with known look-ahead leaks, and honest ones, for the power table (bench/power.py)
and the tests. Each takes `(data, params)` with `data = {"close": DataFrame}` and returns signals.

`LEAKS` and `HONEST` list them as `Case`s: a name, the strategy, its params, and whether it needs
prices with NaN gaps (`gapped_prices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tracker.demo import synthetic_prices

Data = dict[str, pd.DataFrame]
Params = dict[str, Any]


def prices(seed: int, assets: int = 4, years: int = 3) -> Data:
    """The demo's kind of data: business-day closes of a few assets."""
    return {"close": synthetic_prices(seed, assets=assets, years=years)}


def gapped_prices(seed: int, assets: int = 4, years: int = 3, fraction: float = 0.06) -> Data:
    """`prices(seed)` with NaN gaps of 1 to 5 days covering about `fraction` of each asset's rows
    (never the first 5 rows)."""
    close = synthetic_prices(seed, assets=assets, years=years)
    rng = np.random.default_rng([seed, 99])
    values = close.to_numpy(copy=True)
    rows = len(values)
    for column in range(values.shape[1]):
        covered = 0
        while covered < fraction * rows:
            start, length = int(rng.integers(5, rows - 5)), int(rng.integers(1, 6))
            values[start : start + length, column] = np.nan
            covered = int(np.isnan(values[:, column]).sum())
    return {"close": pd.DataFrame(values, index=close.index, columns=close.columns)}


def _momentum(close: pd.DataFrame, lookback: int = 20) -> pd.DataFrame:
    return close.pct_change(lookback, fill_method=None)


def _tomorrow(close: pd.DataFrame) -> pd.DataFrame:
    return close.pct_change(fill_method=None).shift(-1)


# Leaks ----------------------------------------------------------------------------------------


def warmup_bfill(data: Data, params: Params) -> pd.DataFrame:
    """Fills the 50-day average's warm-up backwards, from the first full window."""
    close = data["close"]
    return np.sign(close - close.rolling(int(params["window"])).mean().bfill())


def partial_mix(data: Data, params: Params) -> pd.DataFrame:
    """sign(momentum + 0.5 x tomorrow's return), tomorrow's missing return taken as 0."""
    close = data["close"]
    return np.sign(_momentum(close) + float(params["peek"]) * _tomorrow(close).fillna(0.0))


def _peek_on(close: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Momentum, except on `rows`, where the signal is tomorrow's return."""
    honest = np.sign(_momentum(close))
    peek = np.sign(_tomorrow(close))
    return honest.where(np.broadcast_to(~rows[:, None], honest.shape), peek)


def monday_peek(data: Data, params: Params) -> pd.DataFrame:
    """Peeks at tomorrow's return on Mondays."""
    close = data["close"]
    return _peek_on(close, np.asarray(close.index.day_of_week == 0))


def month_end_peek(data: Data, params: Params) -> pd.DataFrame:
    """Peeks at tomorrow's return on the last business day of each month (a calendar rule)."""
    close = data["close"]
    index = close.index
    return _peek_on(close, np.asarray((index + pd.offsets.BMonthEnd(0)) == index))


def sparse_peek(data: Data, params: Params) -> pd.DataFrame:
    """Peeks at tomorrow's return on every 100th business day (counted from 1970): 1 % of the days."""
    close = data["close"]
    days = np.busday_count(np.datetime64("1970-01-01"), close.index.tz_localize(None).to_numpy(dtype="datetime64[D]"))
    return _peek_on(close, days % 100 == 0)


def weekly_labelled_by_end(data: Data, params: Params) -> pd.DataFrame:
    """Resamples to weeks labelled by their end (Friday) and spreads each week's close back over
    the week (bfill): every day sees its Friday."""
    close = data["close"]
    weekly = close.resample("W-FRI").last().reindex(close.index, method="bfill")
    return np.sign(weekly / close - 1.0)


def full_sample_zscore(data: Data, params: Params) -> pd.DataFrame:
    """Normalises by the mean and deviation of the whole sample."""
    close = data["close"]
    return (close - close.mean()) / close.std()


def full_sample_rank(data: Data, params: Params) -> pd.DataFrame:
    """Ranks each price against the whole sample."""
    return data["close"].rank(pct=True) - 0.5


def interpolated_gaps(data: Data, params: Params) -> pd.DataFrame:
    """Momentum of prices whose NaN gaps are filled by linear interpolation, which reads the price
    after the gap."""
    return _momentum(data["close"].interpolate())


def future_volatility(data: Data, params: Params) -> pd.DataFrame:
    """Scales momentum by the volatility of the next 20 days."""
    close = data["close"]
    volatility = close.pct_change(fill_method=None).rolling(20).std().shift(-20)
    return np.sign(_momentum(close)) * 0.01 / volatility


def divide_by_last_price(data: Data, params: Params) -> pd.DataFrame:
    """Measures each price against the last price of the sample."""
    close = data["close"]
    return close / close.iloc[-1] - 1.0


# Honest strategies ----------------------------------------------------------------------------


def ma_crossover(data: Data, params: Params) -> pd.DataFrame:
    """Fast minus slow moving average, by sign."""
    close = data["close"]
    return np.sign(close.rolling(int(params["fast"])).mean() - close.rolling(int(params["slow"])).mean())


def expanding_zscore(data: Data, params: Params) -> pd.DataFrame:
    """Price against the mean and deviation of everything seen so far."""
    close = data["close"]
    return (close - close.expanding(20).mean()) / close.expanding(20).std()


def rolling_zscore(data: Data, params: Params) -> pd.DataFrame:
    """Price against a trailing window's mean and deviation."""
    close = data["close"]
    window = close.rolling(int(params["window"]))
    return (close - window.mean()) / window.std()


def seeded_noise(data: Data, params: Params) -> pd.DataFrame:
    """Momentum plus noise from a generator seeded by params: deterministic, so causal."""
    close = data["close"]
    noise = np.random.default_rng(int(params["seed"])).normal(0.0, 0.01, size=close.shape)
    return np.sign(_momentum(close) + noise)


def forward_filled_gaps(data: Data, params: Params) -> pd.DataFrame:
    """Fills NaN gaps with the last price seen."""
    return np.sign(_momentum(data["close"].ffill()))


def weekly_causal(data: Data, params: Params) -> pd.DataFrame:
    """Four-week momentum of Friday closes, used from each Friday on (ffill)."""
    close = data["close"]
    weekly = close.resample("W-FRI").last()
    return np.sign(weekly.pct_change(4, fill_method=None)).reindex(close.index, method="ffill")


@dataclass(frozen=True)
class Case:
    name: str
    strategy: Any
    params: Params
    gapped: bool = False

    def data(self, seed: int, assets: int = 4, years: int = 3) -> Data:
        return (gapped_prices if self.gapped else prices)(seed, assets, years)


LEAKS = [
    Case("warm-up bfill", warmup_bfill, {"window": 50}),
    Case("partial mix with tomorrow (0.5x)", partial_mix, {"peek": 0.5}),
    Case("Monday peek", monday_peek, {}),
    Case("month-end peek", month_end_peek, {}),
    Case("week labelled by its end", weekly_labelled_by_end, {}),
    Case("full-sample z-score", full_sample_zscore, {}),
    Case("full-sample rank", full_sample_rank, {}),
    Case("interpolation over gaps", interpolated_gaps, {}, gapped=True),
    Case("future volatility scaling", future_volatility, {}),
    Case("division by the last price", divide_by_last_price, {}),
    Case("sparse peek on 1% of days", sparse_peek, {}),
]
HONEST = [
    Case("moving-average crossover", ma_crossover, {"fast": 10, "slow": 50}),
    Case("expanding z-score", expanding_zscore, {}),
    Case("rolling z-score", rolling_zscore, {"window": 30}),
    Case("seeded noise", seeded_noise, {"seed": 5}),
    Case("forward-filled gaps", forward_filled_gaps, {}, gapped=True),
    Case("causal weekly resampling", weekly_causal, {}),
]
