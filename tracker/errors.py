"""The exception hierarchy of `tracker`: every error the library raises derives from `TrackerError`.

Errors that replace an in-house `ValueError` also derive from `ValueError`, so that existing
`except ValueError` handlers keep working.
"""

from __future__ import annotations

DISTRIBUTION = "ttpt-tracker"
"""The distribution's name on the package index; the import name and the command are `tracker`."""
UPGRADE_TRACKER = f"upgrade tracker (`pip install -U {DISTRIBUTION}`)"
"""What a message says to do about a store written by a newer tracker."""


class TrackerError(Exception):
    """Base class of every error raised by `tracker`."""


class ValidationError(TrackerError, ValueError):
    """An argument was refused before anything was written; `field` names the argument."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    def within(self, prefix: str) -> ValidationError:
        """The same error with `prefix` before the field's name (`trials[0].` + `params.x`)."""
        return ValidationError(prefix + self.field, self.problem)


class NotFoundError(TrackerError, LookupError, ValueError):
    """An experiment, trial or other record with the given id (or name) does not exist."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError key
        return str(self.args[0]) if self.args else ""


class AmbiguousNameError(NotFoundError):
    """Several experiments have the name that was given for one; `.ids` lists them."""

    def __init__(self, name: str, ids: list[int]) -> None:
        self.name = name
        self.ids = ids
        super().__init__(
            f"{len(ids)} experiments are named {name!r} (ids {', '.join(map(str, ids))}); give one of the ids instead"
        )


class DuplicateTrialError(TrackerError, ValueError):
    """A trial number is already taken in the experiment (or repeated within one batch)."""

    def __init__(self, experiment_id: int, trial_numbers: list[int]) -> None:
        self.experiment_id = experiment_id
        self.trial_numbers = trial_numbers
        shown = ", ".join(str(n) for n in trial_numbers[:10])
        more = f" and {len(trial_numbers) - 10} more" if len(trial_numbers) > 10 else ""
        super().__init__(
            f"experiment {experiment_id} already has trial number(s) {shown}{more}; "
            "trial numbers are unique within an experiment, use another number"
        )


class DuplicateStepError(TrackerError, ValueError):
    """A trial already has a metric at that step (or the batch repeats one)."""

    def __init__(self, trial_id: int, keys: list[tuple[str, int]]) -> None:
        self.trial_id = trial_id
        self.keys = keys
        shown = ", ".join(f"{key}@{step}" for key, step in keys[:10])
        super().__init__(
            f"trial {trial_id} already has metric(s) at {shown}; a metric has one value per step, "
            "log it at another step or under another name"
        )


class DuplicateArtifactError(TrackerError, ValueError):
    """The owner already has an artifact of that name; `fix` says how to overwrite it (the
    library's `replace=True`, the command line's `--replace`)."""

    def __init__(self, owner: str, name: str, fix: str = "pass replace=True") -> None:
        self.owner = owner
        self.name = name
        super().__init__(
            f"{owner} already has an artifact named {name!r}; choose another name, or {fix} to overwrite it"
        )


class ConfirmationRequiredError(TrackerError):
    """A command that changes a store was run without a terminal to ask at, and without --yes."""


class StoreError(TrackerError):
    """The store failed: a database error or an unusable file. The message never holds a password."""


class TransactionRolledBackError(StoreError):
    """The database rolled back a whole transaction block (a deadlock or serialisation failure
    with another writer, or an error that left the block unusable): nothing of it was written.
    Run the whole block again; tracker retries the blocks it opens itself."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """There is no store where one was to be opened without creating it (`create=False`): a
    missing file or folder, an empty file, or a database without tracker tables. `.path` names it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"no tracker store at {path}: {problem}")

    def __str__(self) -> str:  # FileNotFoundError would print its errno form
        return str(self.args[0])


class StoreConnectionError(StoreError, ConnectionError):
    """The store could not be reached (server down, refused login, unreachable file)."""


class CorruptStoreError(StoreError):
    """The store's content cannot be read: not a database, not a journal, or a damaged record."""


class ReadOnlyStoreError(StoreError, PermissionError):
    """The store cannot be written: read-only file, folder or database role, or a full disk."""


class SchemaError(StoreError):
    """The database schema does not match this version of `tracker`."""


class SchemaOutdatedError(SchemaError):
    """The database is at an older schema (or is an in-house database); the message says how to upgrade."""


class SchemaTooNewError(SchemaError):
    """The database was written by a newer `tracker`; this version will not touch it."""


class MigrationError(SchemaError):
    """An upgrade or downgrade stopped; the database was left as it was before the command."""


class UnknownKeyWarning(UserWarning):
    """An in-house JSON file holds keys its format does not have; they are not imported. The
    message names each key and where it is; `strict=True` refuses such a file instead."""


class NondeterministicStrategyError(TrackerError, ValueError):
    """Two runs of a strategy on the same data gave different signals (unseeded randomness, or a
    strategy that changes its input), so its look-ahead cannot be judged; seed it from its params."""
