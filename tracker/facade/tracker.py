"""`ExperimentTracker`: the public facade, a drop-in replacement for the in-house class.

It validates every argument, turns values into storage form, and returns plain dicts with the
in-house keys (plus new ones). Timestamps in returned dicts are ISO 8601 strings in UTC. It is one
class to its users, composed of one part per concern: writing and reading (`facade.writing`,
`facade.reading`), analysis, annotations and transfer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tracker.errors import ValidationError
from tracker.facade.arguments import (
    check_bool,
)
from tracker.store.location import resolve
from tracker.store.records import (
    Direction,
    Synchronous,
)
from tracker.stores import open_location

if TYPE_CHECKING:
    from tracker.store.repository import Repository

from tracker.facade.analysis import Analysis
from tracker.facade.annotations import Annotations
from tracker.facade.inhouse import InHouse
from tracker.facade.transfer import Transfer
from tracker.facade.writing import Writing


class ExperimentTracker(Writing, Analysis, Annotations, Transfer, InHouse):
    """Log and query optimisation experiments, trials and TTPT results.

    `ExperimentTracker()` opens `$TRACKER_URL`, else `./experiments.db`. A SQLAlchemy URL
    (`sqlite:///x.db`, `postgresql+psycopg://user@host/db`, `mysql+pymysql://user@host/db`), a
    `json:` URL, or a path ending in `.json`/`.jsonl` picks the store; so do the in-house keywords
    `db_path=` and `backend=`.

    A store that does not exist yet is created, as the in-house class did; with `create=False`
    it is not, and StoreNotFoundError names the missing file (or the database without tracker
    tables). A malformed URL raises ValidationError before anything is touched.

    Opening an in-house JSON file warns (UnknownKeyWarning) about each key its format does not
    have, naming where it is; with `strict=True` such a file is refused (CorruptStoreError).
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        db_path: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        auto_upgrade: bool = False,
        synchronous: Synchronous | None = None,
        create: bool = True,
        strict: bool = False,
    ) -> None:
        if synchronous is not None and synchronous not in ("off", "normal", "full"):
            raise ValidationError("synchronous", f"must be 'off', 'normal' or 'full', got {synchronous!r}")
        location = resolve(url, backend, db_path)
        self.backend: str = location.backend
        self.db_path: str | None = None if location.path is None else str(location.path)
        self.url: str = location.safe_url
        self._store: Repository | None = open_location(
            location,
            auto_upgrade=auto_upgrade,
            synchronous=synchronous,
            create=check_bool(create, "create"),
            strict=check_bool(strict, "strict"),
        )
        self._objectives: dict[int, tuple[str, Direction]] = {}
