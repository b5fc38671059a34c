"""What every part of `ExperimentTracker` stands on: the open repository, its lifetime and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

from tracker.errors import StoreError
from tracker.store.records import (
    Direction,
)

if TYPE_CHECKING:
    from tracker.store.repository import Repository


class Core:
    """The open repository and the objectives already looked up; closing and transactions."""

    url: str
    _store: Repository | None
    _objectives: dict[int, tuple[str, Direction]]

    @property
    def _repo(self) -> Repository:
        if self._store is None:
            raise StoreError(f"this tracker ({self.url}) is closed; open a new ExperimentTracker")
        return self._store

    @property
    def repository(self) -> Repository:
        """The repository behind this tracker (frozen records instead of dicts)."""
        return self._repo

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Release the store. Closing twice is harmless; any other call afterwards raises StoreError."""
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one atomic unit: `with tracker.transaction(): ...` commits every write
        of the block when it ends normally and none when it raises. Calls on other threads or
        processes see none of it until then. Blocks nest (the inner one joins the outer). If the
        database gives up on the block (a deadlock with another writer), StoreError says to run
        the whole block again; nothing of it is kept, even if the block catches the error."""
        try:
            with self._repo.transaction():
                yield
        except BaseException:
            self._objectives.clear()  # an experiment created in the block may not exist
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _objective(self, experiment_id: int) -> tuple[str, Direction]:
        known = self._objectives.get(experiment_id)
        if known is None:
            experiment = self._repo.get_experiment(experiment_id)
            known = self._objectives[experiment_id] = (experiment.objective, experiment.direction)
        return known
