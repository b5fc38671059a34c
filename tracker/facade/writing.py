"""Writing experiments, trials and TTPT results: the in-house loggers, and get-or-create."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracker.errors import AmbiguousNameError, DuplicateTrialError, ValidationError
from tracker.facade.arguments import (
    check_bool,
    check_fingerprint,
    check_id,
    check_mapping,
    check_name,
    now,
)
from tracker.store.records import (
    DIRECTIONS,
    Direction,
    Experiment,
    NewExperiment,
)
from tracker.store.retry import atomically

if TYPE_CHECKING:
    pass

from tracker.facade.arguments import new_trial, new_ttpt, trial_item
from tracker.facade.reading import Reading


class Writing(Reading):
    """Writing experiments, trials and TTPT results: the in-house loggers, and get-or-create."""

    def create_experiment(
        self,
        name: str,
        template: str,
        mode: str,
        config: Mapping[str, Any] | None = None,
        *,
        objective: str = "sharpe",
        direction: Direction = "maximize",
        tags: Mapping[str, str] | None = None,
        note: str | None = None,
        provenance: bool = True,
        data_fingerprint: str | None = None,
        objectives: Mapping[str, str] | None = None,
    ) -> int:
        """Create an experiment and return its id. `objective` names the performance key that is
        optimised in `direction`; best values, improvement and comparisons follow them. With
        `provenance` (the default) the git commit, versions, host and user are recorded, with
        `data_fingerprint` (see `tracker.fingerprint`; text of at most 256 characters).

        `objectives` ({"sharpe": "maximize", "max_drawdown": "minimize"}) declares a
        multi-objective experiment instead of `objective` and `direction`: the first entry is its
        objective (a trial's `value`; `best_trial`, comparisons and verdicts use it alone), the
        others are performance keys, recorded in the config's "objectives" and "directions" as
        the Optuna integration writes them (`tracker.store.objectives`); the dashboard shows
        their Pareto front. Raises ValidationError for a malformed mapping, or one given with
        a config that already declares objectives."""
        from tracker.facade import provenance as origin
        from tracker.store.objectives import declare

        fingerprint = check_fingerprint(data_fingerprint)
        settings = check_mapping(config, "config", optional=True)
        objective, direction, declared = declare(objectives, objective, direction)
        if declared:
            if settings is not None and ("objectives" in settings or "directions" in settings):
                raise ValidationError(
                    "objectives", "the config already declares objectives; give them in one place, objectives={...}"
                )
            settings = {**(settings or {}), **declared}
        new = NewExperiment(
            name=name,
            template=template,
            mode=mode,
            config=settings,
            objective=objective,
            direction=direction,
            created_at=now(),
            tags=tags,
            note=note,
            provenance=origin.collect(fingerprint) if check_bool(provenance, "provenance") else None,
        )
        experiment_id = self._repo.add_experiment(new)
        self._objectives[experiment_id] = (new.objective, new.direction)
        return experiment_id

    def log_trial(
        self,
        experiment_id: int,
        trial_number: int,
        params: Mapping[str, Any],
        performance: Mapping[str, Any],
        *,
        state: str = "complete",
        strategy_code: str | None = None,
        strategy_template: str | None = None,
        generation_method: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        attributes: Mapping[str, Any] | None = None,
        note: str | None = None,
        tags: Mapping[str, str] | None = None,
        returns: Any = None,
    ) -> int:
        """Store one trial and return its id. `attributes` holds non-numeric results (text,
        lists) apart from the metrics in `performance`; `returns` its per-period returns (as
        `log_returns` takes them), stored in the same transaction. Raises NotFoundError,
        DuplicateTrialError."""
        experiment_id = check_id(experiment_id, "experiment_id")
        trial = new_trial(
            self._objective(experiment_id)[0],
            now(),
            trial_number=trial_number,
            params=params,
            performance=performance,
            state=state,
            strategy_code=strategy_code,
            strategy_template=strategy_template,
            generation_method=generation_method,
            started_at=started_at,
            completed_at=completed_at,
            attributes=attributes,
            note=note,
            tags=tags,
            returns=returns,
        )
        return self._repo.add_trials(experiment_id, [trial])[0]

    def log_trials(self, experiment_id: int, trials: Iterable[Mapping[str, Any]]) -> list[int]:
        """Store many trials in one transaction, all or none; return their ids in input order.

        Each item has `log_trial`'s parameter names as keys (`returns` too), plus an optional `ttpt` mapping with
        `log_ttpt_result`'s (`passed`, `num_violations`, `metrics`, `violations`).
        """
        experiment_id = check_id(experiment_id, "experiment_id")
        if isinstance(trials, Mapping | str | bytes) or not isinstance(trials, Iterable):
            raise ValidationError("trials", "expected a list of trial mappings")
        items = list(trials)
        objective, created = self._objective(experiment_id)[0], now()
        batch = [trial_item(objective, created, item, i) for i, item in enumerate(items)]
        counts = Counter(t.trial_number for t in batch)
        repeated = sorted(n for n, c in counts.items() if c > 1)
        if repeated:
            raise DuplicateTrialError(experiment_id, repeated)
        try:
            return self._repo.add_trials(experiment_id, batch)
        except ValidationError as exc:  # the repository names a lone trial's fields without an index
            raise (exc.within("trials[0].") if len(batch) == 1 else exc) from None

    def log_ttpt_result(
        self,
        trial_id: int,
        passed: bool,
        num_violations: int,
        metrics: Mapping[str, Any] | None = None,
        *,
        violations: Sequence[Any] | None = None,
    ) -> int:
        """Store a TTPT (look-ahead) validation of a trial and return its id."""
        trial_id = check_id(trial_id, "trial_id")
        new = new_ttpt(
            {"passed": passed, "num_violations": num_violations, "metrics": metrics, "violations": violations},
            "",
            now(),
        )
        return self._repo.add_ttpt_result(trial_id, new)

    def log_strategy_metadata(
        self, trial_id: int, strategy_code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        """Set a trial's strategy code, template and generation method."""
        self._repo.set_strategy(
            check_id(trial_id, "trial_id"),
            strategy_code,
            template,
            generation_method,
        )

    def log_experiment_summary(self, experiment_id: int, summary: Mapping[str, Any]) -> None:
        """Replace the experiment's summary (a dict)."""
        self._repo.set_summary(check_id(experiment_id, "experiment_id"), check_mapping(summary, "summary"))

    def delete_experiment(self, experiment_id: int) -> None:
        """Delete an experiment with all its trials and TTPT results. Ids are never reused."""
        experiment_id = check_id(experiment_id, "experiment_id")
        self._repo.delete_experiment(experiment_id)
        self._objectives.pop(experiment_id, None)

    def experiment(
        self,
        name: str,
        template: str,
        mode: str,
        config: Mapping[str, Any] | None = None,
        *,
        objective: str | None = None,
        direction: Direction | None = None,
    ) -> int:
        """The id of the experiment named `name`, created (as `create_experiment` does) when there
        is none: the get-or-create that re-runs and parallel workers need. It is atomic: workers
        calling it at once get one experiment. An existing experiment is returned as it is
        (template, mode and config are not compared), but an `objective` or `direction` given
        here must match its own (ValidationError). Several experiments with the name raise
        AmbiguousNameError."""
        name = check_name(name, "name")
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationError("direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}")

        def find_or_create() -> Experiment | int:
            with self.transaction():
                self._repo.serialize(f"experiment name {name}")
                ids = self.experiment_ids(name)
                if len(ids) > 1:
                    raise AmbiguousNameError(name, ids)
                if not ids:
                    return self.create_experiment(
                        name, template, mode, config, objective=objective or "sharpe", direction=direction or "maximize"
                    )
                return self._repo.get_experiment(ids[0])

        found = atomically(find_or_create, [self._repo])
        if isinstance(found, int):
            return found
        for label, wanted, actual in (
            ("objective", objective, found.objective),
            ("direction", direction, found.direction),
        ):
            if wanted is not None and wanted != actual:
                raise ValidationError(
                    label,
                    f"experiment {found.id} ({name!r}) has {label} {actual!r}, not {wanted!r}; "
                    "use another name for a different objective",
                )
        return found.id
