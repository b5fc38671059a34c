"""The one codec at the repository boundary: it validates what a repository stores and encodes
it losslessly, and decodes what it reads. Both the SQL and the journal repository call it.

`to_row` turns a record into its stored fields by each field's kind (see `tracker.records`);
`encode`/`decode` are the JSON-value part.

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
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import orjson

from tracker.errors import ValidationError
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

R = TypeVar("R")

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
        return _encode_float(value)
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
        return check_string(str(value), path)
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


def _encode_float(value: float) -> Any:
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
    """Decode storage form back into Python values (tags become floats and plain dicts)."""
    if type(value) is dict:
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == FLOAT_TAG and type(inner) is str:
                return float(inner)
            if key == INT_TAG and type(inner) is str:
                return int(inner)
            if key == DICT_TAG and type(inner) is dict:
                return {k: decode(v) for k, v in inner.items()}
        return {k: decode(v) for k, v in value.items()}
    if type(value) is list:
        return [decode(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Serialise a storage-form value to compact JSON text."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON text in storage form (without decoding tags). Storage form holds no integer
    beyond 64 bits, which is the range this parser reads exactly."""
    return orjson.loads(text)


def decode_text(text: str | bytes | None) -> Any:
    """Parse and decode JSON text read from storage; None stays None."""
    if text is None:
        return None
    value = loads(text)
    tagged = "$" in text if isinstance(text, str) else b"$" in text
    return decode(value) if tagged else value


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


# records --------------------------------------------------------------------------------------

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


def _plan(record_type: type) -> tuple[tuple[str, Kind, Check], ...]:
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
    for name, kind, check in _plan(type(record)):
        value = getattr(record, name)
        row[name] = None if value is None and kind in _NONE_IS_NONE else check(value, where + name)
    return row


_NONE_IS_NONE = frozenset({"json", "time", "text", "code", "number"})
"""Kinds whose check gives None for None (so it need not be called, which is most of the cost of
a trial's optional fields in a batch)."""


def to_item(record: Any, where: str = "") -> dict[str, Any]:
    """`to_row` as plain JSON for the journal: times as ISO 8601 text, numbers encoded."""
    return _as_item(type(record), to_row(record, where))


def trial_rows(
    trials: Sequence[NewTrial], *, item: bool = False
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The rows of a batch of trials and, by position, of their TTPT results (`to_row`, or with
    `item` `to_item`). A ValidationError names the trial as `trials[i].` in a batch of several."""
    convert = to_item if item else to_row
    rows, checks = [], {}
    for index, trial in enumerate(trials):
        try:
            rows.append(convert(trial))
            if trial.ttpt is not None:
                checks[index] = convert(trial.ttpt, "ttpt.")
        except ValidationError as exc:
            raise (exc.within(f"trials[{index}].") if len(trials) > 1 else exc) from None
    return rows, checks


def to_values(record_type: type, values: Mapping[str, Any], where: str = "", *, item: bool = False) -> dict[str, Any]:
    """Some fields of a `record_type` record, checked and in storage form as `to_row` (or, with
    `item`, `to_item`) makes them."""
    checks = {name: check for name, _, check in _plan(record_type)}
    row = {name: checks[name](value, where + name) for name, value in values.items()}
    return _as_item(record_type, row) if item else row


def _as_item(record_type: type, row: dict[str, Any]) -> dict[str, Any]:
    for name, kind, _ in _plan(record_type):
        value = row.get(name)
        if value is not None:
            if kind == "time":
                row[name] = value.isoformat()
            elif kind in ("number", "metric"):
                row[name] = _encode_float(value)
    return row


def from_item(record_type: type[R], item: Mapping[str, Any]) -> R:
    """The record stored as journal `item` (storage form), decoded."""
    values: dict[str, Any] = {}
    for name, kind, _ in _plan(record_type):
        value = item.get(name)
        if value is not None:
            if kind == "json":
                value = decode(value)
            elif kind == "time":
                value = parse_time(value)
            elif kind in ("number", "metric"):
                value = number(value)
        elif kind == "tags":
            value = {}
        values[name] = value
    return record_type(**values)


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (naive text means UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_artifact(new: NewArtifact) -> tuple[NewArtifact, str]:
    """The artifact with its name checked and its SHA-256; raises ValidationError for a bad name
    or media type, bytes that are not bytes, or a file over `tracker.blobs.MAX_ARTIFACT_BYTES`."""
    from tracker.store import blobs

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
    from tracker.errors import DuplicateStepError

    checked = [NewStepMetric(**to_row(m, f"metrics[{i}].")) for i, m in enumerate(metrics)]
    counts = Counter((m.key, m.step) for m in checked)
    repeated = sorted(pair for pair, count in counts.items() if count > 1)
    if repeated:
        raise DuplicateStepError(trial_id, repeated)
    return checked
