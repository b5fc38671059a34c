"""Opening the repository behind a URL or path: SQL for database URLs, the journal for JSON files."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tracker.errors import StoreNotFoundError, ValidationError
from tracker.store.location import StoreLocation, resolve
from tracker.store.records import Synchronous
from tracker.store.repository import Repository

if TYPE_CHECKING:
    from tracker.read.browser import Browser


def open_repository(
    url: str | os.PathLike[str] | None = None,
    *,
    backend: str | None = None,
    db_path: str | os.PathLike[str] | None = None,
    auto_upgrade: bool = False,
    synchronous: Synchronous | None = None,
    create: bool = True,
    strict: bool = False,
) -> Repository:
    """Open the store the arguments name, creating it if new (unless `create` is False: then a
    missing store raises StoreNotFoundError); see `ExperimentTracker` for the rules."""
    return open_location(
        resolve(url, backend, db_path), auto_upgrade=auto_upgrade, synchronous=synchronous, create=create, strict=strict
    )


def open_location(
    location: StoreLocation,
    *,
    auto_upgrade: bool = False,
    synchronous: Synchronous | None = None,
    create: bool = True,
    read_only: bool = False,
    strict: bool = False,
) -> Repository:
    """Open the store at `location`, creating it unless `create` is False (then a missing store
    raises StoreNotFoundError). A `read_only` repository never writes, creates, upgrades or
    converts anything: writes raise ReadOnlyStoreError, and a missing or empty store, or one at an
    older schema, is refused (StoreNotFoundError, SchemaError). An in-house JSON file with keys
    its format does not have warns (UnknownKeyWarning), or with `strict` is refused."""
    if read_only and location.path is not None and not location.path.is_file():
        raise StoreNotFoundError(str(location.path), "a reader creates nothing; check the path or URL")
    if location.backend == "json":
        from tracker.journal.repository import JsonRepository

        return JsonRepository(
            location, synchronous=synchronous or "full", create=create, read_only=read_only, strict=strict
        )
    from tracker.sql.repository import SqlRepository

    return SqlRepository(
        location,
        synchronous=synchronous or "normal",
        auto_upgrade=auto_upgrade,
        create=create and not read_only,
        read_only=read_only,
    )


def open_reader(url: str | os.PathLike[str] | None = None) -> Repository:
    """Open the store at `url` (default: $TRACKER_URL, else ./experiments.db) read-only, creating
    nothing, not even a folder; see `open_location`."""
    return open_location(resolve(url, None, None), create=False, read_only=True)


def browser_of(repository: Repository) -> Browser[Any]:
    """The dashboard's read verbs (pages, overviews, histories) over `repository`, with their
    in-memory digests; the same object on every call. It never writes."""
    from tracker.journal.repository import JsonRepository
    from tracker.sql.repository import SqlRepository

    if isinstance(repository, SqlRepository | JsonRepository):
        return repository.browser()
    raise ValidationError("repository", f"{type(repository).__name__} has no browser; open a SQL or JSON store")


def compact(repository: Repository) -> None:
    """Rewrite a JSON journal as a snapshot of its content; raises ValidationError on other stores."""
    from tracker.journal.repository import JsonRepository

    if not isinstance(repository, JsonRepository):
        raise ValidationError("backend", "compact() applies to JSON stores only")
    repository.compact()
