"""Trying again: the back-off every retry in tracker waits, and `atomically`, which runs a
transaction block tracker opens itself again from the start when the database rolls it back."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from tracker.errors import TransactionRolledBackError

if TYPE_CHECKING:
    from tracker.store.repository import Repository

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 10


def backoff(number: int) -> float:
    """Seconds to wait before retry `number` (0 first): 20 ms doubling, at most 2 s, jittered."""
    return float(min(2.0, 0.02 * 2**number) * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto


def retry(call: Callable[[], T], worth_retrying: Callable[[BaseException], bool], what: str) -> T:
    """Call `call` again, after `backoff`, while it raises an exception that `worth_retrying`
    accepts, at most ATTEMPTS times in all; the last failure, or any other, is raised. The one
    retry loop of tracker; `what` names the failure in the log."""
    for number in range(ATTEMPTS):
        try:
            return call()
        except Exception as exc:
            if not worth_retrying(exc) or number + 1 == ATTEMPTS:
                raise
            delay = backoff(number)
            cause = getattr(exc, "orig", None) or exc  # a driver's error, not SQLAlchemy's text with its SQL
            log.info("%s (%s); retry %d in %.2fs", what, type(cause).__name__, number + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def atomically(work: Callable[[], T], repos: Sequence[Repository]) -> T:
    """Run `work`, which opens its own transaction blocks on `repos`, again from the start while
    a database rolls a block back whole (TransactionRolledBackError: a deadlock with another
    writer), at most ATTEMPTS times. Inside a caller's block it runs once: only the caller can
    run its own block again."""
    if any(repo.in_transaction() for repo in repos):
        return work()
    return retry(work, lambda exc: isinstance(exc, TransactionRolledBackError), "transaction rolled back")
