"""Archival: moving whole experiments to another store, and back.

Each experiment is copied in one destination transaction, compared record by record with the
source (`copying.snapshot`), and only then deleted from the source, in one source transaction.
So a kill at any moment leaves every experiment whole in at least one of the two stores, and
running the same archival again finishes what a killed one started (the copy is idempotent).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.errors import NotFoundError, StoreError, ValidationError
from tracker.store.records import Experiment, ExperimentQuery
from tracker.store.repository import Repository
from tracker.store.retry import atomically
from tracker.transfer.copying import COUNTS, copy_experiments, repository_of, snapshot

_AGE = re.compile(r"(\d+)\s*([dhw])")


def parse_age(text: str | timedelta) -> timedelta:
    """An age such as "90d", "12h" or "2w" (days, hours, weeks) as a timedelta."""
    if isinstance(text, timedelta):
        return text
    found = _AGE.fullmatch(str(text).strip())
    if found is None:
        raise ValidationError("older_than", f"expected an age such as 90d, 12h or 2w, got {text!r}")
    number, unit = int(found[1]), found[2]
    return {"d": timedelta(days=number), "h": timedelta(hours=number), "w": timedelta(weeks=number)}[unit]


def move(
    source: Any,
    destination: Any,
    *,
    ids: Sequence[int] | None = None,
    older_than: str | timedelta | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Move the experiments of `source` that match (`ids`, created more than `older_than` ago,
    with every tag of `tags`) to `destination`; return what was moved. Raises StoreError when a
    copy does not match its source (the source then keeps the experiment)."""
    src, close_src = repository_of(source, create=False)
    dst, close_dst = repository_of(destination, create=True)
    try:
        query = ExperimentQuery(
            ids=None if ids is None else tuple(ids),
            created_before=None if older_than is None else datetime.now(UTC) - parse_age(older_than),
            tags=None if not tags else tuple(sorted(tags.items())),
            trial_stats=False,
        )
        chosen = [s.experiment for s in src.list_experiments(query)]
        missing = sorted(set(ids or ()) - {e.id for e in chosen}) if older_than is None and not tags else []
        if missing:
            raise NotFoundError(f"experiment(s) {', '.join(map(str, missing))} not found in {src.location.safe_url}")
        added: Counter[str] = Counter()
        moved = [_move_one(src, dst, experiment, added) for experiment in chosen]
        return {"moved": moved, **{key: added[key] for key in COUNTS}}
    finally:
        if close_src:
            src.close()
        if close_dst:
            dst.close()


def _move_one(src: Repository, dst: Repository, experiment: Experiment, added: Counter[str]) -> dict[str, int]:
    targets = copy_experiments(src, dst, [experiment], added)
    target_id = targets[experiment.id]
    if snapshot(src, experiment.id) != snapshot(dst, target_id):
        raise StoreError(
            f"the copy of experiment {experiment.id} ({experiment.name!r}) in the destination differs from the "
            "source, so the source keeps it; nothing was deleted. Check the destination, then run the command again"
        )

    def delete() -> None:
        with src.transaction():
            src.delete_experiment(experiment.id)

    atomically(delete, [src])
    return {"source_id": experiment.id, "destination_id": target_id}
