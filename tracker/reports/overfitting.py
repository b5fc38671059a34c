"""The overfitting statistics of a family of trials, in numpy over their returns: the
Probabilistic and Deflated Sharpe Ratios, the expected maximum Sharpe of the False Strategy
Theorem, the effective number of trials, the minimum track record length and CSCV's probability
of backtest overfitting. Definitions and sources: docs/analysis.md#overfitting.

Pure functions of arrays; reading the returns out of a store is `tracker.reports.family`. Whatever
touches a trials x periods matrix takes it a block of trials at a time, so memory beyond the matrix
stays small.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tracker.reports.parallel import ordered_map

Status = Literal["significant", "not-significant", "unknown"]
Array = npt.NDArray[np.float64]
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Overfitting:
    """The overfitting numbers of a family of trials (see docs/analysis.md#overfitting); the
    Sharpe ratios are annualised, `logits` are CSCV's λ per split (for a histogram)."""

    n_trials: int
    n_effective: float | None
    best_trial_id: int | None
    sharpe: float | None
    psr: float | None
    expected_max_sharpe: float | None
    dsr: float | None
    min_track_record_length: float | None
    pbo: float | None
    degradation_slope: float | None
    prob_oos_loss: float | None
    status: Status
    n_periods: int = 0
    """Common timestamps the matrix statistics (n_effective, CSCV) used."""
    logits: tuple[float, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The numbers by key, without the logits."""
        out = asdict(self)
        out.pop("logits")
        return out


def phi(x: float) -> float:
    return _NORMAL.cdf(x)


def phi_inverse(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def sharpe(returns: Array) -> float:
    """Per-period Sharpe of the non-NaN values: mean / standard deviation (ddof=1); NaN with
    fewer than 2 values or no spread."""
    x = returns[~np.isnan(returns)]
    if x.size < 2:
        return math.nan
    sd = float(x.std(ddof=1))
    return float(x.mean()) / sd if sd > 0 else math.nan


def row_sharpes(block: Array) -> Array:
    """Per-period Sharpe of each row of a trials x periods block (NaN ignored, as `sharpe`)."""
    present = ~np.isnan(block)
    n = present.sum(axis=1)
    filled = np.where(present, block, 0.0)
    mean = filled.sum(axis=1) / np.maximum(n, 1)
    dev = np.where(present, block - mean[:, None], 0.0)
    var = (dev * dev).sum(axis=1) / np.maximum(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((n >= 2) & (var > 0), mean / np.sqrt(var), np.nan)
    return np.asarray(out, dtype=np.float64)


def moments(returns: Array) -> tuple[float, float]:
    """Population skewness γ₃ and raw (not excess) kurtosis γ₄ of the non-NaN values."""
    x = returns[~np.isnan(returns)]
    d = x - x.mean()
    m2 = float((d * d).mean())
    if m2 == 0:
        return 0.0, 1.0
    return float((d**3).mean()) / m2**1.5, float((d**4).mean()) / m2**2


def psr(sr: float, sr_star: float, t: int, skew: float, kurt: float) -> float:
    """Probabilistic Sharpe Ratio: Φ[(SR − SR*)·√(T−1) / √(1 − γ₃·SR + (γ₄−1)/4·SR²)], per-period SRs."""
    spread = 1 - skew * sr + (kurt - 1) / 4 * sr * sr
    if spread <= 0:
        return 1.0 if sr > sr_star else 0.0
    return phi((sr - sr_star) * math.sqrt(t - 1) / math.sqrt(spread))


def expected_max_sharpe(variance: float, n: float) -> float:
    """The per-period Sharpe the best of `n` independent trials shows by luck (False Strategy
    Theorem): √V·[(1−γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))]; 0 for N <= 1 and never below 0."""
    if n <= 1 or not variance > 0:
        return 0.0
    core = (1 - EULER_GAMMA) * phi_inverse(1 - 1 / n) + EULER_GAMMA * phi_inverse(1 - 1 / (n * math.e))
    return max(0.0, math.sqrt(variance) * core)


def min_track_record_length(sr: float, skew: float, kurt: float, alpha: float) -> float:
    """Periods needed for a per-period Sharpe to be significant at `alpha`:
    1 + (1 − γ₃·SR + (γ₄−1)/4·SR²)·(Φ⁻¹(1 − α)/SR)²; infinite when SR <= 0."""
    if not sr > 0:
        return math.inf
    return 1 + (1 - skew * sr + (kurt - 1) / 4 * sr * sr) * (phi_inverse(1 - alpha) / sr) ** 2


def standardized_sum(block: Array) -> Array:
    """Σ over the rows of a trials x periods block (no NaN) of each row standardised with its
    population mean and deviation (a row without spread adds 0): the O(T) part of ρ̄."""
    mean = block.mean(axis=1, keepdims=True)
    sd = block.std(axis=1, keepdims=True)
    scale = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    return np.asarray(((block - mean) * scale).sum(axis=0), dtype=np.float64)


def n_effective(z_sum: Array, n: int, periods: int) -> float:
    """ρ̄ + (1 − ρ̄)·N from Σz (see `standardized_sum`): the sum of all pairwise correlations is
    (‖Σz‖²/T − N), so ρ̄ comes without the N×N matrix; ρ̄ is clipped at 0. Rows without spread
    count as uncorrelated with every other."""
    if n < 2 or periods < 2:
        return float(n)
    rho = (float(z_sum @ z_sum) / periods - n) / (n * (n - 1))
    rho = min(1.0, max(0.0, rho))
    return rho + (1 - rho) * n


def block_stats(block: Array, splits: int) -> tuple[Array, Array]:
    """Per-block sums and sums of squares (trials x splits) of a trials x periods block (no NaN)
    whose period count is a multiple of `splits` (the caller drops the oldest T mod S)."""
    shaped = block.reshape(block.shape[0], splits, -1)
    return shaped.sum(axis=2), (shaped * shaped).sum(axis=2)


@dataclass(frozen=True)
class CSCV:
    pbo: float
    degradation_slope: float | None
    prob_oos_loss: float
    logits: tuple[float, ...]


CELLS = 1_000_000
"""Splits x trials per step of `cscv`: its temporaries stay near 8 MB each."""


def cscv(sums: Array, squares: Array, block_length: int, executor: Executor | None = None) -> CSCV:
    """Combinatorially symmetric cross-validation from per-block sums (trials x S): for each of
    the C(S, S/2) in-sample halves, the in-sample best trial by Sharpe, its out-of-sample rank ω
    (1 the worst, ties averaged, over N+1) and λ = ln(ω/(1−ω)). The out-of-sample half of a split
    is the in-sample half of its complement, so each half's Sharpes are computed once. The steps
    run on `executor` when given (in bounded batches, gathered in order: the same numbers)."""
    n, splits = sums.shape
    pairs = math.comb(splits, splits // 2) // 2  # C(2m, m) is even: halves pair with complements
    chunk = max(1, CELLS // (2 * n))
    steps = ((sums, squares, block_length, start, min(start + chunk, pairs)) for start in range(0, pairs, chunk))
    logits: list[float] = []
    chosen_is: list[float] = []
    chosen_oos: list[float] = []
    for lam_part, is_part, oos_part in ordered_map(cscv_step, steps, executor):
        logits += lam_part
        chosen_is += is_part
        chosen_oos += oos_part
    lam = np.array(logits)
    x, y = np.array(chosen_is), np.array(chosen_oos)
    finite = np.isfinite(x) & np.isfinite(y)
    slope = None
    if finite.sum() >= 2 and float(np.var(x[finite])) > 0:
        slope = float(np.polyfit(x[finite], y[finite], 1)[0])
    return CSCV(float((lam <= 0).mean()), slope, float((y < 0).mean()), tuple(lam.tolist()))


@lru_cache(maxsize=4)
def halves(splits: int) -> Array:
    """The C(S, S/2) in-sample halves as 0/1 rows over the S blocks, in `combinations` order."""
    return np.array([[1.0 if b in c else 0.0 for b in range(splits)] for c in combinations(range(splits), splits // 2)])


def cscv_step(
    sums: Array, squares: Array, block_length: int, start: int, stop: int
) -> tuple[list[float], list[float], list[float]]:
    """One step of `cscv`, a pure task: the logits, in-sample and out-of-sample Sharpes of the
    chosen trials of halves start..stop-1 with their complements as out-of-sample, then the reverse."""
    n, splits = sums.shape
    every = halves(splits)
    count = every.shape[0]
    size = block_length * splits // 2
    mine = np.arange(start, stop)
    pair = np.concatenate([mine, count - 1 - mine])  # a half, then its complement
    s = every[pair] @ sums.T
    q = every[pair] @ squares.T
    mean = s / size
    var = (q - size * mean * mean) / (size - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(var > 0, mean / np.sqrt(np.maximum(var, 0)), np.nan)
    sr = np.where(np.isnan(sr), -np.inf, sr)
    k = len(mine)
    logits: list[float] = []
    chosen_is: list[float] = []
    chosen_oos: list[float] = []
    for ins, outs in ((sr[:k], sr[k:]), (sr[k:], sr[:k])):
        best = ins.argmax(axis=1)
        rows = np.arange(len(best))
        oos = outs[rows, best]
        below = (outs < oos[:, None]).sum(axis=1)
        ties = (outs == oos[:, None]).sum(axis=1)
        omega = (below + (ties + 1) / 2) / (n + 1)
        logits.extend(np.log(omega / (1 - omega)).tolist())
        chosen_is.extend(ins[rows, best].tolist())
        chosen_oos.extend(oos.tolist())
    return logits, chosen_is, chosen_oos
