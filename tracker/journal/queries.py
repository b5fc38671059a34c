"""The repository's queries over a journal's replay state, answering as the SQL repository does."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tracker.errors import NotFoundError
from tracker.journal.items import artifact, from_item, step_metric, table
from tracker.journal.state import JournalState
from tracker.store.records import (
    TRIAL_STATES,
    Artifact,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    Owner,
    StepMetric,
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
    best_of,
)


def experiment(state: JournalState, experiment_id: int) -> Experiment:
    """The experiment; raises NotFoundError."""
    item = state.experiments.get(experiment_id)
    if item is None:
        raise NotFoundError(f"experiment {experiment_id} does not exist")
    return from_item(Experiment, item)


def trial_item(state: JournalState, trial_id: int) -> dict[str, Any]:
    """The stored trial; raises NotFoundError."""
    item = state.trials.get(trial_id)
    if item is None:
        raise NotFoundError(f"trial {trial_id} does not exist")
    return item


def trial(state: JournalState, item: dict[str, Any]) -> Trial:
    """The trial record of a stored trial, its strategy code looked up by SHA-256."""
    sha = item.get("strategy_code_sha256")
    return from_item(Trial, {**item, "strategy_code": None if sha is None else state.texts[sha]})


def trial_items(state: JournalState, experiment_id: int) -> list[dict[str, Any]]:
    """The experiment's stored trials by trial number; raises NotFoundError."""
    experiment(state, experiment_id)
    numbers = state.by_experiment[experiment_id]
    return [state.trials[numbers[n]] for n in sorted(numbers)]


def latest_ttpt(state: JournalState, trial_id: int) -> dict[str, Any] | None:
    ids = state.ttpt_by_trial.get(trial_id)
    return state.ttpt[ids[-1]] if ids else None


def stats(state: JournalState, experiment_id: int) -> ExperimentStats:
    e = experiment(state, experiment_id)
    items = [state.trials[i] for i in state.by_experiment[experiment_id].values()]
    by_state: dict[str, int] = dict.fromkeys(TRIAL_STATES, 0)
    for t in items:
        by_state[t["state"]] += 1
    results = [state.ttpt[r] for t in items for r in state.ttpt_by_trial.get(t["id"], [])]
    return ExperimentStats(
        experiment=e,
        n_trials=len(items),
        n_by_state=by_state,
        best_value=best_of(
            [t["value"] for t in items if t["state"] == "complete" and t["value"] is not None], e.direction
        ),
        ttpt_total=len(results),
        ttpt_failed=sum(1 for r in results if not r["passed"]),
        n_ranked=sum(1 for t in items if t["state"] == "complete" and t["value"] is not None),
    )


def matches(s: ExperimentStats, query: ExperimentQuery) -> bool:
    """Whether the experiment passes every filter of `query`."""
    e, best = s.experiment, s.best_value
    return all(
        (
            query.ids is None or e.id in query.ids,
            query.max_violation_rate is None
            or (s.ttpt_total > 0 and s.ttpt_failed <= query.max_violation_rate * s.ttpt_total),
            query.template is None or e.template == query.template,
            query.mode is None or e.mode == query.mode,
            query.name_contains is None or query.name_contains in e.name,
            query.min_best_value is None
            or (
                best is not None
                and (best >= query.min_best_value if e.direction == "maximize" else best <= query.min_best_value)
            ),
            query.created_after is None or e.created_at >= query.created_after,
            query.tags is None or all(e.tags.get(key) == value for key, value in query.tags),
            query.created_before is None or e.created_at < query.created_before,
        )
    )


def list_trials(state: JournalState, experiment_id: int, query: TrialQuery) -> list[Trial]:
    items = trial_items(state, experiment_id)
    if query.states is not None:
        items = [t for t in items if t["state"] in query.states]
    if query.ttpt_passed is not None:
        items = [t for t in items if (latest_ttpt(state, t["id"]) or {}).get("passed") is query.ttpt_passed]
    if query.order_by == "value":
        sign = -1.0 if state.experiments[experiment_id]["direction"] == "maximize" else 1.0
        items.sort(key=lambda t: (t["value"] is None, 0.0 if t["value"] is None else sign * t["value"]))
    if query.limit is not None:
        items = items[: query.limit]
    return [trial(state, t) for t in items]


def best_trial(state: JournalState, experiment_id: int) -> Trial | None:
    direction = experiment(state, experiment_id).direction
    complete = [t for t in trial_items(state, experiment_id) if t["state"] == "complete" and t["value"] is not None]
    best = best_of([t["value"] for t in complete], direction)
    return next((trial(state, t) for t in complete if t["value"] == best), None)


def trial_table(
    state: JournalState,
    experiment_ids: Sequence[int] | None,
    states: Sequence[TrialState] | None,
    consume: Callable[[TrialTable], None],
    chunk_size: int,
    tags: Mapping[str, str] | None = None,
    with_code: bool = False,
) -> None:
    """Feed `consume` the trials as `TrialTable` chunks, as `Repository.trial_table` promises."""
    ids = sorted(state.experiments if experiment_ids is None else set(experiment_ids) & set(state.experiments))
    wanted = tuple((tags or {}).items())
    rows: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for experiment_id in ids:
        for t in trial_items(state, experiment_id):
            if (states is None or t["state"] in states) and all(t["tags"].get(k) == v for k, v in wanted):
                rows.append((t, latest_ttpt(state, t["id"])))
                if len(rows) >= chunk_size:
                    consume(_table(state, rows, with_code))
                    rows = []
    if rows:
        consume(_table(state, rows, with_code))


def _table(
    state: JournalState, rows: list[tuple[dict[str, Any], dict[str, Any] | None]], with_code: bool
) -> TrialTable:
    shas = [t.get("strategy_code_sha256") for t, _ in rows] if with_code else None
    return table(rows, None if shas is None else [None if sha is None else state.texts[sha] for sha in shas])


def step_metrics(state: JournalState, trial_id: int | None, experiment_id: int | None) -> list[StepMetric]:
    """Step metrics of one trial or of an experiment's trials, by trial id, key and step."""
    ids: list[int] = []
    if trial_id is not None:
        trial_item(state, trial_id)
        ids = [trial_id]
    if experiment_id is not None:
        experiment(state, experiment_id)
        ids = sorted(state.by_experiment[experiment_id].values())
    return [
        step_metric(i, key, step, value) for i in ids for (key, step), value in sorted(state.steps.get(i, {}).items())
    ]


def artifacts(state: JournalState, owner: Owner) -> list[Artifact]:
    """The owner's artifacts by name; raises NotFoundError."""
    owner_item(state, owner)
    named = state.artifacts.get((owner.kind, owner.id), {})
    return [artifact(owner, named[name]) for name in sorted(named)]


def owner_item(state: JournalState, owner: Owner) -> dict[str, Any]:
    """The stored experiment or trial; raises NotFoundError."""
    try:
        return state.owner(owner.kind, owner.id)
    except KeyError:
        raise NotFoundError(f"{owner.kind} {owner.id} does not exist") from None


def ttpt_results(state: JournalState, trial_id: int | None, experiment_id: int | None) -> list[TTPTResult]:
    """TTPT results of one trial or of one experiment's trials, by id; raises NotFoundError."""
    if trial_id is not None:
        trial_item(state, trial_id)
    if experiment_id is not None:
        experiment(state, experiment_id)
    found = [
        r
        for r in state.ttpt.values()
        if (trial_id is None or r["trial_id"] == trial_id)
        and (experiment_id is None or state.trials[r["trial_id"]]["experiment_id"] == experiment_id)
    ]
    return [from_item(TTPTResult, r) for r in sorted(found, key=lambda r: r["id"])]
