"""The parts of an experiment that copying adds and verification compares: the one list (`PARTS`).

Each part says how it is described without ids (for comparing two stores' copies by value) and
how the destination is given what it lacks. Adding a kind of record to experiments is adding one
`Part` here. Values are compared by `canonical`: dicts as dicts, floats bit for bit (every NaN
equal to every NaN), timestamps as instants, so the comparison is the same whichever two of the
four backends hold the copies.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tracker.store.records import (
    Experiment,
    NewArtifact,
    NewStepMetric,
    NewTrial,
    NewTTPTResult,
    Owner,
    Trial,
    TrialQuery,
    TTPTResult,
    new_fields,
)
from tracker.store.repository import Repository
from tracker.store.returns import ReturnSeries

BATCH = 5000


def canonical(value: Any) -> Any:
    """`value` in a form whose equality means "the same data" on every backend."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else struct.pack("<d", value))
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, datetime):
        return ("time", value.astimezone(UTC) if value.tzinfo is not None else value)
    if isinstance(value, Mapping):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def fields_of(record: Any, ids: tuple[str, ...]) -> dict[str, Any]:
    """A record's fields but its ids, canonical."""
    return {name: canonical(getattr(record, name)) for name in record.__dataclass_fields__ if name not in ids}


def as_new(record: Any, new_type: type[Any], **extra: Any) -> Any:
    """The `new_type` record (`NewTrial`, ...) holding `record`'s values, plus `extra`."""
    return new_type(**{name: getattr(record, name) for name in new_fields(new_type)}, **extra)


def annotate(
    dst: Repository, owner: Owner, source: Experiment | Trial, target: Experiment | Trial, added: Counter[str]
) -> None:
    """Give a matched record the source's tags and note."""
    if source.tags != target.tags:
        dst.set_tags(owner, {**dict.fromkeys(set(target.tags) - set(source.tags)), **source.tags})
        added["annotations"] += 1
    if source.note != target.note:
        dst.set_note(owner, source.note)
        added["annotations"] += 1


@dataclass
class Side:
    """One store's copy of an experiment, with its trials' numbers by id (what ids mean across stores)."""

    repo: Repository
    experiment_id: int
    numbers: dict[int, int] = field(default_factory=dict)  # trial id -> trial number


@dataclass
class Copy:
    """A copy in progress: the source and destination sides, source trial id -> destination trial
    id (filled by the trials part), and the counts of what was added."""

    source: Side
    target: Side
    trial_ids: dict[int, int] = field(default_factory=dict)
    added: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Part:
    """One part of an experiment: its description without ids, and how a copy adds what the
    destination lacks (None when another part's copy carries it)."""

    name: str
    describe: Callable[[Side], Any]
    copy: Callable[[Copy], None] | None


# trials and their TTPT results -----------------------------------------------------------------


def _describe_trials(side: Side) -> dict[int, Any]:
    trials = side.repo.list_trials(side.experiment_id, TrialQuery())
    side.numbers.update({t.id: t.trial_number for t in trials})
    return {t.trial_number: fields_of(t, ("id", "experiment_id")) for t in trials}


def _describe_ttpt(side: Side) -> dict[int, list[Any]]:
    results: dict[int, list[Any]] = {}
    for r in side.repo.list_ttpt_results(experiment_id=side.experiment_id):
        results.setdefault(side.numbers[r.trial_id], []).append(fields_of(r, ("id", "trial_id")))
    return results


def _copy_trials(copy: Copy) -> None:
    """Add the trials the destination lacks (with their TTPT results), and the TTPT results,
    tags and notes its matching trials lack."""
    src, dst = copy.source.repo, copy.target.repo
    results: dict[int, list[TTPTResult]] = {}
    for r in src.list_ttpt_results(experiment_id=copy.source.experiment_id):
        results.setdefault(r.trial_id, []).append(r)
    have = {t.trial_number: t for t in dst.list_trials(copy.target.experiment_id, TrialQuery())}
    have_results = Counter(r.trial_id for r in dst.list_ttpt_results(experiment_id=copy.target.experiment_id))
    batch: list[tuple[Trial, list[TTPTResult]]] = []
    for trial in src.list_trials(copy.source.experiment_id, TrialQuery()):
        checks = results.get(trial.id, [])
        existing = have.get(trial.trial_number)
        if existing is None:
            batch.append((trial, checks))
            if len(batch) >= BATCH:
                _flush(copy, batch)
            continue
        copy.trial_ids[trial.id] = existing.id
        for r in checks[have_results[existing.id] :]:
            dst.add_ttpt_result(existing.id, as_new(r, NewTTPTResult))
            copy.added["ttpt_results"] += 1
        annotate(dst, Owner("trial", existing.id), trial, existing, copy.added)
    _flush(copy, batch)


def _flush(copy: Copy, batch: list[tuple[Trial, list[TTPTResult]]]) -> None:
    if not batch:
        return
    dst = copy.target.repo
    news = [as_new(t, NewTrial, ttpt=as_new(checks[0], NewTTPTResult) if checks else None) for t, checks in batch]
    ids = dst.add_trials(copy.target.experiment_id, news)
    copy.added["trials"] += len(batch)
    copy.added["ttpt_results"] += sum(1 for new in news if new.ttpt is not None)
    for trial_id, (trial, checks) in zip(ids, batch, strict=True):
        copy.trial_ids[trial.id] = trial_id
        for r in checks[1:]:
            dst.add_ttpt_result(trial_id, as_new(r, NewTTPTResult))
            copy.added["ttpt_results"] += 1
    batch.clear()


# step metrics ----------------------------------------------------------------------------------


def _describe_steps(side: Side) -> dict[tuple[int, str, int], Any]:
    return {
        (side.numbers[m.trial_id], m.key, m.step): canonical(m.value)
        for m in side.repo.list_step_metrics(experiment_id=side.experiment_id)
    }


def _copy_steps(copy: Copy) -> None:
    dst = copy.target.repo
    have = {(m.trial_id, m.key, m.step) for m in dst.list_step_metrics(experiment_id=copy.target.experiment_id)}
    wanted: dict[int, list[NewStepMetric]] = {}
    for m in copy.source.repo.list_step_metrics(experiment_id=copy.source.experiment_id):
        trial_id = copy.trial_ids[m.trial_id]
        if (trial_id, m.key, m.step) not in have:
            wanted.setdefault(trial_id, []).append(NewStepMetric(step=m.step, key=m.key, value=m.value))
    for trial_id, metrics in wanted.items():
        dst.add_step_metrics(trial_id, metrics)
        copy.added["step_metrics"] += len(metrics)


# artifacts -------------------------------------------------------------------------------------


def _artifacts(side: Side) -> list[Any]:
    owner = Owner("experiment", side.experiment_id)
    return [a for of_trials in (False, True) for a in side.repo.list_artifacts(owner, of_trials=of_trials)]


def _describe_artifacts(side: Side) -> dict[tuple[str, int | None, str], Any]:
    """Each artifact's fields and the SHA-256 of the bytes read back (not only the stored name)."""
    out = {}
    for a in _artifacts(side):
        number = side.numbers[a.owner.id] if a.owner.kind == "trial" else None
        content = hashlib.sha256(side.repo.read_artifact(a.owner, a.name)).hexdigest()
        out[(a.owner.kind, number, a.name)] = (a.media_type, a.size, a.sha256, canonical(a.created_at), content)
    return out


def _copy_artifacts(copy: Copy) -> None:
    owners = {("experiment", copy.source.experiment_id): Owner("experiment", copy.target.experiment_id)}
    owners.update({("trial", s): Owner("trial", d) for s, d in copy.trial_ids.items()})
    have = {(a.owner, a.name, a.sha256) for a in _artifacts(copy.target)}
    for a in _artifacts(copy.source):
        target = owners[(a.owner.kind, a.owner.id)]
        if (target, a.name, a.sha256) in have:
            continue
        data = copy.source.repo.read_artifact(a.owner, a.name)
        copy.target.repo.add_artifact(target, NewArtifact(a.name, a.media_type, data, a.created_at), replace=True)
        copy.added["artifacts"] += 1


# returns series --------------------------------------------------------------------------------


def _describe_returns(side: Side) -> dict[int, tuple[bytes, bytes | None]]:
    """Each trial's returns as stored: values and index bytes (bit for bit, NaN payloads included)."""
    out: dict[int, tuple[bytes, bytes | None]] = {}
    side.repo.read_returns(
        side.repo.returns_trial_ids([side.experiment_id], complete_only=False),
        lambda chunk: out.update({side.numbers[i]: (s.values, s.index) for i, s in chunk}),
    )
    return out


def _copy_returns(copy: Copy) -> None:
    """Give the destination's trials the returns series they lack."""
    dst = copy.target.repo
    have = set(dst.returns_trial_ids([copy.target.experiment_id], complete_only=False))
    src = copy.source.repo
    wanted = [
        i
        for i in src.returns_trial_ids([copy.source.experiment_id], complete_only=False)
        if copy.trial_ids[i] not in have
    ]

    def store(chunk: list[tuple[int, ReturnSeries]]) -> None:
        for trial_id, series in chunk:
            dst.set_returns(copy.trial_ids[trial_id], series)
        copy.added["returns"] += len(chunk)

    src.read_returns(wanted, store)


PARTS: tuple[Part, ...] = (
    Part("trials", _describe_trials, _copy_trials),
    Part("ttpt", _describe_ttpt, None),  # copied with the trials
    Part("steps", _describe_steps, _copy_steps),
    Part("artifacts", _describe_artifacts, _copy_artifacts),
    Part("returns", _describe_returns, _copy_returns),
)
"""Everything an experiment holds beside its own record, in the order they are copied (trials
first: the other parts refer to trials by number)."""
