"""Evaluate a check's boundaries, serially or in worker processes.

Workers receive the pickled task once (strategy, data, full run) and then only lists of row
positions, so the data is not sent again for every boundary. A strategy that cannot be pickled
(a lambda, a local function) or a pool that cannot start falls back to the serial loop, with a
warning in the `tracker.ttpt` log.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence

from tracker.errors import ValidationError
from tracker.ttpt._compare import Outcome, Task

log = logging.getLogger("tracker.ttpt")
_installed: Task | None = None
MIN_BOUNDARIES_PER_WORKER = 8  # below this, starting processes costs more than it saves


def check_jobs(n_jobs: object) -> int:
    """`n_jobs` as a worker count (-1: one per CPU); raises ValidationError otherwise."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or (n_jobs < 1 and n_jobs != -1):
        raise ValidationError("n_jobs", f"must be a positive integer or -1 (one per CPU), got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def _install(blob: bytes) -> None:
    global _installed
    _installed = pickle.loads(blob)  # noqa: S301 - our own task, pickled by the parent process


def _evaluate(positions: list[int]) -> list[Outcome]:
    if _installed is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker started without a task")
    return [_installed.evaluate(p) for p in positions]


def evaluate(task: Task, positions: Sequence[int], n_jobs: int) -> list[Outcome]:
    """The outcome of every boundary in `positions`, in that order. An exception raised by the
    strategy propagates (from a worker too)."""
    workers = min(n_jobs, len(positions) // MIN_BOUNDARIES_PER_WORKER)
    if workers > 1:
        try:
            blob = pickle.dumps(task)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            log.warning("look-ahead check runs serially: the strategy or data cannot be pickled (%s)", exc)
        else:
            outcomes = _in_processes(blob, list(positions), workers)
            if outcomes is not None:
                return outcomes
    return [task.evaluate(p) for p in positions]


def _in_processes(blob: bytes, positions: list[int], workers: int) -> list[Outcome] | None:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    chunks = workers * 4
    # Interleaved chunks: later boundaries see more data and cost more, so every chunk gets a mix.
    parts = [positions[i::chunks] for i in range(chunks) if positions[i::chunks]]
    try:
        with ProcessPoolExecutor(max_workers=workers, initializer=_install, initargs=(blob,)) as pool:
            results = list(pool.map(_evaluate, parts))
    except BrokenProcessPool as exc:
        log.warning("look-ahead check runs serially: its worker processes failed (%s)", exc)
        return None
    by_position = {o.position: o for part in results for o in part}
    return [by_position[p] for p in positions]
