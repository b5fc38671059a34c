"""Calibration and power of the overfitting status (issue 22): how often pure-noise studies are
called `significant` (at most what `alpha` allows), and how often a study holding one strategy
with a real edge is found (`significant`, with that strategy as the best trial).

    python bench/overfit_power.py            # rewrites the table in docs/analysis.md (make overfit-power)
    python bench/overfit_power.py --studies 10 --no-docs

Each study is N trials x 756 daily returns (three years), made by seed; the numbers are the ones
`ExperimentTracker.overfitting` computes (`tracker.reports.family`, the store left out: the
parity tests tie the two). Noise is iid normal or Student-t with 3 degrees of freedom (fat tails),
uncorrelated or around a common factor (correlation 0.5). "Allowed" is the 99% upper quantile of
Binomial(studies, alpha): a calibrated status exceeds it one time in a hundred.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracker.reports.family import Family, OverfittingSettings, assess  # noqa: E402
from tracker.store.returns import ReturnSeries  # noqa: E402

DOCS = ROOT / "docs" / "analysis.md"
START, END = "<!-- overfit-power:start -->", "<!-- overfit-power:end -->"
T, ALPHA, VOL = 756, 0.05, 0.01


@dataclass(frozen=True)
class Cell:
    noise: str  # "normal" or "t3"
    trials: int
    correlation: float
    edge: float | None = None  # the annualised Sharpe of trial 0, None for pure noise


CELLS = [
    *(Cell(noise, n, rho) for noise in ("normal", "t3") for n in (50, 200, 1000) for rho in (0.0, 0.5)),
    *(Cell("normal", n, 0.0, edge) for n in (50, 200, 1000) for edge in (2.0, 3.0)),
    Cell("t3", 200, 0.5, 3.0),
]


def study(cell: Cell, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        if cell.noise == "normal":
            return rng.normal(0, 1, shape)
        return rng.standard_t(3, shape) / math.sqrt(3)  # unit variance

    matrix = VOL * (math.sqrt(cell.correlation) * draw((T,)) + math.sqrt(1 - cell.correlation) * draw((cell.trials, T)))
    if cell.edge is not None:
        matrix[0] += cell.edge / math.sqrt(252) * VOL
    return matrix


def judge(matrix: np.ndarray) -> tuple[str, int | None, float | None, float | None]:
    family = Family(list(range(len(matrix))))
    family.take([(i, ReturnSeries(row.astype("<f8").tobytes())) for i, row in enumerate(matrix)])
    found = assess(family, OverfittingSettings(alpha=ALPHA))
    return found.status, found.best_trial_id, found.dsr, found.pbo


def allowed(studies: int, alpha: float = ALPHA, level: float = 0.99) -> int:
    """The smallest k with P[Binomial(studies, alpha) <= k] >= level."""
    total = 0.0
    for k in range(studies + 1):
        total += math.comb(studies, k) * alpha**k * (1 - alpha) ** (studies - k)
        if total >= level:
            return k
    return studies


def row(cell: Cell, studies: int) -> str:
    results = [judge(study(cell, 1_000 * cell.trials + seed)) for seed in range(studies)]
    significant = sum(status == "significant" for status, _, _, _ in results)
    dsr = sum(d for _, _, d, _ in results if d is not None) / studies
    pbo = sum(p for _, _, _, p in results if p is not None) / studies
    what = f"{cell.noise}, corr {cell.correlation:g}" + (
        "" if cell.edge is None else f", one edge of Sharpe {cell.edge:g}"
    )
    if cell.edge is None:
        limit = allowed(studies)
        verdict = f"{significant}/{studies} significant (allowed ≤ {limit}) {'✅' if significant <= limit else '❌'}"
    else:
        found = sum(status == "significant" and best == 0 for status, best, _, _ in results)
        verdict = f"found {found}/{studies} ({found / studies:.0%})"
    return f"| {what} | {cell.trials:,} | {verdict} | {dsr:.2f} | {pbo:.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=40, help="studies per row (20 at 1,000 trials)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only")
    args = parser.parse_args()
    started = time.time()
    lines = [
        f"{T} daily returns per trial, alpha {ALPHA}, 16 CSCV splits; {args.studies} studies per row "
        f"({max(5, args.studies // 2)} at 1,000 trials); made by `make overfit-power`.",
        "",
        "| returns | trials | status | mean DSR | mean PBO |",
        "| --- | --- | --- | --- | --- |",
    ]
    for cell in CELLS:
        lines.append(row(cell, args.studies if cell.trials < 1000 else max(5, args.studies // 2)))
        print(lines[-1], flush=True)
    table = "\n".join(lines) + f"\n\n({time.time() - started:.0f} s on {sys.platform})"
    if not args.no_docs:
        page = DOCS.read_text()
        DOCS.write_text(page[: page.index(START) + len(START)] + "\n" + table + "\n" + page[page.index(END) :])
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
