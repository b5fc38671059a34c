"""Scale-out benchmarks: many writers through PgBouncer, and look-ahead checks on a Dask cluster.

    python bench/scale.py pooler --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python bench/scale.py dask

`pooler` starts its own PgBouncer (transaction pooling, 8 server connections, tests/pgbouncer.py)
in front of the server of --url and, each in a new database, runs: 64 tracker writers through it
(one kept client connection per process, and NullPool), 16 tracker writers straight to the server,
and 64 Optuna RDBStorage workers through the same PgBouncer. Every writer waits at a barrier, then
logs --trials trials (tracker: one call each with a TTPT result, then a read of the best trial;
Optuna: one trial of a trivial objective). Reported: trials/s from the barrier to the last writer
done, and the most server connections to the database seen (sampled every 20 ms).

`dask` times one exhaustive check of 10 catalogue strategies (757 boundaries each) on a
LocalCluster of 2 worker processes against n_jobs=2 local processes, and the scheduling overhead
per boundary (a strategy that does nothing, on the cluster minus serially).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRITERS_POOLED = 64
WRITERS_DIRECT = 16
OTHERS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


def tracker_writer(url: str, number: int, trials: int, barrier: Any, done: Any) -> None:
    from tracker import ExperimentTracker

    with ExperimentTracker(url) as t:
        barrier.wait()
        eid = t.experiment("bench", "t", "m")
        for n in range(trials):
            t.log_trials(
                eid,
                [
                    {
                        "trial_number": number * trials + n,
                        "params": {"w": number, "n": n},
                        "performance": {"sharpe": float(n)},
                        "ttpt": {"passed": True, "num_violations": 0},
                    }
                ],
            )
            t.best_trial(eid)
    done.put(time.perf_counter())


def optuna_worker(url: str, number: int, trials: int, barrier: Any, done: Any) -> None:
    import optuna
    from sqlalchemy.pool import NullPool

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs={"poolclass": NullPool, "connect_args": {"prepare_threshold": None}}
    )
    study = optuna.load_study(study_name="bench", storage=storage)
    barrier.wait()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=trials)
    done.put(time.perf_counter())


def most_connections(direct: str, stop: threading.Event, seen: list[int]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(direct)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        while not stop.is_set():
            count = conn.execute(text(OTHERS)).scalar_one()
            seen.append(int(count))
            time.sleep(0.02)
    engine.dispose()


def run_workload(target: Any, url: str, direct: str, writers: int, trials: int) -> tuple[float, int]:
    context = multiprocessing.get_context("forkserver")
    barrier, done = context.Barrier(writers + 1), context.Queue()
    processes = [context.Process(target=target, args=(url, n, trials, barrier, done)) for n in range(writers)]
    for process in processes:
        process.start()
    stop, seen = threading.Event(), [0]
    sampler = threading.Thread(target=most_connections, args=(direct, stop, seen))
    sampler.start()
    barrier.wait()
    started = time.perf_counter()
    finished = max(done.get(timeout=1800) for _ in processes)
    stop.set()
    sampler.join()
    for process in processes:
        process.join()
    return writers * trials / (finished - started), max(seen)


def new_database(server: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tracker_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


def pooler(server: str, trials: int) -> list[str]:
    import optuna
    from sqlalchemy.engine import make_url

    from tests import pgbouncer
    from tracker import ExperimentTracker

    folder = Path(tempfile.mkdtemp(prefix="tracker_bench_pgbouncer_"))
    bouncer, process = pgbouncer.start(folder, server, daemon=False)
    assert process is not None
    rows = ["| workload | trials/s | most server connections |", "|---|---:|---:|"]
    try:
        for label, target, writers, mode in (
            (
                f"{WRITERS_POOLED} tracker writers via PgBouncer, one kept connection each",
                tracker_writer,
                64,
                "transaction",
            ),
            (f"{WRITERS_POOLED} tracker writers via PgBouncer, NullPool", tracker_writer, 64, "session"),
            (f"{WRITERS_DIRECT} tracker writers direct", tracker_writer, WRITERS_DIRECT, None),
            (f"{WRITERS_POOLED} Optuna RDBStorage workers via PgBouncer", optuna_worker, 64, "optuna"),
        ):
            direct, drop = new_database(server)
            try:
                name = make_url(direct).database
                via = make_url(bouncer).set(database=name)
                if mode in ("transaction", "session"):  # ?pooler=session on it gives NullPool, and no prepares
                    url = via.update_query_dict({"pooler": mode}).render_as_string(hide_password=False)
                elif mode == "optuna":
                    url = via.render_as_string(hide_password=False)
                    optuna.create_study(study_name="bench", storage=direct)  # the tables and study, once
                else:
                    url = direct
                if target is tracker_writer:
                    ExperimentTracker(url).close()
                rate, connections = run_workload(target, url, direct, writers, trials)
                rows.append(f"| {label} | {rate:.0f} | {connections} |")
                print(rows[-1], flush=True)
            finally:
                drop()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return rows


def nothing(data: Any, params: Any) -> Any:
    import pandas as pd

    return pd.Series(0.0, index=data["close"].index)


def dask_rows() -> list[str]:
    from distributed import Client, LocalCluster

    from bench.catalogue import HONEST, LEAKS
    from tracker.ttpt import check_lookahead

    cases = (LEAKS + HONEST)[:10]
    datas = [{"close": case.data(seed=11, assets=4, years=3)["close"].iloc[:758]} for case in cases]

    def all_checks(**options: Any) -> float:
        started = time.perf_counter()
        for case, data in zip(cases, datas, strict=True):
            check_lookahead(case.strategy, data, case.params, exhaustive=True, **options)
        return time.perf_counter() - started

    rows = ["| workload | seconds | ratio |", "|---|---:|---:|"]
    local = all_checks(n_jobs=2)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        executor = client.get_executor()
        all_checks(executor=executor)  # the workers import pandas and the strategies once
        on_dask = all_checks(executor=executor)
        data = datas[0]
        started = time.perf_counter()
        check_lookahead(nothing, data, {}, exhaustive=True, executor=executor)
        dask_nothing = time.perf_counter() - started
        started = time.perf_counter()
        check_lookahead(nothing, data, {}, exhaustive=True, executor=executor, batch_size=1)
        dask_nothing_one = time.perf_counter() - started
    started = time.perf_counter()
    check_lookahead(nothing, data, {}, exhaustive=True)
    serial_nothing = time.perf_counter() - started
    rows.append(f"| 10 strategies x 757 boundaries, n_jobs=2 local processes | {local:.1f} | 1.00 |")
    rows.append(f"| the same on a LocalCluster of 2 worker processes | {on_dask:.1f} | {on_dask / local:.2f} |")
    per = (dask_nothing - serial_nothing) / 757 * 1e3
    per_one = (dask_nothing_one - serial_nothing) / 757 * 1e3
    rows.append(f"| scheduling overhead per boundary, batches of 32 (ms) | {per:.2f} | |")
    rows.append(f"| scheduling overhead per boundary, batches of 1 (ms) | {per_one:.2f} | |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["pooler", "dask"])
    parser.add_argument("--url", help="a PostgreSQL server URL (pooler)")
    parser.add_argument("--trials", type=int, default=40, help="trials per writer (pooler)")
    args = parser.parse_args()
    if args.part == "pooler":
        if not args.url:
            parser.error("pooler needs --url")
        rows = pooler(args.url, args.trials)
    else:
        rows = dask_rows()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    multiprocessing.set_forkserver_preload(["tracker", "tracker.sql.repository", "sqlalchemy", "psycopg", "pandas"])
    sys.exit(main())
