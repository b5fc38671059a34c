"""Stress and crash tests of tracker through its public API, with real processes.

    python bench/stress.py many --url URL --writers 8 --trials 500     # many writers at once
    python bench/stress.py crash --url URL --iterations 50             # SIGKILL at random moments
    python bench/stress.py archive --url SRC --to DST --iterations 30  # SIGKILL during archival

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


def _first_acknowledgement(acks: Path, process: subprocess.Popen[bytes], limit: float = 300.0) -> None:
    """Wait until the writer has acknowledged a write (or exited, or `limit` seconds passed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if acks.exists() and acks.stat().st_size > 0:
            return
        time.sleep(0.01)


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
        _first_acknowledgement(acks, process)  # a slow start (a loaded machine) must not end the run before it writes
        time.sleep(rng.uniform(0.0, 0.9))
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


def _archive_source(url: str, experiments: int, trials: int) -> dict[Any, Any]:
    """Old experiments (created in 2025) with everything an experiment can hold; their snapshots
    by (name, template, mode, created_at)."""
    from datetime import UTC, datetime

    from tracker.store.records import NewArtifact, NewExperiment, NewStepMetric, NewTrial, NewTTPTResult, Owner
    from tracker.transfer.copying import key_of, snapshot

    old = datetime(2025, 1, 1, tzinfo=UTC)
    with ExperimentTracker(url) as tracker:
        repo = tracker.repository
        for e in range(experiments):
            eid = repo.add_experiment(
                NewExperiment(
                    name=f"old {e}",
                    template="t",
                    mode="m",
                    objective="sharpe",
                    direction="maximize",
                    created_at=old,
                    config={"e": e},
                    summary={"best": e},
                    tags={"desk": "fx"},
                    note=f"note {e}",
                    provenance={"git_commit": "x"},
                )
            )
            code = f"def f(d, p):\n    return {e}\n" * 100
            checks = [NewTTPTResult(passed=n % 5 != 0, num_violations=n % 5, created_at=old) for n in range(trials)]
            ids = repo.add_trials(
                eid,
                [
                    NewTrial(
                        trial_number=n,
                        params={"n": n, "x": [n, -0.0]},
                        performance={"sharpe": n / 7},
                        state="complete",
                        created_at=old,
                        value=n / 7,
                        strategy_code=code,
                        attributes={"a": "b"},
                        tags={"fold": str(n % 3)},
                        ttpt=checks[n] if n % 2 == 0 else None,
                    )
                    for n in range(trials)
                ],
            )
            for trial_id in ids[:20]:
                repo.add_step_metrics(trial_id, [NewStepMetric(step=s, key="sharpe", value=s / 3) for s in range(3)])
            repo.add_artifact(Owner("experiment", eid), NewArtifact("report.txt", "text/plain", b"r" * 5000, old))
            repo.add_artifact(Owner("trial", ids[0]), NewArtifact("curve.csv", "text/csv", b"%d\n" % e * 900, old))
        return {key_of(s.experiment): snapshot(repo, s.experiment.id) for s in repo.list_experiments(_all())}


def _all() -> Any:
    from tracker.store.records import ExperimentQuery

    return ExperimentQuery(trial_stats=False)


def _whereabouts(src: str, dst: str, originals: dict[Any, Any]) -> Counter[str]:
    """In which stores each original experiment is whole ("source", "destination" or both);
    raises AssertionError for one that is whole nowhere, or present but not whole."""
    from tracker.transfer.copying import key_of, snapshot

    places: Counter[str] = Counter()
    with ExperimentTracker(src) as source, ExperimentTracker(dst) as destination:
        stores = (("source", source.repository), ("destination", destination.repository))
        found = {
            name: {key_of(s.experiment): s.experiment.id for s in repo.list_experiments(_all())}
            for name, repo in stores
        }
        for key, original in originals.items():
            where = []
            for name, repo in stores:
                if key in found[name]:
                    if snapshot(repo, found[name][key]) != original:
                        raise AssertionError(f"experiment {key} is in the {name} but not whole")
                    where.append(name)
            if not where:
                raise AssertionError(f"experiment {key} is lost")
            places["+".join(where)] += 1
    return places


def archive(src: str, dst: str, iterations: int, seed: int, experiments: int, trials: int) -> dict[str, Any]:
    """Archive old experiments, killing the process with SIGKILL at random moments of the run.
    After each kill every experiment must be whole in at least one store (and half in none).
    When most have moved, they are restored so that kills keep landing mid-move. A last run must
    finish the move: every experiment in the destination only."""
    rng = random.Random(seed)
    originals = _archive_source(src, experiments, trials)
    move = f"import tracker; tracker.ExperimentTracker({src!r}).archive({dst!r}, older_than='90d')"
    back = (
        f"import tracker; d = tracker.ExperimentTracker({dst!r}); ids = [e['id'] for e in d.list_experiments()];"
        f" d.close(); tracker.ExperimentTracker({src!r}).restore(ids, {dst!r})"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", move], check=True)
    full = time.perf_counter() - started
    subprocess.run([sys.executable, "-c", back], check=True)
    totals: Counter[str] = Counter()
    for _ in range(iterations):
        if _whereabouts(src, dst, originals).get("source", 0) < experiments // 2:
            subprocess.run([sys.executable, "-c", back], check=True)
        process = subprocess.Popen([sys.executable, "-c", move])
        time.sleep(rng.uniform(0.0, full))
        process.send_signal(signal.SIGKILL)
        process.wait()
        totals.update(_whereabouts(src, dst, originals))
    subprocess.run([sys.executable, "-c", move], check=True)
    final = _whereabouts(src, dst, originals)
    return {
        "iterations": iterations,
        "seconds_per_full_move": round(full, 2),
        "experiments_checked_after_kills": dict(totals),
        "final": dict(final),
        "lost": 0,
    }


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
    three = sub.add_parser("archive")
    three.add_argument("--url", required=True, help="the source store")
    three.add_argument("--to", required=True, help="the archive store")
    three.add_argument("--iterations", type=int, default=30)
    three.add_argument("--seed", type=int, default=1)
    three.add_argument("--experiments", type=int, default=6)
    three.add_argument("--trials", type=int, default=2000)
    two = sub.add_parser("crash")
    two.add_argument("--url", required=True)
    two.add_argument("--iterations", type=int, default=30)
    two.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.mode == "archive":
        report = archive(args.url, args.to, args.iterations, args.seed, args.experiments, args.trials)
    elif args.mode == "many":
        report = many(args.url, args.writers, args.trials)
    else:
        report = crash(args.url, args.iterations, args.seed)
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
