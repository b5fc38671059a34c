"""Reading the in-house tracker's data: its nested JSON file and the values in its SQLite tables.

In-house values are JSON text written by `json.dumps` (NaN/Infinity tokens included), config and
summary may be NULL or '{}', booleans are 0/1 and timestamps are naive UTC text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker.errors import CorruptStoreError, ValidationError
from tracker.values import storage_number, to_storage

IN_HOUSE_OBJECTIVE = "sharpe"
IN_HOUSE_DDL = (
    "CREATE TABLE experiments (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "template TEXT NOT NULL, mode TEXT NOT NULL, config TEXT, "
    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, summary TEXT)",
    "CREATE TABLE trials (id INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id INTEGER NOT NULL, "
    "trial_number INTEGER NOT NULL, params TEXT NOT NULL, performance TEXT NOT NULL, "
    "strategy_code TEXT, strategy_template TEXT, generation_method TEXT, "
    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
    "FOREIGN KEY (experiment_id) REFERENCES experiments(id))",
    "CREATE TABLE ttpt_results (id INTEGER PRIMARY KEY AUTOINCREMENT, trial_id INTEGER NOT NULL, "
    "passed BOOLEAN NOT NULL, num_violations INTEGER NOT NULL, metrics TEXT, "
    "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, FOREIGN KEY (trial_id) REFERENCES trials(id))",
)
"""The in-house tracker's DDL, verbatim (SQLite)."""


def parse_json_text(text: str | bytes | None, where: str) -> Any:
    """Parse in-house JSON text (NaN and Infinity tokens allowed) into storage form."""
    if text is None:
        return None
    try:
        return to_storage(json.loads(text), where)
    except (ValueError, ValidationError) as exc:
        raise CorruptStoreError(f"{where}: cannot read the stored JSON ({exc})") from None


def _stored(value: Any, where: str) -> Any:
    try:
        return to_storage(value, where)
    except ValidationError as exc:
        raise CorruptStoreError(f"{where}: cannot store a value ({exc})") from None


def parse_timestamp(value: Any, where: str) -> datetime:
    """An in-house timestamp ('YYYY-MM-DD HH:MM:SS' or ISO 8601, naive meaning UTC) as aware UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise CorruptStoreError(f"{where}: {value!r} is not a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def objective_value(performance: Any) -> float | None:
    """The in-house objective (sharpe) out of a storage-form performance dict; NaN gives None."""
    if not isinstance(performance, dict):
        return None
    value = storage_number(performance.get(IN_HOUSE_OBJECTIVE))
    return None if value is None or math.isnan(value) else value


def read_in_house_json(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    """Journal operations equivalent to an in-house JSON file. Trial and TTPT ids, which the
    in-house file counted per experiment, are renumbered 1, 2, ... in file order."""
    try:
        document = json.loads(data) if data.strip() else None
    except ValueError as exc:
        raise CorruptStoreError(f"{path} is neither a tracker journal nor an in-house JSON file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("experiments"), list):
        raise CorruptStoreError(
            f'{path} is neither a tracker journal nor an in-house JSON file (expected {{"experiments": [...]}})'
        )
    next_trial = next_ttpt = 1
    for index, e in enumerate(document["experiments"]):
        where = f"{path}: experiments[{index}]"
        try:
            experiment_id = int(e["id"])
            yield {
                "op": "experiment",
                "experiment": {
                    "id": experiment_id,
                    "name": str(e["name"]),
                    "template": str(e["template"]),
                    "mode": str(e["mode"]),
                    "config": _stored(e.get("config"), where),
                    "objective": IN_HOUSE_OBJECTIVE,
                    "direction": "maximize",
                    "created_at": parse_timestamp(e.get("created_at"), where).isoformat(),
                    "summary": _stored(e.get("summary"), where),
                },
            }
            items = []
            seen: set[int] = set()
            for t_index, t in enumerate(e.get("trials") or []):
                t_where = f"{where}.trials[{t_index}]"
                number = int(t["trial_number"])
                if number in seen:
                    raise CorruptStoreError(
                        f"{t_where}: trial number {number} appears twice in experiment {experiment_id}; "
                        "remove or renumber one of them, then open the file again"
                    )
                seen.add(number)
                performance = _stored(t.get("performance", {}), t_where)
                item: dict[str, Any] = {
                    "id": next_trial,
                    "trial_number": number,
                    "params": _stored(t.get("params", {}), t_where),
                    "performance": performance,
                    "value": _stored(objective_value(performance), t_where),
                    "state": "complete",
                    "created_at": parse_timestamp(t.get("created_at"), t_where).isoformat(),
                    "strategy_code": t.get("strategy_code"),
                    "strategy_template": t.get("strategy_template"),
                    "generation_method": t.get("generation_method"),
                    "started_at": None,
                    "completed_at": None,
                }
                check = t.get("ttpt_result")
                if check:
                    item["ttpt"] = {
                        "id": next_ttpt,
                        "trial_id": next_trial,
                        "passed": bool(check["passed"]),
                        "num_violations": int(check["num_violations"]),
                        "metrics": _stored(check.get("metrics"), t_where),
                        "violations": None,
                        "created_at": parse_timestamp(
                            check.get("created_at", t.get("created_at")), t_where
                        ).isoformat(),
                    }
                    next_ttpt += 1
                next_trial += 1
                items.append(item)
            if items:
                yield {"op": "trials", "experiment_id": experiment_id, "trials": items}
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStoreError(f"{where}: missing or malformed field ({exc})") from None
