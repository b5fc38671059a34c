"""Evaluate the boundaries of one or many checks: serially, in local worker processes (`n_jobs`),
or on any concurrent.futures.Executor (a Dask cluster through `Client.get_executor()`).

Tasks are pure: a batch carries the pickled check (strategy reference, data, full run) and a list of
row positions, and returns the outcomes; nothing is written by a worker. Batches are submitted a
bounded number at a time, the batches of every check together, so a check of many trials spreads
all their boundaries over the workers. A worker keeps the last checks it unpickled, so the data is
decoded once per worker and check, not once per batch. Results are put back in position order, so
they are those of the serial loop.
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass

from tracker.errors import ValidationError
from tracker.ttpt._compare import Outcome, Task
from tracker.ttpt.options import LookaheadOptions, check_jobs

log = logging.getLogger("tracker.ttpt")
MIN_BOUNDARIES_PER_WORKER = 8  # below this, starting processes costs more than it saves
BATCH_SIZE = 32
"""Boundaries per batch on an executor (`batch_size` overrides it): big enough that one task's
scheduling overhead is small beside 32 strategy runs, small enough to spread a check."""
IN_FLIGHT = 64
"""Batches submitted to an executor and not yet finished, at most (2 per worker for `n_jobs`)."""
_CACHED_TASKS = 4
_tasks: OrderedDict[str, Task] = OrderedDict()


@dataclass(frozen=True)
class Job:
    """One check's boundaries to evaluate: its task and the row positions, in order."""

    task: Task
    positions: Sequence[int]


def evaluate_batch(key: str, blob: bytes, positions: list[int]) -> list[Outcome]:
    """The worker's side: the outcomes of `positions` of the pickled task `blob` (named `key`)."""
    task = _tasks.pop(key, None)
    if task is None:
        task = pickle.loads(blob)  # noqa: S301 - our own task, pickled by the driver
        while len(_tasks) >= _CACHED_TASKS:
            _tasks.popitem(last=False)
    _tasks[key] = task
    return [task.evaluate(p) for p in positions]


def run(jobs: Sequence[Job], options: LookaheadOptions) -> list[list[Outcome]]:
    """Every job's outcomes, in its positions' order. An exception raised by a strategy propagates
    (from a worker too). On an executor, a check that cannot be pickled raises ValidationError
    naming its strategy; with `n_jobs`, it runs serially with a warning, as does a pool whose
    processes fail."""
    results = run_each(jobs, options)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results  # type: ignore[return-value]


def run_each(jobs: Sequence[Job], options: LookaheadOptions) -> list[list[Outcome] | Exception]:
    """As `run`, but each job's exception is returned in its place and the other jobs go on."""
    if options.executor is not None:
        return _on_executor(options.executor, jobs, options.batch_size or BATCH_SIZE, IN_FLIGHT, strict=True)
    n_jobs = check_jobs(options.n_jobs)
    boundaries = sum(len(job.positions) for job in jobs)
    workers = min(n_jobs, boundaries // MIN_BOUNDARIES_PER_WORKER)
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # Four batches per worker and check: later boundaries cost more, and batches mix them.
        size = options.batch_size or max(1, math.ceil(max(len(j.positions) for j in jobs) / (workers * 4)))
        try:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = _on_executor(pool, jobs, size, 2 * workers, strict=False)
        except _Unpicklable as exc:
            log.warning("look-ahead check runs serially: the strategy or data cannot be pickled (%s)", exc)
        else:
            broken = [r for r in results if isinstance(r, BrokenProcessPool)]
            if not broken:
                return results
            log.warning("look-ahead check runs serially: its worker processes failed (%s)", broken[0])
    return [_serially(job) for job in jobs]


def _serially(job: Job) -> list[Outcome] | Exception:
    try:
        return [job.task.evaluate(p) for p in job.positions]
    except Exception as exc:  # noqa: BLE001 - the job's failure, returned in its place
        return exc


class _Unpicklable(Exception):
    pass


def _pickled(task: Task, executor: Executor, strict: bool) -> tuple[str, bytes]:
    try:
        blob = pickle.dumps(task)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        if not strict:
            raise _Unpicklable(str(exc)) from None
        fn = task.strategy_fn
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        raise ValidationError(
            "strategy_fn",
            f"{name} (or its data or params) cannot be pickled, so it cannot run on {type(executor).__name__}: "
            f"{exc}. Define the strategy at the top level of an importable module (not a lambda or a local "
            "function), or check without an executor",
        ) from None
    return hashlib.blake2b(blob, digest_size=16).hexdigest(), blob


def _batches(jobs: Sequence[Job], size: int) -> Iterator[tuple[int, list[int]]]:
    """(job number, positions) batches, each job's interleaved (every batch mixes early and late
    boundaries), the jobs taken in turn so that every check is under way at once."""
    parts = []
    for number, job in enumerate(jobs):
        chunks = max(1, math.ceil(len(job.positions) / size))
        parts.append(deque((number, list(job.positions[i::chunks])) for i in range(chunks) if job.positions[i::chunks]))
    while parts:
        for queue in list(parts):
            yield queue.popleft()
            if not queue:
                parts.remove(queue)


def _on_executor(
    executor: Executor, jobs: Sequence[Job], size: int, in_flight: int, *, strict: bool
) -> list[list[Outcome] | Exception]:
    pickled = [_pickled(job.task, executor, strict) for job in jobs]
    found: list[dict[int, Outcome] | Exception] = [{} for _ in jobs]
    pending: dict[Future[list[Outcome]], int] = {}
    try:
        for number, positions in _batches(jobs, size):
            while len(pending) >= in_flight:
                _collect(pending, found)
            if not isinstance(found[number], Exception):  # a failed check's other batches are skipped
                pending[executor.submit(evaluate_batch, *pickled[number], positions)] = number
        while pending:
            _collect(pending, found)
    finally:
        for future in pending:
            future.cancel()
    return [
        outcomes if isinstance(outcomes, Exception) else [outcomes[p] for p in job.positions]
        for job, outcomes in zip(jobs, found, strict=True)
    ]


def _collect(pending: dict[Future[list[Outcome]], int], found: list[dict[int, Outcome] | Exception]) -> None:
    """Wait for a batch to finish and file its outcomes, or its exception in place of its job's."""
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        number = pending.pop(future)
        error = future.exception()
        outcomes = found[number]
        if isinstance(outcomes, Exception):
            continue
        if error is not None:
            if not isinstance(error, Exception):
                raise error
            found[number] = error
        else:
            outcomes.update((o.position, o) for o in future.result())
