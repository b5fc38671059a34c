"""A family of trials' returns read out of a store into one trials x periods matrix, and the
overfitting numbers computed from it (`tracker.reports.overfitting`).

The matrix is aligned on the first series' timestamps; a series with other timestamps fills the
ones it shares, and the common timestamps are those every trial has with a value. Each trial's
Sharpe is computed from its whole series as the chunks arrive, so memory holds the matrix, one
chunk of series and the best series so far.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from tracker.errors import ValidationError
from tracker.reports import overfitting as stats
from tracker.reports.overfitting import Array, Overfitting
from tracker.reports.parallel import ordered_map
from tracker.store.repository import Repository
from tracker.store.returns import ReturnSeries, split_index

BLOCK = 4_096
"""Trials per block in the matrix passes (a block's temporaries stay a few MB)."""
_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _ticks(series: ReturnSeries) -> tuple[bool, np.ndarray]:
    """Whether the series is dated, and its timestamps (UTC nanoseconds) or positions."""
    if series.index is None:
        return False, np.arange(len(series), dtype=np.int64)
    header, raw = split_index(series.index)
    return True, np.frombuffer(raw, dtype="<i8").astype(np.int64) * _NS[header["unit"]]


@dataclass
class Family:
    """The returns of `trial_ids` as a matrix (rows in that order), the common columns, each
    trial's per-period Sharpe of its own series, and the best trial's series."""

    trial_ids: list[int]
    matrix: Array = field(default_factory=lambda: np.empty((0, 0)))
    common: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    sharpes: Array = field(default_factory=lambda: np.empty(0))
    best: int | None = None
    best_series: Array = field(default_factory=lambda: np.empty(0))
    _reference: bytes | None = None
    _dated: bool = False
    _ticks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _row: int = 0

    def take(self, chunk: list[tuple[int, ReturnSeries]]) -> None:
        """Add a chunk of series (in `trial_ids` order) to the matrix."""
        own: list[int] = []
        for _, series in chunk:
            values = np.frombuffer(series.values, dtype="<f8")
            if self._row == 0:
                self._start(series, len(values))
            if series.index is self._reference or (
                len(values) == self.matrix.shape[1] and series.index == self._reference
            ):
                self.matrix[self._row] = values
                own.append(self._row)
            else:
                self._align(series, values)
            self._row += 1
        rows = np.array(own, dtype=np.int64)
        if rows.size:
            self.sharpes[rows] = stats.row_sharpes(self.matrix[rows])
        self._keep_best(own)

    def _start(self, series: ReturnSeries, length: int) -> None:
        n = len(self.trial_ids)
        self.matrix = np.full((n, length), np.nan)
        self.common = np.ones(length, dtype=bool)
        self.sharpes = np.full(n, np.nan)
        self._reference = series.index
        self._dated, self._ticks = _ticks(series)

    def _align(self, series: ReturnSeries, values: Array) -> None:
        dated, ticks = _ticks(series)
        if dated != self._dated:
            raise ValidationError(
                "returns",
                f"trial {self.trial_ids[self._row]}'s returns are {'dated' if dated else 'positional'} and "
                f"trial {self.trial_ids[0]}'s are not; give every trial of a family a DatetimeIndex, or none",
            )
        where = np.searchsorted(self._ticks, ticks)
        hit = where < self._ticks.size
        hit[hit] = self._ticks[where[hit]] == ticks[hit]
        self.matrix[self._row, where[hit]] = values[hit]
        has = np.zeros(self._ticks.size, dtype=bool)
        has[where[hit]] = True
        self.common &= has
        self.sharpes[self._row] = stats.sharpe(values)
        if self._better(self._row):
            self.best, self.best_series = self._row, values.copy()

    def _better(self, row: int) -> bool:
        value = self.sharpes[row]
        return bool(np.isfinite(value)) and (self.best is None or value > self.sharpes[self.best])

    def _keep_best(self, rows: list[int]) -> None:
        """Keep the best trial so far (the first among ties) and its own series."""
        for row in rows:
            if self._better(row):
                self.best = row
                self.best_series = self.matrix[row].copy()

    def blocks(self, columns: np.ndarray) -> Iterator[Array]:
        """The matrix's common `columns`, a block of trials at a time (each a copy, made as it is
        asked for: memory holds one)."""
        for start in range(0, self._row, BLOCK):
            yield self.matrix[start : start + BLOCK][:, columns]


def read_family(repo: Repository, experiment_ids: Sequence[int]) -> Family:
    """The returns of the experiments' complete trials, read in one read transaction."""
    with repo.transaction(write=False):
        family = Family(repo.returns_trial_ids(experiment_ids))
        repo.read_returns(family.trial_ids, family.take)
    if family.trial_ids:
        for block_start in range(0, len(family.trial_ids), BLOCK):
            block = family.matrix[block_start : block_start + BLOCK]
            family.common &= ~np.isnan(block).any(axis=0)
    return family


@dataclass(frozen=True, slots=True)
class OverfittingSettings:
    """How a family is assessed, as `ExperimentTracker.overfitting` takes the settings (checked
    there): periods a year (annualises the Sharpe), the number of independent trials (None:
    estimated from the trials' correlations), CSCV's splits (even) and the significance level."""

    periods_per_year: float = 252
    n_effective: float | None = None
    splits: int = 16
    alpha: float = 0.05


def assess(family: Family, settings: OverfittingSettings, executor: Executor | None = None) -> Overfitting:
    """The overfitting numbers of a family (definitions in `tracker.reports.overfitting`); the
    matrix passes run on `executor` when given, with the same numbers."""
    n = len(family.trial_ids)
    columns = np.flatnonzero(family.common)
    empty = Overfitting(n, None, None, None, None, None, None, None, None, None, None, "unknown", len(columns))
    if family.best is None:
        return empty
    sr = float(family.sharpes[family.best])
    finite = family.sharpes[np.isfinite(family.sharpes)]
    t = int((~np.isnan(family.best_series)).sum())
    skew, kurt = stats.moments(family.best_series)
    n_effective = settings.n_effective
    if n_effective is None:
        z = np.zeros(columns.size)
        for part in ordered_map(stats.standardized_sum, ((b,) for b in family.blocks(columns)), executor):
            z += part
        n_effective = stats.n_effective(z, n, columns.size)
    variance = float(finite.var(ddof=1)) if finite.size >= 2 else math.nan
    sr0 = stats.expected_max_sharpe(variance, n_effective) if n >= 2 else None
    dsr = None if sr0 is None else stats.psr(sr, sr0, t, skew, kurt)
    scale = math.sqrt(settings.periods_per_year)
    cross = _cscv(family, columns, settings.splits, executor) if n >= 2 else None
    status: stats.Status = (
        "unknown" if dsr is None else ("significant" if dsr >= 1 - settings.alpha else "not-significant")
    )
    return Overfitting(
        n_trials=n,
        n_effective=n_effective,
        best_trial_id=family.trial_ids[family.best],
        sharpe=sr * scale,
        psr=stats.psr(sr, 0.0, t, skew, kurt),
        expected_max_sharpe=None if sr0 is None else sr0 * scale,
        dsr=dsr,
        min_track_record_length=stats.min_track_record_length(sr, skew, kurt, settings.alpha),
        pbo=None if cross is None else cross.pbo,
        degradation_slope=None if cross is None else cross.degradation_slope,
        prob_oos_loss=None if cross is None else cross.prob_oos_loss,
        status=status,
        n_periods=int(columns.size),
        logits=() if cross is None else cross.logits,
    )


def _cscv(family: Family, columns: np.ndarray, splits: int, executor: Executor | None) -> stats.CSCV | None:
    """CSCV over the common columns, the oldest T mod S dropped; None when a half would hold
    fewer than 2 periods."""
    columns = columns[columns.size % splits :]
    length = columns.size // splits
    if length * splits // 2 < 2:
        return None
    parts = list(ordered_map(stats.block_stats, ((b, splits) for b in family.blocks(columns)), executor))
    sums = np.concatenate([p[0] for p in parts])
    squares = np.concatenate([p[1] for p in parts])
    return stats.cscv(sums, squares, length, executor)


def overfitting_of(
    repo: Repository,
    experiment_ids: Sequence[int],
    settings: OverfittingSettings = OverfittingSettings(),
    executor: Executor | None = None,
) -> Overfitting:
    """The overfitting numbers of the experiments' complete trials with returns, as one family.
    The read-side call for the dashboard: a frozen record, with CSCV's logits. The store is read
    here, in the driver; only the matrix passes go to `executor`."""
    return assess(read_family(repo, experiment_ids), settings, executor)
