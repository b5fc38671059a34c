"""Optuna integration: log every finished trial as it finishes (with runtime TTPT at checkpoints),
and import whole studies. Importing this module has no side effects; Optuna 5 callbacks receive
`(study, frozen_trial)`.

Several processes can log one shared study: give every worker's callback the experiment's id, or
the same `experiment_name` with `reuse=True` (the first worker creates it, the others find it;
a re-run of the script goes on logging into it). A trial delivered twice is stored once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from tracker.errors import DuplicateTrialError, NondeterministicStrategyError, TrackerError, ValidationError
from tracker.facade.series import to_returns
from tracker.store.records import Direction
from tracker.store.retry import atomically
from tracker.store.returns import ReturnSeries

if TYPE_CHECKING:
    from tracker.facade.tracker import ExperimentTracker
    from tracker.ttpt import LookaheadMonitor, LookaheadResult

log = logging.getLogger(__name__)
OnError = Literal["raise", "warn"]
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def _aware(moment: datetime | None) -> datetime | None:
    """Optuna stores naive local times; make them aware UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC)


def objective_names(study: Any, metric_names: Sequence[str] | None = None, default: str | None = None) -> list[str]:
    """Names of the study's objectives: its metric names, else the given ones, else (one
    objective) `default`, the objective of the experiment it logs into. Raises ValidationError,
    saying how to name them, when there is none."""
    count = len(study.directions)
    names = list(study.metric_names or metric_names or ([default] if default is not None and count == 1 else []))
    if not names:
        raise ValidationError(
            "metric_names",
            "the study's objective has no name, so tracker cannot tell what the value is; name it: "
            "TrackingCallback(tracker, metric_names=['sharpe']) or study.set_metric_names(['sharpe'])",
        )
    if len(names) != count:
        raise ValidationError("metric_names", f"the study has {count} objectives but {len(names)} names were given")
    return names


def study_direction(study: Any) -> Direction:
    """The direction of the study's first objective."""
    return "maximize" if study.directions[0].name == "MAXIMIZE" else "minimize"


def check_objective(experiment: Mapping[str, Any], name: str, direction: Direction | None) -> None:
    """Raise ValidationError unless the experiment optimises `name` in `direction` (when known):
    logging a study into an experiment with another objective would store a wrong best."""
    wanted = (experiment["objective"], experiment["direction"])
    if name != wanted[0] or (direction is not None and direction != wanted[1]):
        shown = f"{name} ({direction})" if direction else name
        raise ValidationError(
            "experiment_id",
            f"experiment {experiment['id']} optimises {wanted[0]} ({wanted[1]}), but the study's objective is "
            f"{shown}; log into an experiment with that objective and direction, or name the study's objective "
            "with metric_names=[...]",
        )


def trial_item(trial: Any, names: Sequence[str]) -> dict[str, Any] | None:
    """A `log_trials` item for a finished Optuna trial; None for one that has not finished.
    Numeric user_attrs join the objective values in `performance`; the others (text, lists)
    are kept in `attributes`."""
    state = _STATES.get(trial.state.name)
    if state is None:
        return None
    numeric = {
        key: value
        for key, value in trial.user_attrs.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    others = {key: value for key, value in trial.user_attrs.items() if key not in numeric}
    performance: dict[str, Any] = dict(numeric)
    if trial.values is not None:
        performance.update(zip(names, trial.values, strict=True))
    return {
        "trial_number": trial.number,
        "params": dict(trial.params),
        "performance": performance,
        "attributes": others or None,
        "state": state,
        "started_at": _aware(trial.datetime_start),
        "completed_at": _aware(trial.datetime_complete),
        "generation_method": "optuna",
    }


def intermediate_steps(trial: Any, names: Sequence[str]) -> dict[int, dict[str, float]]:
    """A trial's intermediate values (`trial.report(value, step)`) as step metrics named after
    the first objective, so a pruned trial shows where it was cut."""
    return {int(step): {names[0]: float(value)} for step, value in sorted(trial.intermediate_values.items())}


def log_finished(tracker: ExperimentTracker, experiment_id: int, trials: Sequence[Any], names: Sequence[str]) -> int:
    """Log finished Optuna trials, with their intermediate values, in one transaction; return how
    many were logged (unfinished trials are skipped)."""
    logged = [(trial, item) for trial in trials if (item := trial_item(trial, names)) is not None]
    if not logged:
        return 0
    store(tracker, experiment_id, logged, names)
    return len(logged)


def store(
    tracker: ExperimentTracker, experiment_id: int, logged: Sequence[tuple[Any, dict[str, Any]]], names: Sequence[str]
) -> None:
    """Log Optuna trials (each with its `log_trials` item) and their intermediate values as step
    metrics, in one transaction, run again whole if the database rolls it back."""

    def block() -> None:
        with tracker.transaction():
            ids = tracker.log_trials(experiment_id, [item for _, item in logged])
            for trial_id, (trial, _) in zip(ids, logged, strict=True):
                if trial.intermediate_values:
                    tracker.log_step_metrics_batch(trial_id, intermediate_steps(trial, names))

    atomically(block, [tracker.repository])


def _experiment_for(
    tracker: ExperimentTracker,
    study: Any,
    names: Sequence[str],
    *,
    name: str | None,
    template: str,
    mode: str,
    config: Mapping[str, Any] | None,
    reuse: bool = False,
) -> int:
    """A new experiment for the study; with `reuse`, the one named so if there is one."""
    direction = study_direction(study)
    settings = {
        "optuna_study": study.study_name,
        "objectives": list(names),
        "directions": [d.name.lower() for d in study.directions],
        **(config or {}),
    }
    make = tracker.experiment if reuse else tracker.create_experiment
    return make(name or study.study_name, template, mode, settings, objective=names[0], direction=direction)


class TrackingCallback:
    """`study.optimize(..., callbacks=[TrackingCallback(tracker, ...)])` logs each finished trial.

    With `ttpt` (a `tracker.ttpt.LookaheadMonitor`), every trial whose number is a multiple of
    `checkpoint_interval` is checked for look-ahead bias and the result is stored with the trial in
    one transaction. A check that raises is stored as a failed validation with the error message.
    `on_error="raise"` (default) lets a storage error stop the study; "warn" logs it and goes on.

    Without `experiment_id`, the first trial creates an experiment named `experiment_name` (else
    the study's name); with `reuse=True` it logs into the experiment of that name if there is one
    (`ExperimentTracker.experiment`: atomic between workers; a different objective or direction
    is refused, several experiments of that name raise AmbiguousNameError).

    The objective's name is the study's metric name, else `metric_names[0]`, else the objective of
    the experiment given; with none of these it refuses, saying how to name it. An experiment whose
    objective or direction differs from the study's is refused (ValidationError, whatever
    `on_error` says): when the callback is made if it can tell, else at the first trial.

    `finish()` (or leaving a `with` block) checks the best `best_k` trials that have no check yet,
    so the experiment's verdict covers them, then writes the summary with the verdict.

    The objective hands its backtest's returns to the callback with one call,
    `callback.report_returns(trial, returns)`; they are stored with the trial, in the same
    transaction, when the trial finishes (kept in memory until then, not in the Optuna storage).
    """

    def __init__(
        self,
        tracker: ExperimentTracker,
        experiment_id: int | None = None,
        *,
        experiment_name: str | None = None,
        template: str = "optuna",
        mode: str = "tpe_runtime_ttpt",
        ttpt: LookaheadMonitor | None = None,
        checkpoint_interval: int = 10,
        metric_names: Sequence[str] | None = None,
        on_error: OnError = "raise",
        config: Mapping[str, Any] | None = None,
        reuse: bool = False,
        best_k: int = 3,
    ) -> None:
        if on_error not in ("raise", "warn"):
            raise ValidationError("on_error", f"must be 'raise' or 'warn', got {on_error!r}")
        if isinstance(checkpoint_interval, bool) or not isinstance(checkpoint_interval, int) or checkpoint_interval < 1:
            raise ValidationError("checkpoint_interval", f"must be a positive integer, got {checkpoint_interval!r}")
        self.tracker = tracker
        self.experiment_id = experiment_id
        self.experiment_name = experiment_name
        self.template = template
        self.mode = mode
        self.ttpt = ttpt
        self.checkpoint_interval = checkpoint_interval
        self.metric_names = list(metric_names) if metric_names is not None else None
        self.on_error: OnError = on_error
        self.config = config
        self.reuse = reuse
        self.best_k = best_k
        if experiment_id is not None and self.metric_names:
            check_objective(tracker.get_experiment(experiment_id), self.metric_names[0], None)
        self._lock = threading.Lock()
        self._names: list[str] | None = None
        self._study: Any = None
        self._returns: dict[tuple[str, int], ReturnSeries] = {}

    def report_returns(self, trial: Any, returns: Any, *, index: Any = None) -> None:
        """Hand the trial's per-period returns (as `ExperimentTracker.log_returns` takes them) to
        the callback, from inside the objective; they are checked now (ValidationError) and stored
        with the trial when it finishes. Reporting again replaces them."""
        series = to_returns(returns, "returns", index)
        with self._lock:
            self._returns[(trial.study.study_name, trial.number)] = series

    def __call__(self, study: Any, trial: Any) -> None:
        try:
            self._log(study, trial)
        except ValidationError:
            raise  # a study that does not fit its experiment is never logged, whatever on_error says
        except TrackerError as exc:
            if self.on_error == "raise":
                raise
            log.warning("tracker could not log trial %s of study %s: %s", trial.number, study.study_name, exc)

    def _log(self, study: Any, trial: Any) -> None:
        with self._lock:
            self._study = study
            if self._names is None and self.experiment_id is not None:
                experiment = self.tracker.get_experiment(self.experiment_id)
                self._names = objective_names(study, self.metric_names, default=experiment["objective"])
                check_objective(experiment, self._names[0], study_direction(study))
            if self._names is None:
                self._names = objective_names(study, self.metric_names)
            if self.experiment_id is None:
                self.experiment_id = _experiment_for(
                    self.tracker,
                    study,
                    self._names,
                    name=self.experiment_name,
                    template=self.template,
                    mode=self.mode,
                    config=self.config,
                    reuse=self.reuse,
                )
        item = trial_item(trial, self._names)
        with self._lock:
            series = self._returns.pop((study.study_name, trial.number), None)
        if item is None:
            return
        if series is not None:
            item["returns"] = series
        if self.ttpt is not None and item["state"] == "complete" and trial.number % self.checkpoint_interval == 0:
            item["ttpt"] = self._check(self.ttpt, trial)
            if item["ttpt"] is None:
                del item["ttpt"]
        try:
            store(self.tracker, self.experiment_id, [(trial, item)], self._names)
        except DuplicateTrialError:
            log.debug("trial %s is already logged in experiment %s", trial.number, self.experiment_id)

    @staticmethod
    def _check(monitor: LookaheadMonitor, trial: Any) -> dict[str, Any] | None:
        """The check's result to store with the trial; None for a strategy that gives different
        signals on the same data (unseeded randomness): no verdict can be drawn from it."""
        try:
            result: LookaheadResult | Exception = monitor.check(trial.params)
        except Exception as exc:  # noqa: BLE001 - any failure of user strategy code is recorded, not raised
            result = exc
        return _stored(result, trial.number)

    def finish(self) -> dict[str, Any] | None:
        """Check the best `best_k` complete trials that have no check yet (with `ttpt`), so that
        the verdict covers them; then write the experiment summary (in-house shape, with the
        verdict and its coverage) and return it. None before any trial."""
        if self.experiment_id is None:
            return None
        if self.ttpt is not None:
            check_best(self.tracker, self.experiment_id, self.ttpt, self.best_k)
        return write_summary(self.tracker, self.experiment_id)

    def __enter__(self) -> TrackingCallback:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()


def check_best(
    tracker: ExperimentTracker, experiment_id: int, monitor: LookaheadMonitor, k: int = 3, *, recheck: bool = False
) -> list[int]:
    """Check the best `k` complete trials of the experiment that have no check yet (with
    `recheck`, all of them: a new result is added and the latest counts), store the results, and
    return the checked trials' ids, best first. A check that raises is stored as a failed
    validation with the error, as the callback does; a nondeterministic strategy stores nothing."""
    return check_best_of(tracker, [experiment_id], monitor, k, recheck=recheck)


def check_best_of(
    tracker: ExperimentTracker,
    experiment_ids: Sequence[int],
    monitor: LookaheadMonitor,
    k: int = 3,
    *,
    recheck: bool = False,
) -> list[int]:
    """`check_best` of several experiments at once: every chosen trial's boundaries are evaluated
    together (`LookaheadMonitor.check_many`, spread over the monitor's executor), and this process
    alone stores the results. Returns the checked trials' ids, each experiment's best first."""
    trials = [
        trial
        for experiment_id in experiment_ids
        for trial in tracker.get_trials(experiment_id, states="complete", order_by="value", limit=k)
        if trial["value"] is not None and (trial["ttpt_result"] is None or recheck)
    ]
    checked = []
    for trial, result in zip(trials, monitor.check_many([t["params"] for t in trials]), strict=True):
        stored = _stored(result, trial["trial_number"])
        if stored is not None:
            tracker.log_ttpt_result(trial["id"], **stored)
            checked.append(trial["id"])
    return checked


def _stored(result: LookaheadResult | Exception, number: int) -> dict[str, Any] | None:
    """A check's result as stored: its log arguments; a failure as a failed validation with the
    error; None for a nondeterministic strategy (no verdict can be drawn from it)."""
    if isinstance(result, NondeterministicStrategyError):
        log.warning("TTPT check of trial %s not stored: %s", number, result)
        return None
    if isinstance(result, Exception):
        log.warning("TTPT check of trial %s raised %s: %s", number, type(result).__name__, result)
        message = f"{type(result).__name__}: {result}"
        return {"passed": False, "num_violations": 0, "metrics": {"error": message}, "violations": [{"error": message}]}
    return result.as_log_arguments()


def write_summary(tracker: ExperimentTracker, experiment_id: int) -> dict[str, Any]:
    """Summarise the experiment from the store (all workers' trials) and save it as its summary."""
    [row] = tracker.compare_experiments([experiment_id])
    summary = {
        "ttpt_summary": {
            "total_validations": row["ttpt_validations"],
            "total_violations": row["ttpt_violations"],
            "violation_rate": row["violation_rate"],
        },
        "best_value": row["best_value"],
        f"best_{row['objective']}": row["best_value"],
        "n_trials_completed": row["n_complete"],
        "n_trials_pruned": row["n_pruned"],
        "n_trials_failed": row["n_failed"],
        "improvement": row["improvement"],
        "first_best_trial": row["first_best_trial"],
        "verdict": row["verdict"],
        "verdict_coverage": row["verdict_coverage"],
    }
    tracker.log_experiment_summary(experiment_id, summary)
    return summary


def import_study(
    study: Any,
    tracker: ExperimentTracker,
    experiment_id: int | None = None,
    *,
    experiment_name: str | None = None,
    template: str = "optuna",
    mode: str = "import",
    metric_names: Sequence[str] | None = None,
    progress: bool = True,
    batch_size: int = 5000,
) -> int:
    """Import the finished trials of a study (any Optuna storage) into an experiment and return its
    id. Idempotent: trials already in the experiment are skipped."""
    from tqdm import tqdm

    if experiment_id is None:
        names = objective_names(study, metric_names)
    else:
        experiment = tracker.get_experiment(experiment_id)
        names = objective_names(study, metric_names, default=experiment["objective"])
        check_objective(experiment, names[0], study_direction(study))
    if experiment_id is None:
        experiment_id = _experiment_for(
            tracker, study, names, name=experiment_name, template=template, mode=mode, config=None
        )
    have = tracker.trial_numbers(experiment_id)
    wanted = [trial for trial in study.get_trials(deepcopy=False) if trial.number not in have]
    with tqdm(total=len(wanted), unit="trial", disable=not progress, desc=f"import {study.study_name}") as bar:
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            log_finished(tracker, experiment_id, chunk, names)
            bar.update(len(chunk))
    return experiment_id
