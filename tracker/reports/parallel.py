"""The overfitting statistics' matrix passes on any concurrent.futures.Executor (a Dask cluster
through `Client.get_executor()`): pure module-level functions of numpy arrays, submitted a bounded
number at a time, their results taken back in input order, so the driver combines them exactly as
the local loop does and the numbers are identical, bit for bit."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from tracker.errors import ValidationError

T = TypeVar("T")
IN_FLIGHT = 16
"""Tasks submitted and not yet taken back, at most: the driver holds that many blocks' copies."""


def check_executor(executor: object) -> Executor | None:
    """`executor` itself when it is None or a concurrent.futures.Executor; raises ValidationError."""
    if executor is not None and not isinstance(executor, Executor):
        raise ValidationError("executor", f"must be a concurrent.futures.Executor, got {type(executor).__name__}")
    return executor


def ordered_map(
    fn: Callable[..., T], arguments: Iterable[tuple[Any, ...]], executor: Executor | None, in_flight: int = IN_FLIGHT
) -> Iterator[T]:
    """`fn(*args)` for each of `arguments`, in their order: in this process without an executor,
    else submitted at most `in_flight` at a time. A task's exception propagates; the tasks not yet
    run are cancelled."""
    if executor is None:
        for args in arguments:
            yield fn(*args)
        return
    pending: deque[Future[T]] = deque()
    try:
        for args in arguments:
            if len(pending) >= in_flight:
                yield pending.popleft().result()
            pending.append(executor.submit(fn, *args))
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
