"""tracker: record Optuna optimisation runs of trading strategies, their look-ahead (TTPT)
validations and performance, in SQLite, PostgreSQL or a JSON journal.

    from tracker import ExperimentTracker

Importing the package is cheap: the SQL layer, pandas and Optuna load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.errors import (
    AmbiguousNameError,
    ConfirmationRequiredError,
    CorruptStoreError,
    DuplicateArtifactError,
    DuplicateStepError,
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
    TransactionRolledBackError,
    UnknownKeyWarning,
    ValidationError,
)

if TYPE_CHECKING:
    from tracker.facade.provenance import fingerprint
    from tracker.facade.tracker import ExperimentTracker
    from tracker.store.records import Owner
    from tracker.transfer.copying import copy_store

from tracker._version import __version__

__all__ = [
    "AmbiguousNameError",
    "ConfirmationRequiredError",
    "CorruptStoreError",
    "DuplicateArtifactError",
    "DuplicateStepError",
    "DuplicateTrialError",
    "ExperimentTracker",
    "MigrationError",
    "NondeterministicStrategyError",
    "NotFoundError",
    "Owner",
    "ReadOnlyStoreError",
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "StoreConnectionError",
    "StoreError",
    "StoreNotFoundError",
    "TrackerError",
    "TransactionRolledBackError",
    "UnknownKeyWarning",
    "ValidationError",
    "__version__",
    "copy_store",
    "fingerprint",
]


def __getattr__(name: str) -> Any:
    if name == "ExperimentTracker":
        from tracker.facade.tracker import ExperimentTracker

        return ExperimentTracker
    if name == "copy_store":
        from tracker.transfer.copying import copy_store

        return copy_store
    if name == "Owner":
        from tracker.store.records import Owner

        return Owner
    if name == "fingerprint":
        from tracker.facade.provenance import fingerprint

        return fingerprint
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
