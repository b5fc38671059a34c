"""The one value codec: JSON values in storage form and back. Values are encoded when a
repository stores them (through `tracker.store.checks`) and decoded by each backend's row reader
(`tracker.sql.rows`, `tracker.journal.items`); the SQL engine and the journal file only turn
storage form into JSON text and back (`dumps`, `loads`).

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
from datetime import UTC, date, datetime
from typing import Any

import orjson

from tracker.errors import ValidationError

FLOAT_TAG = "$float"
INT_TAG = "$int"
DICT_TAG = "$dict"
_RESERVED = frozenset((FLOAT_TAG, INT_TAG, DICT_TAG))
MAX_DEPTH = 64
MAX_INT_BITS = 4096
_INT64 = range(-(2**63), 2**63)


def encode(value: Any, field: str) -> Any:
    """Return `value` in storage form; raise ValidationError naming `field` if it cannot be stored."""
    try:
        return _fast(value, 0)
    except _Careful:
        return _encode(value, field, 0, set())


class _Careful(Exception):
    """Raised by `_fast` for anything outside its common case: `_encode` then walks the value with
    paths, cycle detection and every conversion (the result is the same where both apply)."""


def _fast(value: Any, depth: int) -> Any:
    """Storage form of plain JSON made of dicts, lists, ASCII strings, floats, 64-bit ints, bools
    and None: the hot path of logging trials, without building a path for every item."""
    kind = type(value)
    if kind is float:
        if -1e16 < value < 1e16 and (value or math.copysign(1.0, value) > 0):
            return value
        return encode_float(value)
    if kind is str:
        if value.isascii() and "\x00" not in value:
            return value
        raise _Careful
    if kind is int:
        if -(2**63) <= value < 2**63:
            return value
        raise _Careful
    if kind is bool or value is None:
        return value
    if depth >= MAX_DEPTH:
        raise _Careful
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or "\x00" in key:
                raise _Careful
            leaf = type(item)  # plain leaves inline: a call per leaf costs more than its check
            if (
                (leaf is float and -1e16 < item < 1e16 and item)
                or (leaf is int and -(2**63) <= item < 2**63)
                or (leaf is str and item.isascii() and "\x00" not in item)
            ):
                out[key] = item
            else:
                out[key] = _fast(item, depth + 1)
        if len(out) == 1 and next(iter(out)) in _RESERVED:
            return {DICT_TAG: out}
        return out
    if kind is list:
        return [_fast(item, depth + 1) for item in value]
    raise _Careful


def _encode(value: Any, path: str, depth: int, active: set[int]) -> Any:
    kind = type(value)
    if kind is str:
        return check_string(value, path)
    if kind is float:
        return encode_float(value)
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
        return check_string(str(value), path)
    if isinstance(value, int):
        return _encode(int(value), path, depth, active)
    if isinstance(value, float):
        return encode_float(float(value))
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
            check_string(key, f"{path} key")
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


def encode_float(value: float) -> Any:
    """A float in storage form: itself, or tagged where JSON or JSONB would change it."""
    if math.isfinite(value):
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return {FLOAT_TAG: "-0.0"}
        return {FLOAT_TAG: repr(value)} if abs(value) >= 1e16 else value  # repr has "e+" from 1e16 on
    return {FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def check_string(value: str, path: str) -> str:
    """`value` if every backend can store it (no NUL, valid Unicode); else ValidationError."""
    if value.isascii() and "\x00" not in value:
        return value
    if "\x00" in value:
        raise ValidationError(path, "contains a NUL character (\\x00), which no backend can store; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(path, "contains a lone surrogate; it is not valid Unicode") from None
    return value


def decode(value: Any) -> Any:
    """Decode storage form back into Python values (tags become floats and plain dicts). The
    result shares nothing with `value`: containers are copied."""
    kind = type(value)
    if kind is dict:
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == FLOAT_TAG and type(inner) is str:
                return float(inner)
            if key == INT_TAG and type(inner) is str:
                return int(inner)
            if key == DICT_TAG and type(inner) is dict:
                value = inner
        for item in value.values():  # a flat dict (most params and metrics) is copied as it is
            if type(item) is dict or type(item) is list:
                return {k: decode(v) for k, v in value.items()}
        return value.copy()
    if kind is list:
        return [decode(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


def dumps(value: Any) -> str:
    """Serialise a storage-form value to compact JSON text."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON text in storage form (without decoding tags). Storage form holds no integer
    beyond 64 bits, which is the range this parser reads exactly."""
    return orjson.loads(text)


def number(value: Any) -> float | None:
    """The float a storage-form scalar stands for, or None if it is not a number."""
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is dict and len(value) == 1:
        if type(value.get(FLOAT_TAG)) is str:
            return float(value[FLOAT_TAG])
        if type(value.get(INT_TAG)) is str:
            return float(int(value[INT_TAG]))
    return None


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (naive text means UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
