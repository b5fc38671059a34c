"""Stress and crash tests of tracker through its public API, with real processes.

    python bench/stress.py many --url URL --writers 8 --trials 500     # many writers at once
    python bench/stress.py crash --url URL --iterations 50             # SIGKILL at random moments

Writers log trials (single calls with a TTPT result, batches with TTPT items, and transactions of
several calls) and record every acknowledged trial, with all it holds, in their own file *after*
the call returned. Afterwards every acknowledged trial must be in the store exactly once, holding
exactly what was acknowledged (params, performance, TTPT result), every batch and transaction
whole or absent, and no call may have failed (no "database is locked", deadlock or serialisation
error). Prints its counts as JSON on the last line; exits 1 if anything was lost or changed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracker import ExperimentTracker

BATCH = 5
KINDS = ("single", "batch", "transaction")
"""single: log_trial then log_ttpt_result; batch: log_trials with TTPT items; transaction: two
log_trial and two log_ttpt_result calls in one `tracker.transaction()`, all or nothing."""


def _item(writer: int, number: int, tag: str, size: int) -> dict[str, Any]:
    """The trial a writer logs as `number`, with its TTPT result; values vary with the number."""
    rng = random.Random(number)
    return {
        "trial_number": number,
        "params": {"writer": writer, "batch": tag, "size": size, "lookback": rng.randint(1, 500)},
        "performance": {"sharpe": rng.uniform(-3, 3), "note": f"ü{number}", "curve": [rng.random(), -0.0]},
        "ttpt": {"passed": number % 3 != 0, "num_violations": number % 3, "metrics": {"batch": tag, "n": number}},
    }


def _log(tracker: ExperimentTracker, experiment_id: int, kind: str, items: list[dict[str, Any]]) -> list[int]:
    if kind == "batch":
        return tracker.log_trials(experiment_id, items)
    ids = []
    with tracker.transaction() if kind == "transaction" else contextlib.nullcontext():
        for item in items:
            args = {k: v for k, v in item.items() if k != "ttpt"}
            ids.append(tracker.log_trial(experiment_id, **args))
            tracker.log_ttpt_result(ids[-1], **item["ttpt"])
    return ids


def worker(url: str, experiment_id: int, writer: int, trials: int, acks: Path, start_at: float) -> int:
    """Log `trials` trials (forever when 0) and append one JSON line per acknowledged trial, with
    everything it holds, to `acks` after the call returned."""
    time.sleep(max(0.0, start_at - time.time()))
    errors = 0
    fd = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with ExperimentTracker(url) as tracker:
        number = writer * 10_000_000
        call = 0
        while trials == 0 or number < writer * 10_000_000 + trials:
            call += 1
            kind = KINDS[call % len(KINDS)]
            size = {"single": 1, "batch": BATCH, "transaction": 2}[kind]
            tag = f"{writer}-{call}"
            items = [_item(writer, number + i, tag, size) for i in range(size)]
            number += size
            try:
                ids = _log(tracker, experiment_id, kind, items)
            except Exception as exc:  # noqa: BLE001 - every failed call is counted and reported
                errors += 1
                os.write(fd, f"ERROR {type(exc).__name__}: {exc}\n".encode())
                continue
            os.write(
                fd, "".join(json.dumps({"id": i, **item}) + "\n" for i, item in zip(ids, items, strict=True)).encode()
            )
    os.close(fd)
    return 1 if errors else 0


def _spawn(
    url: str, experiment_id: int, writer: int, trials: int, acks: Path, start_at: float
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "worker",
            url,
            str(experiment_id),
            str(writer),
            str(trials),
            str(acks),
            str(start_at),
        ],
        stderr=subprocess.PIPE,
    )


def verify(url: str, experiment_id: int, ack_files: list[Path]) -> dict[str, Any]:
    """Check the store against the acknowledgements, content included; return the counts."""
    acked: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    for path in ack_files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.startswith("ERROR"):
                errors.append(line)
            elif line.endswith("}"):  # a line cut by the kill is not an acknowledgement
                record = json.loads(line)
                acked[record.pop("id")] = record
    with ExperimentTracker(url) as tracker:
        trials = tracker.get_trials(experiment_id)
    numbers = Counter(t["trial_number"] for t in trials)
    present = {t["id"]: t for t in trials}
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault(t["params"]["batch"], []).append(t)
    lost = [i for i in acked if i not in present]
    changed = [i for i, expected in acked.items() if i in present and _stored(present[i]) != expected]
    atomic_without_ttpt = [i for i, t in present.items() if t["ttpt_result"] is None and t["params"]["size"] > 1]
    half_groups = [tag for tag, rows in groups.items() if len(rows) != rows[0]["params"]["size"]]
    return {
        "writers": len(ack_files),
        "acknowledged": len(acked),
        "stored": len(trials),
        "lost": len(lost),
        "content_differs": len(changed),
        "duplicates": sum(1 for c in numbers.values() if c > 1),
        "half_written_batches": len(half_groups),
        "atomic_trials_without_ttpt": len(atomic_without_ttpt),
        "failed_calls": len(errors),
        "errors": errors[:5],
    }


def _stored(trial: dict[str, Any]) -> dict[str, Any]:
    """A stored trial in the shape of an acknowledgement (JSON round trip, as it was written)."""
    check = trial["ttpt_result"] or {}
    return json.loads(
        json.dumps(
            {
                "trial_number": trial["trial_number"],
                "params": trial["params"],
                "performance": trial["performance"],
                "ttpt": {k: check.get(k) for k in ("passed", "num_violations", "metrics")},
            }
        )
    )


def many(url: str, writers: int, trials: int) -> dict[str, Any]:
    with ExperimentTracker(url) as tracker:
        experiment_id = tracker.create_experiment("stress", "stress", f"{writers} writers")
    folder = Path(tempfile.mkdtemp(prefix="tracker-stress-"))
    acks = [folder / f"writer{w}.acks" for w in range(writers)]
    started = time.time()
    processes = [_spawn(url, experiment_id, w, trials, acks[w], started + 1.0) for w in range(writers)]
    stderr = [p.communicate()[1].decode() for p in processes]
    report = verify(url, experiment_id, acks)
    report["seconds"] = round(time.time() - started - 1.0, 2)
    report["worker_exit_codes"] = sorted({p.returncode for p in processes})
    if any(p.returncode for p in processes):
        report["worker_stderr"] = [s[-500:] for s in stderr if s][:3]
    return report


def crash(url: str, iterations: int, seed: int) -> dict[str, Any]:
    """Kill a writer with SIGKILL at a random moment, reopen, verify; repeat."""
    rng = random.Random(seed)
    with ExperimentTracker(url) as tracker:
        experiment_id = tracker.create_experiment("crash", "stress", "sigkill")
    folder = Path(tempfile.mkdtemp(prefix="tracker-crash-"))
    totals: Counter[str] = Counter()
    for iteration in range(iterations):
        acks = folder / f"iteration{iteration}.acks"
        process = _spawn(url, experiment_id, iteration + 1, 0, acks, 0.0)
        time.sleep(rng.uniform(0.3, 1.2))
        process.send_signal(signal.SIGKILL)
        process.wait()
        report = verify(url, experiment_id, [acks])
        for key in (
            "acknowledged",
            "lost",
            "content_differs",
            "duplicates",
            "half_written_batches",
            "failed_calls",
            "atomic_trials_without_ttpt",
        ):
            totals[key] += report[key]
    return {"iterations": iterations, **totals, "stored_at_end": verify(url, experiment_id, [])["stored"]}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        url, experiment_id, writer, trials, acks, start_at = sys.argv[2:8]
        return worker(url, int(experiment_id), int(writer), int(trials), Path(acks), float(start_at))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("many")
    one.add_argument("--url", required=True)
    one.add_argument("--writers", type=int, default=8)
    one.add_argument("--trials", type=int, default=500, help="trials per writer")
    two = sub.add_parser("crash")
    two.add_argument("--url", required=True)
    two.add_argument("--iterations", type=int, default=30)
    two.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = (
        many(args.url, args.writers, args.trials)
        if args.mode == "many"
        else crash(args.url, args.iterations, args.seed)
    )
    print(json.dumps(report))
    bad = any(
        report.get(key, 0)
        for key in (
            "lost",
            "content_differs",
            "duplicates",
            "half_written_batches",
            "failed_calls",
            "atomic_trials_without_ttpt",
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
