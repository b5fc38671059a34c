"""Checks of the public API's arguments: each returns the clean plain value (numpy numbers, 0/1
flags and ISO strings turned into Python values) or raises ValidationError. Whether a value can
be stored is the repository's check (`tracker.store.checks`), made before anything is written."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tracker.errors import ValidationError
from tracker.store.codec import check_string
from tracker.store.records import TRIAL_STATES, NewTrial, NewTTPTResult, TrialState, new_fields


def check_int(value: object, field: str, *, minimum: int = 0) -> int:
    """An integer (numpy integers too, bool and floats refused) that is at least `minimum`."""
    if isinstance(value, bool | float):
        shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        raise ValidationError(field, f"expected an integer, got {type(value).__name__} {shown}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError(field, f"expected an integer, got {type(value).__name__}") from None
    if number < minimum:
        raise ValidationError(field, f"must be at least {minimum}, got {number}")
    if number >= 2**63:
        raise ValidationError(field, f"must be below 2**63, got {number}")
    return number


def check_id(value: object, field: str) -> int:
    """A record id: a positive integer."""
    return check_int(value, field, minimum=1)


def check_text(value: object, field: str, *, allow_blank: bool = False) -> str:
    """`value` if it is a storable string; blank only when `allow_blank`."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if not allow_blank and not value.strip():
        raise ValidationError(field, "must not be empty or only whitespace")
    return check_string(str(value), field)


def check_name(value: object, field: str) -> str:
    """A non-blank string without NUL characters."""
    return check_text(value, field)


def check_state(value: object) -> TrialState:
    if isinstance(value, str) and value.lower() in ("fail", "failed"):
        return "failed"
    if isinstance(value, str) and value.lower() in TRIAL_STATES:
        return value.lower()  # type: ignore[return-value]
    raise ValidationError("state", f"must be one of {', '.join(TRIAL_STATES)}, got {value!r}")


def check_states(value: object) -> tuple[TrialState, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (check_state(value),)
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError("states", f"expected a list of states, got {type(value).__name__}")
    return tuple(check_state(s) for s in value)


def check_bool(value: object, field: str) -> bool:
    """A bool; numpy bools and the integers 0 and 1 (as the in-house tables stored) are accepted."""
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ == "bool":
        return bool(value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValidationError(field, f"expected True or False, got {value!r}")


def check_number(value: object, field: str, *, optional: bool = False) -> float | None:
    """A real number (int or float, not bool); None only when `optional`."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            return check_number(value.item(), field, optional=optional)
        raise ValidationError(field, f"expected a number, got {type(value).__name__}")
    return float(value)


def check_datetime(value: object, field: str, *, optional: bool = True) -> datetime | None:
    """A datetime (or ISO 8601 string), returned in UTC; a naive one is taken to be UTC already."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    if not isinstance(value, datetime) or str(value) == "NaT":
        raise ValidationError(field, f"expected a datetime, got {type(value).__name__}")
    moment: datetime = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_mapping(value: object, field: str, *, optional: bool = False) -> Any:
    """A dict (any Mapping); None only when `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"expected a dict, got {type(value).__name__}")
    return value


def check_list(value: object, field: str) -> Any:
    """An optional list (or tuple)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ValidationError(field, f"expected a list, got {type(value).__name__}")
    return value


def check_fraction(value: object, field: str) -> float | None:
    number = check_number(value, field, optional=True)
    if number is not None and not 0.0 <= number <= 1.0:
        raise ValidationError(field, f"must be between 0 and 1, got {number}")
    return number


def now() -> datetime:
    return datetime.now(UTC)


def check_tag_filter(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    """Tags to filter by: every one must match."""
    from tracker.store.checks import check_tags

    return None if tags is None else check_tags(tags, "tags")


def tag_pairs(tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    checked = check_tag_filter(tags)
    return None if checked is None else tuple(sorted(checked.items()))


def check_ids(values: object) -> list[int]:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError("experiment_ids", "expected a list of experiment ids")
    return [check_id(v, f"experiment_ids[{i}]") for i, v in enumerate(values)]


TRIAL_KEYS = frozenset({*new_fields(NewTrial), "ttpt"} - {"value", "created_at"})
"""The keys of a `log_trials` item: `log_trial`'s parameter names and `ttpt`."""
TTPT_KEYS = frozenset(new_fields(NewTTPTResult)) - {"created_at"}


def new_trial(
    objective: str,
    created: datetime,
    where: str = "",
    *,
    trial_number: object,
    params: object,
    performance: object,
    state: object = "complete",
    strategy_code: object = None,
    strategy_template: object = None,
    generation_method: object = None,
    started_at: object = None,
    completed_at: object = None,
    attributes: object = None,
    note: object = None,
    tags: object = None,
    ttpt: object = None,
) -> NewTrial:
    """The NewTrial of `log_trial`'s arguments (`where` prefixes field names in errors, as
    "trials[3]."). Plain values pass with type checks only; anything else goes through the checks
    that convert it or name the field in a ValidationError."""
    number = trial_number
    if type(number) is not int or number < 0:
        number = check_int(number, f"{where}trial_number")
    checked_params = params if type(params) is dict else check_mapping(params, f"{where}params")
    metrics = performance if type(performance) is dict else check_mapping(performance, f"{where}performance")
    value = metrics.get(objective)
    if value is not None and type(value) is not float:
        try:
            value = check_number(value, f"{where}performance.{objective}")
        except ValidationError:
            raise ValidationError(
                f"{where}performance.{objective}",
                f"the objective must be a number, got {type(value).__name__}",
            ) from None
    if state not in TRIAL_STATES:
        state = check_state(state)
    return NewTrial(
        trial_number=number,
        params=checked_params,
        performance=metrics,
        value=value,
        state=state,
        created_at=created,
        started_at=None if started_at is None else check_datetime(started_at, f"{where}started_at"),
        completed_at=None if completed_at is None else check_datetime(completed_at, f"{where}completed_at"),
        ttpt=None if ttpt is None else new_ttpt(ttpt, f"{where}ttpt.", created),
        attributes=check_mapping(attributes, f"{where}attributes", optional=True),
        strategy_code=strategy_code,  # type: ignore[arg-type]  # the repository checks text as given
        strategy_template=strategy_template,  # type: ignore[arg-type]
        generation_method=generation_method,  # type: ignore[arg-type]
        note=note,  # type: ignore[arg-type]
        tags=tags,  # type: ignore[arg-type]
    )


def trial_item(objective: str, created: datetime, item: object, index: int) -> NewTrial:
    """The NewTrial of a `log_trials` item: a mapping of `log_trial`'s parameter names, and `ttpt`."""
    where = f"trials[{index}]."
    if not isinstance(item, Mapping):
        raise ValidationError(where.rstrip("."), "expected a mapping of log_trial arguments")
    if not TRIAL_KEYS.issuperset(item):
        raise ValidationError(
            f"{where}{sorted(map(str, set(item) - TRIAL_KEYS))[0]}",
            f"unknown key; allowed keys are {', '.join(sorted(TRIAL_KEYS))}",
        )
    for required in ("trial_number", "params", "performance"):
        if required not in item:
            raise ValidationError(f"{where}{required}", "is required")
    return new_trial(objective, created, where, **item)


def new_ttpt(item: object, where: str, created: datetime) -> NewTTPTResult:
    """The NewTTPTResult of a mapping of `log_ttpt_result`'s arguments."""
    if not isinstance(item, Mapping):
        raise ValidationError(where.rstrip("."), "expected a mapping of log_ttpt_result arguments")
    unknown = set(item) - TTPT_KEYS
    if unknown:
        raise ValidationError(
            f"{where}{sorted(map(str, unknown))[0]}",
            f"unknown key; allowed keys are {', '.join(sorted(TTPT_KEYS))}",
        )
    for required in ("passed", "num_violations"):
        if required not in item:
            raise ValidationError(f"{where}{required}", "is required")
    return NewTTPTResult(
        passed=check_bool(item["passed"], f"{where}passed"),
        num_violations=check_int(item["num_violations"], f"{where}num_violations"),
        metrics=check_mapping(item.get("metrics"), f"{where}metrics", optional=True),
        violations=check_list(item.get("violations"), f"{where}violations"),
        created_at=created,
    )
