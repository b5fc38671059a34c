"""FROZEN: the value encoding as revision 0002 wrote it (tracker/values.py of 2026-11-30).

Never edit this file: revisions that use it must do the same thing forever. A later encoding
goes into a new file (codec_v2.py).

Storage form is plain JSON that every backend keeps exactly (SQLite text, PostgreSQL JSONB, the
JSON journal). Floats that plain JSON or JSONB would change are stored as a one-key object:

* NaN, +inf, -inf  ->  {"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}
* -0.0 and floats whose shortest repr has a positive exponent (|x| >= 1e16), which JSONB would
  turn into integers  ->  {"$float": repr(x)}
* integers outside the signed 64-bit range, which fast JSON parsers read as floats
  ->  {"$int": "12345678901234567890123"}

A user dict whose only key is "$float", "$int" or "$dict" is wrapped as {"$dict": {...}}, so no
user value can be mistaken for a tag. numpy scalars and arrays become Python numbers and lists;
datetimes (pandas timestamps included) become ISO 8601 strings; tuples become lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


class ValidationError(ValueError):
    """A value that cannot be stored."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")


FLOAT_TAG = "$float"
INT_TAG = "$int"
DICT_TAG = "$dict"
_RESERVED = frozenset((FLOAT_TAG, INT_TAG, DICT_TAG))
MAX_DEPTH = 64
MAX_INT_BITS = 4096
_INT64 = range(-(2**63), 2**63)


def to_storage(value: Any, field: str) -> Any:
    """Return `value` in storage form; raise ValidationError naming `field` if it cannot be stored."""
    return _encode(value, field, 0, set())


def _encode(value: Any, path: str, depth: int, active: set[int]) -> Any:
    kind = type(value)
    if kind is str:
        return _check_str(value, path)
    if kind is float:
        return _encode_float(value)
    if kind is bool or value is None:
        return value
    if kind is int:
        if value in _INT64:
            return value
        if value.bit_length() > MAX_INT_BITS:
            raise ValidationError(path, f"integer has more than {MAX_INT_BITS} bits; store it as a string")
        return {INT_TAG: str(value)}
    if depth >= MAX_DEPTH:
        raise ValidationError(path, f"nested deeper than {MAX_DEPTH} levels; flatten the structure")
    if isinstance(value, Mapping):
        return _encode_mapping(value, path, depth, active)
    if isinstance(value, list | tuple):
        _enter(value, path, active)
        try:
            return [_encode(v, f"{path}[{i}]", depth + 1, active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _check_str(str(value), path)
    if isinstance(value, int):
        return _encode(int(value), path, depth, active)
    if isinstance(value, float):
        return _encode_float(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    module = kind.__module__.split(".")[0]
    if module == "numpy":
        return _encode_numpy(value, path, depth, active)
    if module == "pandas" and hasattr(value, "isoformat"):
        if str(value) == "NaT":
            return None
        return str(value.isoformat())
    raise ValidationError(
        path,
        f"{kind.__name__} is not JSON-able; use dicts with string keys, lists, strings, numbers, booleans and None",
    )


def _encode_mapping(value: Mapping[Any, Any], path: str, depth: int, active: set[int]) -> Any:
    _enter(value, path, active)
    try:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(path, f"key {key!r} is a {type(key).__name__}; dict keys must be strings")
            _check_str(key, f"{path} key")
            out[str(key)] = _encode(item, f"{path}.{key}", depth + 1, active)
    finally:
        active.discard(id(value))
    if len(out) == 1 and next(iter(out)) in _RESERVED:
        return {DICT_TAG: out}
    return out


def _encode_numpy(value: Any, path: str, depth: int, active: set[int]) -> Any:
    if hasattr(value, "tolist") and hasattr(value, "ndim") and value.ndim > 0:
        return _encode(value.tolist(), path, depth, active)
    if hasattr(value, "item"):
        item = value.item()
        if type(item).__module__.split(".")[0] == "numpy" or isinstance(item, bytes):
            raise ValidationError(path, f"numpy {type(value).__name__} is not JSON-able")
        return _encode(item, path, depth, active)
    raise ValidationError(path, f"numpy {type(value).__name__} is not JSON-able")


def _enter(container: object, path: str, active: set[int]) -> None:
    if id(container) in active:
        raise ValidationError(path, "contains a reference to itself (a cycle); it cannot be stored")
    active.add(id(container))


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return {FLOAT_TAG: "-0.0"}
        text = repr(value)
        return {FLOAT_TAG: text} if "e+" in text else value
    return {FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _check_str(value: str, path: str) -> str:
    if "\x00" in value:
        raise ValidationError(path, "contains a NUL character (\\x00), which no backend can store; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(path, "contains a lone surrogate; it is not valid Unicode") from None
    return value


def from_storage(value: Any) -> Any:
    """Decode storage form back into Python values (tags become floats and plain dicts)."""
    if type(value) is dict:
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == FLOAT_TAG and type(inner) is str:
                return float(inner)
            if key == INT_TAG and type(inner) is str:
                return int(inner)
            if key == DICT_TAG and type(inner) is dict:
                return {k: from_storage(v) for k, v in inner.items()}
        return {k: from_storage(v) for k, v in value.items()}
    if type(value) is list:
        return [from_storage(v) for v in value]
    return value


def storage_number(value: Any) -> float | None:
    """The float a storage-form scalar stands for, or None if it is not a number."""
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is dict and len(value) == 1:
        if type(value.get(FLOAT_TAG)) is str:
            return float(value[FLOAT_TAG])
        if type(value.get(INT_TAG)) is str:
            return float(int(value[INT_TAG]))
    return None
