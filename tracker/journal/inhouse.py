"""Importing the in-house tracker's JSON file: one nested document
`{"experiments": [{..., "trials": [{..., "ttpt_result": {...}}]}]}` with trial ids counted per
experiment. It becomes journal operations built from the records, through the codec, like any
write. Trial and TTPT ids are renumbered 1, 2, ... in file order; experiment ids are kept.

Keys the in-house file format does not have (a `ttpt_results` list where the key is
`ttpt_result`) are not imported: each is named, with where it is, in an UnknownKeyWarning, or,
with `strict`, the file is refused.
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker.errors import CorruptStoreError, UnknownKeyWarning, ValidationError
from tracker.store import codec
from tracker.store.records import NewExperiment, NewTrial, NewTTPTResult

IN_HOUSE_OBJECTIVE = "sharpe"
KNOWN_KEYS = {
    "": frozenset({"experiments"}),
    "experiment": frozenset({"id", "name", "template", "mode", "config", "created_at", "summary", "trials"}),
    "trial": frozenset(
        {
            "id",
            "experiment_id",
            "trial_number",
            "params",
            "performance",
            "strategy_code",
            "strategy_template",
            "generation_method",
            "created_at",
            "ttpt_result",
        }
    ),
    "ttpt_result": frozenset({"id", "trial_id", "passed", "num_violations", "metrics", "created_at"}),
}
"""The keys of the in-house JSON file at each level: the columns of its SQLite tables, and the
nesting (`experiments`, `trials`, `ttpt_result`)."""


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


def unknown_keys(document: Any) -> list[str]:
    """Each key of an in-house document that its format does not have, as `where: 'key'`, with
    the closest known key when one is close (`did you mean 'ttpt_result'?`)."""
    found = _unknown(document, "", "")
    if not isinstance(document, dict):
        return found
    for i, experiment in enumerate(document.get("experiments") or []):
        where = f"experiments[{i}]"
        found += _unknown(experiment, "experiment", where)
        trials = experiment.get("trials") if isinstance(experiment, dict) else None
        for j, trial in enumerate(trials if isinstance(trials, list) else []):
            found += _unknown(trial, "trial", f"{where}.trials[{j}]")
            if isinstance(trial, dict) and isinstance(trial.get("ttpt_result"), dict):
                found += _unknown(trial["ttpt_result"], "ttpt_result", f"{where}.trials[{j}].ttpt_result")
    return found


def _unknown(item: Any, level: str, where: str) -> list[str]:
    if not isinstance(item, dict):
        return []
    known = KNOWN_KEYS[level]
    found = []
    for key in item:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(f"{where or 'top level'}: {key!r}{hint}")
    return found


def check_keys(document: Any, path: Path, *, strict: bool) -> None:
    """Warn (UnknownKeyWarning) about each key the in-house format does not have, or, with
    `strict`, raise CorruptStoreError listing them."""
    found = unknown_keys(document)
    if not found:
        return
    listed = "; ".join(found)
    if strict:
        raise CorruptStoreError(
            f"{path} has key(s) the in-house JSON format does not have: {listed}; rename or remove them "
            "(the format is in docs/compatibility.md), or open it without strict=True to import the rest"
        )
    warnings.warn(
        UnknownKeyWarning(f"{path}: key(s) not in the in-house JSON format, not imported: {listed}"), stacklevel=2
    )


def read_in_house_json(data: bytes, path: Path, *, strict: bool = False) -> Iterator[dict[str, Any]]:
    """Journal operations equivalent to an in-house JSON file; raises CorruptStoreError naming
    the place of anything it cannot read. Unknown keys warn, or with `strict` are refused
    (`check_keys`)."""
    try:
        document = json.loads(data) if data.strip() else None
    except ValueError as exc:
        raise CorruptStoreError(f"{path} is neither a tracker journal nor an in-house JSON file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("experiments"), list):
        raise CorruptStoreError(
            f'{path} is neither a tracker journal nor an in-house JSON file (expected {{"experiments": [...]}})'
        )
    check_keys(document, path, strict=strict)
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
        return codec.to_item(record, f"{where}.")
    except ValidationError as exc:
        raise CorruptStoreError(f"cannot store a value ({exc})") from None
