"""SQL statements of the repository that are more than a line: the experiments listing with its
aggregates, a trial's latest TTPT result, and the columnar trial table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Double,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ScalarSelect, Subquery

from tracker.sql.models import MYSQL_DIALECTS, FloatType, experiment_tags, experiments, trial_tags, trials, ttpt_results
from tracker.sql.rows import EXPERIMENT_COLUMNS, TRIAL_COLUMNS
from tracker.store.records import (
    TRIAL_FRAME_FIELDS,
    TRIAL_STATES,
    TTPT_FRAME_FIELDS,
    Experiment,
    ExperimentQuery,
    TrialQuery,
    TrialState,
    kind_of,
)

LISTING_FILTERS = {
    "ids": "ids",
    "max_violation_rate": "max_rate",
    "template": "template",
    "mode": "mode",
    "name_contains": "name_part",
    "min_best_value": "min_best",
    "created_after": "after",
    "created_before": "before",
}
"""ExperimentQuery field -> the bound parameter that carries it."""


def listing_parameters(query: ExperimentQuery) -> dict[str, Any]:
    """The bound parameters of the filters `query` gives (tags as tag_key_<i>, tag_value_<i>)."""
    given = {param: getattr(query, name) for name, param in LISTING_FILTERS.items()}
    for index, (key, value) in enumerate(query.tags or ()):
        given[f"tag_key_{index}"], given[f"tag_value_{index}"] = key, value
    return {param: value for param, value in given.items() if value is not None}


def listing_statement(dialect: str, with_trials: bool, given: set[str]) -> Select[Any]:
    """The experiments listing with its aggregates, filtered by the named bound parameters."""
    per_trial = _per_trial()
    per_ttpt = _per_ttpt()
    ttpt_total = func.coalesce(per_ttpt.c.ttpt_total, 0)
    ttpt_failed = func.coalesce(per_ttpt.c.ttpt_failed, 0)
    source = experiments.outerjoin(per_ttpt, per_ttpt.c.experiment_id == experiments.c.id)
    columns: list[Any] = [*EXPERIMENT_COLUMNS, ttpt_total.label("ttpt_total_"), ttpt_failed.label("ttpt_failed_")]
    if with_trials:  # the per-trial aggregates scan every trial: only when asked for
        best = case((experiments.c.direction == "maximize", per_trial.c.best_max), else_=per_trial.c.best_min)
        source = source.outerjoin(per_trial, per_trial.c.experiment_id == experiments.c.id)
        columns += [
            per_trial.c.n_trials,
            per_trial.c.n_ranked,
            *(per_trial.c[f"n_{s}"] for s in TRIAL_STATES),
            best.label("best_value"),
        ]
    conditions = _listing_conditions(dialect, given, per_trial, ttpt_total, ttpt_failed)
    return select(*columns).select_from(source).where(and_(true(), *conditions)).order_by(experiments.c.id)


def _per_trial() -> Subquery:
    """Per experiment: trials by state, ranked trials, and the largest and smallest value."""
    counts = [func.sum(case((trials.c.state == state, 1), else_=0)).label(f"n_{state}") for state in TRIAL_STATES]
    ranked = (trials.c.state == "complete") & trials.c.value.is_not(None)
    return (
        select(
            trials.c.experiment_id,
            func.count().label("n_trials"),
            *counts,
            func.sum(case((ranked, 1), else_=0)).label("n_ranked"),
            func.max(case((trials.c.state == "complete", trials.c.value))).label("best_max"),
            func.min(case((trials.c.state == "complete", trials.c.value))).label("best_min"),
        )
        .group_by(trials.c.experiment_id)
        .subquery("per_trial")
    )


def _per_ttpt() -> Subquery:
    """Per experiment: TTPT checks in all and failed."""
    return (
        select(
            trials.c.experiment_id,
            func.count().label("ttpt_total"),
            func.sum(case((ttpt_results.c.passed.is_(False), 1), else_=0)).label("ttpt_failed"),
        )
        .select_from(ttpt_results.join(trials, ttpt_results.c.trial_id == trials.c.id))
        .group_by(trials.c.experiment_id)
        .subquery("per_ttpt")
    )


def _listing_conditions(
    dialect: str, given: set[str], per_trial: Subquery, ttpt_total: Any, ttpt_failed: Any
) -> list[ColumnElement[bool]]:
    """The listing's conditions for the named bound parameters (see LISTING_FILTERS)."""
    conditions: list[ColumnElement[bool]] = []
    if "ids" in given:
        conditions.append(experiments.c.id.in_(bindparam("ids", expanding=True)))
    if "max_rate" in given:
        conditions.append(ttpt_total > 0)
        conditions.append(ttpt_failed <= bindparam("max_rate", type_=Double()) * ttpt_total)
    for name, column in (("template", experiments.c.template), ("mode", experiments.c.mode)):
        if name in given:
            conditions.append(column == bindparam(name))
    if "name_part" in given:
        finder = func.strpos if dialect == "postgresql" else func.instr  # same arguments, same answer
        conditions.append(finder(experiments.c.name, bindparam("name_part", type_=String())) > 0)
    if "min_best" in given:
        threshold: BindParameter[float] = bindparam("min_best", type_=FloatType)  # ±inf on MySQL too
        conditions.append(
            or_(
                and_(experiments.c.direction == "maximize", per_trial.c.best_max >= threshold),
                and_(experiments.c.direction == "minimize", per_trial.c.best_min <= threshold),
            )
        )
    for index in range(sum(1 for name in given if name.startswith("tag_key_"))):
        tagged = select(experiment_tags.c.experiment_id).where(
            experiment_tags.c.experiment_id == experiments.c.id,
            experiment_tags.c.key == bindparam(f"tag_key_{index}", type_=String()),
            experiment_tags.c.value == bindparam(f"tag_value_{index}", type_=String()),
        )
        conditions.append(tagged.exists())
    if "after" in given:
        conditions.append(experiments.c.created_at >= bindparam("after"))
    if "before" in given:
        conditions.append(experiments.c.created_at < bindparam("before"))
    return conditions


def trial_list_statement(experiment: Experiment, query: TrialQuery) -> Select[Any]:
    """The experiment's trials as `Repository.list_trials` lists them."""
    stmt = select(*TRIAL_COLUMNS).where(trials.c.experiment_id == experiment.id)
    if query.states is not None:
        stmt = stmt.where(trials.c.state.in_(query.states))
    if query.ttpt_passed is not None:
        passed = select(ttpt_results.c.passed).where(ttpt_results.c.id == latest_ttpt_id()).scalar_subquery()
        stmt = stmt.where(passed.is_(query.ttpt_passed))
    if query.order_by == "value":
        ordered = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
        stmt = stmt.order_by(trials.c.value.is_(None), ordered, trials.c.trial_number)
    else:
        stmt = stmt.order_by(trials.c.trial_number)
    return stmt if query.limit is None else stmt.limit(query.limit)


def best_trial_statement(experiment: Experiment) -> Select[Any]:
    """The experiment's best complete trial (lowest trial number among equal values): walks the
    (experiment_id, value) index from the best end to the first complete trial, then takes the
    lowest trial number among the trials with that value."""
    order = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
    mine = (trials.c.experiment_id == experiment.id) & (trials.c.state == "complete")
    best = select(trials.c.value).where(mine, trials.c.value.is_not(None)).order_by(order).limit(1)
    return (
        select(*TRIAL_COLUMNS)
        .where(mine, trials.c.value == best.scalar_subquery())
        .order_by(trials.c.trial_number + 0)  # "+ 0": SQLite would otherwise scan by trial number
        .limit(1)
    )


def latest_ttpt_id() -> ScalarSelect[Any]:
    """The id of the latest TTPT result of the enclosing query's trial."""
    newer = ttpt_results.alias("latest_ttpt")
    return select(func.max(newer.c.id)).where(newer.c.trial_id == trials.c.id).correlate(trials).scalar_subquery()


def trial_table_statement(
    dialect: str,
    experiment_ids: Sequence[int] | None,
    states: Sequence[TrialState] | None,
    tags: Mapping[str, str] | None = None,
    with_code: bool = False,
) -> Select[Any]:
    """The columns of `TrialTable` but tags (loaded apart), trial by trial, ordered by experiment
    and trial number; `strategy_code` holds blob ids when `with_code`. Timestamps are selected as
    naive UTC text, which pandas parses much faster than datetimes."""
    columns: list[Any] = []
    for f in TRIAL_FRAME_FIELDS:
        kind = kind_of(f)
        if kind == "tags":
            continue
        column: Any = trials.c[f.name]
        columns.append((_utc_text(column, dialect) if kind == "time" else column).label(f.name))
    columns += [ttpt_results.c[name].label(f"ttpt.{name}") for name in TTPT_FRAME_FIELDS]
    if with_code:
        columns.append(trials.c.strategy_code_id.label("strategy_code"))
    stmt = (
        select(*columns)
        .select_from(trials.outerjoin(ttpt_results, ttpt_results.c.id == latest_ttpt_id()))
        .order_by(trials.c.experiment_id, trials.c.trial_number)
    )
    if experiment_ids is not None:
        stmt = stmt.where(trials.c.experiment_id.in_(experiment_ids))
    if states is not None:
        stmt = stmt.where(trials.c.state.in_(states))
    for key, value in (tags or {}).items():
        tagged = select(trial_tags.c.trial_id).where(
            trial_tags.c.trial_id == trials.c.id, trial_tags.c.key == key, trial_tags.c.value == value
        )
        stmt = stmt.where(tagged.exists())
    return stmt


def _utc_text(column: Any, dialect: str) -> Any:
    if dialect == "sqlite":  # stored as naive UTC text already
        return type_coerce(column, String)
    if dialect in MYSQL_DIALECTS:  # a naive UTC DATETIME(6)
        return cast(type_coerce(column, DateTime()), String)
    return cast(func.timezone("UTC", column), String)
