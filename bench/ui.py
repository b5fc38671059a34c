"""The dashboard's benchmark: latency of `tracker ui`'s JSON API at 10,000 and at 1,000,000
trials, and optuna-dashboard's study detail on the same 10,000 trials.

    python bench/ui.py             # 10,000 and 1,000,000 trials (make bench-ui, about 5 minutes)
    python bench/ui.py --quick     # 10,000 and 100,000 trials

It creates bench/.venv-ui with tracker[ui], Optuna and optuna-dashboard (a peer, not a tracker
dependency), re-runs itself there, and prints a markdown table (also written to
bench/results/ui.md). Every server runs as its own process on loopback and is timed over HTTP
with one kept-alive connection, as a browser would ask.

First after start is a fresh server's first request: tracker reads the store into its digests
in the background then, and answers the first pages from the indexes meanwhile (`counting`);
the time until that read is done is its own row. Warm is the median of the next requests. Each store holds 1,000
experiments: 999 of 20 trials and one big experiment (10,000 or 1,000,000 trials, 5 params and 4
metrics each, a TTPT check on every 10th). The optuna-dashboard study holds the big experiment's
10,000 trials, imported with bulk SQL (params, value, the metrics as user attributes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-ui"
PEERS = ["optuna>=4", "optuna-dashboard>=0.15"]
WARM_RUNS = 15
SMALL_EXPERIMENTS = 999
SMALL_TRIALS = 20
FIRST = "first request after start"
FIRST_VIEWS = {
    "experiments list page (/)": "/",
    "experiment page (/experiments/{big})": "/experiments/{big}",
    "first trials page (API)": "/api/experiments/{big}/trials?sort=trial_number&limit=50",
}
BUILT = "digests built in the background (from start; reported)"


def ensure_venv() -> None:
    """Re-run inside bench/.venv-ui, creating it with tracker[ui] and the peers when needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[ui]", *PEERS], check=True)
        stamp.touch()
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])  # noqa: S606 - re-run in the bench venv


def payload(i: int) -> tuple[dict[str, Any], dict[str, float]]:
    """5 params and 4 performance metrics (as bench/run.py)."""
    rng = random.Random(i)
    params = {
        "lookback": rng.randint(5, 200),
        "threshold": rng.random() / 10,
        "stop": rng.random(),
        "kind": rng.choice(["sma", "ema"]),
        "leverage": rng.choice([1, 2, 3]),
    }
    performance = {
        "sharpe": rng.gauss(0.5, 1),
        "returns": rng.gauss(0.1, 0.2),
        "max_drawdown": -rng.random(),
        "turnover": rng.random() * 10,
    }
    return params, performance


def build_store(path: Path, big: int) -> int:
    """The store of 1,000 experiments; returns the big experiment's id."""
    from tracker import ExperimentTracker

    with ExperimentTracker(f"sqlite:///{path}", synchronous="off") as t:
        for e in range(SMALL_EXPERIMENTS):
            eid = t.create_experiment(f"small {e:03d}", ["Momentum", "MeanRev", "Carry"][e % 3], "tpe")
            t.log_trials(
                eid,
                [
                    {
                        "trial_number": n,
                        "params": {"lookback": n},
                        "performance": {"sharpe": random.Random(e * 100 + n).gauss(0, 1)},
                        **({"ttpt": {"passed": (e + n) % 7 != 0, "num_violations": 0}} if n % 5 == 0 else {}),
                    }
                    for n in range(SMALL_TRIALS)
                ],
            )
        # Two objectives (as the Optuna integration declares them), for the Pareto row: the
        # drawdown is negative here, so it is maximised too.
        objectives = {"objectives": ["sharpe", "max_drawdown"], "directions": ["maximize", "maximize"]}
        big_id = t.create_experiment("big", "Momentum", "tpe_runtime_ttpt", objectives)
        for start in range(0, big, 50_000):
            batch = []
            for n in range(start, min(big, start + 50_000)):
                params, perf = payload(n)
                item: dict[str, Any] = {"trial_number": n, "params": params, "performance": perf}
                if n % 10 == 0:
                    item["ttpt"] = {"passed": n % 70 != 0, "num_violations": 0 if n % 70 else 2}
                batch.append(item)
            t.log_trials(big_id, batch)
    return big_id


def optuna_study(path: Path, n: int) -> int:
    """An Optuna RDBStorage study of the big experiment's first n trials, filled with bulk SQL
    (study.add_trial would take far longer); returns its study id."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution, distribution_to_json

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    optuna.create_study(storage=storage, study_name="big", direction="maximize")
    study_id = storage.get_study_id_from_name("big")
    dists = {
        "lookback": IntDistribution(5, 200),
        "threshold": FloatDistribution(0, 0.1),
        "stop": FloatDistribution(0, 1),
        "kind": CategoricalDistribution(["sma", "ema"]),
        "leverage": CategoricalDistribution([1, 2, 3]),
    }
    conn = sqlite3.connect(path)
    now = "2026-01-01 00:00:00.000000"
    trials, params, values, attrs = [], [], [], []
    for i in range(n):
        p, q = payload(i)
        trials.append((i + 1, i, study_id, "COMPLETE", now, now))
        for key, value in p.items():
            params.append((i + 1, key, dists[key].to_internal_repr(value), distribution_to_json(dists[key])))
        values.append((i + 1, 0, q["sharpe"], "FINITE"))
        for key in ("returns", "max_drawdown", "turnover"):
            attrs.append((i + 1, key, json.dumps(q[key])))
    conn.executemany(
        "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        trials,
    )
    conn.executemany(
        "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)", params
    )
    conn.executemany("INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)", values)
    conn.executemany("INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)", attrs)
    conn.commit()
    conn.close()
    return study_id


class Server:
    """A server process on a loopback port, with one kept-alive connection to it."""

    def __init__(self, command: list[str], port: int | None, ready: str) -> None:
        started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = port
        self.started_in: float | None = None
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.process.stdout:
            if ready in line:
                self.started_in = time.perf_counter() - started
                if self.port is None:
                    self.port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
                break
            if time.monotonic() > deadline:
                break
        if self.started_in is None:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start")
        stream = self.process.stdout  # drained, so that request logs never fill the pipe
        threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def get(self, path: str) -> tuple[float, bytes]:
        """Seconds for the whole answer (status, headers and body) and the body."""
        started = time.perf_counter()
        for attempt in range(200):
            try:
                self.connection.request("GET", path)
                answer = self.connection.getresponse()
                body = answer.read()
                break
            except (ConnectionRefusedError, http.client.RemoteDisconnected):  # a peer still binding its port
                self.connection.close()
                time.sleep(0.05)
                if attempt == 199:
                    raise
                started = time.perf_counter()
        elapsed = time.perf_counter() - started
        if answer.status != 200:
            raise RuntimeError(f"GET {path}: {answer.status} {body[:200]!r}")
        return elapsed, body

    def cold_and_warm(self, path: str) -> tuple[float, float]:
        cold = self.get(path)[0]
        warm = statistics.median(self.get(path)[0] for _ in range(WARM_RUNS))
        return cold, warm

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tracker_server(store: Path) -> Server:
    tracker = str(Path(sys.executable).parent / "tracker")
    return Server([tracker, "--url", str(store), "ui", "--no-open", "--port", "0"], None, "tracker ui: serving")


def measure_first(store: Path, big_id: int) -> dict[str, tuple[float, float]]:
    """Each first-page view as a fresh server's first request; then, on the last server, the
    seconds from its start until its digests are built (`counting` turns false)."""
    results: dict[str, tuple[float, float]] = {}
    for name, path in FIRST_VIEWS.items():
        started = time.perf_counter()
        server = tracker_server(store)
        try:
            first = server.get(path.format(big=big_id))[0]
            results[f"{FIRST}: {name}"] = (first, first)
            if name == list(FIRST_VIEWS)[-1]:
                while json.loads(server.get(f"/api/experiments/{big_id}")[1])["counting"]:
                    time.sleep(0.05)
                built = time.perf_counter() - started
                results[BUILT] = (built, built)
        finally:
            server.stop()
    return results


def measure_tracker(store: Path, big_id: int) -> dict[str, Any]:
    firsts = measure_first(store, big_id)
    server = tracker_server(store)
    try:
        while json.loads(server.get(f"/api/experiments/{big_id}")[1])["counting"]:
            time.sleep(0.05)  # the views below are timed once the digests are built
        server.get(f"/api/experiments/{big_id}/pareto")  # and once the background pass computed the front
        body = server.get(f"/api/experiments/{big_id}/trials?sort=trial_number&limit=1")[1]
        middle = json.loads(body)["items"][0]["id"] + json.loads(body)["total"] // 2
        views = {
            "experiments list (1,000 experiments)": "/api/experiments?limit=50",
            "summary": f"/api/experiments/{big_id}",
            "first trials page, by objective": f"/api/experiments/{big_id}/trials?sort=value&limit=50",
            "first trials page, by trial number": f"/api/experiments/{big_id}/trials?sort=trial_number&limit=50",
            "history, max_points=2000": f"/api/experiments/{big_id}/history?max_points=2000",
            "one trial": f"/api/trials/{middle}",
            "Pareto front (sharpe, max_drawdown) and hypervolume history": f"/api/experiments/{big_id}/pareto",
            "first trials page, by a metric (performance.returns)": (
                f"/api/experiments/{big_id}/trials?sort=performance.returns&limit=50"
            ),
        }
        results = {name: server.cold_and_warm(path) for name, path in views.items()}
        results.update(firsts)
        page = ("summary", "first trials page, by objective", "history, max_points=2000")
        size = sum(len(server.get(views[name])[1]) for name in page)
        return {"started_in": server.started_in, "views": results, "bytes": size}
    finally:
        server.stop()


LOG_BATCH = 10_000
LOG_BATCHES = 5
LOG_ROUNDS = 3
LOG_SCRIPT = """
import sys, time, json
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[3])
from ui import payload
from tracker import ExperimentTracker
if sys.argv[4] == "skip-fill":  # this tree with the trial_performance rows left out: their cost alone
    from sqlalchemy import text
    import tracker.sql.performance as performance
    performance.SQLITE_FILL = text("SELECT :first + :last")
batches = [[{"trial_number": n, "params": p, "performance": q} for n in range(b * BATCH, (b + 1) * BATCH)
            for p, q in [payload(n)]] for b in range(BATCHES)]
with ExperimentTracker(sys.argv[2]) as t:
    e = t.create_experiment("log", "Bench", "tpe")
    started = time.perf_counter()
    for batch in batches:
        t.log_trials(e, batch)
    print(json.dumps(time.perf_counter() - started))
""".replace("BATCHES", str(LOG_BATCHES)).replace("BATCH", str(LOG_BATCH))


def measure_log_cost(folder: Path) -> dict[str, Any]:
    """Seconds of log_trials (LOG_BATCHES batches of LOG_BATCH trials, 5 params and 4 metrics each,
    payloads built before the timer) into a fresh SQLite store: this tree against the tree before
    the trial_performance table (the parent of the commit that added revision 0005), and against
    this tree with the table's rows left out (their cost alone: the tree before also lacks later
    speed-ups), run in turns, medians of LOG_ROUNDS."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "migrations/versions/0005_trial_metrics.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    commit = subprocess.run(
        ["git", "rev-parse", added.stdout.split()[-1] + "^"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    tree = folder / "base-tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", commit, "tracker", "migrations"], capture_output=True, cwd=ROOT, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    (tree / "tracker" / "_migrations").symlink_to(tree / "migrations")
    seconds: dict[str, list[float]] = {"base": [], "this": [], "no-fill": []}
    for round_ in range(LOG_ROUNDS):
        for name, source in (("base", tree), ("this", ROOT), ("no-fill", ROOT)):
            store = folder / f"log-{name}-{round_}.db"
            fill = "skip-fill" if name == "no-fill" else "fill"
            run = subprocess.run(
                [sys.executable, "-c", LOG_SCRIPT, str(source), str(store), str(HERE), fill],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds[name].append(float(run.stdout.strip().splitlines()[-1]))
            for leftover in folder.glob(f"log-{name}-{round_}.db*"):
                leftover.unlink()
    return {"commit": commit[:7], **{k: statistics.median(v) for k, v in seconds.items()}}


DOWNLOAD_MIB = 100
DOWNLOAD_CLIENTS = 10


def _rss_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def measure_download(folder: Path) -> dict[str, float]:
    """Peak RSS of `tracker ui` while DOWNLOAD_CLIENTS clients download one 100 MiB artifact at
    once (random bytes: zstd cannot shrink them, the worst case), against its RSS before."""
    from tracker import ExperimentTracker

    store = folder / "download.db"
    data = random.Random(1).randbytes(DOWNLOAD_MIB * 1024 * 1024)
    with ExperimentTracker(str(store)) as t:
        e = t.create_experiment("download", "Bench", "grid")
        trial = t.log_trial(e, 0, {"x": 1}, {"sharpe": 1.0})
        t.log_artifact(("trial", trial), data, name="big.bin")
    del data
    tracker = str(Path(sys.executable).parent / "tracker")
    server = Server([tracker, "--url", str(store), "ui", "--no-open", "--port", "0"], None, "tracker ui: serving")
    try:
        server.get("/api/experiments")
        before = _rss_kib(server.process.pid, "VmRSS")
        sizes: list[int] = []

        def fetch() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
            connection.request("GET", f"/api/trials/{trial}/artifacts/big.bin")
            answer = connection.getresponse()
            got = 0
            while piece := answer.read(1 << 20):
                got += len(piece)
            sizes.append(got)
            connection.close()

        started = time.perf_counter()
        clients = [threading.Thread(target=fetch) for _ in range(DOWNLOAD_CLIENTS)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        seconds = time.perf_counter() - started
        if sizes != [DOWNLOAD_MIB * 1024 * 1024] * DOWNLOAD_CLIENTS:
            raise RuntimeError(f"downloads incomplete: {sizes}")
        peak = _rss_kib(server.process.pid, "VmHWM")
        return {"before_mib": before / 1024, "peak_mib": peak / 1024, "seconds": seconds}
    finally:
        server.stop()
        store.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ensure_venv()
    sizes = (10_000, 100_000) if args.quick else (10_000, 1_000_000)
    began = time.time()
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="tracker-bench-ui-") as folder:
        measured: dict[int, dict[str, Any]] = {}
        for n in sizes:
            store = Path(folder) / f"ui-{n}.db"
            started = time.perf_counter()
            big_id = build_store(store, n)
            print(
                f"built a store with {n:,} trials in its big experiment in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            measured[n] = measure_tracker(store, big_id)
            for name, (cold, warm) in measured[n]["views"].items():
                print(f"  {n:>9,} trials  {name}: cold {cold * 1e3:.1f} ms, warm {warm * 1e3:.2f} ms", flush=True)
            store.unlink()
        small, large = sizes
        for name in measured[small]["views"]:
            cold_s, warm_s = measured[small]["views"][name]
            cold_l, warm_l = measured[large]["views"][name]
            first = name.startswith(FIRST) or name == BUILT
            if name == BUILT:
                target, ok = "reported", ""
            elif first:
                target, ok = f"≤ 1 s at {large:,}", " ✅" if warm_l <= 1.0 else " ❌"
            else:
                target, ok = "≤ 3×", " ✅" if warm_l / warm_s <= 3 else " ❌"
            shown = (
                (f"{warm_s * 1e3:.0f} ms", f"{warm_l * 1e3:.0f} ms")
                if first
                else (
                    f"{warm_s * 1e3:.2f} ms (first {cold_s * 1e3:.1f})",
                    f"{warm_l * 1e3:.2f} ms (first {cold_l * 1e3:.1f})",
                )
            )
            rows.append(
                (
                    name,
                    *shown,
                    f"{warm_l / warm_s:.2f}×",
                    target + ok,
                )
            )
        rows.append(
            (
                "`tracker ui` start, until the address is printed",
                f"{measured[small]['started_in']:.2f} s",
                f"{measured[large]['started_in']:.2f} s",
                "-",
                "< 2 s" + (" ✅" if max(m["started_in"] for m in measured.values()) < 2 else " ❌"),
            )
        )
        # optuna-dashboard on the same 10,000 trials
        study_path = Path(folder) / "optuna.db"
        study_id = optuna_study(study_path, small)
        port = free_port()
        command = [
            str(Path(sys.executable).parent / "optuna-dashboard"),
            f"sqlite:///{study_path}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        peer = Server(command, port, "Listening on")
        try:
            cold_peer, warm_peer = peer.cold_and_warm(f"/api/studies/{study_id}?after=0")
            first_body = peer.get(f"/api/studies/{study_id}?after=0")[1]
            after = len(json.loads(first_body).get("trials", []))
            follow_body = peer.get(f"/api/studies/{study_id}?after={after}")[1]
        finally:
            peer.stop()
        views = measured[small]["views"]
        parts = ["summary", "first trials page, by objective", "history, max_points=2000"]
        ours_warm = sum(views[p][1] for p in parts)
        # cold: a fresh server until its digests are built, then each view's first answer
        ours_cold = sum(views[p][0] for p in parts) + views[BUILT][0]
        rows.append(
            (
                f"experiment page data (summary + first trials page + history), {small:,} trials, "
                "vs optuna-dashboard's study detail",
                f"tracker {ours_warm * 1e3:.1f} ms warm ({ours_cold * 1e3:.0f} ms cold)",
                f"optuna-dashboard {warm_peer * 1e3:.0f} ms warm ({cold_peer * 1e3:.0f} ms cold)",
                f"{warm_peer / ours_warm:.0f}× faster warm, {cold_peer / ours_cold:.0f}× cold",
                "≥ 20× warm" + (" ✅" if warm_peer / ours_warm >= 20 else " ❌"),
            )
        )
        ours_bytes = measured[small]["bytes"]
        rows.append(
            (
                f"payload of the experiment page's data, {small:,} trials",
                f"tracker {ours_bytes / 1024:.0f} KiB (summary + first trials page + history)",
                f"optuna-dashboard {len(first_body) / 1024**2:.1f} MiB (`?after=0`), then "
                f"{len(follow_body) / 1024:.1f} KiB (its follow-up `?after={after}`)",
                f"{len(first_body) / ours_bytes:.0f}× smaller",
                "reported",
            )
        )
        cost = measure_log_cost(Path(folder))
        rows.append(
            (
                f"log_trials, {LOG_BATCHES} batches of {LOG_BATCH:,} trials (4 metrics each), fresh SQLite store: "
                f"with trial_performance vs without ({cost['commit']})",
                f"{cost['base']:.2f} s without",
                f"{cost['this']:.2f} s with",
                f"{cost['this'] / cost['base']:.2f}×",
                "≤ 1.25×" + (" ✅" if cost["this"] / cost["base"] <= 1.25 else " ❌"),
            )
        )
        rows.append(
            (
                "the same log_trials, this tree: writing the trial_performance rows vs leaving them out",
                f"{cost['no-fill']:.2f} s without",
                f"{cost['this']:.2f} s with",
                f"{cost['this'] / cost['no-fill']:.2f}×",
                "≤ 1.25×" + (" ✅" if cost["this"] / cost["no-fill"] <= 1.25 else " ❌"),
            )
        )
        download = measure_download(Path(folder))
        rows.append(
            (
                f"peak RSS of `tracker ui` while {DOWNLOAD_CLIENTS} clients download a {DOWNLOAD_MIB} MiB artifact",
                f"{download['before_mib']:.0f} MiB before",
                f"{download['peak_mib']:.0f} MiB peak ({download['seconds']:.1f} s for all)",
                f"+{download['peak_mib'] - download['before_mib']:.0f} MiB",
                "bounded (streamed in 1 MiB pieces)"
                + (" ✅" if download["peak_mib"] - download["before_mib"] < 100 else " ❌"),
            )
        )
    header = (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({'quick' if args.quick else 'full'}, "
        f"{time.time() - began:.0f} s) on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; SQLite stores; warm = median of {WARM_RUNS} requests over one "
        "kept-alive HTTP connection; first = that view's first request, once the digests are built; "
        "first request after start = a fresh server's first request, answered while it builds its digests "
        "in the background (their end is its own row); cold = from a fresh server. "
        f"Measured on commit {git_commit()}."
    )
    table = [
        f"| view | {sizes[0]:,} trials | {sizes[1]:,} trials | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {' | '.join(r)} |" for r in rows),
    ]
    text = header + "\n\n" + "\n".join(table) + "\n"
    print("\n" + text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / ("ui-quick.md" if args.quick else "ui.md")).write_text(text)
    if not args.quick:
        publish(text)
    return 0


def publish(table: str) -> None:
    """Put the table of a full run into docs/ui.md, between its markers."""
    page = ROOT / "docs" / "ui.md"
    text = page.read_text()
    start, end = "<!-- bench-ui:start -->", "<!-- bench-ui:end -->"
    page.write_text(text[: text.index(start) + len(start)] + "\n" + table + text[text.index(end) :])


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    sys.exit(main())
