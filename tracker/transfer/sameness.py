"""Whether two stores are one: the same file (after relative paths, symlinks and hard links are
resolved), the same journal, or the same server database and schema (asked of the servers).
Copying or moving a store into itself would match each experiment with itself and, for a move,
delete the only copy."""

from __future__ import annotations

import os
from pathlib import Path

from tracker.errors import ValidationError
from tracker.store.location import StoreLocation
from tracker.store.repository import Repository


def refuse_same_store(source: Repository | StoreLocation, destination: Repository | StoreLocation) -> None:
    """Raise ValidationError when `destination` is the store `source` is."""
    src = source.location if isinstance(source, Repository) else source
    dst = destination.location if isinstance(destination, Repository) else destination
    same = same_file(src.path, dst.path) if src.path is not None and dst.path is not None else False
    if not same and isinstance(source, Repository) and isinstance(destination, Repository):
        same = same_server_store(source, destination)
    if same:
        raise ValidationError(
            "destination",
            f"{dst.safe_url} is the source store itself ({src.safe_url}); copying or moving a store into "
            "itself would lose data, so nothing was done. Give another store as the destination",
        )


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file (a path that does not exist is compared once resolved)."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return one.resolve() == other.resolve()


def same_server_store(one: Repository, other: Repository) -> bool:
    """Whether two SQL repositories are one server database (and PostgreSQL schema)."""
    from tracker.sql.identity import same_database
    from tracker.sql.repository import SqlRepository

    if not isinstance(one, SqlRepository) or not isinstance(other, SqlRepository):
        return False
    if one.location.backend != other.location.backend or one.location.path is not None:
        return False
    return same_database(one.uow, other.uow)
