"""A/B of MariaDB/MySQL's one-row insert path: the same tracker and store, rounds of 300
log_trial calls alternating `exec_driver_sql` with a statement compiled once (what tracker
does) and SQLAlchemy Core's execute (what it did before), payloads built before the timers.

    python bench/ab_mysql_insert.py mysql+pymysql://root@127.0.0.1:3306/test

It writes one experiment into the database it is given.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from tracker import ExperimentTracker
from tracker.sql import unit_of_work

ROUNDS, PER_ROUND = 7, 300


def main(url: str) -> None:
    paths = {"exec_driver_sql": unit_of_work._MySQLWriter.insert, "Core execute": unit_of_work._CoreWriter.insert}
    rng = random.Random(1)
    items = [
        ({"lookback": rng.randint(5, 200), "threshold": rng.random()}, {"sharpe": rng.random(), "dd": rng.random()})
        for _ in range(ROUNDS * len(paths) * PER_ROUND)
    ]
    costs: dict[str, list[float]] = {name: [] for name in paths}
    with ExperimentTracker(url) as tracker:
        experiment = tracker.create_experiment(f"a/b insert path {time.time()}", "bench", "ab")
        number = 0
        for _ in range(ROUNDS):
            for name, insert in paths.items():
                unit_of_work._MySQLWriter.insert = insert  # type: ignore[method-assign]
                started = time.perf_counter()
                for params, performance in items[number : number + PER_ROUND]:
                    tracker.log_trial(experiment, number, params, performance)
                    number += 1
                costs[name].append((time.perf_counter() - started) / PER_ROUND)
    for name, values in costs.items():
        rounds = ", ".join(f"{v * 1e6:.0f}" for v in values)
        print(f"{name}: median {statistics.median(values) * 1e6:.0f} µs per log_trial (rounds: {rounds})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mysql+pymysql://root@127.0.0.1:3306/test")
