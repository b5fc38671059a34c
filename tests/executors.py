"""A real thread pool for tests of work handed to an executor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class RecordingExecutor(ThreadPoolExecutor):
    """A real thread pool that records each task's function name (`functions`) and first
    argument (`firsts`), and the most tasks submitted and not finished at once."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.functions: list[str] = []
        self.firsts: list[Any] = []
        self.pending = 0
        self.most_pending = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self.functions.append(fn.__name__)
            self.firsts.append(args[0] if args else None)
            self.pending += 1
            self.most_pending = max(self.most_pending, self.pending)
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self.pending -= 1
