"""tracker: record Optuna optimisation runs of trading strategies, their look-ahead (TTPT)
validations and performance, in SQLite, PostgreSQL or a JSON journal.

    from tracker import ExperimentTracker

Importing the package is cheap: the SQL layer, pandas and Optuna load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.errors import (
    AmbiguousNameError,
    CorruptStoreError,
    DuplicateTrialError,
    MigrationError,
    NondeterministicStrategyError,
    NotFoundError,
    ReadOnlyStoreError,
    SchemaError,
    SchemaOutdatedError,
    SchemaTooNewError,
    StoreConnectionError,
    StoreError,
    StoreNotFoundError,
    TrackerError,
    ValidationError,
)

if TYPE_CHECKING:
    from tracker.api import ExperimentTracker
    from tracker.copying import copy_store

__version__ = "0.1.0"
__all__ = [
    "AmbiguousNameError",
    "CorruptStoreError",
    "DuplicateTrialError",
    "ExperimentTracker",
    "MigrationError",
    "NondeterministicStrategyError",
    "NotFoundError",
    "ReadOnlyStoreError",
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "StoreConnectionError",
    "StoreError",
    "StoreNotFoundError",
    "TrackerError",
    "ValidationError",
    "__version__",
    "copy_store",
]


def __getattr__(name: str) -> Any:
    if name == "ExperimentTracker":
        from tracker.api import ExperimentTracker

        return ExperimentTracker
    if name == "copy_store":
        from tracker.copying import copy_store

        return copy_store
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
