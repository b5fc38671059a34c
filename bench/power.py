"""The power table of the look-ahead check: how often each leak class is caught and each honest
strategy flagged, at the default budget and in exhaustive mode, and what a check costs.

    python bench/power.py              # 20 price sets per class; rewrites the table in the docs
    python bench/power.py --sets 5 --no-docs

Each class runs on `--sets` price sets (the demo's kind: 756 business days x 4 assets, seeds 0,
1, ...); the check's seed is the price set's, so the uniform draws differ between sets. The
fraction of rows a leak touches is measured: the fraction of boundaries that fail in exhaustive
mode. Checks run serially (n_jobs=1) in `--jobs` worker processes, one check per process at a
time, so the milliseconds are those of one serial check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalogue import HONEST, LEAKS, Case, prices  # noqa: E402
from tracker.ttpt import DEFAULT_BUDGET, check_lookahead, guarantee, uniform_part  # noqa: E402

DOCS = ROOT / "docs" / "optuna-and-ttpt.md"
START, END = "<!-- power:start -->", "<!-- power:end -->"
SPARSE = "sparse peek on 1% of days"


@dataclass(frozen=True)
class Run:
    """One class on one price set: the outcome and cost of both checks."""

    case: str
    seed: int
    caught: bool
    caught_exhaustive: bool
    touched: float
    evaluations: int
    evaluations_exhaustive: int
    ms: float
    ms_exhaustive: float


def measure(case: Case, seed: int) -> Run:
    data = case.data(seed)
    started = time.perf_counter()
    sampled = check_lookahead(case.strategy, data, case.params, seed=seed)
    middle = time.perf_counter()
    exhaustive = check_lookahead(case.strategy, data, case.params, exhaustive=True)
    ended = time.perf_counter()
    return Run(
        case=case.name,
        seed=seed,
        caught=not sampled.passed,
        caught_exhaustive=not exhaustive.passed,
        touched=exhaustive.metrics["failed_boundary_fraction"],
        evaluations=sampled.metrics["evaluations"],
        evaluations_exhaustive=exhaustive.metrics["evaluations"],
        ms=(middle - started) * 1000,
        ms_exhaustive=(ended - middle) * 1000,
    )


def _measure(job: tuple[str, int]) -> Run:
    name, seed = job
    [case] = [c for c in LEAKS + HONEST if c.name == name]
    return measure(case, seed)


def demo_cost(repeat: int = 5) -> dict[str, float]:
    """Median seconds of one check of the demo's honest momentum on the demo's data."""
    from tracker.demo import momentum_signal

    data = prices(7)
    params = {"lookback": 20, "threshold": 0.01}
    costs: dict[str, float] = {}
    for name, options in [
        ("default budget", {}),
        ("exhaustive, n_jobs=1", {"exhaustive": True}),
        ("exhaustive, n_jobs=2", {"exhaustive": True, "n_jobs": 2}),
    ]:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            check_lookahead(momentum_signal, data, params, **options)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
        costs[name] = statistics.median(times)
    return costs


def commit() -> str:
    """The short hash of HEAD, with +dirty when the working tree has changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return head.stdout.strip() + ("+dirty" if status.strip() else "")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(runs: list[Run], sets: int, costs: dict[str, float], measured_on: str) -> tuple[str, list[str]]:
    """The markdown table and the list of target lines (each 'met' or 'MISSED')."""
    by_case: dict[str, list[Run]] = {}
    for run in runs:
        by_case.setdefault(run.case, []).append(run)
    k = uniform_part(DEFAULT_BUDGET)
    lines = [
        f"Measured on commit `{measured_on}` by `python bench/power.py`: {sets} price sets per class "
        f"(756 business days x 4 assets, `bench/catalogue.py`), default budget {DEFAULT_BUDGET} "
        f"({k} uniform boundaries), check seed = price-set seed; {os.cpu_count()} CPUs.",
        "",
        "| class | rows touched (min / mean / max) | guarantee at min | caught or flagged, default "
        "| caught or flagged, exhaustive "
        "| evaluations (default / exhaustive) | ms per check (default / exhaustive) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets: list[str] = []
    for kind, cases in (("leak", LEAKS), ("honest", HONEST)):
        for case in cases:
            group = by_case[case.name]
            touched = [r.touched for r in group]
            caught = sum(r.caught for r in group)
            caught_exhaustive = sum(r.caught_exhaustive for r in group)
            name = case.name if kind == "leak" else f"honest: {case.name}"
            lines.append(
                f"| {name} | {min(touched):.1%} / {statistics.mean(touched):.1%} / {max(touched):.1%} "
                f"| {f'{guarantee(min(touched)):.3f}' if kind == 'leak' else '-'} "
                f"| {caught}/{len(group)} | {caught_exhaustive}/{len(group)} "
                f"| {statistics.median(r.evaluations for r in group):.0f} / "
                f"{statistics.median(r.evaluations_exhaustive for r in group):.0f} "
                f"| {statistics.median(r.ms for r in group):.0f} / "
                f"{statistics.median(r.ms_exhaustive for r in group):.0f} |"
            )
            if kind == "honest":
                ok = caught == caught_exhaustive == 0
                targets.append(f"{_verdict(ok)}: honest '{case.name}' flagged {caught} + {caught_exhaustive} times")
            elif case.name == SPARSE:
                ok = caught_exhaustive == len(group)
                targets.append(f"{_verdict(ok)}: '{case.name}' caught {caught_exhaustive}/{len(group)} exhaustively")
            if kind == "leak" and min(touched) >= 0.05:
                ok = caught == len(group)
                targets.append(f"{_verdict(ok)}: '{case.name}' (touches >= 5%) caught {caught}/{len(group)} at default")
            elif kind == "leak":
                targets.append(
                    f"info: '{case.name}' touches {min(touched):.1%} (< 5%): caught {caught}/{len(group)} at default, "
                    f"guarantee {guarantee(min(touched)):.3f}"
                )
    lines += [
        "",
        "Cost of one check of the demo's momentum strategy on the demo's data (median of 5): "
        + "; ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in costs.items())
        + ".",
    ]
    return "\n".join(lines), targets


def publish(markdown: str) -> None:
    text = DOCS.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n{markdown}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=20, help="price sets per class (default 20)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--no-docs", action="store_true", help=f"do not rewrite the table in {DOCS.name}")
    args = parser.parse_args()
    measured_on = commit()
    started = time.perf_counter()
    jobs = [(case.name, seed) for case in LEAKS + HONEST for seed in range(args.sets)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(_measure, jobs))
    costs = demo_cost()
    markdown, targets = table(runs, args.sets, costs, measured_on)
    print(markdown)
    print()
    for line in targets:
        print(line)
    print(f"\n{len(jobs)} class x price-set runs in {time.perf_counter() - started:.0f} s")
    if not args.no_docs:
        publish(markdown)
        dirty = " (from a dirty tree: commit, then publish again)" if "dirty" in measured_on else ""
        print(f"wrote the table into {DOCS.relative_to(ROOT)}{dirty}")
    return 1 if any(line.startswith("MISSED") for line in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
