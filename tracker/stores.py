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
    create: bool = True,
) -> Repository:
    """Open the store the arguments name, creating it if new (unless `create` is False: then a
    missing store raises StoreNotFoundError); see `ExperimentTracker` for the rules."""
    return open_location(
        resolve(url, backend, db_path), auto_upgrade=auto_upgrade, synchronous=synchronous, create=create
    )


def open_location(
    location: StoreLocation,
    *,
    auto_upgrade: bool = False,
    synchronous: Synchronous | None = None,
    create: bool = True,
) -> Repository:
    if location.backend == "json":
        from tracker.journal.repository import JsonRepository

        return JsonRepository(location, synchronous=synchronous or "full", create=create)
    from tracker.sql.repository import SqlRepository

    return SqlRepository(location, synchronous=synchronous or "normal", auto_upgrade=auto_upgrade, create=create)
