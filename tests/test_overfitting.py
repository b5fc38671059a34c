"""Parity of `ExperimentTracker.overfitting` with implementations written here from the formulas
of docs/analysis.md#overfitting (issue 22), on random data: straightforward, slow versions (the N×N
correlation matrix, every CSCV split recomputed from the returns), so that a mistake in the fast
paths (O(T·N) ρ̄, per-block sums, complements) shows as a difference."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracker import ExperimentTracker

GAMMA = 0.5772156649015329
Z = NormalDist()


def sharpe(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.mean(x) / np.std(x, ddof=1))


def psr(sr: float, star: float, x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    t = len(x)
    d = x - x.mean()
    g3 = np.mean(d**3) / np.mean(d**2) ** 1.5
    g4 = np.mean(d**4) / np.mean(d**2) ** 2
    return Z.cdf((sr - star) * math.sqrt(t - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))


def min_trl(sr: float, x: np.ndarray, alpha: float) -> float:
    d = x[~np.isnan(x)] - np.nanmean(x)
    g3 = np.mean(d**3) / np.mean(d**2) ** 1.5
    g4 = np.mean(d**4) / np.mean(d**2) ** 2
    return 1 + (1 - g3 * sr + (g4 - 1) / 4 * sr**2) * (Z.inv_cdf(1 - alpha) / sr) ** 2


def expected_max(sharpes: np.ndarray, n: float) -> float:
    v = np.var(sharpes, ddof=1)
    return math.sqrt(v) * ((1 - GAMMA) * Z.inv_cdf(1 - 1 / n) + GAMMA * Z.inv_cdf(1 - 1 / (n * math.e)))


def n_effective(matrix: np.ndarray) -> float:
    """ρ̄ from the full N×N correlation matrix (the slow way the fast one must equal)."""
    n = matrix.shape[1]
    corr = np.corrcoef(matrix, rowvar=False)
    rho = max(0.0, (corr.sum() - n) / (n * (n - 1)))
    return rho + (1 - rho) * n


def average_rank(values: np.ndarray, i: int) -> float:
    """The rank of values[i], 1 the lowest, ties averaged."""
    below = np.sum(values < values[i])
    ties = np.sum(values == values[i])
    return below + (ties + 1) / 2


def cscv(matrix: np.ndarray, splits: int) -> dict[str, float]:
    """Every split recomputed from the returns themselves."""
    t, n = matrix.shape
    rows = matrix[t % splits :]
    blocks = np.array_split(np.arange(len(rows)), splits)
    logits, chosen_is, chosen_oos = [], [], []
    for half in combinations(range(splits), splits // 2):
        ins = np.concatenate([blocks[b] for b in half])
        outs = np.concatenate([blocks[b] for b in range(splits) if b not in half])
        sr_in = np.array([sharpe(rows[ins, j]) for j in range(n)])
        sr_out = np.array([sharpe(rows[outs, j]) for j in range(n)])
        best = int(np.argmax(sr_in))
        omega = average_rank(sr_out, best) / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
        chosen_is.append(sr_in[best])
        chosen_oos.append(sr_out[best])
    slope = np.polyfit(chosen_is, chosen_oos, 1)[0]
    return {
        "logits": sorted(logits),
        "pbo": float(np.mean(np.array(logits) <= 0)),
        "degradation_slope": float(slope),
        "prob_oos_loss": float(np.mean(np.array(chosen_oos) < 0)),
    }


def family(
    tmp_path: Path, n: int, t: int, seed: int, *, common: float = 0.0, edge: int | None = None
) -> tuple[ExperimentTracker, int, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = rng.standard_t(5, t) * 0.01
    matrix = np.sqrt(common) * shared[:, None] + np.sqrt(1 - common) * rng.standard_t(5, (t, n)) * 0.01
    if edge is not None:
        matrix[:, edge] += 0.002
    index = pd.bdate_range("2022-01-03", periods=t)
    tracker = ExperimentTracker(tmp_path / f"family-{seed}.db")
    eid = tracker.create_experiment("family", "T", "m")
    tracker.log_trials(
        eid,
        [
            {"trial_number": j, "params": {}, "performance": {}, "returns": pd.Series(matrix[:, j], index=index)}
            for j in range(n)
        ],
    )
    return tracker, eid, matrix


@pytest.mark.parametrize(
    ("n", "t", "seed", "common", "splits"),
    [(12, 251, 1, 0.0, 8), (30, 300, 2, 0.4, 6), (7, 130, 3, 0.9, 4), (40, 200, 4, 0.1, 10)],
)
def test_every_number_equals_the_formula_written_here(
    tmp_path: Path, n: int, t: int, seed: int, common: float, splits: int
) -> None:
    tracker, eid, matrix = family(tmp_path, n, t, seed, common=common)
    got = tracker.overfitting(eid, splits=splits, periods_per_year=252, alpha=0.05)
    assert sorted(tracker.overfitting_report(eid, splits=splits).logits) == pytest.approx(
        cscv(matrix, splits)["logits"], rel=1e-9
    )
    sharpes = np.array([sharpe(matrix[:, j]) for j in range(n)])
    best = int(np.argmax(sharpes))
    sr = sharpes[best]
    neff = n_effective(matrix)
    sr0 = expected_max(sharpes, neff)
    ids = [t_["id"] for t_ in tracker.get_trials(eid)]
    expected: dict[str, Any] = {
        "n_trials": n,
        "n_effective": neff,
        "best_trial_id": ids[best],
        "sharpe": sr * math.sqrt(252),
        "psr": psr(sr, 0.0, matrix[:, best]),
        "expected_max_sharpe": max(0.0, sr0) * math.sqrt(252),
        "dsr": psr(sr, max(0.0, sr0), matrix[:, best]),
        "min_track_record_length": min_trl(sr, matrix[:, best], 0.05),
        **{k: v for k, v in cscv(matrix, splits).items() if k != "logits"},
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got["status"] == ("significant" if expected["dsr"] >= 0.95 else "not-significant")
    tracker.close()


def test_a_caller_given_n_effective_is_used_as_n(tmp_path: Path) -> None:
    tracker, eid, matrix = family(tmp_path, 10, 120, 5)
    sharpes = np.array([sharpe(matrix[:, j]) for j in range(10)])
    got = tracker.overfitting(eid, n_effective=500, splits=4)
    assert got["n_effective"] == 500
    assert got["expected_max_sharpe"] == pytest.approx(expected_max(sharpes, 500) * math.sqrt(252), rel=1e-12)
    tracker.close()


def test_ties_in_out_of_sample_ranks_are_averaged(tmp_path: Path) -> None:
    tracker, eid, matrix = family(tmp_path, 6, 64, 6)
    tracker.log_trials(  # two copies of trial 0: their Sharpes tie everywhere
        eid,
        [
            {
                "trial_number": 100 + k,
                "params": {},
                "performance": {},
                "returns": tracker.get_returns(tracker.get_trials(eid)[0]["id"]),
            }
            for k in range(2)
        ],
    )
    with_copies = np.column_stack([matrix, matrix[:, 0], matrix[:, 0]])
    got = tracker.overfitting_report(eid, splits=4)
    expected = cscv(with_copies, 4)
    assert sorted(got.logits) == pytest.approx(expected["logits"], rel=1e-12)
    assert got.pbo == pytest.approx(expected["pbo"])
    tracker.close()


def test_fewer_than_two_trials_is_unknown_and_nothing_is_made_up(tmp_path: Path) -> None:
    with ExperimentTracker(tmp_path / "one.db") as tracker:
        eid = tracker.create_experiment("one", "T", "m")
        tracker.log_trial(eid, 0, {}, {})  # no returns: not counted
        assert tracker.overfitting(eid)["status"] == "unknown"
        assert tracker.overfitting(eid)["n_trials"] == 0
        tracker.log_trial(eid, 1, {}, {}, returns=np.random.default_rng(0).normal(0.001, 0.01, 300))
        one = tracker.overfitting(eid)
        assert (one["n_trials"], one["status"], one["dsr"], one["pbo"]) == (1, "unknown", None, None)
        assert one["psr"] is not None  # the PSR of one trial needs no family


def test_a_family_spans_experiments_and_names_the_winner_wherever_it_is(tmp_path: Path) -> None:
    tracker, first, matrix = family(tmp_path, 8, 150, 7)
    second = tracker.create_experiment("other", "T", "m", tags={"campaign": "q3"})
    tracker.set_tags(("experiment", first), {"campaign": "q3"})
    edge = matrix[:, 0] + 0.01
    winner = tracker.log_trial(
        second, 0, {}, {}, returns=pd.Series(edge, index=pd.bdate_range("2022-01-03", periods=150))
    )
    both = tracker.overfitting([first, "other"], splits=4)
    assert both == tracker.overfitting(tags={"campaign": "q3"}, splits=4)
    assert (both["n_trials"], both["best_trial_id"]) == (9, winner)
    tracker.close()


def test_trials_with_other_timestamps_share_only_the_common_ones(tmp_path: Path) -> None:
    tracker, eid, matrix = family(tmp_path, 5, 100, 8)
    index = pd.bdate_range("2022-01-03", periods=100)
    shifted = pd.Series(matrix[:, 0], index=index).iloc[10:]  # starts later: 90 common timestamps
    tracker.log_trial(eid, 50, {}, {}, returns=shifted)
    got = tracker.overfitting(eid, splits=4)
    both = np.column_stack([matrix[10:], matrix[10:, 0]])
    assert got["n_periods"] == 90
    assert got["n_effective"] == pytest.approx(n_effective(both), rel=1e-9)
    assert got["pbo"] == pytest.approx(cscv(both, 4)["pbo"])
    tracker.close()


def test_a_strategy_with_a_real_edge_is_significant_and_noise_is_not(tmp_path: Path) -> None:
    noise, eid, _ = family(tmp_path, 200, 756, 9)
    assert noise.overfitting(eid)["status"] == "not-significant"
    noise.close()
    edged, eid, _ = family(tmp_path, 50, 756, 10, edge=7)
    found = edged.overfitting(eid)
    assert found["status"] == "significant"
    assert found["best_trial_id"] == edged.get_trials(eid)[7]["id"]
    edged.close()


def test_the_command_line_prints_the_family_of_experiments_or_tags(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    tracker, eid, _ = family(tmp_path, 6, 120, 11)
    tracker.set_tags(("experiment", eid), {"campaign": "q3"})
    expected = tracker.overfitting(eid, periods_per_year=52, splits=4)
    url = tracker.url
    tracker.close()

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "tracker.cli", "--url", url, "overfitting", *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    by_name = json.loads(cli("family", "--periods-per-year", "52", "--splits", "4", "--format", "json"))
    by_tag = json.loads(cli("--tag", "campaign=q3", "--periods-per-year", "52", "--splits", "4", "--format", "json"))
    assert by_name == by_tag == json.loads(json.dumps(expected))
    table = cli(str(eid), "--splits", "4")
    assert "expected_max_sharpe" in table
    assert "docs/analysis.md#overfitting" in table
