"""Reading experiments and trials: the in-house getters, as dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.errors import AmbiguousNameError, NotFoundError, ValidationError
from tracker.facade.arguments import (
    check_bool,
    check_id,
    check_int,
    check_name,
    check_states,
)
from tracker.store.records import (
    ExperimentQuery,
    TrialQuery,
)

if TYPE_CHECKING:
    pass

from tracker.facade.answers import as_dict, experiment_dict, stats_dict
from tracker.facade.arguments import tag_pairs
from tracker.facade.core import Core


class Reading(Core):
    """Reading experiments and trials: the in-house getters, as dicts."""

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        """The experiment as a dict (`config` and `summary` are `{}` when none was stored);
        raises NotFoundError."""
        return experiment_dict(self._repo.get_experiment(check_id(experiment_id, "experiment_id")))

    def list_experiments(self, *, stats: bool = False, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every experiment (with every given tag) as a dict, newest first (`created_at`
        descending, ties by id descending), as the in-house class listed them. With `stats`, each
        dict adds `n_trials`, `n_by_state`, `best_value`, `violation_rate`, `ttpt_validations` and
        `ttpt_violations` (one aggregate query)."""
        query = ExperimentQuery(trial_stats=check_bool(stats, "stats"), tags=tag_pairs(tags))
        found = self._repo.list_experiments(query)
        found.sort(key=lambda s: (s.experiment.created_at, s.experiment.id), reverse=True)
        return [stats_dict(s, trial_stats=True) if stats else experiment_dict(s.experiment) for s in found]

    def experiment_ids(self, name: str) -> list[int]:
        """The ids of the experiments named exactly `name`, lowest first (names need not be unique)."""
        name = check_name(name, "name")
        query = ExperimentQuery(name_contains=name, trial_stats=False)
        return [s.experiment.id for s in self._repo.list_experiments(query) if s.experiment.name == name]

    def experiment_id(self, ref: int | str) -> int:
        """The id of the experiment `ref` names: an id, or a name. Raises NotFoundError when there
        is no such experiment, AmbiguousNameError (a NotFoundError) when several have the name."""
        if not isinstance(ref, str):
            experiment_id = check_id(ref, "experiment_id")
            self._repo.get_experiment(experiment_id)
            return experiment_id
        ids = self.experiment_ids(ref)
        if not ids:
            raise NotFoundError(f"no experiment is named {ref!r}{self._closest_names(ref)}")
        if len(ids) > 1:
            raise AmbiguousNameError(ref, ids)
        return ids[0]

    def _closest_names(self, name: str) -> str:
        """` (did you mean 'a', 'b' or 'c'?)` with the (at most 3) closest experiment names, or ""."""
        import difflib

        names = {s.experiment.name for s in self._repo.list_experiments(ExperimentQuery(trial_stats=False))}
        close = [repr(n) for n in difflib.get_close_matches(name, sorted(names), n=3)]
        if not close:
            return ""
        shown = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        return f" (did you mean {shown}?)"

    def get_trials(
        self,
        experiment_id: int,
        *,
        states: Sequence[str] | str | None = None,
        ttpt_passed: bool | None = None,
        order_by: str = "trial_number",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The experiment's trials as dicts, each with its latest TTPT result under `ttpt_result`.

        Filtered by state and TTPT outcome and ordered by `trial_number` or by `value` (best
        first), in the database. Raises NotFoundError.
        """
        experiment_id = check_id(experiment_id, "experiment_id")
        if order_by not in ("trial_number", "value"):
            raise ValidationError("order_by", f"must be 'trial_number' or 'value', got {order_by!r}")
        query = TrialQuery(
            states=check_states(states),
            ttpt_passed=None if ttpt_passed is None else check_bool(ttpt_passed, "ttpt_passed"),
            order_by=order_by,  # type: ignore[arg-type]
            limit=None if limit is None else check_int(limit, "limit"),
        )
        with self._repo.transaction(write=False):
            trials = self._repo.list_trials(experiment_id, query)
            latest = self._latest_ttpt(experiment_id) if trials else {}
        return [{**as_dict(t), "ttpt_result": latest.get(t.id)} for t in trials]

    def _latest_ttpt(self, experiment_id: int) -> dict[int, dict[str, Any]]:
        return {r.trial_id: as_dict(r) for r in self._repo.list_ttpt_results(experiment_id=experiment_id)}

    def get_trial(self, trial_id: int) -> dict[str, Any]:
        """The trial as a dict with its latest TTPT result; raises NotFoundError."""
        trial_id = check_id(trial_id, "trial_id")
        with self._repo.transaction(write=False):
            trial = self._repo.get_trial(trial_id)
            results = self._repo.list_ttpt_results(trial_id=trial_id)
        return {**as_dict(trial), "ttpt_result": as_dict(results[-1]) if results else None}

    def get_ttpt_results(self, trial_id: int) -> list[dict[str, Any]]:
        """All TTPT results of the trial, oldest first; raises NotFoundError."""
        return [as_dict(r) for r in self._repo.list_ttpt_results(trial_id=check_id(trial_id, "trial_id"))]

    def trial_numbers(self, experiment_id: int) -> set[int]:
        """The trial numbers the experiment already has; raises NotFoundError."""
        return self._repo.trial_numbers(check_id(experiment_id, "experiment_id"))

    def best_trial(self, experiment_id: int) -> dict[str, Any] | None:
        """The complete trial with the best objective value (lowest trial number among ties)."""
        trial = self._repo.best_trial(check_id(experiment_id, "experiment_id"))
        return None if trial is None else as_dict(trial)

    def best_value(self, experiment_id: int) -> float | None:
        """The best objective value of the experiment's complete trials, or None."""
        trial = self._repo.best_trial(check_id(experiment_id, "experiment_id"))
        return None if trial is None else trial.value
