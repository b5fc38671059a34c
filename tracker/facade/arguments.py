"""Checks of the public API's arguments: each returns the clean plain value (numpy numbers, 0/1
flags and ISO strings turned into Python values) or raises ValidationError. Whether a value can
be stored is the repository's check (`tracker.codec`), made before anything is written."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tracker.errors import ValidationError
from tracker.store.codec import check_string
from tracker.store.records import TRIAL_STATES, TrialState


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
