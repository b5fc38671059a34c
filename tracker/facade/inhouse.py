"""Adopting the in-house optimizer's TTPT records: its monitor's violation logs and its history."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tracker.facade.arguments import check_id
from tracker.facade.core import Core


class InHouse(Core):
    """Adopting the in-house optimizer's TTPT records: its monitor's violation logs and its history."""

    def import_ttpt_logs(self, experiment_id: int, folder: str | os.PathLike[str]) -> dict[str, Any]:
        """Turn each violation log that the in-house `RuntimeTTPTMonitor` wrote under `folder`
        (`violation_trial_{N}_{time}.json`, searched recursively; cut-short files too: every
        complete key is kept, what was lost is recorded) into a TTPT result on its trial, matched
        by params first and by number (N - 1) only where params are ambiguous. Idempotent.

        Returns `{"experiment_id", "imported", "already_imported", "unmatched", "unusable",
        "records"}`: the counts, and one row per log with its status, the rule that matched
        (`params`, or `params, then number`) or why none did, and what was lost. Raises
        NotFoundError for a missing experiment, ValidationError when `folder` is not a folder."""
        from tracker.transfer.inhouse_import import import_checks
        from tracker.transfer.inhouse_logs import read_folder

        experiment_id = check_id(experiment_id, "experiment_id")
        self._repo.get_experiment(experiment_id)  # NotFoundError before any file is read
        return import_checks(self._repo, experiment_id, read_folder(os.fspath(folder)))

    def import_ttpt_history(self, experiment_id: int, history: Sequence[Any]) -> dict[str, Any]:
        """As `import_ttpt_logs`, from the monitor's in-memory `validation_history` (passed checks
        included); an entry that a log already brought in is not added again."""
        from tracker.transfer.inhouse_import import import_checks
        from tracker.transfer.inhouse_logs import history_checks

        experiment_id = check_id(experiment_id, "experiment_id")
        return import_checks(self._repo, experiment_id, history_checks(history))
