"""Trials' returns series in a journal: the values (byte-shuffled) and each distinct index are
files of the blob folder beside the journal, named by SHA-256; a `returns` operation ties a trial
to them. The files are written before the line that refers to them, as artifacts are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracker.errors import CorruptStoreError
from tracker.journal import queries
from tracker.journal.blob_folder import BlobFolder
from tracker.journal.replica import JournalReplica
from tracker.store import blobs
from tracker.store import returns as packing
from tracker.store.returns import ReturnSeries


def operation(files: BlobFolder, trial_id: int, series: ReturnSeries) -> dict[str, Any]:
    """The `returns` operation of a checked series, its files written first."""
    shuffled = packing.shuffle(series.values)
    values = blobs.digest(shuffled)
    files.put(values, shuffled)
    index = None
    if series.index is not None:
        index = blobs.digest(series.index)
        files.put(index, series.index)
    return {"op": "returns", "trial_id": trial_id, "values": values, "index": index, "length": len(series)}


class JsonReturns:
    """The `Repository` verbs of returns series, for `JsonRepository` (its journal and files)."""

    journal: JournalReplica
    blob_files: BlobFolder

    def set_returns(self, trial_id: int, returns: ReturnSeries) -> None:
        series = packing.check(returns)
        with self.journal.writing() as state:
            queries.trial_item(state, trial_id)
            self.journal.emit(operation(self.blob_files, trial_id, series))

    def get_returns(self, trial_id: int) -> ReturnSeries | None:
        with self.journal.reading() as state:
            queries.trial_item(state, trial_id)
            item = state.returns.get(trial_id)
        return None if item is None else self._series(item, {})

    def returns_trial_ids(self, experiment_ids: Sequence[int], *, complete_only: bool = True) -> list[int]:
        with self.journal.reading() as state:
            found = []
            for experiment_id in sorted(set(experiment_ids)):
                numbers = state.by_experiment.get(experiment_id, {})
                for number in sorted(numbers):
                    trial_id = numbers[number]
                    if trial_id in state.returns and (
                        not complete_only or state.trials[trial_id]["state"] == "complete"
                    ):
                        found.append(trial_id)
            return found

    def read_returns(
        self,
        trial_ids: Sequence[int],
        consume: Callable[[list[tuple[int, ReturnSeries]]], None],
        chunk_size: int = 2_000,
    ) -> None:
        with self.journal.reading() as state:
            items = [(i, state.returns[i]) for i in trial_ids if i in state.returns]
        indexes: dict[str, bytes] = {}
        for start in range(0, len(items), chunk_size):
            consume([(i, self._series(item, indexes)) for i, item in items[start : start + chunk_size]])

    def _series(self, item: dict[str, Any], indexes: dict[str, bytes]) -> ReturnSeries:
        if item["index"] is None:
            index = None
        else:
            index = indexes.get(item["index"])
            if index is None:
                index = indexes[item["index"]] = self.blob_files.get(item["index"])
        values = packing.unshuffle(self.blob_files.get(item["values"]))
        if len(values) != 8 * item["length"]:
            raise CorruptStoreError(
                f"the returns file {item['values']}.zst in {self.blob_files.path} does not hold {item['length']} "
                "values; restore the folder from a backup"
            )
        return ReturnSeries(values, index)
