"""Export, copy, archival and compaction of the tracker's store."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tracker import stores

if TYPE_CHECKING:
    pass

from tracker.facade.arguments import check_ids, check_tag_filter
from tracker.facade.core import Core


class Transfer(Core):
    """Export, copy, archival and compaction of the tracker's store."""

    def export(self, experiment_ids: Sequence[int] | int, path: str | os.PathLike[str]) -> str:
        """Write the experiments' trials to `path` (.csv, .parquet, .xlsx or .json); return it."""
        from tracker.reports.export import export

        ids = check_ids([experiment_ids] if isinstance(experiment_ids, int) else experiment_ids)
        return export(self._repo, ids, path)

    def copy_to(self, destination: Core, *, progress: bool = False) -> dict[str, int]:
        """Copy every experiment, trial, TTPT result and summary into `destination`; idempotent."""
        from tracker.transfer.copying import copy_store

        return copy_store(self._repo, destination.repository, progress=progress)

    def archive(
        self,
        to: str | os.PathLike[str] | Core,
        *,
        older_than: str | timedelta | None = None,
        tags: Mapping[str, str] | None = None,
        ids: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Move experiments (last written more than `older_than` ago, e.g. "90d"; with every tag
        of `tags`; or by `ids`) to another store, each verified by value before it is deleted
        here. An experiment written during its move stays here (listed in "kept" with the
        reason); running it again moves it. Raises ValidationError when `to` is this store.
        Returns what moved and what was kept."""
        from tracker.transfer.archive import move

        self._objectives.clear()
        return move(
            self._repo,
            to,
            ids=None if ids is None else check_ids(ids),
            older_than=older_than,
            tags=check_tag_filter(tags),
        )

    def restore(self, ids: Sequence[int], from_: str | os.PathLike[str] | Core) -> dict[str, Any]:
        """Move the experiments with these ids (in `from_`) back into this store."""
        from tracker.transfer.archive import move

        return move(from_, self._repo, ids=check_ids(ids))

    def compact(self) -> dict[str, int]:
        """Rewrite a JSON journal as a snapshot, deleting unused artifact files; return what was
        freed (see `tracker.stores.compact`). Raises ValidationError on SQL stores."""
        return stores.compact(self._repo)
