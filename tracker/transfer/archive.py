"""Archival: moving whole experiments to another store, and back.

Each experiment is copied and verified in one destination transaction (`copying.copy_verified`:
a copy that differs from the source is rolled back). Then, in one source transaction that keeps
every other writer of the experiment out, the source is described again and compared with what
was verified, and deleted only when they are equal. A write that landed after the copy is
therefore never deleted uncopied: the experiment stays in the source, the move says it changed,
and running the move again finishes it. A kill at any moment leaves every experiment whole in at
least one of the two stores (the copy is idempotent).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.errors import NotFoundError, ValidationError
from tracker.store.records import Experiment, ExperimentQuery
from tracker.store.repository import Repository
from tracker.store.retry import atomically
from tracker.transfer.copying import COUNTS, AfterCopy, copy_verified, differences, key_of, matches, open_pair
from tracker.transfer.copying import snapshot as describe
from tracker.transfer.recency import last_write

_AGE = re.compile(r"(\d+)\s*([dhw])")
CHANGED = "it changed during the move, so the source keeps it; run the same command again to move it"


@dataclass(frozen=True)
class Hooks:
    """Points inside a move where tests act (never used otherwise): `after_copy` inside the
    destination's transaction before the copy is verified; `before_delete` between the
    verification and the source's check-and-delete; `while_locked` inside the check-and-delete,
    after the comparison and before the delete."""

    after_copy: AfterCopy | None = None
    before_delete: Callable[[Repository, int], None] | None = None
    while_locked: Callable[[Repository, int], None] | None = None


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
    hooks: Hooks | None = None,
) -> dict[str, Any]:
    """Move the experiments of `source` that match (`ids`, last written more than `older_than`
    ago, with every tag of `tags`) to `destination`. Returns what was moved, what stayed because
    it changed during the move (`kept`, with the reason) and the counts added. Raises
    ValidationError when both are the same store (nothing changes), StoreError when a copy does
    not match its source (the destination is rolled back and the source keeps it)."""
    src, dst, close = open_pair(source, destination)
    try:
        cutoff = None if older_than is None else datetime.now(UTC) - parse_age(older_than)
        query = ExperimentQuery(
            ids=None if ids is None else tuple(ids),
            created_before=cutoff,  # a first cut: nothing created since can be older
            tags=None if not tags else tuple(sorted(tags.items())),
            trial_stats=False,
        )
        chosen = [s.experiment for s in src.list_experiments(query)]
        missing = sorted(set(ids or ()) - {e.id for e in chosen}) if older_than is None and not tags else []
        if missing:
            raise NotFoundError(f"experiment(s) {', '.join(map(str, missing))} not found in {src.location.safe_url}")
        if cutoff is not None:
            chosen = [e for e in chosen if last_write(src, e.id) < cutoff]
        added: Counter[str] = Counter()
        existing = matches(dst)
        moved: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for experiment in chosen:
            outcome = _move_one(src, dst, experiment, existing.get(key_of(experiment)), added, hooks or Hooks())
            (moved if "reason" not in outcome else kept).append(outcome)
        return {"moved": moved, "kept": kept, **{key: added[key] for key in COUNTS}}
    finally:
        close()


def _move_one(
    src: Repository,
    dst: Repository,
    experiment: Experiment,
    target: Experiment | None,
    added: Counter[str],
    hooks: Hooks,
) -> dict[str, Any]:
    target_id, verified = copy_verified(src, dst, experiment, target, added, hooks.after_copy)
    if hooks.before_delete is not None:
        hooks.before_delete(src, experiment.id)

    def check_and_delete() -> bool:
        with src.transaction():
            try:
                src.lock_experiment(experiment.id)
                if differences(verified, describe(src, experiment.id)):
                    return False
            except NotFoundError:
                return False
            if hooks.while_locked is not None:
                hooks.while_locked(src, experiment.id)
            src.delete_experiment(experiment.id)
            return True

    done = {"source_id": experiment.id, "destination_id": target_id}
    return done if atomically(check_and_delete, [src]) else {**done, "reason": CHANGED}
