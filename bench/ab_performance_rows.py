"""What `trial_performance` costs a one-trial `log_trial` on SQLite: this tree as it is against
this tree with those rows left out (the fill statement replaced by a no-op in this process only),
in alternating rounds, each from an empty store; payloads built before the timer.

    python bench/ab_performance_rows.py            # 1,500 trials a round, 5 rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1_500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from sqlalchemy import text
    from ui import payload

    import tracker.sql.performance as performance
    from tracker import ExperimentTracker

    items = [payload(n) for n in range(args.trials)]
    fills = {"with the rows": performance.SQLITE_FILL, "without them": text("SELECT :first + :last")}
    seconds: dict[str, list[float]] = {name: [] for name in fills}
    with tempfile.TemporaryDirectory(prefix="tracker-ab-") as folder:
        for round_ in range(args.rounds):
            for name, fill in fills.items():
                performance.SQLITE_FILL = fill
                with ExperimentTracker(f"sqlite:///{folder}/{round_}-{len(seconds[name])}-{name[:4]}.db") as t:
                    experiment = t.create_experiment("ab", "Bench", "tpe")
                    started = time.perf_counter()
                    for number, (params, metrics) in enumerate(items):
                        t.log_trial(experiment, number, params, metrics)
                    seconds[name].append((time.perf_counter() - started) / args.trials)
    medians = {name: statistics.median(values) * 1e6 for name, values in seconds.items()}
    for name, median in medians.items():
        print(f"log_trial {name}: {median:.0f} µs a trial (median of {args.rounds} rounds of {args.trials:,})")
    print(f"ratio: {medians['with the rows'] / medians['without them']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
