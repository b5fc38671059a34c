"""tracker's benchmark suite: every figure is a ratio to a baseline measured in the same run.

    python bench/run.py            # the whole suite (make bench)
    python bench/run.py --quick    # smaller sizes (make bench-quick)

It creates bench/.venv with tracker, Optuna and MLflow (the peers are not tracker dependencies),
re-runs itself there, and prints a markdown table (also written to bench/results/latest.md).
Durability is equal for every SQLite store compared: WAL journal, synchronous=NORMAL, set on
every connection of every tool (tracker's default). PostgreSQL needs TRACKER_BENCH_POSTGRES_URL
and MariaDB/MySQL TRACKER_BENCH_MYSQL_URL (server URLs; the bench creates and drops its own
databases there).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
PEERS = ["mlflow-skinny>=3", "optuna>=4", "psycopg[binary]>=3.1", "pymysql>=1.1", "pyarrow"]
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def ensure_venv() -> None:
    """Re-run inside bench/.venv, creating or updating it with tracker and the peers when
    pyproject.toml or the peer list changed since it was made."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(((ROOT / "pyproject.toml").read_text() + repr(PEERS)).encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[postgres,mysql]", *PEERS]
        subprocess.run(install, check=True)
        stamp.write_text(wanted)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])  # noqa: S606 - re-run in the bench venv


# helpers -------------------------------------------------------------------------------------


def median_time(function: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        state = setup() if setup else None
        gc.collect()
        started = time.perf_counter()
        function() if state is None else function(state)  # type: ignore[call-arg]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Each run's median of `repeat` results, taken in rounds (every run once per round, in turn),
    so a slow spell of a shared machine falls on both sides of a ratio alike. A run returns the
    seconds it timed, its setup left outside its timer."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            results[name].append(run())
    return {name: statistics.median(values) for name, values in results.items()}


def timed(function: Callable[[], Any]) -> Callable[[], float]:
    """A run for `interleaved` that times one call of `function`."""

    def run() -> float:
        started = time.perf_counter()
        function()
        return time.perf_counter() - started

    return run


def trial_payload(i: int) -> tuple[dict[str, Any], dict[str, float]]:
    """5 params and 4 performance metrics, as in the issue's measurements."""
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


def use_equal_sqlite_durability() -> None:
    """Every SQLAlchemy SQLite connection in this process (Optuna's, MLflow's) gets tracker's pragmas."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            for pragma in SQLITE_PRAGMAS:
                dbapi_connection.execute(pragma)


RAW_DDL = (
    "CREATE TABLE experiments (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, template TEXT NOT NULL, "
    "mode TEXT NOT NULL, config TEXT, created_at TIMESTAMP, summary TEXT, objective TEXT, direction TEXT)",
    "CREATE TABLE trials (id INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id INTEGER NOT NULL REFERENCES "
    "experiments(id) ON DELETE CASCADE, trial_number INTEGER NOT NULL, params TEXT NOT NULL, "
    "performance TEXT NOT NULL, "
    "strategy_code TEXT, strategy_template TEXT, generation_method TEXT, created_at TIMESTAMP, state TEXT, value REAL, "
    "started_at TIMESTAMP, completed_at TIMESTAMP, UNIQUE (experiment_id, trial_number))",
    "CREATE INDEX ix_value ON trials (experiment_id, value)",
    "CREATE TABLE ttpt_results (id INTEGER PRIMARY KEY AUTOINCREMENT, trial_id INTEGER NOT NULL REFERENCES trials(id) "
    "ON DELETE CASCADE, passed BOOLEAN NOT NULL, num_violations INTEGER NOT NULL, metrics TEXT, created_at TIMESTAMP, "
    "violations TEXT)",
    "CREATE INDEX ix_trial ON ttpt_results (trial_id)",
)


RAW_MYSQL_DDL = (
    "CREATE TABLE experiments (id BIGINT AUTO_INCREMENT PRIMARY KEY, name LONGTEXT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE trials (id BIGINT AUTO_INCREMENT PRIMARY KEY, experiment_id BIGINT NOT NULL, "
    "trial_number BIGINT NOT NULL, params LONGTEXT NOT NULL, performance LONGTEXT NOT NULL, created_at DATETIME(6), "
    "state VARCHAR(16), value DOUBLE, UNIQUE (experiment_id, trial_number), INDEX ix_value (experiment_id, value), "
    "FOREIGN KEY (experiment_id) REFERENCES experiments(id) ON DELETE CASCADE) ENGINE=InnoDB",
    "CREATE TABLE ttpt_results (id BIGINT AUTO_INCREMENT PRIMARY KEY, trial_id BIGINT NOT NULL, passed BOOL NOT NULL, "
    "num_violations BIGINT NOT NULL, metrics LONGTEXT, created_at DATETIME(6), "
    "FOREIGN KEY (trial_id) REFERENCES trials(id) ON DELETE CASCADE) ENGINE=InnoDB",
)
"""The raw baseline's tables on MariaDB/MySQL: the columns, keys and indexes tracker's insert touches."""
RAW_MYSQL_INSERT = (
    "INSERT INTO trials (experiment_id, trial_number, params, performance, created_at, state, value) "
    "VALUES (%s, %s, %s, %s, %s, 'complete', %s)"
)
RAW_MYSQL_TTPT = (
    "INSERT INTO ttpt_results (trial_id, passed, num_violations, metrics, created_at) VALUES (%s, 1, 0, %s, %s)"
)


def raw_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (*SQLITE_PRAGMAS, "PRAGMA foreign_keys=ON"):
        conn.execute(pragma)
    for statement in RAW_DDL:
        conn.execute(statement)
    conn.execute("INSERT INTO experiments (name, template, mode) VALUES ('raw', 't', 'm')")
    return conn


RAW_INSERT = (
    "INSERT INTO trials (experiment_id, trial_number, params, performance, created_at, state, value) "
    "VALUES (?, ?, ?, ?, ?, 'complete', ?)"
)
RAW_TTPT = "INSERT INTO ttpt_results (trial_id, passed, num_violations, metrics, created_at) VALUES (?, 1, 0, ?, ?)"


def serialisers() -> dict[str, Callable[[Any], str | bytes]]:
    """The raw baselines' JSON serialisers: the standard library's, and orjson (tracker's)."""
    import orjson

    return {"json.dumps": json.dumps, "orjson": orjson.dumps}


def payloads(n: int) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """The trials' params and performance dicts, built before any timer starts (on both sides)."""
    return [trial_payload(i) for i in range(n)]


def raw_rows(
    items: list[tuple[dict[str, Any], dict[str, float]]], dumps: Callable[[Any], Any]
) -> list[tuple[Any, ...]]:
    """Rows for RAW_INSERT: the serialisation is part of the work being timed."""
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    return [(1, i, dumps(params), dumps(perf), now, perf["sharpe"]) for i, (params, perf) in enumerate(items)]


def git_commit() -> str:
    """The commit being measured, with "+dirty" when the work tree has changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# workloads -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, quick: bool, folder: Path, pg_url: str | None, mysql_url: str | None = None) -> None:
        self.quick = quick
        self.folder = folder
        self.pg_url = pg_url
        self.mysql_url = mysql_url
        self.rows: list[tuple[str, str, str, str, str]] = []  # workload, what, measured, ratio, target
        self.repeat = 3 if quick else 5
        self.peer_runs = 3

    def path(self, name: str) -> Path:
        path = self.folder / f"{name}-{time.monotonic_ns()}"
        return path

    def record(self, workload: str, what: str, measured: str, ratio: float, target: str, better: str) -> None:
        ok = (
            ratio <= float(target.split()[-1].rstrip("×"))
            if better == "le"
            else ratio >= float(target.split()[-1].rstrip("×"))
        )
        shown = f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.4f}×"
        self.rows.append((workload, what, measured, shown, f"{target} {'✅' if ok else '❌'}"))
        print(
            f"  {workload}: {what}: {measured} -> {ratio:.2f}× (target {target}) {'ok' if ok else 'MISSED'}", flush=True
        )

    def note(self, workload: str, what: str, measured: str, detail: str) -> None:
        """A measured figure without a target (reported, not judged)."""
        self.rows.append((workload, what, measured, detail, "reported"))
        print(f"  {workload}: {what}: {measured} ({detail})", flush=True)

    # 1 -- per-trial logging
    def tracker_per_trial(self, url: str | Callable[[], str], n: int, **options: Any) -> float:
        """Seconds per trial of `tracker_run`: the median of self.repeat runs (one above 10,000)."""
        run = self.tracker_run(url, n, **options)
        return statistics.median([run() for _ in range(self.repeat if n <= 10_000 else 1)]) / n

    def tracker_run(self, url: str | Callable[[], str], n: int, **options: Any) -> Callable[[], float]:
        """A run of n log_trial calls, with log_ttpt_result on every 10th (payloads built first).
        Each run starts from an empty store, as the raw baselines' do: a file store's `url` is a
        function giving a new path per run; a server's database is emptied after each run."""
        from tracker import ExperimentTracker

        items = payloads(n)

        def run() -> float:
            where = url() if callable(url) else url
            with ExperimentTracker(where, **options) as t:
                eid = t.create_experiment("bench", "t", "m")
                started = time.perf_counter()
                for i, (params, perf) in enumerate(items):
                    trial_id = t.log_trial(eid, i, params, perf)
                    if i % 10 == 0:
                        t.log_ttpt_result(trial_id, True, 0, {"signal_correlation": 1.0})
                elapsed = time.perf_counter() - started
            if where.startswith("postgresql"):
                self.reset_pg()
            if where.startswith("mysql"):
                self.reset_mysql()
            return elapsed

        return run

    def raw_run(self, n: int, dumps: Callable[[Any], Any]) -> Callable[[], float]:
        """The same work in raw sqlite3: one transaction per statement, at the same durability."""
        items = payloads(n)
        metrics = {"signal_correlation": 1.0}

        def run() -> float:
            conn = raw_sqlite(self.path("raw"))
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            started = time.perf_counter()
            for i, (params, perf) in enumerate(items):
                conn.execute("BEGIN")
                trial_id = conn.execute(RAW_INSERT, (1, i, dumps(params), dumps(perf), now, perf["sharpe"])).lastrowid
                conn.execute("COMMIT")
                if i % 10 == 0:
                    conn.execute("BEGIN")
                    conn.execute(RAW_TTPT, (trial_id, dumps(metrics), now))
                    conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
            conn.close()
            return elapsed

        return run

    def optuna_per_trial(self, storage_url: str, n: int) -> float:
        """Seconds per trial for Optuna's storage: study.add_trial of prepared FrozenTrials; the
        median of self.peer_runs runs, each in a new study."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = {
            "lookback": optuna.distributions.IntDistribution(5, 200),
            "threshold": optuna.distributions.FloatDistribution(0, 0.1),
            "stop": optuna.distributions.FloatDistribution(0, 1),
            "kind": optuna.distributions.CategoricalDistribution(["sma", "ema"]),
            "leverage": optuna.distributions.CategoricalDistribution([1, 2, 3]),
        }
        trials = []
        for params, perf in payloads(n):
            trials.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=perf["sharpe"],
                    user_attrs={k: v for k, v in perf.items() if k != "sharpe"},
                )
            )

        def run() -> float:
            study = optuna.create_study(
                storage=storage_url, study_name=f"bench-{time.monotonic_ns()}", direction="maximize"
            )
            started = time.perf_counter()
            for trial in trials:
                study.add_trial(trial)
            return time.perf_counter() - started

        return statistics.median([run() for _ in range(self.peer_runs)]) / n

    def mlflow_per_trial(self, n: int) -> float:
        """Seconds per trial for MLflow: a run with its params and metrics (log_batch), ended;
        the median of self.peer_runs runs, each in a new experiment."""
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{self.path('mlflow')}.db")
        items = payloads(n)

        def run() -> float:
            experiment = client.create_experiment(f"bench-{time.monotonic_ns()}")
            batches = [
                ([Metric(k, v, 0, 0) for k, v in perf.items()], [Param(k, str(v)) for k, v in params.items()])
                for params, perf in items
            ]
            started = time.perf_counter()
            for metrics, params in batches:
                mlflow_run = client.create_run(experiment)
                client.log_batch(mlflow_run.info.run_id, metrics=metrics, params=params)
                client.set_terminated(mlflow_run.info.run_id)
            return time.perf_counter() - started

        return statistics.median([run() for _ in range(self.peer_runs)]) / n

    def workload_1(self) -> None:
        print("1. per-trial logging (SQLite, WAL, synchronous=NORMAL for every tool)", flush=True)
        for n in (1_000,) if self.quick else (1_000, 10_000):
            runs = {"tracker": self.tracker_run(lambda: f"sqlite:///{self.path('t1')}.db", n)}
            runs.update({name: self.raw_run(n, dumps) for name, dumps in serialisers().items()})
            medians = interleaved(runs, self.repeat)
            ours = medians["tracker"] / n
            for name in serialisers():
                raw = medians[name] / n
                self.record(
                    "1",
                    f"tracker log_trial, N={n:,} vs raw sqlite3 + {name}",
                    f"{1 / ours:,.0f} vs {1 / raw:,.0f} trials/s",
                    ours / raw,
                    "≤ 2×",
                    "le",
                )
        peer_n = 100 if self.quick else 300
        ours = self.tracker_per_trial(lambda: f"sqlite:///{self.path('t1b')}.db", 1_000)
        optuna_cost = self.optuna_per_trial(f"sqlite:///{self.path('optuna')}.db", peer_n)
        self.record(
            "1",
            f"tracker vs Optuna RDBStorage (N={peer_n} for Optuna, median of {self.peer_runs})",
            f"{1 / ours:,.0f} vs {1 / optuna_cost:,.0f} trials/s",
            optuna_cost / ours,
            "≥ 50×",
            "ge",
        )
        mlflow_cost = self.mlflow_per_trial(peer_n)
        self.record(
            "1",
            f"tracker vs MLflow MlflowClient (N={peer_n} for MLflow, median of {self.peer_runs})",
            f"{1 / ours:,.0f} vs {1 / mlflow_cost:,.0f} trials/s",
            mlflow_cost / ours,
            "≥ 30×",
            "ge",
        )

    # 2 -- batch
    def workload_2(self) -> None:
        from tracker import ExperimentTracker

        n = 20_000 if self.quick else 100_000
        print(f"2. batch logging of {n:,} trials", flush=True)
        items = [{"trial_number": i, "params": p, "performance": q} for i, (p, q) in enumerate(payloads(n))]

        def ours() -> float:
            with ExperimentTracker(f"sqlite:///{self.path('t2')}.db") as t:
                eid = t.create_experiment("batch", "t", "m")
                started = time.perf_counter()
                t.log_trials(eid, items)
                return time.perf_counter() - started

        pairs = [(item["params"], item["performance"]) for item in items]

        def raw(dumps: Callable[[Any], Any]) -> float:
            conn = raw_sqlite(self.path("raw2"))
            started = time.perf_counter()
            rows = raw_rows(pairs, dumps)
            conn.execute("BEGIN")
            conn.executemany(RAW_INSERT, rows)
            conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
            conn.close()
            return elapsed

        medians = interleaved(
            {"tracker": ours, **{name: functools.partial(raw, dumps) for name, dumps in serialisers().items()}},
            self.repeat,
        )
        ours_t = medians["tracker"]
        for name in serialisers():
            raw_t = medians[name]
            self.record(
                "2",
                f"log_trials({n:,}) vs raw executemany ({name} in the timer)",
                f"{ours_t:.2f} s vs {raw_t:.2f} s",
                ours_t / raw_t,
                "≤ 2×",
                "le",
            )

    # 3 -- DataFrame
    def workload_3(self) -> None:
        import pandas as pd

        from tracker import ExperimentTracker

        n = 20_000 if self.quick else 100_000
        print(f"3. reading {n:,} trials into a DataFrame", flush=True)
        path = self.path("t3")
        url = f"sqlite:///{path}.db"
        with ExperimentTracker(url) as t:
            eid = t.create_experiment("frame", "t", "m")
            items = [
                {"trial_number": i, "params": p, "performance": q}
                for i, (p, q) in enumerate(map(trial_payload, range(n)))
            ]
            t.log_trials(eid, items)

        def read_fresh() -> pd.DataFrame:
            with ExperimentTracker(url) as fresh:
                return fresh.trials_dataframe([eid])

        read_fresh()  # imports pandas once, outside the timing
        conn = sqlite3.connect(f"{path}.db")

        def hand_written() -> pd.DataFrame:
            frame = pd.read_sql(
                "SELECT id, trial_number, state, value, created_at, params, performance FROM trials "
                "WHERE experiment_id = ? ORDER BY trial_number",
                conn,
                params=(eid,),
            )
            params = pd.json_normalize([json.loads(p) for p in frame.pop("params")]).add_prefix("params.")
            perf = pd.json_normalize([json.loads(p) for p in frame.pop("performance")]).add_prefix("performance.")
            return pd.concat([frame, params, perf], axis=1)

        medians = interleaved({"tracker": timed(read_fresh), "hand-written": timed(hand_written)}, self.repeat)
        ours, baseline = medians["tracker"], medians["hand-written"]
        conn.close()
        self.record(
            "3",
            f"trials_dataframe({n:,}) vs read_sql + json_normalize",
            f"{ours:.2f} s vs {baseline:.2f} s",
            ours / baseline,
            "≤ 1.5×",
            "le",
        )
        import optuna

        storage_url = self.optuna_study_of_size(n)
        # A fresh load each time: Optuna caches finished trials in the storage object after a first read.
        optuna_time = median_time(
            lambda: optuna.load_study(study_name="big", storage=storage_url).trials_dataframe(),
            optuna_runs := 1 if n > 50_000 or self.quick else self.peer_runs,
        )
        self.record(
            "3",
            f"trials_dataframe({n:,}) vs Optuna study.trials_dataframe()"
            + (" (Optuna: a single run)" if optuna_runs == 1 else f" (Optuna: median of {optuna_runs})"),
            f"{ours:.2f} s vs {optuna_time:.2f} s",
            optuna_time / ours,
            "≥ 5×",
            "ge",
        )

    def optuna_study_of_size(self, n: int) -> str:
        """An Optuna RDBStorage study of n complete trials, filled with bulk SQL (add_trial would take hours)."""
        import optuna
        from optuna.distributions import distribution_to_json

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = self.path("optuna3")
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}.db")
        optuna.create_study(storage=storage, study_name="big", direction="maximize")
        study_id = storage.get_study_id_from_name("big")
        dists = {
            "lookback": optuna.distributions.IntDistribution(5, 200),
            "threshold": optuna.distributions.FloatDistribution(0, 0.1),
            "stop": optuna.distributions.FloatDistribution(0, 1),
            "kind": optuna.distributions.CategoricalDistribution(["sma", "ema"]),
            "leverage": optuna.distributions.CategoricalDistribution([1, 2, 3]),
        }
        conn = sqlite3.connect(f"{path}.db")
        now = "2026-01-01 00:00:00.000000"
        trials, params, values, attrs = [], [], [], []
        for i in range(n):
            p, q = trial_payload(i)
            trials.append((i + 1, i, study_id, "COMPLETE", now, now))
            for key, value in p.items():
                internal = dists[key].to_internal_repr(value)
                params.append((i + 1, key, internal, distribution_to_json(dists[key])))
            values.append((i + 1, 0, q["sharpe"], "FINITE"))
            for key in ("returns", "max_drawdown", "turnover"):
                attrs.append((i + 1, key, json.dumps(q[key])))
        conn.executemany(
            "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            trials,
        )
        conn.executemany(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)",
            params,
        )
        conn.executemany(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)", values
        )
        conn.executemany("INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)", attrs)
        conn.commit()
        conn.close()
        assert len(optuna.load_study(study_name="big", storage=f"sqlite:///{path}.db").trials) == n
        return f"sqlite:///{path}.db"

    # 4 -- filter
    def workload_4(self) -> None:
        from tracker import ExperimentTracker

        experiments, per = (200, 100) if self.quick else (1_000, 100)
        print(f"4. filter_experiments over {experiments:,} experiments x {per} trials", flush=True)
        path = self.path("t4")
        with ExperimentTracker(f"sqlite:///{path}.db") as t:
            for e in range(experiments):
                eid = t.create_experiment(f"e{e}", "t", "m")
                t.log_trials(
                    eid,
                    [
                        {
                            "trial_number": i,
                            "params": {"i": i},
                            "performance": {"sharpe": i / per},
                            **({"ttpt": {"passed": (i + e) % 7 != 0, "num_violations": 0}} if i % 10 == 0 else {}),
                        }
                        for i in range(per)
                    ],
                )
        query = (
            "SELECT e.*, r.total, r.failed FROM experiments e JOIN (SELECT t.experiment_id, count(*) AS total, "
            "sum(CASE WHEN x.passed THEN 0 ELSE 1 END) AS failed "
            "FROM ttpt_results x JOIN trials t ON t.id = x.trial_id "
            "GROUP BY t.experiment_id) r ON r.experiment_id = e.id WHERE r.failed <= 0.1 * r.total ORDER BY e.id"
        )
        with ExperimentTracker(f"sqlite:///{path}.db") as t, contextlib.closing(sqlite3.connect(f"{path}.db")) as conn:
            medians = interleaved(
                {
                    "tracker": timed(lambda: t.filter_experiments(max_violation_rate=0.1)),
                    "sql": timed(lambda: conn.execute(query).fetchall()),
                },
                self.repeat,
            )
            assert len(conn.execute(query).fetchall()) == len(t.filter_experiments(max_violation_rate=0.1))
        ours, baseline = medians["tracker"], medians["sql"]
        self.record(
            "4",
            "filter_experiments(max_violation_rate=0.1) vs one GROUP BY",
            f"{ours * 1000:.1f} ms vs {baseline * 1000:.1f} ms",
            ours / baseline,
            "≤ 2×",
            "le",
        )

    # 5 -- best trial
    def workload_5(self) -> None:
        from tracker import ExperimentTracker

        big = 100_000 if self.quick else 1_000_000
        print(f"5. best_trial at 10,000 and at {big:,} trials", flush=True)
        timings = {}
        for n in (10_000, big):
            with ExperimentTracker(f"sqlite:///{self.path('t5')}.db") as t:
                eid = t.create_experiment("best", "t", "m")
                for start in range(0, n, 100_000):
                    t.log_trials(
                        eid,
                        [
                            {"trial_number": i, "params": {"i": i}, "performance": {"sharpe": random.random()}}
                            for i in range(start, min(n, start + 100_000))
                        ],
                    )
                t.best_trial(eid)
                timings[n] = median_time(lambda t=t, eid=eid: t.best_trial(eid), 20)
        self.record(
            "5",
            f"best_trial at {big:,} vs at 10,000 trials",
            f"{timings[big] * 1e3:.2f} ms vs {timings[10_000] * 1e3:.2f} ms",
            timings[big] / timings[10_000],
            "≤ 3×",
            "le",
        )

    # 6 -- JSON
    def workload_6(self) -> None:
        sizes = (2_000, 20_000) if self.quick else (10_000, 100_000)
        print(f"6. JSON per-trial logging at {sizes[0]:,} and {sizes[1]:,}, both durabilities", flush=True)
        for durability in ("full", "normal"):
            costs = {n: self.json_tail_cost(n, durability) for n in sizes}
            self.record(
                "6",
                f"JSON per-trial cost at {sizes[1]:,} vs at {sizes[0]:,} (synchronous={durability})",
                f"{costs[sizes[1]] * 1e6:.0f} µs vs {costs[sizes[0]] * 1e6:.0f} µs",
                costs[sizes[1]] / costs[sizes[0]],
                "≤ 1.5×",
                "le",
            )
        in_house = self.in_house_json_per_trial(1_000)
        for durability in ("normal", "full"):
            ours = self.tracker_per_trial(lambda: f"{self.path('t6')}.jsonl", 1_000, synchronous=durability)
            self.record(
                "6",
                f"JSON per-trial (synchronous={durability}) vs the in-house whole-file rewrite (no fsync), N=1,000",
                f"{1 / ours:,.0f} vs {1 / in_house:,.0f} trials/s",
                in_house / ours,
                "≥ 20×" if durability == "normal" else "≥ 1×",
                "ge",
            )
        for n in (100_000,) if self.quick else (100_000, 1_000_000):
            seconds = self.json_open_time(n)
            self.note(
                "6",
                f"open a JSON store of {n:,} trials (replay) and list its experiments",
                f"{seconds:.2f} s",
                f"{seconds / n * 1e6:.1f} µs/trial",
            )

    def json_tail_cost(self, n: int, durability: str) -> float:
        """Per-trial cost of the last 1,000 single-trial writes into a journal of n trials."""
        from tracker import ExperimentTracker

        path = f"{self.path('t6')}.jsonl"
        items = payloads(n)
        with ExperimentTracker(path, synchronous="normal") as t:
            eid = t.create_experiment("json", "t", "m")
            for start in range(0, n - 1_000, 1_000):
                t.log_trials(
                    eid,
                    [
                        {"trial_number": i, "params": items[i][0], "performance": items[i][1]}
                        for i in range(start, start + 1_000)
                    ],
                )
        with ExperimentTracker(path, synchronous=durability) as t:  # type: ignore[arg-type]
            started = time.perf_counter()
            for i in range(n - 1_000, n):
                params, perf = items[i]
                t.log_trial(eid, i, params, perf)
            return (time.perf_counter() - started) / 1_000

    def json_open_time(self, n: int) -> float:
        """Seconds to open a journal of n trials (written 1,000 per line) and list its experiments."""
        from tracker import ExperimentTracker

        path = f"{self.path('t6open')}.jsonl"
        with ExperimentTracker(path, synchronous="off") as t:
            eid = t.create_experiment("json", "t", "m")
            for start in range(0, n, 1_000):
                t.log_trials(
                    eid,
                    [
                        {"trial_number": i, "params": p, "performance": q}
                        for i, (p, q) in ((j, trial_payload(j)) for j in range(start, start + 1_000))
                    ],
                )

        def run() -> float:
            started = time.perf_counter()
            with ExperimentTracker(path) as fresh:
                fresh.list_experiments()
            return time.perf_counter() - started

        return statistics.median([run() for _ in range(3 if n <= 100_000 else 1)])

    def in_house_json_per_trial(self, n: int) -> float:
        """The in-house JSON fallback: load the document, append, rewrite the whole file (indent=2)."""
        path = Path(f"{self.path('inhouse')}.json")
        document = {
            "id": 1,
            "name": "e",
            "template": "t",
            "mode": "m",
            "config": {},
            "created_at": "2026-01-01T00:00:00",
        }
        path.write_text(json.dumps({"experiments": [{**document, "trials": []}]}))
        items = payloads(n)
        started = time.perf_counter()
        for i, (params, perf) in enumerate(items):
            data = json.loads(path.read_text())
            trials = data["experiments"][0]["trials"]
            trials.append(
                {
                    "id": len(trials) + 1,
                    "trial_number": i,
                    "params": params,
                    "performance": perf,
                    "created_at": "2026-01-01T00:00:00",
                }
            )
            with open(path, "w") as handle:
                json.dump(data, handle, indent=2)
        return (time.perf_counter() - started) / n

    # 7 -- PostgreSQL
    def workload_7(self) -> None:
        if not self.pg_url:
            print("7. skipped: set TRACKER_BENCH_POSTGRES_URL", flush=True)
            self.rows.append(("7", "PostgreSQL per-trial vs Optuna RDBStorage", "not run (no server)", "-", "≥ 20×"))
            return
        print("7. PostgreSQL per-trial logging on loopback", flush=True)
        n = 500 if self.quick else 2_000
        ours = self.tracker_per_trial(self.pg_db_url, n)
        optuna_cost = self.optuna_per_trial(self.pg_db_url, 100 if self.quick else 300)
        self.record(
            "7",
            "tracker vs Optuna RDBStorage, both on PostgreSQL",
            f"{1 / ours:,.0f} vs {1 / optuna_cost:,.0f} trials/s",
            optuna_cost / ours,
            "≥ 20×",
            "ge",
        )

    @property
    def pg_db_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.pg_url).set(database="tracker_bench").render_as_string(hide_password=False)  # type: ignore[arg-type]

    def reset_pg(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.pg_db_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()

    # 12 -- MariaDB / MySQL
    def workload_12(self) -> None:
        if not self.mysql_url:
            print("12. skipped: set TRACKER_BENCH_MYSQL_URL", flush=True)
            self.rows.append(("12", "MariaDB per-trial vs Optuna RDBStorage", "not run (no server)", "-", "≥ 20×"))
            return
        from tracker import ExperimentTracker

        server = self.mysql_server()
        print(f"12. {server} per-trial and batch logging on loopback", flush=True)
        n = 500 if self.quick else 2_000
        medians = interleaved(
            {"tracker": self.tracker_run(self.mysql_db_url(), n), "raw": self.raw_mysql_run(n)}, self.repeat
        )
        ours, raw = medians["tracker"] / n, medians["raw"] / n
        self.record(
            "12",
            f"tracker log_trial vs raw PyMySQL + orjson, one commit each, both on {server}",
            f"{1 / ours:,.0f} vs {1 / raw:,.0f} trials/s",
            ours / raw,
            "≤ 2×",
            "le",
        )
        optuna_cost = self.optuna_per_trial(self.mysql_db_url("optuna"), 100 if self.quick else 300)
        self.record(
            "12",
            f"tracker log_trial vs Optuna RDBStorage, both on {server}",
            f"{1 / ours:,.0f} vs {1 / optuna_cost:,.0f} trials/s",
            optuna_cost / ours,
            "≥ 20×",
            "ge",
        )
        batch = 5_000 if self.quick else 20_000
        items = [{"trial_number": i, "params": p, "performance": q} for i, (p, q) in enumerate(payloads(batch))]

        def run() -> float:
            with ExperimentTracker(self.mysql_db_url()) as t:
                eid = t.create_experiment("batch", "t", "m")
                started = time.perf_counter()
                t.log_trials(eid, items)
                elapsed = time.perf_counter() - started
            self.reset_mysql()
            return elapsed

        seconds = statistics.median([run() for _ in range(self.repeat)])
        self.record(
            "12",
            f"tracker log_trials({batch:,}) vs Optuna RDBStorage per trial, both on {server}",
            f"{batch / seconds:,.0f} vs {1 / optuna_cost:,.0f} trials/s ({seconds:.2f} s)",
            optuna_cost / (seconds / batch),
            "≥ 100×",
            "ge",
        )

    def raw_mysql_run(self, n: int) -> Callable[[], float]:
        """The per-trial work in raw PyMySQL on the same server (a table like tracker's, one
        transaction per statement): what any client pays per commit there."""
        import orjson
        import pymysql
        from sqlalchemy.engine import make_url

        url = make_url(self.mysql_db_url())
        items = payloads(n)
        metrics = orjson.dumps({"signal_correlation": 1.0})

        def run() -> float:
            conn = pymysql.connect(
                host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                database=url.database, charset="utf8mb4", autocommit=False,
            )  # fmt: skip
            with conn.cursor() as cursor:
                for statement in RAW_MYSQL_DDL:
                    cursor.execute(statement)
                cursor.execute("INSERT INTO experiments (name) VALUES ('raw')")
            conn.commit()
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            started = time.perf_counter()
            with conn.cursor() as cursor:
                for i, (params, perf) in enumerate(items):
                    cursor.execute(
                        RAW_MYSQL_INSERT, (1, i, orjson.dumps(params), orjson.dumps(perf), now, perf["sharpe"])
                    )
                    trial_id = cursor.lastrowid
                    conn.commit()
                    if i % 10 == 0:
                        cursor.execute(RAW_MYSQL_TTPT, (trial_id, metrics, now))
                        conn.commit()
            elapsed = time.perf_counter() - started
            conn.close()
            self.reset_mysql()
            return elapsed

        return run

    def mysql_db_url(self, suffix: str = "") -> str:
        from sqlalchemy.engine import make_url

        name = "tracker_bench" + (f"_{suffix}" if suffix else "")
        return make_url(self.mysql_url).set(database=name).render_as_string(hide_password=False)  # type: ignore[arg-type]

    def mysql_server(self) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.mysql_url)  # type: ignore[arg-type]
        with engine.connect() as conn:
            version = str(conn.execute(text("SELECT VERSION()")).scalar())
        engine.dispose()
        return ("MariaDB " if "MariaDB" in version else "MySQL ") + version.split("-")[0]

    def reset_mysql(self, drop: bool = False) -> None:
        """Empty the bench's databases (made afresh; with `drop`, only dropped)."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.mysql_url, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
        with admin.connect() as conn:
            for name in ("tracker_bench", "tracker_bench_optuna"):
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                if not drop:
                    conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        admin.dispose()

    # 8 -- import time
    def workload_8(self) -> None:
        print("8. import time, whole processes", flush=True)

        def run(module: str) -> float:
            return median_time(lambda: subprocess.run([sys.executable, "-c", f"import {module}"], check=True), 15)

        ours, baseline = run("tracker"), run("sqlalchemy")
        self.record(
            "8",
            "python -c 'import tracker' vs 'import sqlalchemy'",
            f"{ours * 1e3:.0f} ms vs {baseline * 1e3:.0f} ms",
            ours / baseline,
            "≤ 1.5×",
            "le",
        )

    # 9 -- memory
    def workload_9(self) -> None:
        n = 200_000 if self.quick else 1_000_000
        print(f"9. peak memory of trials_dataframe on {n:,} trials", flush=True)
        path = f"{self.path('t9')}.db"
        from tracker import ExperimentTracker

        with ExperimentTracker(f"sqlite:///{path}") as t:
            eid = t.create_experiment("mem", "t", "m")
            for start in range(0, n, 100_000):
                t.log_trials(
                    eid,
                    [
                        {"trial_number": i, "params": p, "performance": q}
                        for i, (p, q) in ((j, trial_payload(j)) for j in range(start, min(n, start + 100_000)))
                    ],
                )
        code = (
            "import json\nfrom tracker import ExperimentTracker\nimport pandas\n"
            f"t = ExperimentTracker('sqlite:///{path}')\nt.list_experiments()\n"
            "before = int(open('/proc/self/statm').read().split()[1]) * 4096\n"
            f"frame = t.trials_dataframe([{eid}])\n"
            # VmHWM belongs to this process image; ru_maxrss would keep the parent's peak across fork+exec
            "peak = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024\n"
            "size = int(frame.memory_usage(deep=True).sum())\n"
            "print(json.dumps({'rows': len(frame), 'frame': size, 'peak': peak - before}))\n"
        )
        out = json.loads(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )
        self.record(
            "9",
            f"peak memory of trials_dataframe({out['rows']:,}) vs the frame's size",
            f"{out['peak'] / 2**20:,.0f} MiB vs {out['frame'] / 2**20:,.0f} MiB",
            out["peak"] / out["frame"],
            "≤ 3×",
            "le",
        )

    # 10 -- strategy code stored once
    def workload_10(self) -> None:
        n = 10_000
        codes = strategy_codes()
        shared = f"{n:,} trials sharing {len(codes)} distinct 8 KB strategy codes"
        print(f"10. bytes of {shared}, 0002 vs today's layout (stored once since 0003)", flush=True)
        urls = [("SQLite (file size after VACUUM)", "sqlite")]
        if self.pg_url:
            urls.append(("PostgreSQL (relation sizes)", "postgresql"))
        for label, backend in urls:
            sizes = {}
            for revision in ("0002", "0003"):
                for with_code in (False, True):
                    sizes[(revision, with_code)] = self._store_size(backend, revision, n, codes if with_code else None)
            old = sizes[("0002", True)] - sizes[("0002", False)]
            new = sizes[("0003", True)] - sizes[("0003", False)]
            self.record(
                "10",
                f"{label}: bytes the codes add, today's layout (stored once since 0003) vs 0002",
                f"{new / 1024:,.0f} KiB vs {old / 1024:,.0f} KiB",
                new / old,
                "≤ 0.05×",
                "le",
            )

    def _store_size(self, backend: str, revision: str, n: int, codes: list[str] | None) -> int:
        """The bytes of a store at `revision` holding n trials (with `codes` round-robin, or none)."""
        import sqlalchemy as sa

        from tracker.sql import schema
        from tracker.sql.unit_of_work import UnitOfWork
        from tracker.store.location import resolve

        url = f"sqlite:///{self.path('storage')}.db" if backend == "sqlite" else self.pg_db_url
        if backend == "postgresql":
            self.reset_pg()
        db = UnitOfWork(resolve(url, None, None))
        # "0003" stands for the layout that stores each code once, as 0003 introduced it: today's
        # tracker writes at the head revision (0004 and 0005 add tables both sizes share).
        schema.upgrade(db, "head" if revision == "0003" else revision)
        db.dispose()
        items = [
            {
                "trial_number": i,
                "params": p,
                "performance": q,
                "strategy_code": None if codes is None else codes[i % len(codes)],
            }
            for i, (p, q) in enumerate(payloads(n))
        ]
        engine = sa.create_engine(url)
        if revision == "0003":
            from tracker import ExperimentTracker

            with ExperimentTracker(url) as t:
                t.log_trials(t.create_experiment("size", "t", "m", provenance=False), items)
        else:
            from tracker.store.codec import dumps, encode

            with engine.begin() as conn:
                json = "CAST({} AS JSONB)" if backend == "postgresql" else "{}"
                now = "CURRENT_TIMESTAMP"
                conn.execute(
                    sa.text(f"INSERT INTO experiments (name, template, mode, created_at) VALUES ('s', 't', 'm', {now})")
                )
                columns = "experiment_id, trial_number, params, performance, strategy_code, created_at, state"
                values = f"1, :n, {json.format(':p')}, {json.format(':q')}, :c, {now}, 'complete'"
                conn.execute(
                    sa.text(f"INSERT INTO trials ({columns}) VALUES ({values})"),
                    [
                        {
                            "n": it["trial_number"],
                            "p": dumps(encode(it["params"], "p")),
                            "q": dumps(encode(it["performance"], "q")),
                            "c": it["strategy_code"],
                        }
                        for it in items
                    ],
                )
        with engine.connect() as conn:
            if backend == "sqlite":
                conn.exec_driver_sql("VACUUM")
                size = Path(url.removeprefix("sqlite:///")).stat().st_size
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM FULL")
                size = int(
                    conn.execute(
                        sa.text(
                            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                        )
                    ).scalar_one()
                )
        engine.dispose()
        return size

    # 11 -- log_trial with a strategy code
    def workload_11(self) -> None:
        n = 1_000 if self.quick else 5_000
        codes = strategy_codes()
        print(f"11. log_trial with a strategy code (20 distinct 8 KB texts) vs without, N={n:,}", flush=True)
        items = payloads(n)

        def run(with_code: bool) -> float:
            from tracker import ExperimentTracker

            with ExperimentTracker(f"sqlite:///{self.path('t11')}.db") as t:
                eid = t.create_experiment("code", "t", "m", provenance=False)
                started = time.perf_counter()
                for i, (params, perf) in enumerate(items):
                    t.log_trial(eid, i, params, perf, strategy_code=codes[i % len(codes)] if with_code else None)
                return (time.perf_counter() - started) / n

        medians = interleaved({"plain": lambda: run(False), "coded": lambda: run(True)}, self.repeat)
        plain, coded = medians["plain"], medians["coded"]
        self.record(
            "11",
            "log_trial with a strategy code vs without",
            f"{coded * 1e6:.0f} µs vs {plain * 1e6:.0f} µs",
            coded / plain,
            "≤ 1.5×",
            "le",
        )


# 13 -- overfitting numbers at scale (bench/overfit.py)
def _workload_13(self: Bench) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.overfit import workload

    workload(self)


Bench.workload_13 = _workload_13  # type: ignore[attr-defined]


def strategy_codes(count: int = 20, size: int = 8192) -> list[str]:
    """`count` distinct strategy codes of about `size` bytes, like generated ones (varied text)."""
    codes = []
    for c in range(count):
        rng = random.Random(c)
        lines = []
        while sum(len(line) for line in lines) < size:
            lookback, name = rng.randint(2, 250), rng.choice(["close", "high", "low", "volume"])
            lines.append(f"    s{len(lines)} = data['{name}'].rolling({lookback}).mean() * {rng.random():.6f}\n")
        codes.append(f"def strategy_{c}(data, params):\n" + "".join(lines))
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=int, nargs="*", help="run only these workloads")
    args = parser.parse_args()
    ensure_venv()
    use_equal_sqlite_durability()
    pg = os.environ.get("TRACKER_BENCH_POSTGRES_URL") or os.environ.get("TRACKER_TEST_POSTGRES_URL")
    my = os.environ.get("TRACKER_BENCH_MYSQL_URL") or os.environ.get("TRACKER_TEST_MYSQL_URL")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tracker-bench-") as folder:
        bench = Bench(args.quick, Path(folder), pg, my)
        if my:
            bench.reset_mysql()
        if pg:
            from sqlalchemy import create_engine, text

            admin = create_engine(pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS tracker_bench WITH (FORCE)"))
                conn.execute(text("CREATE DATABASE tracker_bench"))
        try:
            for number in args.only or range(1, 14):
                getattr(bench, f"workload_{number}")()
        finally:
            if my:
                bench.reset_mysql(drop=True)
            if pg:
                with admin.connect() as conn:
                    conn.execute(text("DROP DATABASE IF EXISTS tracker_bench WITH (FORCE)"))
    table = ["| # | what | measured | ratio | target |", "| --- | --- | --- | --- | --- |"]
    table += [f"| {w} | {what} | {measured} | {ratio} | {target} |" for w, what, measured, ratio, target in bench.rows]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    header = (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({'quick' if args.quick else 'full'}, "
        f"{time.time() - started:.0f} s) on {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; tracker and raw baselines: medians of {bench.repeat} runs, "
        f"peers: medians of {bench.peer_runs} unless marked. Measured on commit {git_commit()}."
    )
    text_out = header + "\n\n" + "\n".join(table) + "\n"
    print("\n" + text_out)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / ("quick.md" if args.quick else "latest.md")).write_text(text_out)
    if not args.quick and not args.only:
        publish(text_out)
    return 0


def publish(table: str) -> None:
    """Put the table of a full run into docs/performance.md, between its markers."""
    page = ROOT / "docs" / "performance.md"
    text = page.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    page.write_text(text[: text.index(start) + len(start)] + "\n" + table + text[text.index(end) :])


if __name__ == "__main__":
    sys.exit(main())
