"""How long the `tracker` command takes to answer, as ratios to `python -c "import sqlalchemy"`
timed side by side (the import every command that opens a SQL store pays).

    python bench/cli_speed.py            # 9 rounds
    python bench/cli_speed.py --rounds 21

Each round runs every command once, in a shuffled order, as a new process (what a user waits
for): `python -c "pass"` (the interpreter alone), `python -c "import sqlalchemy"`, `tracker
--help`, `tracker experiments list`, `tracker db current` and `tracker trials list 1`, on a small
SQLite store (2 experiments of 20 trials) made before any timing. Bytecode caches are written by
one warm-up run of each command first, as they are on a user's machine. The table gives each
command's median and fastest wall time and its median's ratio to the import's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
BASELINE = "python -c 'import sqlalchemy'"


def commands() -> dict[str, list[str]]:
    tracker = [str(BIN / "tracker"), "--url", "sqlite:///bench.db"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        BASELINE: [sys.executable, "-c", "import sqlalchemy"],
        "tracker --help": [*tracker, "--help"],
        "tracker experiments list": [*tracker, "experiments", "list"],
        "tracker db current": [*tracker, "db", "current"],
        "tracker trials list 1": [*tracker, "trials", "list", "1"],
    }


def make_store(folder: Path) -> None:
    """Two experiments of 20 trials, one TTPT result each fifth trial (built before any timing)."""
    from tracker import ExperimentTracker

    with ExperimentTracker(folder / "bench.db") as tracker:
        for name in ("honest", "leaky"):
            eid = tracker.create_experiment(name, "Momentum", "tpe", {"n_trials": 20})
            for number in range(20):
                trial = tracker.log_trial(eid, number, {"lookback": 5 + number}, {"sharpe": number / 10})
                if number % 5 == 0:
                    tracker.log_ttpt_result(trial, True, 0, {"evaluations": 122})


def run_once(command: list[str], folder: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(rounds: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TRACKER_URL")}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        make_store(folder)
        every = commands()
        for command in every.values():  # warm-up: bytecode caches, the OS file cache
            run_once(command, folder, env)
        times: dict[str, list[float]] = {label: [] for label in every}
        order = list(every)
        for _ in range(rounds):
            random.shuffle(order)
            for label in order:
                times[label].append(run_once(every[label], folder, env))
    return times


def table(times: dict[str, list[float]]) -> str:
    base = statistics.median(times[BASELINE])
    lines = [
        "| command | median (s) | fastest (s) | median / `import sqlalchemy` |",
        "| --- | --- | --- | --- |",
    ]
    for label, values in times.items():
        median = statistics.median(values)
        lines.append(f"| `{label}` | {median:.3f} | {min(values):.3f} | {median / base:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="runs of each command (default 9)")
    args = parser.parse_args()
    times = measure(args.rounds)
    print(f"{args.rounds} rounds, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(table(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
