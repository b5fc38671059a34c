"""Opening the repository behind a URL or path: SQL for database URLs, the journal for JSON files."""

from __future__ import annotations

import os

from tracker.records import Synchronous
from tracker.repository import Repository
from tracker.urls import StoreLocation, resolve


def open_repository(
    url: str | os.PathLike[str] | None = None,
    *,
    backend: str | None = None,
    db_path: str | os.PathLike[str] | None = None,
    auto_upgrade: bool = False,
    synchronous: Synchronous | None = None,
) -> Repository:
    """Open (creating if new) the store the arguments name; see `ExperimentTracker` for the rules."""
    return open_location(resolve(url, backend, db_path), auto_upgrade=auto_upgrade, synchronous=synchronous)


def open_location(
    location: StoreLocation, *, auto_upgrade: bool = False, synchronous: Synchronous | None = None
) -> Repository:
    if location.backend == "json":
        from tracker.journal.repository import JsonRepository

        return JsonRepository(location, synchronous=synchronous or "full")
    from tracker.sql.repository import SqlRepository

    return SqlRepository(location, synchronous=synchronous or "normal", auto_upgrade=auto_upgrade)
