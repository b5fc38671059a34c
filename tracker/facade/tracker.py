"""`ExperimentTracker`: the public facade, a drop-in replacement for the in-house class.

It validates every argument, turns values into storage form, and returns plain dicts with the
in-house keys (plus new ones). Timestamps in returned dicts are ISO 8601 strings in UTC.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracker import stores
from tracker.errors import AmbiguousNameError, DuplicateTrialError, NotFoundError, StoreError, ValidationError
from tracker.facade.annotations import Annotations
from tracker.facade.arguments import (
    check_bool,
    check_datetime,
    check_fraction,
    check_id,
    check_int,
    check_list,
    check_mapping,
    check_name,
    check_number,
    check_state,
    check_states,
    now,
)
from tracker.store.location import resolve
from tracker.store.records import (
    DIRECTIONS,
    TRIAL_STATES,
    Direction,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    Synchronous,
    TrialQuery,
    kind_of,
    new_fields,
    stored_fields,
)
from tracker.store.retry import atomically
from tracker.stores import open_location

if TYPE_CHECKING:
    import pandas as pd

    from tracker.store.repository import Repository

log = logging.getLogger(__name__)

_TRIAL_KEYS = frozenset({*new_fields(NewTrial), "ttpt"} - {"value", "created_at"})
"""The keys of a `log_trials` item: `log_trial`'s parameter names and `ttpt`."""
_TRIAL_TEXT = tuple(f.name for f in stored_fields(NewTrial) if kind_of(f) in ("text", "code", "tags"))
"""The fields the repository checks as they are given (text, code, tags)."""
_TTPT_KEYS = frozenset(new_fields(NewTTPTResult)) - {"created_at"}


def as_dict(record: Any) -> dict[str, Any]:
    """A record as the API returns it: its fields by name, timestamps as ISO 8601 strings."""
    out: dict[str, Any] = {}
    for f in stored_fields(type(record)):
        value = getattr(record, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def experiment_dict(experiment: Experiment) -> dict[str, Any]:
    """An experiment as the API returns it: `config` and `summary` are `{}` when none was stored,
    as the in-house class returned them."""
    out = as_dict(experiment)
    for key in ("config", "summary"):
        if out[key] is None:
            out[key] = {}
    return out


def stats_dict(s: ExperimentStats, *, trial_stats: bool) -> dict[str, Any]:
    """An experiment dict with its TTPT figures, and its trial figures when `trial_stats`."""
    out = {
        **experiment_dict(s.experiment),
        "violation_rate": s.violation_rate,
        "ttpt_validations": s.ttpt_total,
        "ttpt_violations": s.ttpt_failed,
    }
    if trial_stats:
        out.update(n_trials=s.n_trials, best_value=s.best_value, n_by_state=dict(s.n_by_state))
    return out


class ExperimentTracker(Annotations):
    """Log and query optimisation experiments, trials and TTPT results.

    `ExperimentTracker()` opens `$TRACKER_URL`, else `./experiments.db`. A SQLAlchemy URL
    (`sqlite:///x.db`, `postgresql+psycopg://user@host/db`, `mysql+pymysql://user@host/db`), a
    `json:` URL, or a path ending in `.json`/`.jsonl` picks the store; so do the in-house keywords
    `db_path=` and `backend=`.

    A store that does not exist yet is created, as the in-house class did; with `create=False`
    it is not, and StoreNotFoundError names the missing file (or the database without tracker
    tables). A malformed URL raises ValidationError before anything is touched.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        db_path: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        auto_upgrade: bool = False,
        synchronous: Synchronous | None = None,
        create: bool = True,
    ) -> None:
        if synchronous is not None and synchronous not in ("off", "normal", "full"):
            raise ValidationError("synchronous", f"must be 'off', 'normal' or 'full', got {synchronous!r}")
        location = resolve(url, backend, db_path)
        self.backend: str = location.backend
        self.db_path: str | None = None if location.path is None else str(location.path)
        self.url: str = location.safe_url
        self._store: Repository | None = open_location(
            location, auto_upgrade=auto_upgrade, synchronous=synchronous, create=check_bool(create, "create")
        )
        self._objectives: dict[int, tuple[str, Direction]] = {}

    @property
    def _repo(self) -> Repository:
        if self._store is None:
            raise StoreError(f"this tracker ({self.url}) is closed; open a new ExperimentTracker")
        return self._store

    @property
    def repository(self) -> Repository:
        """The repository behind this tracker (frozen records instead of dicts)."""
        return self._repo

    def __repr__(self) -> str:
        return f"ExperimentTracker({self.url!r})"

    def close(self) -> None:
        """Release the store. Closing twice is harmless; any other call afterwards raises StoreError."""
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one atomic unit: `with tracker.transaction(): ...` commits every write
        of the block when it ends normally and none when it raises. Calls on other threads or
        processes see none of it until then. Blocks nest (the inner one joins the outer). If the
        database gives up on the block (a deadlock with another writer), StoreError says to run
        the whole block again; nothing of it is kept, even if the block catches the error."""
        try:
            with self._repo.transaction():
                yield
        except BaseException:
            self._objectives.clear()  # an experiment created in the block may not exist
            raise

    def __enter__(self) -> ExperimentTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # writing ---------------------------------------------------------------------------------

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
    ) -> int:
        """Create an experiment and return its id. `objective` names the performance key that is
        optimised in `direction`; best values, improvement and comparisons follow them. With
        `provenance` (the default) the git commit, versions, host and user are recorded, with
        `data_fingerprint` (see `tracker.fingerprint`)."""
        from tracker.facade import provenance as origin

        new = NewExperiment(
            name=name,
            template=template,
            mode=mode,
            config=check_mapping(config, "config", optional=True),
            objective=objective,
            direction=direction,
            created_at=now(),
            tags=tags,
            note=note,
            provenance=origin.collect(data_fingerprint) if check_bool(provenance, "provenance") else None,
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
    ) -> int:
        """Store one trial and return its id. `attributes` holds non-numeric results (text,
        lists) apart from the metrics in `performance`. Raises NotFoundError, DuplicateTrialError."""
        experiment_id = check_id(experiment_id, "experiment_id")
        trial = self._new_trial(
            self._objective(experiment_id)[0],
            now(),
            {
                "trial_number": trial_number,
                "params": params,
                "performance": performance,
                "state": state,
                "strategy_code": strategy_code,
                "strategy_template": strategy_template,
                "generation_method": generation_method,
                "started_at": started_at,
                "completed_at": completed_at,
                "attributes": attributes,
                "note": note,
                "tags": tags,
            },
            None,
        )
        return self._repo.add_trials(experiment_id, [trial])[0]

    def log_trials(self, experiment_id: int, trials: Iterable[Mapping[str, Any]]) -> list[int]:
        """Store many trials in one transaction, all or none; return their ids in input order.

        Each item has `log_trial`'s parameter names as keys, plus an optional `ttpt` mapping with
        `log_ttpt_result`'s (`passed`, `num_violations`, `metrics`, `violations`).
        """
        experiment_id = check_id(experiment_id, "experiment_id")
        if isinstance(trials, Mapping | str | bytes) or not isinstance(trials, Iterable):
            raise ValidationError("trials", "expected a list of trial mappings")
        items = list(trials)
        objective, created = self._objective(experiment_id)[0], now()
        batch = [self._new_trial(objective, created, item, i) for i, item in enumerate(items)]
        counts = Counter(t.trial_number for t in batch)
        repeated = sorted(n for n, c in counts.items() if c > 1)
        if repeated:
            raise DuplicateTrialError(experiment_id, repeated)
        try:
            return self._repo.add_trials(experiment_id, batch)
        except ValidationError as exc:  # the repository names a lone trial's fields without an index
            raise (exc.within("trials[0].") if len(batch) == 1 else exc) from None

    def _new_trial(self, objective: str, created: datetime, item: object, index: int | None) -> NewTrial:
        """The NewTrial for a `log_trials` item (or `log_trial`'s arguments when `index` is None).
        Plain values pass with type checks only; anything else goes through the checks that
        convert it or name the field in a ValidationError."""
        where = "" if index is None else f"trials[{index}]."
        if not isinstance(item, Mapping):
            raise ValidationError(where.rstrip(".") or "trial", "expected a mapping of log_trial arguments")
        if not _TRIAL_KEYS.issuperset(item):
            raise ValidationError(
                f"{where}{sorted(map(str, set(item) - _TRIAL_KEYS))[0]}",
                f"unknown key; allowed keys are {', '.join(sorted(_TRIAL_KEYS))}",
            )
        for required in ("trial_number", "params", "performance"):
            if required not in item:
                raise ValidationError(f"{where}{required}", "is required")
        number, params, performance = item["trial_number"], item["params"], item["performance"]
        if type(number) is not int or number < 0:
            number = check_int(number, f"{where}trial_number")
        if type(params) is not dict:
            params = check_mapping(params, f"{where}params")
        if type(performance) is not dict:
            performance = check_mapping(performance, f"{where}performance")
        value = performance.get(objective)
        if value is not None and type(value) is not float:
            try:
                value = check_number(value, f"{where}performance.{objective}")
            except ValidationError:
                raise ValidationError(
                    f"{where}performance.{objective}",
                    f"the objective must be a number, got {type(value).__name__}",
                ) from None
        state = item.get("state", "complete")
        if state not in TRIAL_STATES:
            state = check_state(state)
        started, completed, ttpt = item.get("started_at"), item.get("completed_at"), item.get("ttpt")
        return NewTrial(
            trial_number=number,
            params=params,
            performance=performance,
            value=value,
            state=state,
            created_at=created,
            started_at=None if started is None else check_datetime(started, f"{where}started_at"),
            completed_at=None if completed is None else check_datetime(completed, f"{where}completed_at"),
            ttpt=None if ttpt is None else self._new_ttpt(ttpt, f"{where}ttpt.", created),
            attributes=check_mapping(item.get("attributes"), f"{where}attributes", optional=True),
            **{name: item.get(name) for name in _TRIAL_TEXT},
        )

    def _new_ttpt(self, item: object, where: str, created: datetime) -> NewTTPTResult:
        if not isinstance(item, Mapping):
            raise ValidationError(where.rstrip("."), "expected a mapping of log_ttpt_result arguments")
        unknown = set(item) - _TTPT_KEYS
        if unknown:
            raise ValidationError(
                f"{where}{sorted(map(str, unknown))[0]}",
                f"unknown key; allowed keys are {', '.join(sorted(_TTPT_KEYS))}",
            )
        for required in ("passed", "num_violations"):
            if required not in item:
                raise ValidationError(f"{where}{required}", "is required")
        return NewTTPTResult(
            passed=check_bool(item["passed"], f"{where}passed"),
            num_violations=check_int(item["num_violations"], f"{where}num_violations"),
            metrics=check_mapping(item.get("metrics"), f"{where}metrics", optional=True),
            violations=check_list(item.get("violations"), f"{where}violations"),
            created_at=created,
        )

    def _objective(self, experiment_id: int) -> tuple[str, Direction]:
        known = self._objectives.get(experiment_id)
        if known is None:
            experiment = self._repo.get_experiment(experiment_id)
            known = self._objectives[experiment_id] = (experiment.objective, experiment.direction)
        return known

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
        new = self._new_ttpt(
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

    # reading ---------------------------------------------------------------------------------

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        """The experiment as a dict (`config` and `summary` are `{}` when none was stored);
        raises NotFoundError."""
        return experiment_dict(self._repo.get_experiment(check_id(experiment_id, "experiment_id")))

    def list_experiments(self, *, stats: bool = False, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every experiment (with every given tag) as a dict, newest first (`created_at`
        descending, ties by id descending), as the in-house class listed them. With `stats`, each
        dict adds `n_trials`, `n_by_state`, `best_value`, `violation_rate`, `ttpt_validations` and
        `ttpt_violations` (one aggregate query)."""
        query = ExperimentQuery(trial_stats=check_bool(stats, "stats"), tags=_tag_pairs(tags))
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
            raise NotFoundError(f"no experiment is named {ref!r}")
        if len(ids) > 1:
            raise AmbiguousNameError(ref, ids)
        return ids[0]

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
            tags=_tag_pairs(tags),
            trial_stats=False,
        )
        return [stats_dict(s, trial_stats=False) for s in self._repo.list_experiments(query)]

    # analysis (tracker.analysis does the work) ---------------------------------------------

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

        return analysis.compare(self._repo, _ids(experiment_ids))

    def compare_dataframe(self, experiment_ids: Sequence[int]) -> pd.DataFrame:
        """`compare_experiments` as a DataFrame, one row per experiment."""
        from tracker.reports import analysis

        return analysis.compare_frame(self._repo, _ids(experiment_ids))

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
            else _ids([experiment_ids] if isinstance(experiment_ids, int) else experiment_ids)
        )
        if check_bool(steps, "steps"):
            return analysis.steps_frame(self._repo, ids)
        return analysis.trials_frame(
            self._repo,
            ids,
            prefix=check_bool(prefix, "prefix"),
            include_ttpt=check_bool(include_ttpt, "include_ttpt"),
            states=check_states(states),
            tags=_tags(tags),
            strategy_code=check_bool(strategy_code, "strategy_code"),
        )

    def export(self, experiment_ids: Sequence[int] | int, path: str | os.PathLike[str]) -> str:
        """Write the experiments' trials to `path` (.csv, .parquet, .xlsx or .json); return it."""
        from tracker.reports.export import export

        ids = _ids([experiment_ids] if isinstance(experiment_ids, int) else experiment_ids)
        return export(self._repo, ids, path)

    def copy_to(self, destination: ExperimentTracker, *, progress: bool = False) -> dict[str, int]:
        """Copy every experiment, trial, TTPT result and summary into `destination`; idempotent."""
        from tracker.transfer.copying import copy_store

        return copy_store(self._repo, destination.repository, progress=progress)

    def archive(
        self,
        to: str | os.PathLike[str] | ExperimentTracker,
        *,
        older_than: str | timedelta | None = None,
        tags: Mapping[str, str] | None = None,
        ids: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Move experiments (created more than `older_than` ago, e.g. "90d"; with every tag of
        `tags`; or by `ids`) to another store, each verified record by record before it is
        deleted here. Running it again does nothing more. Returns what moved."""
        from tracker.transfer.archive import move

        self._objectives.clear()
        return move(self._repo, to, ids=None if ids is None else _ids(ids), older_than=older_than, tags=_tags(tags))

    def restore(self, ids: Sequence[int], from_: str | os.PathLike[str] | ExperimentTracker) -> dict[str, Any]:
        """Move the experiments with these ids (in `from_`) back into this store."""
        from tracker.transfer.archive import move

        return move(from_, self._repo, ids=_ids(ids))

    def compact(self) -> None:
        """Rewrite a JSON journal as a snapshot; raises ValidationError on SQL stores."""
        stores.compact(self._repo)


def _tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    """Tags to filter by: every one must match."""
    from tracker.store.codec import check_tags

    return None if tags is None else check_tags(tags, "tags")


def _tag_pairs(tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    checked = _tags(tags)
    return None if checked is None else tuple(sorted(checked.items()))


def _ids(values: object) -> list[int]:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError("experiment_ids", "expected a list of experiment ids")
    return [check_id(v, f"experiment_ids[{i}]") for i, v in enumerate(values)]
