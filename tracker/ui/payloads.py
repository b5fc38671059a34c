"""The JSON API's answers, built from the browser's records. The pages render these same dicts,
so what a page shows is what the API serves. Query parameters are parsed here too; a bad one
raises ValidationError naming it.

Strict JSON: NaN and ±inf become null when the answer is serialised (`dumps`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from tracker.errors import NotFoundError, ValidationError
from tracker.read.browser import (
    Browser,
    ExperimentOverview,
    ExperimentPageQuery,
    ExperimentView,
    Page,
    Sample,
    TrialDetail,
    TrialPageQuery,
    TrialRow,
)
from tracker.reports.analysis import flat, identity
from tracker.store.records import Artifact, Experiment, Trial, TTPTResult, stored_fields
from tracker.ui import artifacts, checks, params, pareto, steps

if TYPE_CHECKING:
    pass

MAX_COLUMNS = 12
MAX_COMPARE = 10
STEP_POINTS = 2_000
"""At most this many points per step metric in a trial's answer (downsampled beyond)."""


# serialisation ---------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Strict JSON: NaN and ±inf are written as null (orjson's rule); integers beyond 64 bits as
    strings; datetimes as ISO 8601."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(_plain(value), option=orjson.OPT_NON_STR_KEYS)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# answers ---------------------------------------------------------------------------------------


def experiment_brief(e: Experiment) -> dict[str, Any]:
    return {**identity(e), "created_at": _time(e.created_at)}


def overview(o: ExperimentOverview) -> dict[str, Any]:
    """One experiment with its aggregates: a row of the experiments list."""
    v = o.verdict
    return {
        **experiment_brief(o.experiment),
        "n_trials": o.n_trials,
        "n_by_state": o.n_by_state,
        "best_value": _number(o.best_value),
        "best_trial_id": o.best_trial_id,
        "ttpt_checks": o.ttpt_total,
        "ttpt_failed": o.ttpt_failed,
        "ttpt_checked_trials": o.ttpt_checked_trials,
        "violation_rate": o.violation_rate,
        "verdict": {
            "status": v.status,
            "coverage": v.coverage,
            "best_k": v.best_k,
            "best_checked": v.best_checked,
            "best_failed": v.best_failed,
            "n_ranked": v.n_ranked,
            "checks": v.checks,
            "failed_checks": v.failed_checks,
        },
        "tags": dict(o.experiment.tags),
        "version": f"{o.version[0]}-{o.version[1]}",
        "counting": o.counting,
    }


def page(p: Page[Any], items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"items": items, "total": p.total, "offset": p.offset, "limit": p.limit, "next": p.next, **extra}


def experiments(browser: Browser[Any], query: ExperimentPageQuery) -> dict[str, Any]:
    """`GET /api/experiments`."""
    found = browser.experiments(query)
    return page(found, [overview(o) for o in found.items], sort=query.sort, order="desc" if query.descending else "asc")


def experiment(browser: Browser[Any], experiment_id: int, root: str = "") -> dict[str, Any]:
    """`GET /api/experiments/{id}`: the overview with config, summary, the best trial, note,
    provenance and artifacts (their URLs under `root`). Raises NotFoundError."""
    answer: dict[str, Any] = experiment_view(browser, experiment_id, TrialPageQuery(limit=1), root)["experiment"]
    return answer


def experiment_view(browser: Browser[Any], experiment_id: int, query: TrialPageQuery, root: str) -> dict[str, Any]:
    """The experiment page's data from one snapshot: {"experiment": what `experiment` answers,
    "trials": what `trials` answers for `query`}."""
    view: ExperimentView = browser.experiment_view(experiment_id, query)
    o, e = view.overview, view.overview.experiment
    best = None
    if view.best is not None:
        t = view.best.trial
        best = {"id": t.id, "trial_number": t.trial_number, "value": _number(t.value), "params": t.params}
    answer = {
        **overview(o),
        "config": e.config,
        "summary": e.summary,
        "best_trial": best,
        "improvement": _number(o.improvement),
        "note": e.note,
        "provenance": e.provenance,
        "artifacts": artifact_list(view.artifacts, root),
        "objectives": pareto.objectives(e),
    }
    return {"experiment": answer, "trials": trial_page(view.trials, query, e)}


def artifact_list(found: Sequence[Artifact], root: str) -> list[dict[str, Any]]:
    """Artifacts by name, each with the URL of its bytes under `root`."""
    return [artifacts.describe(a, root) for a in found]


def trial_row(row: TrialRow) -> dict[str, Any]:
    t = row.trial
    return {
        "id": t.id,
        "trial_number": t.trial_number,
        "state": t.state,
        "value": _number(t.value),
        "ttpt": None if row.ttpt_passed is None else ("passed" if row.ttpt_passed else "failed"),
        "params": t.params,
        "performance": t.performance,
        "tags": dict(t.tags),
        "created_at": _time(t.created_at),
        "started_at": _time(t.started_at),
        "completed_at": _time(t.completed_at),
    }


def columns(rows: Sequence[TrialRow], objective: str) -> dict[str, list[str]]:
    """The performance and param keys of a page's trials (dotted for nested), sorted (stores
    keep keys in different orders: PostgreSQL's JSONB sorts them); the objective is left out of
    the performance keys, as the value column shows it."""
    out: dict[str, set[str]] = {"performance": set(), "params": set()}
    for row in rows:
        for field, keys in out.items():
            value = getattr(row.trial, field)
            if isinstance(value, dict):
                keys.update(flat(value))
    out["performance"].discard(objective)
    ordered = {field: sorted(keys) for field, keys in out.items()}
    return {field: keys[:MAX_COLUMNS] for field, keys in ordered.items()}


def trials(browser: Browser[Any], experiment_id: int, query: TrialPageQuery) -> dict[str, Any]:
    """`GET /api/experiments/{id}/trials`."""
    return trial_page(browser.trials(experiment_id, query), query, browser.overview(experiment_id).experiment)


def trial_page(found: Page[TrialRow], query: TrialPageQuery, e: Experiment) -> dict[str, Any]:
    return page(
        found,
        [trial_row(r) for r in found.items],
        sort=query.sort,
        order="desc" if query.is_descending(e.direction) else "asc",
        columns=columns(found.items, e.objective),
    )


def history(browser: Browser[Any], experiment_id: int, max_points: int) -> dict[str, Any]:
    """`GET /api/experiments/{id}/history`."""
    h = browser.history(experiment_id, max_points)
    outcome = h.check_outcomes

    def point(p: Any) -> dict[str, Any]:
        check = outcome.get(p.trial_id)
        return {
            "trial_id": p.trial_id,
            "trial_number": p.trial_number,
            "value": _number(p.value),
            "ttpt": None if check is None else ("passed" if check else "failed"),
        }

    return {
        "experiment_id": h.experiment_id,
        "objective": h.objective,
        "direction": h.direction,
        "n_trials": h.n_trials,
        "n_ranked": h.n_ranked,
        "max_points": h.max_points,
        "sampled": h.sampled,
        "points": [point(p) for p in h.points],
        "best": [{"trial_id": p.trial_id, "trial_number": p.trial_number, "value": _number(p.value)} for p in h.best],
        "marks": [{"trial_id": p.trial_id, "trial_number": p.trial_number, "state": p.state} for p in h.marks],
        "checks": [
            {
                "trial_id": c.trial_id,
                "trial_number": c.trial_number,
                "passed": c.passed,
                "num_violations": c.num_violations,
                "boundaries": c.boundaries,
            }
            for c in h.checks
        ],
    }


def ttpt_result(r: TTPTResult) -> dict[str, Any]:
    """The result as stored, with its `summary` (`tracker.ui.checks.summary`)."""
    stored = {
        f.name: (_time(getattr(r, f.name)) if f.name == "created_at" else getattr(r, f.name))
        for f in stored_fields(TTPTResult)
    }
    return {**stored, "summary": checks.summary(r)}


def trial(browser: Browser[Any], trial_id: int, root: str = "") -> dict[str, Any]:
    """`GET /api/trials/{id}`: the trial with its experiment, rank, TTPT results, tags, note,
    attributes, artifacts (their URLs under `root`) and step metrics (at most `STEP_POINTS` per
    key; `step_counts` says how many each has). Raises NotFoundError."""
    view = browser.trial_view(trial_id)
    d: TrialDetail = view.detail
    t: Trial = d.trial
    series, counts = steps.series(view.step_metrics, STEP_POINTS)
    return {
        "id": t.id,
        "experiment": experiment_brief(d.experiment),
        "trial_number": t.trial_number,
        "state": t.state,
        "value": _number(t.value),
        "params": t.params,
        "performance": t.performance,
        "rank": d.rank,
        "n_ranked": d.n_ranked,
        "created_at": _time(t.created_at),
        "started_at": _time(t.started_at),
        "completed_at": _time(t.completed_at),
        "duration_s": (t.completed_at - t.started_at).total_seconds() if t.completed_at and t.started_at else None,
        "strategy_code": t.strategy_code,
        "strategy_template": t.strategy_template,
        "generation_method": t.generation_method,
        "ttpt_results": [ttpt_result(r) for r in d.results],
        "tags": dict(t.tags),
        "note": t.note,
        "attributes": t.attributes,
        "artifacts": artifact_list(view.artifacts, root),
        "step_metrics": {key: [[step, _number(value)] for step, value in points] for key, points in series.items()},
        "step_counts": counts,
    }


def strategy_diff(browser: Browser[Any], shown: dict[str, Any], against: str) -> dict[str, Any]:
    """The unified diff from another trial's strategy code to the shown trial's: `against` is
    "best" (the experiment's best trial) or a trial number of the same experiment. Raises
    ValidationError for anything else, NotFoundError for a trial that does not exist."""
    from tracker.reports.diff import code_diff

    experiment_id = shown["experiment"]["id"]
    if against == "best":
        other_id = browser.overview(experiment_id).best_trial_id
        if other_id is None:
            raise NotFoundError(f"experiment {experiment_id} has no best trial yet (no complete trial with a value)")
    else:
        number = params.int_param({"diff": against}, "diff", 0)
        other_id = params.trial_by_number(browser, experiment_id, number)
    other = browser.trial(other_id).trial
    text = code_diff(
        other.strategy_code,
        shown["strategy_code"],
        f"trial {other.trial_number} (#{other.id})",
        f"trial {shown['trial_number']} (#{shown['id']})",
    )
    return {"against": against, "trial_id": other.id, "trial_number": other.trial_number, "text": text}


def sample_of(browser: Browser[Any], experiment_id: int) -> dict[str, Any]:
    """`GET /api/experiments/{id}/sample`."""
    e = browser.overview(experiment_id).experiment
    return sample(browser.sample(experiment_id), e.direction, e.objective)


def sample(s: Sample, direction: str, objective: str = "value") -> dict[str, Any]:
    """`GET /api/experiments/{id}/sample`: the sample's scalar params and values."""
    keys: dict[str, None] = {}
    rows = []
    for t in s.trials:
        scalars = {k: v for k, v in flat(t.params if isinstance(t.params, dict) else {}).items() if _scalar(v)}
        keys.update(dict.fromkeys(scalars))
        rows.append({"id": t.id, "trial_number": t.trial_number, "value": _number(t.value), "params": scalars})
    return {
        "description": s.description,
        "n_best": s.n_best,
        "n_random": s.n_random,
        "of": s.of,
        "direction": direction,
        "objective": objective,
        "params": sorted(keys),
        "trials": rows,
    }


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def compare(browser: Browser[Any], experiment_ids: Sequence[int]) -> dict[str, Any]:
    """`GET /api/compare?ids=1,2`: side by side, with the running-best curves and the best params
    (keys whose values differ are listed in `differing_params`)."""
    if len(experiment_ids) < 2:
        raise ValidationError("ids", "compare takes 2 or more experiment ids, e.g. ids=1,2")
    if len(experiment_ids) > MAX_COMPARE:
        raise ValidationError("ids", f"compare takes at most {MAX_COMPARE} experiments")
    overviews = browser.overviews(experiment_ids)
    rows = []
    best_params: list[dict[str, Any]] = []
    for o in overviews:
        h = browser.history(o.experiment.id, 2_000)
        params: dict[str, Any] = {}
        if o.best_trial_id is not None:
            t = browser.trial(o.best_trial_id).trial
            params = flat(t.params) if isinstance(t.params, dict) else {}
        best_params.append(params)
        last = max((p.trial_number for p in (*h.points, *h.marks)), default=None)
        rows.append(
            {
                **overview(o),
                "improvement": _number(o.improvement),
                "best_params": params,
                "curve": [[p.trial_number, _number(p.value)] for p in h.best],
                "last_trial_number": last,
            }
        )
    keys = sorted({k for params in best_params for k in params})
    differing = [
        k for k in keys if len({orjson.dumps(p.get(k), option=orjson.OPT_NON_STR_KEYS) for p in best_params}) > 1
    ]
    return {"experiments": rows, "param_keys": keys, "differing_params": differing}


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
