"""The per-kind checks of what a repository stores: each record field is checked by its kind
(see `tracker.store.records`) and put in storage form (JSON values through `tracker.store.codec`,
times aware UTC, numbers float, text storable), before anything is written. Both repositories call
`to_row` and the other checks here, so bad input gets the same `ValidationError` on every store.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tracker.errors import DuplicateStepError, ValidationError
from tracker.store import blobs
from tracker.store.codec import check_string, encode
from tracker.store.records import (
    DIRECTIONS,
    TRIAL_STATES,
    Kind,
    NewArtifact,
    NewStepMetric,
    NewTrial,
    kind_of,
    stored_fields,
)

MAX_TEXT_BYTES = 16 * 1024 * 1024
"""Largest accepted free text (`strategy_code` and the like), in UTF-8 bytes: 16 MiB."""

Check = Callable[[Any, str], Any]


def _check_json(value: Any, field: str) -> Any:
    return None if value is None else encode(value, field)


def _check_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ValidationError(
            field, f"is larger than the limit of {MAX_TEXT_BYTES // 2**20} MiB; store a path or hash instead"
        )
    return check_string(str(value), field)


def _check_name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(field, "must not be empty or only whitespace")
    return check_string(str(value), field)


def _check_number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if type(value) is float and value == value:
        return value + 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"expected a number, got {type(value).__name__}")
    try:
        result = float(value) + 0.0  # + 0.0: -0.0 becomes 0.0, which SQLite's REAL columns keep anyway
    except OverflowError:
        result = math.inf if value > 0 else -math.inf
    return None if math.isnan(result) else result


def _check_metric(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            return _check_metric(value.item(), field)
        raise ValidationError(field, f"expected a number, got {type(value).__name__}")
    try:
        return float(value) + 0.0  # -0.0 becomes 0.0, as SQLite's REAL columns keep it
    except OverflowError:
        return math.inf if value > 0 else -math.inf


MAX_TAG_KEY = 250
MAX_TAG_VALUE = 65_536
_TAG_KEY = re.compile(r"[\w.\-/: ]+")


def check_tags(value: Any, field: str) -> dict[str, str]:
    """String tag keys (1-250 letters, digits, spaces and `_ . - / :`) to string values (at most
    64 KiB); None means no tags. Raises ValidationError naming the bad key."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"expected a dict of tag names to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        check_tag_key(key, field)
        if not isinstance(item, str):
            raise ValidationError(f"{field}.{key}", f"a tag value must be a string, got {type(item).__name__}")
        if len(item) > MAX_TAG_VALUE:
            raise ValidationError(f"{field}.{key}", f"a tag value is at most {MAX_TAG_VALUE} characters; use a note")
        out[key] = check_string(item, f"{field}.{key}")
    return out


def check_tag_changes(tags: Any, field: str = "tags") -> dict[str, str | None]:
    """Tags to set (string values) or delete (None values), checked like `check_tags`."""
    if not isinstance(tags, Mapping):
        raise ValidationError(field, f"expected a dict of tag names to strings or None, got {type(tags).__name__}")
    kept = check_tags({key: value for key, value in tags.items() if value is not None}, field)
    for key in tags:
        check_tag_key(key, field)
    return {key: kept.get(key) for key in tags}


def check_tag_key(key: Any, field: str) -> str:
    """`key` if it is a valid tag name; else ValidationError saying what a tag name may hold."""
    if not isinstance(key, str):
        raise ValidationError(field, f"tag name {key!r} is a {type(key).__name__}; tag names are strings")
    if not 0 < len(key) <= MAX_TAG_KEY or not _TAG_KEY.fullmatch(key) or key != key.strip():
        raise ValidationError(
            field,
            f"tag name {key!r} is not valid: use 1-{MAX_TAG_KEY} letters, digits, spaces and _ . - / : "
            "(no leading or trailing space)",
        )
    return key


def _check_count(value: Any, field: str) -> int:
    if type(value) is int and 0 <= value < 2**63:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"expected an integer, got {type(value).__name__}")
    if not 0 <= value < 2**63:
        raise ValidationError(field, f"must be between 0 and 2**63 - 1, got {value}")
    return int(value)


def _check_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"expected True or False, got {value!r}")
    return value


def _choice(allowed: tuple[str, ...]) -> Check:
    def check(value: Any, field: str) -> str:
        if value not in allowed:
            raise ValidationError(field, f"must be one of {', '.join(allowed)}, got {value!r}")
        return str(value)

    return check


_CHECKS: dict[Kind, Check] = {
    "json": _check_json,
    "time": _check_time,
    "text": _check_text,
    "code": _check_text,
    "metric": _check_metric,
    "tags": check_tags,
    "name": _check_name,
    "number": _check_number,
    "count": _check_count,
    "flag": _check_flag,
    "state": _choice(TRIAL_STATES),
    "direction": _choice(DIRECTIONS),
    "id": _check_count,
}
_PLANS: dict[type, tuple[tuple[str, Kind, Check], ...]] = {}


def plan(record_type: type) -> tuple[tuple[str, Kind, Check], ...]:
    """(field name, kind, check) of each stored field of `record_type`, computed once per type."""
    plan = _PLANS.get(record_type)
    if plan is None:
        plan = _PLANS[record_type] = tuple(
            (f.name, kind_of(f), _CHECKS[kind_of(f)]) for f in stored_fields(record_type)
        )
    return plan


def to_row(record: Any, where: str = "") -> dict[str, Any]:
    """The stored fields of `record`, checked and in storage form: JSON encoded, times aware UTC,
    text storable, numbers float (NaN as None). Raises ValidationError naming `where` + the field."""
    row = {}
    for name, kind, check in plan(type(record)):
        value = getattr(record, name)
        row[name] = None if value is None and kind in _NONE_IS_NONE else check(value, where + name)
    return row


_NONE_IS_NONE = frozenset({"json", "time", "text", "code", "number"})
"""Kinds whose check gives None for None (so it need not be called, which is most of the cost of
a trial's optional fields in a batch)."""


def trial_rows(
    trials: Sequence[NewTrial], convert: Callable[[Any, str], dict[str, Any]] = to_row
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The rows of a batch of trials and, by position, of their TTPT results, made by `convert`
    (`to_row`, or the journal's `to_item`). A ValidationError names the trial as `trials[i].` in
    a batch of several."""
    rows, checks = [], {}
    for index, trial in enumerate(trials):
        try:
            rows.append(convert(trial, ""))
            if trial.ttpt is not None:
                checks[index] = convert(trial.ttpt, "ttpt.")
        except ValidationError as exc:
            raise (exc.within(f"trials[{index}].") if len(trials) > 1 else exc) from None
    return rows, checks


def to_values(record_type: type, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Some fields of a `record_type` record, checked and in storage form as `to_row` makes them."""
    checks = {name: check for name, _, check in plan(record_type)}
    return {name: checks[name](value, where + name) for name, value in values.items()}


def check_artifact(new: NewArtifact) -> tuple[NewArtifact, str]:
    """The artifact with its name checked and its SHA-256; raises ValidationError for a bad name
    or media type, bytes that are not bytes, or a file over `tracker.store.blobs.MAX_ARTIFACT_BYTES`."""
    check_tag_key(new.name, "name")
    if new.name.startswith("/") or ".." in new.name.split("/"):
        raise ValidationError("name", f"artifact name {new.name!r} must be relative, without '..'")
    if not isinstance(new.media_type, str) or "/" not in new.media_type:
        raise ValidationError("media_type", f"expected a media type such as 'image/png', got {new.media_type!r}")
    check_string(new.media_type, "media_type")
    if not isinstance(new.data, bytes | bytearray | memoryview):
        raise ValidationError("data", f"expected bytes, got {type(new.data).__name__}")
    data = bytes(new.data)
    if len(data) > blobs.MAX_ARTIFACT_BYTES:
        raise ValidationError(
            "data",
            f"is {len(data) / 2**20:.1f} MiB, over the limit of {blobs.MAX_ARTIFACT_BYTES // 2**20} MiB per "
            "artifact; keep large files in a file store and log their path",
        )
    created = _check_time(new.created_at, "created_at")
    if created is None:
        raise ValidationError("created_at", "is required")
    return NewArtifact(new.name, new.media_type, data, created), blobs.digest(data)


def step_metrics(trial_id: int, metrics: Sequence[NewStepMetric]) -> list[NewStepMetric]:
    """The metrics checked (`metrics[i].` names a bad one); raises DuplicateStepError when the
    batch has a (key, step) twice."""
    checked = [NewStepMetric(**to_row(m, f"metrics[{i}].")) for i, m in enumerate(metrics)]
    counts = Counter((m.key, m.step) for m in checked)
    repeated = sorted(pair for pair, count in counts.items() if count > 1)
    if repeated:
        raise DuplicateStepError(trial_id, repeated)
    return checked
