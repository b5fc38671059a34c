"""FROZEN: the in-house schema and the reading of its SQLite values, as revisions 0001 and 0002
use them (tracker/inhouse.py of 2026-11-30). Never edit this file.

In-house values are JSON text written by `json.dumps` (NaN/Infinity tokens included), config and
summary may be NULL or '{}', booleans are 0/1 and timestamps are naive UTC text.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from tracker._migrations.frozen.codec_v1 import ValidationError, storage_number, to_storage


class UnreadableValueError(ValueError):
    """An in-house value that cannot be read."""


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
        raise UnreadableValueError(f"{where}: cannot read the stored JSON ({exc})") from None


def parse_timestamp(value: Any, where: str) -> datetime:
    """An in-house timestamp ('YYYY-MM-DD HH:MM:SS' or ISO 8601, naive meaning UTC) as aware UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise UnreadableValueError(f"{where}: {value!r} is not a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def objective_value(performance: Any) -> float | None:
    """The in-house objective (sharpe) out of a storage-form performance dict; NaN gives None."""
    if not isinstance(performance, dict):
        return None
    value = storage_number(performance.get(IN_HOUSE_OBJECTIVE))
    return None if value is None or math.isnan(value) else value
