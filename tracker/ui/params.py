"""The query parameters of the dashboard's pages and API, parsed: a bad one raises
ValidationError naming it; a path id no store can hold raises NotFoundError."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracker.errors import NotFoundError, ValidationError
from tracker.read.browser import ID_LIMIT, Browser, ExperimentPageQuery, TrialPageQuery, encode_cursor
from tracker.store.records import TRIAL_STATES

if TYPE_CHECKING:
    from starlette.requests import Request


def window(params: Mapping[str, str]) -> tuple[int, int]:
    """(offset, limit); a `page` (from 1) sets the offset when given."""
    limit = int_param(params, "limit", 50)
    page = params.get("page")
    if page:
        number = int_param(params, "page", 1)
        if number < 1:
            raise ValidationError("page", f"must be 1 or more, got {number}")
        return (number - 1) * limit, limit
    return int_param(params, "offset", 0), limit


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    """The integer query parameter `name`; ValidationError unless it is one of 64 bits."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(name, f"must be an integer, got {raw!r}") from None
    if not -ID_LIMIT <= value < ID_LIMIT:
        raise ValidationError(name, f"must be between -2**63 and 2**63 - 1, got {raw}")
    return value


def path_id(request: Request, key: str, kind: str) -> int:
    """The id in the path (digits only, by the route); NotFoundError for one no store can hold."""
    value = int(request.path_params[key])
    if value >= ID_LIMIT:
        raise NotFoundError(f"{kind} {value} does not exist (ids are below 2**63)")
    return value


def float_param(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, f"must be a number, got {raw!r}") from None
    if math.isnan(value):
        raise ValidationError(name, "must be a number, got NaN")
    return value


def time_param(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    from tracker.store.codec import parse_time

    try:
        return parse_time(raw.strip())
    except ValueError:
        raise ValidationError(name, f"must be a date or an ISO 8601 time (2026-01-31), got {raw!r}") from None


def order_param(params: Mapping[str, str]) -> bool | None:
    raw = params.get("order")
    if raw is None or raw == "":
        return None
    if raw not in ("asc", "desc"):
        raise ValidationError("order", f"must be asc or desc, got {raw!r}")
    return raw == "desc"


def experiment_query(params: Mapping[str, str]) -> ExperimentPageQuery:
    """The query of `GET /api/experiments` and of the experiments page."""
    ids = params.get("ids")
    offset, limit = window(params)
    order = order_param(params)
    return ExperimentPageQuery(
        offset=offset,
        limit=limit,
        sort=params.get("sort") or "id",
        descending=order if order is not None else not params.get("sort"),  # newest first by default
        text=(params.get("q") or "").strip() or None,
        max_violation_rate=float_param(params, "max_violation_rate"),
        min_best_value=float_param(params, "min_best"),
        created_after=time_param(params, "created_after"),
        created_before=time_param(params, "created_before"),
        tag=tag_param(params),
        ids=None if not ids else tuple(id_list(ids, "ids")),
    )


def tag_param(params: Mapping[str, str]) -> tuple[str, str | None] | None:
    """`tag=NAME` as (NAME, None), `tag=NAME=VALUE` as (NAME, VALUE) (tag names hold no `=`)."""
    raw = (params.get("tag") or "").strip()
    if not raw:
        return None
    name, equals, value = raw.partition("=")
    return name.strip(), value if equals else None


def trial_query(params: Mapping[str, str], states: Sequence[str], default_sort: str = "trial_number") -> TrialPageQuery:
    """The query of `GET /api/experiments/{id}/trials` (by trial number unless `sort` says
    otherwise; the experiment page passes "value"); `states` are the values of `state`
    (repeated, or comma-separated)."""
    chosen = [s for raw in states for s in raw.split(",") if s]
    for state in chosen:
        if state not in TRIAL_STATES:
            raise ValidationError("state", f"must be one of {', '.join(TRIAL_STATES)}, got {state!r}")
    offset, limit = window(params)
    return TrialPageQuery(
        offset=offset,
        limit=limit,
        sort=params.get("sort") or default_sort,
        descending=order_param(params),
        states=tuple(chosen) or None,  # type: ignore[arg-type]
        ttpt=params.get("ttpt") or None,  # type: ignore[arg-type]
        after=None if params.get("page") else params.get("after") or None,
    )


def id_list(raw: str | Sequence[str], name: str) -> list[int]:
    parts = [p for chunk in ([raw] if isinstance(raw, str) else raw) for p in chunk.split(",") if p.strip()]
    try:
        ids = [int(p) for p in parts]
    except ValueError:
        raise ValidationError(name, f"must be experiment ids separated by commas, e.g. 1,2; got {raw!r}") from None
    for i in ids:
        if not 0 <= i < ID_LIMIT:
            raise ValidationError(name, f"ids are between 0 and 2**63 - 1, got {i}")
    return list(dict.fromkeys(ids))


def trial_by_number(browser: Browser[Any], experiment_id: int, number: int) -> int:
    """The id of the experiment's trial `number`; ValidationError for a negative one,
    NotFoundError when there is none."""
    if number < 0:
        raise ValidationError("trial number", f"must be 0 or more, got {number}")
    found = browser.trials(experiment_id, TrialPageQuery(limit=1, after=encode_cursor((0, None, number - 1))))
    if found.items and found.items[0].trial.trial_number == number:
        return found.items[0].trial.id
    raise NotFoundError(f"experiment {experiment_id} has no trial number {number}")
