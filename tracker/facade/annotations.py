"""What `ExperimentTracker` records beside the numbers: tags, notes, metrics per step and
artifacts. A mixin over the tracker's repository, kept apart from the in-house methods."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.errors import NotFoundError, ValidationError
from tracker.facade.arguments import check_id, check_int, check_mapping, now
from tracker.facade.core import Core
from tracker.store.records import NewArtifact, NewStepMetric, Owner

if TYPE_CHECKING:
    pass

OwnerLike = Owner | tuple[str, int]


def owner_of(value: object) -> Owner:
    """An `Owner`, from an Owner or an ("experiment" | "trial", id) pair."""
    if isinstance(value, Owner):
        kind, owner_id = value.kind, value.id
    elif isinstance(value, tuple) and len(value) == 2:
        kind, owner_id = value
    else:
        raise ValidationError("owner", f"expected Owner('experiment' | 'trial', id), got {value!r}")
    if kind not in ("experiment", "trial"):
        raise ValidationError("owner", f"an owner is an 'experiment' or a 'trial', got {kind!r}")
    return Owner(kind, check_id(owner_id, "owner id"))


class Annotations(Core):
    """Tags, notes, step metrics and artifacts of experiments and trials."""

    # tags and notes --------------------------------------------------------------------------

    def set_tags(self, owner: OwnerLike, tags: Mapping[str, str]) -> None:
        """Set tags (string name -> string value) on an experiment or a trial; others are kept.
        Raises NotFoundError, and ValidationError for a bad name or a non-string value."""
        self._repo.set_tags(owner_of(owner), dict(check_mapping(tags, "tags")))

    def delete_tags(self, owner: OwnerLike, *names: str) -> None:
        """Delete the named tags of an experiment or a trial (a missing one is no error)."""
        self._repo.set_tags(owner_of(owner), dict.fromkeys(names))

    def get_tags(self, owner: OwnerLike) -> dict[str, str]:
        """The tags of an experiment or a trial; raises NotFoundError."""
        found = owner_of(owner)
        record = self._repo.get_experiment(found.id) if found.kind == "experiment" else self._repo.get_trial(found.id)
        return dict(record.tags)

    def set_note(self, owner: OwnerLike, note: str | None) -> None:
        """Replace the Markdown note of an experiment or a trial (None removes it)."""
        self._repo.set_note(owner_of(owner), note)

    # metrics per step ------------------------------------------------------------------------

    def log_step_metrics(self, trial_id: int, step: int, metrics: Mapping[str, float]) -> None:
        """Store a trial's metrics at one step (a walk-forward fold, an intermediate value).
        Raises NotFoundError, and DuplicateStepError for a metric the trial has at that step."""
        self.log_step_metrics_batch(trial_id, {step: metrics})

    def log_step_metrics_batch(
        self, trial_id: int, steps: Mapping[int, Mapping[str, float]] | Iterable[tuple[int, Mapping[str, float]]]
    ) -> None:
        """Store many steps' metrics of a trial at once, all or none: `{step: {name: value}}`."""
        pairs = steps.items() if isinstance(steps, Mapping) else steps
        rows = [
            NewStepMetric(step=check_int(step, "step"), key=key, value=value)
            for step, metrics in pairs
            for key, value in check_mapping(metrics, f"steps[{step}]").items()
        ]
        self._repo.add_step_metrics(check_id(trial_id, "trial_id"), rows)

    def get_step_metrics(self, trial_id: int) -> dict[str, list[tuple[int, float]]]:
        """A trial's metrics per step: {name: [(step, value), ...]} by step; raises NotFoundError."""
        out: dict[str, list[tuple[int, float]]] = {}
        for m in self._repo.list_step_metrics(trial_id=check_id(trial_id, "trial_id")):
            out.setdefault(m.key, []).append((m.step, m.value))
        return out

    # artifacts -------------------------------------------------------------------------------

    def log_artifact(
        self,
        owner: OwnerLike,
        path_or_bytes: str | os.PathLike[str] | bytes,
        name: str | None = None,
        media_type: str | None = None,
        *,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Attach a file (a path, or bytes with a `name`) to an experiment or a trial; return its
        description. Stored once per distinct content, compressed. Raises NotFoundError for a
        missing owner or file, DuplicateArtifactError for a name in use (unless `replace`)."""
        if isinstance(path_or_bytes, bytes | bytearray | memoryview):
            if name is None:
                raise ValidationError("name", "give a name when logging bytes, e.g. name='equity.csv'")
            data = bytes(path_or_bytes)
        else:
            path = Path(os.fspath(path_or_bytes))
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise NotFoundError(f"the artifact file {path} does not exist; check the path") from None
            except IsADirectoryError:
                raise ValidationError("path_or_bytes", f"{path} is a folder; log the files in it one by one") from None
            name = path.name if name is None else name
        guessed = mimetypes.guess_type(name)[0] if isinstance(name, str) else None
        new = NewArtifact(name, media_type or guessed or "application/octet-stream", data, now())
        return _artifact_dict(self._repo.add_artifact(owner_of(owner), new, replace=replace))

    def list_artifacts(self, owner: OwnerLike) -> list[dict[str, Any]]:
        """The artifacts of an experiment or a trial, by name; raises NotFoundError."""
        return [_artifact_dict(a) for a in self._repo.list_artifacts(owner_of(owner))]

    def get_artifact(self, owner: OwnerLike, name: str) -> bytes:
        """The bytes of an artifact; raises NotFoundError."""
        return self._repo.read_artifact(owner_of(owner), name)


def _artifact_dict(artifact: Any) -> dict[str, Any]:
    return {
        "owner": artifact.owner.kind,
        "owner_id": artifact.owner.id,
        "name": artifact.name,
        "media_type": artifact.media_type,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "created_at": artifact.created_at.isoformat(),
    }
