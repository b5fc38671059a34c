"""The in-house optimizer's TTPT records, read: the violation logs its `RuntimeTTPTMonitor` writes
(`logs/ttpt_violations/violation_trial_{N}_{YYYYmmdd_HHMMSS}.json`, usually cut short inside
`metrics`, where `json.dump` met objects it cannot write) and its in-memory `validation_history`.

Each record holds `trial_number` (the in-house count, from 1), `timestamp`, `params`, `passed`,
`violations` and `metrics`. A record is usable when its first four are complete; what else is
missing is recorded (`metrics_truncated`, `in_house_log.cut_at`), never guessed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker.errors import ValidationError
from tracker.store.records import NewTTPTResult
from tracker.transfer.salvage import Unreadable, salvage

LOG_GLOB = "violation_trial_*.json"
_LOG_NAME = re.compile(r"violation_trial_(\d+)_(\d{8}_\d{6})\.json")
REQUIRED = ("trial_number", "params", "passed", "violations")
"""The keys a record needs to become a TTPT result on a trial."""
OWN = ("passed", "violations", "metrics")
"""The keys that become the TTPT result's own fields; every other key goes to `in_house_log`."""


@dataclass(frozen=True)
class Check:
    """One in-house TTPT record as read: `fields` holds its complete top-level keys, `cut` the
    place where its file stops (None when whole), `problem` why it cannot be imported (None when
    it can), `stamp` the time in its file name."""

    source: str
    fields: dict[str, Any]
    cut: str | None = None
    problem: str | None = None
    stamp: datetime | None = None
    open_key: str | None = None
    """The top-level key the file stops inside."""

    @property
    def number(self) -> Any:
        """The in-house trial number (counted from 1)."""
        return self.fields.get("trial_number")

    def key(self) -> tuple[str, str]:
        """What identifies the checkpoint in any import: its in-house number and time, so a log and
        the history entry it was written from are one record."""
        moment = self.fields.get("timestamp")
        return (json.dumps(self.number), str(moment) if moment is not None else self.source)


def read_folder(folder: str | Path) -> list[Check]:
    """Every `violation_trial_*.json` under `folder` (searched recursively), by trial number; raises
    ValidationError when `folder` is not a folder."""
    root = Path(folder)
    if not root.is_dir():
        raise ValidationError("folder", f"{str(folder)!r} is not a folder; give the monitor's logs/ttpt_violations")
    paths = sorted((path for path in root.rglob(LOG_GLOB) if path.is_file()), key=_log_order)
    return [read_log(path, root) for path in paths]


def _log_order(path: Path) -> tuple[int, str]:
    """By the in-house trial number in the file name (logs without one last), then by path."""
    named = _LOG_NAME.fullmatch(path.name)
    return (int(named[1]) if named else 2**63, path.as_posix())


def read_log(path: Path, root: Path) -> Check:
    """One log file, whole or cut short: every complete top-level key is kept."""
    source = path.relative_to(root).as_posix()
    named = _LOG_NAME.fullmatch(path.name)
    stamp = datetime.strptime(named[2], "%Y%m%d_%H%M%S").replace(tzinfo=UTC) if named else None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        found = salvage(text)
    except (OSError, Unreadable) as exc:
        return Check(source, {}, problem=f"nothing readable ({exc})", stamp=stamp)
    problem = _problem(found.value, found.cut, found.open_key)
    return Check(source, found.value, found.cut, problem, stamp, found.open_key)


def history_checks(history: object) -> list[Check]:
    """The records of a monitor's `validation_history` (a list of dicts; objects inside, such as
    TTPTViolation, are turned into plain values); raises ValidationError for anything but a list."""
    if isinstance(history, Mapping | str | bytes) or not isinstance(history, Sequence):
        raise ValidationError(
            "history", f"expected the monitor's validation_history list, got {type(history).__name__}"
        )
    checks = []
    for index, entry in enumerate(history):
        source = f"validation_history[{index}]"
        fields = plain(entry)
        if not isinstance(fields, dict):
            checks.append(Check(source, {}, problem=f"expected a dict, got {type(entry).__name__}"))
        else:
            checks.append(Check(source, fields, None, _problem(fields, None, None)))
    return checks


def _problem(fields: dict[str, Any], cut: str | None, open_key: str | None) -> str | None:
    missing = [key for key in REQUIRED if key not in fields or key == open_key]
    if missing:
        where = f"; the file stops at {cut or 'the start'}" if cut is not None else ""
        return f"{', '.join(missing)} missing or incomplete{where}"
    kinds = {"trial_number": int, "params": dict, "passed": bool, "violations": list}
    for key, kind in kinds.items():
        if not isinstance(fields[key], kind) or (kind is int and isinstance(fields[key], bool)):
            return f"{key} is a {type(fields[key]).__name__}, not a {kind.__name__}"
    return None


def plain(value: Any) -> Any:
    """`value` as JSON values: dataclasses and objects with `to_dict()` or attributes become dicts,
    enums their values, numpy scalars Python numbers, datetimes ISO text, anything else its str."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value) if isinstance(value, float) else int(value)  # numpy float64 is a float
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "to_dict", None)):
        return plain(value.to_dict())
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return plain(value.item())
    if hasattr(value, "__dict__"):
        return plain(vars(value))
    return str(value)


def new_result(check: Check, matched_by: str, now: datetime) -> NewTTPTResult:
    """The TTPT result a usable record becomes: its `passed` and `violations`, its `metrics` with
    `metrics_truncated: true` when they were lost or cut, and every other key (with the source,
    the matching rule and where the file stops) under `metrics.in_house_log`."""
    fields = check.fields
    metrics = fields.get("metrics")
    stored: dict[str, Any] = dict(metrics) if isinstance(metrics, dict) else {}
    origin = {key: value for key, value in fields.items() if key not in OWN}
    if metrics is not None and not isinstance(metrics, dict):
        origin["metrics"] = metrics
    origin.update(source=check.source, matched_by=matched_by)
    if check.cut is not None:
        origin["cut_at"] = check.cut
    if "metrics" not in fields or check.open_key == "metrics":
        stored["metrics_truncated"] = True
    stored["in_house_log"] = origin
    violations = fields["violations"]
    return NewTTPTResult(
        passed=fields["passed"],
        num_violations=len(violations),
        created_at=_moment(fields.get("timestamp")) or check.stamp or now,
        metrics=stored,
        violations=violations,
    )


def _moment(value: Any) -> datetime | None:
    """An in-house timestamp (ISO 8601; naive means UTC, as in the in-house import) or None."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def stored_key(metrics: Any) -> tuple[str, str] | None:
    """The key (as `Check.key`) of a TTPT result imported from an in-house record, else None."""
    origin = metrics.get("in_house_log") if isinstance(metrics, dict) else None
    if not isinstance(origin, dict):
        return None
    moment = origin.get("timestamp")
    return (json.dumps(origin.get("trial_number")), str(moment) if moment is not None else str(origin.get("source")))


def params_key(params: Any) -> str:
    """Params in one canonical text: keys sorted, numbers as floats (20 and 20.0 are one value)."""
    return json.dumps(_canonical(params), sort_keys=True)


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        return repr(number) if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return str(value)
