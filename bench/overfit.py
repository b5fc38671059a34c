"""Bench workload 13: overfitting numbers at scale (issue 22).

    python bench/overfit.py                 # 100,000 trials x 756 daily returns
    python bench/overfit.py --trials 20000  # smaller
    python bench/run.py --only 13           # the same rows inside the suite

Rows, each a ratio to a baseline run side by side, payloads built before the timer:
- `overfitting()` on an experiment of N trials x 756 returns in SQLite, reading the returns out of
  the store included, against a numpy computation of the same numbers from an in-memory matrix
  (target within 3x);
- `log_trial` with a 756-point series against `log_trial` without one, in alternating rounds, each
  from an empty store (target within 1.5x);
- the peak memory `overfitting()` allocates (tracemalloc, numpy included) against the float64
  matrix (target within 2x);
- bytes per trial of the stored values (reported).
"""

from __future__ import annotations

import argparse
import gc
import math
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T = 756
Report = Callable[[str, str, str, float, str, str], None]
Note = Callable[[str, str, str, str], None]


def returns_matrix(n: int, t: int = T, seed: int = 0) -> np.ndarray:
    """N x T daily returns: noise around a common factor, one trial with an edge."""
    rng = np.random.default_rng(seed)
    matrix = 0.3 * rng.normal(0, 0.01, t) + rng.normal(0, 0.01, (n, t))
    matrix[n // 2] += 0.001
    return matrix


def numpy_overfitting(matrix: np.ndarray, splits: int = 16, ppy: float = 252, alpha: float = 0.05) -> dict[str, Any]:
    """The same numbers straight from an in-memory N x T matrix (no NaN), in plain numpy: the baseline."""
    z = NormalDist()
    n, t = matrix.shape
    mean = matrix.mean(axis=1)
    sd = matrix.std(axis=1, ddof=1)
    sr = mean / sd
    best = int(np.argmax(sr))
    x = matrix[best] - mean[best]
    g3 = float((x**3).mean() / (x**2).mean() ** 1.5)
    g4 = float((x**4).mean() / (x**2).mean() ** 2)
    s = float(sr[best])
    spread = math.sqrt(1 - g3 * s + (g4 - 1) / 4 * s * s)
    zsum = ((matrix - mean[:, None]) / matrix.std(axis=1)[:, None]).sum(axis=0)
    rho = max(0.0, (float(zsum @ zsum) / t - n) / (n * (n - 1)))
    neff = rho + (1 - rho) * n
    gamma = 0.5772156649015329
    sr0 = max(
        0.0,
        math.sqrt(sr.var(ddof=1))
        * ((1 - gamma) * z.inv_cdf(1 - 1 / neff) + gamma * z.inv_cdf(1 - 1 / (neff * math.e))),
    )
    rows = matrix[:, t % splits :].reshape(n, splits, -1)
    sums, squares, size = rows.sum(axis=2), (rows * rows).sum(axis=2), rows.shape[2] * splits // 2
    halves = np.array([[b in c for b in range(splits)] for c in combinations(range(splits), splits // 2)], dtype=float)
    count = len(halves)
    logits, chosen_in, chosen_out = [], [], []
    step = max(1, 1_000_000 // (2 * n))
    for start in range(0, count // 2, step):
        first = np.arange(start, min(start + step, count // 2))
        pair = np.concatenate(
            [first, count - 1 - first]
        )  # split i's out-of-sample half is split C-1-i's in-sample half
        m = halves[pair] @ sums.T / size
        half_sr = m / np.sqrt((halves[pair] @ squares.T - size * m * m) / (size - 1))
        ins, outs = half_sr, np.concatenate([half_sr[len(first) :], half_sr[: len(first)]])
        chosen = ins.argmax(axis=1)
        picked = outs[np.arange(len(chosen)), chosen]
        rank = (outs < picked[:, None]).sum(axis=1) + ((outs == picked[:, None]).sum(axis=1) + 1) / 2
        omega = rank / (n + 1)
        logits.append(np.log(omega / (1 - omega)))
        chosen_in.append(ins[np.arange(len(chosen)), chosen])
        chosen_out.append(picked)
    lam, x, y = np.concatenate(logits), np.concatenate(chosen_in), np.concatenate(chosen_out)
    return {
        "sharpe": s * math.sqrt(ppy),
        "psr": z.cdf(s * math.sqrt(t - 1) / spread),
        "dsr": z.cdf((s - sr0) * math.sqrt(t - 1) / spread),
        "n_effective": neff,
        "pbo": float((lam <= 0).mean()),
        "min_track_record_length": 1 + spread**2 * (z.inv_cdf(1 - alpha) / s) ** 2,
        "degradation_slope": float(np.polyfit(x, y, 1)[0]),
        "prob_oos_loss": float((y < 0).mean()),
    }


def fill_store(url: str, matrix: np.ndarray) -> int:
    """An experiment holding one trial per row, its returns dated by business day."""
    import pandas as pd

    from tracker import ExperimentTracker

    index = pd.bdate_range("2022-01-03", periods=matrix.shape[1])
    with ExperimentTracker(url) as tracker:
        eid = tracker.create_experiment("bench overfitting", "T", "m", provenance=False)
        for start in range(0, len(matrix), 5_000):
            tracker.log_trials(
                eid,
                [
                    {"trial_number": i, "params": {}, "performance": {}, "returns": pd.Series(matrix[i], index=index)}
                    for i in range(start, min(start + 5_000, len(matrix)))
                ],
            )
    return eid


def overfitting_rows(n: int, folder: Path, repeat: int, record: Report, note: Note) -> None:
    from tracker import ExperimentTracker

    matrix = returns_matrix(n)
    url = f"sqlite:///{folder / 'overfit.db'}"
    eid = fill_store(url, matrix)
    with sqlite3.connect(folder / "overfit.db") as conn:
        stored = conn.execute("SELECT avg(length(data)) FROM trial_returns").fetchone()[0]
    note("13", f"stored values of one 756-point series ({n:,} trials)", f"{stored:,.0f} bytes", f"raw {T * 8:,} bytes")
    ours, theirs = [], []
    with ExperimentTracker(url) as tracker:
        for _ in range(repeat):
            gc.collect()
            started = time.perf_counter()
            found = tracker.overfitting(eid)
            ours.append(time.perf_counter() - started)
            gc.collect()
            started = time.perf_counter()
            expected = numpy_overfitting(matrix)
            theirs.append(time.perf_counter() - started)
        for key, value in expected.items():
            if not math.isclose(found[key], value, rel_tol=1e-7):
                raise AssertionError(f"{key}: tracker {found[key]} != numpy {value}")
        mine, base = statistics.median(ours), statistics.median(theirs)
        record(
            "13",
            f"overfitting() on {n:,} trials x {T} (store read included) vs numpy on the matrix",
            f"{mine:.2f} s vs {base:.2f} s",
            mine / base,
            "≤ 3×",
            "le",
        )
        gc.collect()
        tracemalloc.start()
        tracker.overfitting(eid)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    record(
        "13",
        f"peak memory of overfitting() vs the {n:,} x {T} float64 matrix",
        f"{peak / 2**20:,.0f} MiB vs {matrix.nbytes / 2**20:,.0f} MiB",
        peak / matrix.nbytes,
        "≤ 2×",
        "le",
    )


def log_trial_rows(folder: Path, n: int, rounds: int, record: Report) -> None:
    """log_trial with and without a 756-point series, alternating, each round from an empty store."""
    import pandas as pd

    from tracker import ExperimentTracker

    index = pd.bdate_range("2022-01-03", periods=T)
    series = [pd.Series(row, index=index) for row in returns_matrix(n, seed=1)]
    times: dict[bool, list[float]] = {True: [], False: []}
    for number in range(rounds):
        for with_returns in (False, True) if number % 2 else (True, False):
            with ExperimentTracker(folder / f"log-{number}-{with_returns}.db") as tracker:
                eid = tracker.create_experiment("log", "T", "m", provenance=False)
                started = time.perf_counter()
                for i in range(n):
                    tracker.log_trial(eid, i, {"x": i}, {"sharpe": 1.0}, returns=series[i] if with_returns else None)
                times[with_returns].append((time.perf_counter() - started) / n)
    mine, base = statistics.median(times[True]), statistics.median(times[False])
    record(
        "13",
        f"log_trial with a {T}-point series vs without (SQLite)",
        f"{mine * 1e6:.0f} µs vs {base * 1e6:.0f} µs",
        mine / base,
        "≤ 1.5×",
        "le",
    )


def workload(bench: Any) -> None:
    """Workload 13 inside bench/run.py."""
    n = 20_000 if bench.quick else 100_000
    log_trial_rows(bench.folder, 1_000 if bench.quick else 3_000, bench.repeat, bench.record)
    overfitting_rows(n, bench.folder, 1 if bench.quick else 3, bench.record, bench.note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    def record(workload: str, what: str, measured: str, ratio: float, target: str, better: str) -> None:
        limit = float(target.split()[-1].rstrip("×"))
        print(
            f"| {workload} | {what} | {measured} | {ratio:.2f}× | {target} {'✅' if ratio <= limit else '❌'} |",
            flush=True,
        )

    def note(workload: str, what: str, measured: str, detail: str) -> None:
        print(f"| {workload} | {what} | {measured} | {detail} | reported |", flush=True)

    with tempfile.TemporaryDirectory(prefix="tracker-overfit-") as folder:
        log_trial_rows(Path(folder), 3_000, 5, record)
        overfitting_rows(args.trials, Path(folder), args.repeat, record, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
