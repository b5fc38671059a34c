"""Importing the in-house tracker's JSON file: one nested document
`{"experiments": [{..., "trials": [{..., "ttpt_result": {...}}]}]}` with trial ids counted per
experiment. It becomes journal operations built from the records, through the codec, like any
write. Trial and TTPT ids are renumbered 1, 2, ... in file order; experiment ids are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker.errors import CorruptStoreError, ValidationError
from tracker.journal.items import to_item
from tracker.store.records import NewExperiment, NewTrial, NewTTPTResult

IN_HOUSE_OBJECTIVE = "sharpe"


def parse_timestamp(value: Any, where: str) -> datetime:
    """An in-house timestamp ('YYYY-MM-DD HH:MM:SS' or ISO 8601, naive meaning UTC) as aware UTC."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CorruptStoreError(f"{where}: {value!r} is not a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def objective_value(performance: Any) -> float | None:
    """The in-house objective (sharpe) out of a performance dict; NaN and non-numbers give None."""
    value = performance.get(IN_HOUSE_OBJECTIVE) if isinstance(performance, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def read_in_house_json(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    """Journal operations equivalent to an in-house JSON file; raises CorruptStoreError naming
    the place of anything it cannot read."""
    try:
        document = json.loads(data) if data.strip() else None
    except ValueError as exc:
        raise CorruptStoreError(f"{path} is neither a tracker journal nor an in-house JSON file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("experiments"), list):
        raise CorruptStoreError(
            f'{path} is neither a tracker journal nor an in-house JSON file (expected {{"experiments": [...]}})'
        )
    ids = {"trial": 1, "ttpt": 1}
    for index, e in enumerate(document["experiments"]):
        where = f"{path}: experiments[{index}]"
        try:
            experiment_id = int(e["id"])
            created = parse_timestamp(e.get("created_at"), where)
            new = NewExperiment(
                name=str(e["name"]),
                template=str(e["template"]),
                mode=str(e["mode"]),
                objective=IN_HOUSE_OBJECTIVE,
                direction="maximize",
                created_at=created,
                config=e.get("config"),
                summary=e.get("summary"),
            )
            yield {"op": "experiment", "experiment": {"id": experiment_id, **_item(new, where)}}
            items = _trials(e.get("trials") or [], experiment_id, where, ids)
            if items:
                yield {"op": "trials", "experiment_id": experiment_id, "trials": items}
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CorruptStoreError):
                raise
            raise CorruptStoreError(f"{where}: missing or malformed field ({exc})") from None


def _trials(trials: list[Any], experiment_id: int, where: str, ids: dict[str, int]) -> list[dict[str, Any]]:
    items = []
    seen: set[int] = set()
    for index, t in enumerate(trials):
        t_where = f"{where}.trials[{index}]"
        number = int(t["trial_number"])
        if number in seen:
            raise CorruptStoreError(
                f"{t_where}: trial number {number} appears twice in experiment {experiment_id}; "
                "remove or renumber one of them, then open the file again"
            )
        seen.add(number)
        created = parse_timestamp(t.get("created_at"), t_where)
        check = t.get("ttpt_result")
        new = NewTrial(
            trial_number=number,
            params=t.get("params", {}),
            performance=t.get("performance", {}),
            state="complete",
            created_at=created,
            value=objective_value(t.get("performance")),
            strategy_code=t.get("strategy_code"),
            strategy_template=t.get("strategy_template"),
            generation_method=t.get("generation_method"),
        )
        item = {"id": ids["trial"], **_item(new, t_where)}
        if check:
            result = NewTTPTResult(
                passed=bool(check["passed"]),
                num_violations=int(check["num_violations"]),
                created_at=parse_timestamp(check.get("created_at", t.get("created_at")), t_where),
                metrics=check.get("metrics"),
            )
            item["ttpt"] = {"id": ids["ttpt"], "trial_id": ids["trial"], **_item(result, t_where)}
            ids["ttpt"] += 1
        ids["trial"] += 1
        items.append(item)
    return items


def _item(record: Any, where: str) -> dict[str, Any]:
    try:
        return to_item(record, f"{where}.")
    except ValidationError as exc:
        raise CorruptStoreError(f"cannot store a value ({exc})") from None
