"""Opening the repository behind a URL or path: SQL for database URLs, the journal for JSON files."""

from __future__ import annotations

import os

from tracker.errors import StoreError
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
    location: StoreLocation,
    *,
    auto_upgrade: bool = False,
    synchronous: Synchronous | None = None,
    read_only: bool = False,
) -> Repository:
    """Open the store at `location`. A `read_only` repository never writes, creates, upgrades or
    converts anything: writes raise ReadOnlyStoreError, and a missing or empty store, or one at an
    older schema, is refused (StoreError, SchemaError)."""
    if read_only and location.path is not None and not location.path.is_file():
        raise StoreError(f"there is no store at {location.path}; a reader creates nothing. Check the path or URL")
    if location.backend == "json":
        from tracker.journal.repository import JsonRepository

        return JsonRepository(location, synchronous=synchronous or "full", read_only=read_only)
    from tracker.sql.repository import SqlRepository

    return SqlRepository(location, synchronous=synchronous or "normal", auto_upgrade=auto_upgrade, read_only=read_only)


def open_reader(url: str | os.PathLike[str] | None = None) -> Repository:
    """Open the store at `url` (default: $TRACKER_URL, else ./experiments.db) read-only, creating
    nothing, not even a folder; see `open_location`."""
    return open_location(resolve(url, None, None, create=False), read_only=True)
