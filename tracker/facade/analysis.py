"""Statistics, verdicts, comparisons and DataFrames of experiments (tracker.reports does the work)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracker.facade.arguments import (
    check_bool,
    check_datetime,
    check_fraction,
    check_id,
    check_name,
    check_number,
    check_states,
)
from tracker.store.records import (
    ExperimentQuery,
    ExperimentStats,
)

if TYPE_CHECKING:
    import pandas as pd


from tracker.facade.answers import stats_dict
from tracker.facade.arguments import check_ids, check_tag_filter, tag_pairs
from tracker.facade.core import Core


class Analysis(Core):
    """Statistics, verdicts, comparisons and DataFrames of experiments (tracker.reports does the work)."""

    def _stats(self, experiment_id: int) -> ExperimentStats:
        experiment_id = check_id(experiment_id, "experiment_id")
        found = self._repo.list_experiments(ExperimentQuery(ids=(experiment_id,)))
        if not found:
            self._repo.get_experiment(experiment_id)
        return found[0]

    def violation_rate(self, experiment_id: int) -> float | None:
        """Fraction of the experiment's TTPT results that did not pass; None without results."""
        return self._stats(experiment_id).violation_rate

    def filter_experiments(
        self,
        max_violation_rate: float | None = None,
        *,
        template: str | None = None,
        mode: str | None = None,
        name_contains: str | None = None,
        min_best_value: float | None = None,
        tags: Mapping[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Experiments matching every given filter, computed in the database, ordered by id.

        With `max_violation_rate`, experiments without TTPT results are left out.
        `min_best_value` keeps experiments whose best value is at least as good (>= when
        maximising, <= when minimising). `name_contains` is a case-sensitive substring.
        `created_after` is inclusive, `created_before` exclusive. Each dict adds `violation_rate`,
        `ttpt_validations` and `ttpt_violations`; `list_experiments(stats=True)` and
        `compare_experiments` give trial statistics.
        """
        query = ExperimentQuery(
            max_violation_rate=check_fraction(max_violation_rate, "max_violation_rate"),
            template=None if template is None else check_name(template, "template"),
            mode=None if mode is None else check_name(mode, "mode"),
            name_contains=None if name_contains is None else check_name(name_contains, "name_contains"),
            min_best_value=check_number(min_best_value, "min_best_value", optional=True),
            created_after=check_datetime(created_after, "created_after"),
            created_before=check_datetime(created_before, "created_before"),
            tags=tag_pairs(tags),
            trial_stats=False,
        )
        return [stats_dict(s, trial_stats=False) for s in self._repo.list_experiments(query)]

    def get_performance_improvement(self, experiment_id: int) -> float:
        """Best objective value overall minus the best in the first half of the trials (by
        trial number); sign flipped for a minimised objective, so positive is better. 0.0 with
        fewer than two valued trials."""
        from tracker.reports import analysis

        return analysis.improvement(self._repo, check_id(experiment_id, "experiment_id"))

    def improvement_curve(self, experiment_id: int) -> pd.DataFrame:
        """The running best objective value by trial number (complete trials)."""
        from tracker.reports import analysis

        return analysis.improvement_curve(self._repo, check_id(experiment_id, "experiment_id"))

    def verdict(self, experiment_id: int) -> dict[str, Any]:
        """The look-ahead verdict of an experiment (docs/optuna-and-ttpt.md#verdicts): `status`
        (valid, look-ahead or unchecked), `coverage` (e.g. "best 3 of 150 checked, 33 checks in
        all") and its counts. Raises NotFoundError."""
        from dataclasses import asdict

        from tracker.ttpt.verdict import experiment_verdict

        judged = experiment_verdict(self._repo, check_id(experiment_id, "experiment_id"))
        return {**asdict(judged), "coverage": judged.coverage}

    def compare_experiments(self, experiment_ids: Sequence[int]) -> list[dict[str, Any]]:
        """One dict per experiment, in the order given: the in-house `id`, `name`, `n_trials` and
        `best_<objective>` (`best_sharpe`: a float, 0.0 without a valued trial), then `best_value`
        (None without one) and the statistics listed in docs/analysis.md."""
        from tracker.reports import analysis

        return analysis.compare(self._repo, check_ids(experiment_ids))

    def compare_dataframe(self, experiment_ids: Sequence[int]) -> pd.DataFrame:
        """`compare_experiments` as a DataFrame, one row per experiment."""
        from tracker.reports import analysis

        return analysis.compare_frame(self._repo, check_ids(experiment_ids))

    def export_to_dataframe(self, experiment_id: int) -> pd.DataFrame:
        """The in-house shape: one row per trial (by trial number), `trial_number`, then one column
        per top-level key of params, then of performance. A nested dict stays one column holding
        the dict (`trials_dataframe` flattens). Where params and performance share a key (or a key
        is `trial_number`), both columns are prefixed `params.`/`performance.`."""
        from tracker.reports import analysis

        return analysis.export_frame(self._repo, check_id(experiment_id, "experiment_id"))

    def trials_dataframe(
        self,
        experiment_ids: Sequence[int] | int | None = None,
        *,
        prefix: bool = True,
        include_ttpt: bool = True,
        states: Sequence[str] | str | None = None,
        tags: Mapping[str, str] | None = None,
        strategy_code: bool = False,
        steps: bool = False,
    ) -> pd.DataFrame:
        """Trials of the experiments (all when None) with identity, `params.*`, `performance.*`,
        `attributes.*`, `tags.*` and `ttpt.*` columns; see docs/analysis.md for columns and dtypes.
        `tags` keeps the trials having every given tag; `strategy_code` adds the code. With
        `steps`, the metrics per step instead, as a long frame (one row per trial, metric, step)."""
        from tracker.reports import analysis

        ids = (
            None
            if experiment_ids is None
            else check_ids([experiment_ids] if isinstance(experiment_ids, int) else experiment_ids)
        )
        if check_bool(steps, "steps"):
            return analysis.steps_frame(self._repo, ids)
        return analysis.trials_frame(
            self._repo,
            ids,
            prefix=check_bool(prefix, "prefix"),
            include_ttpt=check_bool(include_ttpt, "include_ttpt"),
            states=check_states(states),
            tags=check_tag_filter(tags),
            strategy_code=check_bool(strategy_code, "strategy_code"),
        )

    def pareto_front(self, experiment_id: int) -> dict[str, Any]:
        """The Pareto front of a multi-objective experiment over all its objectives
        (docs/ui.md#pareto-front): `objectives` ([{"name", "direction"}], the experiment's order),
        `front` (one dict per trial no other complete trial dominates: `trial_id`,
        `trial_number` and `values`, its value of each objective by name; best first objective first),
        `n_points` (complete trials with a finite value for every objective), `reference` and
        `hypervolume` (by objective name). Raises NotFoundError; ValidationError for an
        experiment with one objective, saying how to declare more."""
        from tracker.stores import browser_of

        view = browser_of(self._repo).pareto(check_id(experiment_id, "experiment_id"))
        names = [name for name, _ in view.objectives]

        def by_name(values: tuple[float, ...]) -> dict[str, float]:
            return dict(zip(names, values, strict=True))

        return {
            "objectives": [{"name": name, "direction": direction} for name, direction in view.objectives],
            "front": [
                {
                    "trial_id": t.trial_id,
                    "trial_number": t.trial_number,
                    "values": dict(zip(names, t.values, strict=True)),
                }
                for t in view.front
            ],
            "n_points": view.n_points,
            "reference": None if view.reference is None else by_name(view.reference),
            "hypervolume": view.hypervolume,
        }
