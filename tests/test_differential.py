"""Differential test: random sequences of every public operation, failing ones included, run
against every backend at once and a simple in-memory reference model. After each step every
query answer must agree, errors included. `make fuzz` runs it with many more examples."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule

from tests.conftest import MYSQL_ENV, PG_ENV, REQUIRE_ENV, REQUIRE_MYSQL_ENV, temporary_database, temporary_schema
from tracker import ExperimentTracker, TrackerError

EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "50"))
MISSING = 10**9

numbers = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-5, 5)
performance = st.fixed_dictionaries(
    {}, optional={"sharpe": numbers, "loss": numbers, "note": st.sampled_from(["a", "ü"])}
)
params = st.dictionaries(
    st.sampled_from(["x", "y", "nested"]), st.integers(0, 3) | st.just({"deep": [1, None]}), max_size=3
)
states = st.sampled_from(["complete", "complete", "pruned", "failed", "running"])


class Model:
    """The reference: the documented semantics, written as plainly as possible."""

    def __init__(self) -> None:
        self.experiments: dict[int, dict[str, Any]] = {}
        self.trials: dict[int, dict[str, Any]] = {}
        self.next = {"experiment": 1, "trial": 1, "ttpt": 1}

    def _new(self, kind: str) -> int:
        self.next[kind] += 1
        return self.next[kind] - 1

    def create_experiment(self, name: str, objective: str, direction: str) -> int:
        eid = self._new("experiment")
        self.experiments[eid] = {
            "name": name,
            "objective": objective,
            "direction": direction,
            "summary": None,
            "tags": {},
            "note": None,
            "artifacts": {},
        }
        return eid

    def owner(self, kind: str, logical: int) -> dict[str, Any]:
        found = (self.experiments if kind == "experiment" else self.trials).get(logical)
        if found is None:
            raise TrackerError("NotFoundError")
        return found

    def set_tags(self, kind: str, logical: int, tags: dict[str, str | None]) -> None:
        record = self.owner(kind, logical)
        for key, value in tags.items():
            if value is None:
                record["tags"].pop(key, None)
            else:
                record["tags"][key] = value

    def set_note(self, kind: str, logical: int, note: str | None) -> None:
        self.owner(kind, logical)["note"] = note

    def log_steps(self, tid: int, steps: dict[int, dict[str, float]]) -> None:
        trial = self.owner("trial", tid)
        wanted = {(key, step): value for step, metrics in steps.items() for key, value in metrics.items()}
        if set(wanted) & set(trial["steps"]):
            raise TrackerError("DuplicateStepError")
        trial["steps"].update(wanted)

    def log_returns(self, tid: int, values: list[float]) -> None:
        """Checked before the trial is looked up: empty, infinite."""
        if not values or any(math.isinf(v) for v in values):
            raise TrackerError("ValidationError")
        self.owner("trial", tid)["returns"] = [float(v) for v in values]

    def family_size(self, eid: int) -> int:
        return sum(1 for t in self.trials_of(eid) if t["state"] == "complete" and t["returns"] is not None)

    def add_artifact(self, eid: int, name: str, data: bytes, replace: bool) -> None:
        experiment = self.owner("experiment", eid)
        if name in experiment["artifacts"] and not replace:
            raise TrackerError("DuplicateArtifactError")
        experiment["artifacts"][name] = data

    def _value(self, eid: int, perf: dict[str, Any]) -> float | None:
        raw = perf.get(self.experiments[eid]["objective"])
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TrackerError("ValidationError")
        return None if math.isnan(raw) else float(raw) + 0.0  # -0.0 is stored as 0.0

    def log_trials(self, eid: int, items: list[dict[str, Any]]) -> list[int]:
        if eid not in self.experiments:
            raise TrackerError("NotFoundError")
        batch_numbers = [i["trial_number"] for i in items]
        taken = {t["trial_number"] for t in self.trials.values() if t["experiment"] == eid}
        values = [self._value(eid, i["performance"]) for i in items]
        if len(set(batch_numbers)) != len(batch_numbers) or taken & set(batch_numbers):
            raise TrackerError("DuplicateTrialError")
        ids = []
        for item, value in zip(items, values, strict=True):
            tid = self._new("trial")
            self.trials[tid] = {
                "experiment": eid,
                "trial_number": item["trial_number"],
                "params": item["params"],
                "performance": item["performance"],
                "state": item.get("state", "complete"),
                "value": value,
                "ttpt": [],
                "strategy_code": None,
                "tags": {},
                "note": None,
                "steps": {},
                "returns": None,
            }
            if "ttpt" in item:
                self.trials[tid]["ttpt"].append(dict(item["ttpt"]))
            ids.append(tid)
        return ids

    def log_ttpt_result(self, tid: int, passed: bool, violations: int) -> None:
        if tid not in self.trials:
            raise TrackerError("NotFoundError")
        self.trials[tid]["ttpt"].append({"passed": passed, "num_violations": violations})

    def set_strategy(self, tid: int, code: str) -> None:
        if tid not in self.trials:
            raise TrackerError("NotFoundError")
        self.trials[tid]["strategy_code"] = code

    def summary(self, eid: int, summary: dict[str, Any]) -> None:
        if eid not in self.experiments:
            raise TrackerError("NotFoundError")
        self.experiments[eid]["summary"] = summary

    def delete(self, eid: int) -> None:
        if eid not in self.experiments:
            raise TrackerError("NotFoundError")
        del self.experiments[eid]
        for tid in [t for t, v in self.trials.items() if v["experiment"] == eid]:
            del self.trials[tid]

    def trials_of(self, eid: int) -> list[dict[str, Any]]:
        return sorted((t for t in self.trials.values() if t["experiment"] == eid), key=lambda t: t["trial_number"])

    def _valued(self, eid: int) -> list[float]:
        """Values of the complete trials with a value, by trial number."""
        return [t["value"] for t in self.trials_of(eid) if t["state"] == "complete" and t["value"] is not None]

    def _best_value(self, eid: int) -> float | None:
        values = self._valued(eid)
        pick = max if self.experiments[eid]["direction"] == "maximize" else min
        return pick(values) if values else None

    def best(self, eid: int) -> int | None:
        best = self._best_value(eid)
        valued = [t for t in self.trials_of(eid) if t["state"] == "complete" and t["value"] is not None]
        return next((t["trial_number"] for t in valued if t["value"] == best), None)

    def by_value(self, eid: int) -> list[int]:
        """Trial numbers best value first (for the direction), trials without a value last."""
        sign = -1.0 if self.experiments[eid]["direction"] == "maximize" else 1.0
        trials = self.trials_of(eid)
        valued = sorted(
            (t for t in trials if t["value"] is not None), key=lambda t: (sign * t["value"], t["trial_number"])
        )
        return [t["trial_number"] for t in valued] + [t["trial_number"] for t in trials if t["value"] is None]

    def violation_rate(self, eid: int) -> float | None:
        results = [r for t in self.trials_of(eid) for r in t["ttpt"]]
        return sum(1 for r in results if not r["passed"]) / len(results) if results else None

    def improvement(self, eid: int) -> float:
        """Best of all valued complete trials minus best of the first half; positive is better."""
        values = self._valued(eid)
        if len(values) < 2:
            return 0.0
        pick = max if self.experiments[eid]["direction"] == "maximize" else min
        gain = pick(values) - pick(values[: len(values) // 2])
        return gain if self.experiments[eid]["direction"] == "maximize" else -gain

    def filtered(self, max_rate: float) -> list[int]:
        """Experiments with TTPT results whose failed share is at most `max_rate`."""
        found = []
        for eid in sorted(self.experiments):
            results = [r for t in self.trials_of(eid) for r in t["ttpt"]]
            if results and sum(1 for r in results if not r["passed"]) <= max_rate * len(results):
                found.append(eid)
        return found

    def at_least(self, threshold: float) -> list[int]:
        """Experiments whose best value is at least as good as `threshold`."""
        found = []
        for eid in sorted(self.experiments):
            best = self._best_value(eid)
            maximize = self.experiments[eid]["direction"] == "maximize"
            if best is not None and (best >= threshold if maximize else best <= threshold):
                found.append(eid)
        return found

    def answers(self) -> tuple[Any, ...]:
        """Every answer the invariant reads from the backends, as the documented semantics give it."""
        listing = [  # newest first: created one after another, so by id, descending
            (eid, e["name"], e["objective"], e["direction"], _normalise(e["summary"] or {}), e["tags"], e["note"])
            for eid, e in sorted(self.experiments.items(), reverse=True)
        ]
        detail = {
            eid: {
                "trials": [
                    (
                        t["trial_number"],
                        t["params"],
                        _normalise(t["performance"]),
                        t["state"],
                        _normalise(t["value"]),
                        t["strategy_code"],
                        t["ttpt"][-1]["passed"] if t["ttpt"] else None,
                        t["tags"],
                        t["note"],
                        sorted((key, step, _normalise(value)) for (key, step), value in t["steps"].items()),
                        _normalise(t["returns"]),
                    )
                    for t in self.trials_of(eid)
                ],
                "family": self.family_size(eid),
                "artifacts": sorted((name, data) for name, data in self.experiments[eid]["artifacts"].items()),
                "by_value": self.by_value(eid),
                "best": self.best(eid),
                "rate": self.violation_rate(eid),
                "improvement": _normalise(self.improvement(eid)),
            }
            for eid in sorted(self.experiments)
        }
        return listing, detail, self.filtered(0.5), self.at_least(0.0)


def _normalise(value: Any) -> Any:
    """Make floats comparable (NaN == NaN) inside nested answers."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _returns(tracker: ExperimentTracker, trial_id: int) -> Any:
    found = tracker.repository.get_returns(trial_id)
    return None if found is None else _normalise(tracker.get_returns(trial_id).tolist())


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except TrackerError as exc:
        return type(exc).__name__, re.sub(r"\d+", "#", str(exc))


class Differential(RuleBasedStateMachine):
    experiments = Bundle("experiments")
    trials = Bundle("trials")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="tracker-diff-"))
        self.exits = contextlib.ExitStack()
        urls = {"sqlite": f"sqlite:///{self.folder / 'd.db'}", "json": str(self.folder / "d.jsonl")}
        if os.environ.get(PG_ENV):
            urls["postgresql"] = self.exits.enter_context(temporary_schema())
        if os.environ.get(MYSQL_ENV):
            urls["mysql"] = self.exits.enter_context(temporary_database())
        self.backends = {name: self.exits.enter_context(ExperimentTracker(url)) for name, url in urls.items()}
        self.model = Model()
        self.ids: dict[str, dict[int, int]] = {name: {} for name in self.backends}  # logical -> backend experiment id
        self.trial_ids: dict[str, dict[int, int]] = {name: {} for name in self.backends}
        self.counter = 0

    def teardown(self) -> None:
        self.exits.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _each(self, call: Any) -> dict[str, tuple[str, Any]]:
        return {name: _outcome(lambda t=tracker, n=name: call(t, n)) for name, tracker in self.backends.items()}

    def _agree(self, outcomes: dict[str, tuple[str, Any]], model_kind: str) -> None:
        kinds = {name: kind for name, (kind, _) in outcomes.items()}
        assert set(kinds.values()) == {model_kind}, (kinds, model_kind)
        if model_kind != "ok":
            messages = {name: message for name, (_, message) in outcomes.items()}
            assert len(set(messages.values())) == 1, messages

    def _backend_id(self, name: str, logical: int) -> int:
        return self.ids[name].get(logical, MISSING)

    @rule(
        target=experiments,
        name=st.sampled_from(["alpha", "beta", "gamma δ"]),
        objective=st.sampled_from(["sharpe", "loss"]),
        direction=st.sampled_from(["maximize", "minimize"]),
    )
    def create_experiment(self, name: str, objective: str, direction: str) -> int:
        logical = self.model.create_experiment(name, objective, direction)
        outcomes = self._each(
            lambda t, n: t.create_experiment(name, "T", "m", objective=objective, direction=direction)
        )
        self._agree(outcomes, "ok")
        for backend, (_, backend_id) in outcomes.items():
            self.ids[backend][logical] = backend_id
        return logical

    @rule(
        target=trials,
        experiment=experiments,
        number=st.integers(0, 6),
        params=params,
        perf=performance,
        state=states,
        with_ttpt=st.booleans(),
    )
    def log_trial(
        self, experiment: int, number: int, params: dict[str, Any], perf: dict[str, Any], state: str, with_ttpt: bool
    ) -> int:
        item: dict[str, Any] = {"trial_number": number, "params": params, "performance": perf, "state": state}
        if with_ttpt:
            item["ttpt"] = {"passed": number % 2 == 0, "num_violations": number % 2}
        model = _outcome(lambda: self.model.log_trials(experiment, [item]))
        outcomes = self._each(lambda t, n: t.log_trials(self._backend_id(n, experiment), [item]))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])
        if model[0] != "ok":
            return -1
        [logical] = model[1]
        for backend, (_, backend_ids) in outcomes.items():
            self.trial_ids[backend][logical] = backend_ids[0]
        return logical

    @rule(experiment=experiments, start=st.integers(0, 6), size=st.integers(0, 3), perf=performance)
    def log_batch(self, experiment: int, start: int, size: int, perf: dict[str, Any]) -> None:
        items = [{"trial_number": start + i, "params": {"i": i}, "performance": perf} for i in range(size)]
        model = _outcome(lambda: self.model.log_trials(experiment, items))
        outcomes = self._each(lambda t, n: t.log_trials(self._backend_id(n, experiment), items))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])
        if model[0] == "ok":
            for backend, (_, backend_ids) in outcomes.items():
                for logical, backend_id in zip(model[1], backend_ids, strict=True):
                    self.trial_ids[backend][logical] = backend_id

    @rule(trial=trials, passed=st.booleans(), violations=st.integers(0, 3))
    def log_ttpt_result(self, trial: int, passed: bool, violations: int) -> None:
        model = _outcome(lambda: self.model.log_ttpt_result(trial, passed, violations))
        outcomes = self._each(
            lambda t, n: t.log_ttpt_result(self.trial_ids[n].get(trial, MISSING), passed, violations, {})
        )
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(trial=trials, code=st.sampled_from(["def f(): pass", "", "x' OR 1=1 --"]))
    def set_strategy(self, trial: int, code: str) -> None:
        model = _outcome(lambda: self.model.set_strategy(trial, code))
        outcomes = self._each(
            lambda t, n: t.log_strategy_metadata(self.trial_ids[n].get(trial, MISSING), code, "T", "g")
        )
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(experiment=experiments, best=numbers)
    def summary(self, experiment: int, best: float) -> None:
        model = _outcome(lambda: self.model.summary(experiment, {"best": best}))
        outcomes = self._each(lambda t, n: t.log_experiment_summary(self._backend_id(n, experiment), {"best": best}))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(target=experiments, name=st.sampled_from(["tx", "tx ε"]), size=st.integers(0, 3), fail=st.booleans())
    def transaction(self, name: str, size: int, fail: bool) -> Any:
        """Several calls in one `transaction()`: all stored, or none when the block raises."""
        items = [
            {
                "trial_number": i,
                "params": {"i": i},
                "performance": {"sharpe": float(i)},
                "ttpt": {"passed": i % 2 == 0, "num_violations": i % 2},
            }
            for i in range(size)
        ]

        def work(t: ExperimentTracker, _: str) -> tuple[int, list[int]]:
            with t.transaction():
                eid = t.create_experiment(name, "T", "m")
                ids = t.log_trials(eid, items)
                t.log_experiment_summary(eid, {"size": size})
                if fail:
                    raise TrackerError("rolled back on purpose")
            return eid, ids

        outcomes = self._each(work)
        if fail:
            self._agree(outcomes, "TrackerError")
            return multiple()
        self._agree(outcomes, "ok")
        logical = self.model.create_experiment(name, "sharpe", "maximize")
        trial_logicals = self.model.log_trials(logical, items)
        self.model.summary(logical, {"size": size})
        for backend, (_, (eid, ids)) in outcomes.items():
            self.ids[backend][logical] = eid
            self.trial_ids[backend].update(zip(trial_logicals, ids, strict=True))
        return logical

    @rule(
        kind=st.sampled_from(["experiment", "trial"]),
        logical=st.integers(1, 6),
        tags=st.dictionaries(
            st.sampled_from(["desk", "fold", "é/x"]), st.sampled_from(["fx", "1", "", None]), max_size=2
        ),
    )
    def set_tags(self, kind: str, logical: int, tags: dict[str, str | None]) -> None:
        model = _outcome(lambda: self.model.set_tags(kind, logical, tags))
        outcomes = self._each(lambda t, n: t.set_tags((kind, self._any_id(n, kind, logical)), tags))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(
        kind=st.sampled_from(["experiment", "trial"]),
        logical=st.integers(1, 6),
        note=st.sampled_from(["# a", "", None]),
    )
    def set_note(self, kind: str, logical: int, note: str | None) -> None:
        model = _outcome(lambda: self.model.set_note(kind, logical, note))
        outcomes = self._each(lambda t, n: t.set_note((kind, self._any_id(n, kind, logical)), note))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(
        trial=trials, steps=st.dictionaries(st.integers(0, 2), st.fixed_dictionaries({"sharpe": numbers}), max_size=2)
    )
    def log_steps(self, trial: int, steps: dict[int, dict[str, float]]) -> None:
        model = _outcome(lambda: self.model.log_steps(trial, steps))
        outcomes = self._each(lambda t, n: t.log_step_metrics_batch(self.trial_ids[n].get(trial, MISSING), steps))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(
        experiment=experiments,
        name=st.sampled_from(["a.txt", "plots/b.png"]),
        data=st.sampled_from([b"", b"same", b"x" * 5000]),
        replace=st.booleans(),
    )
    def add_artifact(self, experiment: int, name: str, data: bytes, replace: bool) -> None:
        model = _outcome(lambda: self.model.add_artifact(experiment, name, data, replace))
        outcomes = self._each(
            lambda t, n: t.log_artifact(
                ("experiment", self._backend_id(n, experiment)), data, name=name, replace=replace
            )
        )
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(
        trial=trials,
        values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-2, 2), max_size=5),
    )
    def log_returns(self, trial: int, values: list[float]) -> None:
        model = _outcome(lambda: self.model.log_returns(trial, values))
        outcomes = self._each(lambda t, n: t.log_returns(self.trial_ids[n].get(trial, MISSING), values))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    def _any_id(self, backend: str, kind: str, logical: int) -> int:
        ids = self.ids if kind == "experiment" else self.trial_ids
        return ids[backend].get(logical, MISSING)

    @rule(experiment=consumes(experiments))
    def delete_experiment(self, experiment: int) -> None:
        model = _outcome(lambda: self.model.delete(experiment))
        outcomes = self._each(lambda t, n: t.delete_experiment(self._backend_id(n, experiment)))
        self._agree(outcomes, model[0] if model[0] == "ok" else model[1])

    @rule(experiment=experiments)
    def missing_ids_fail_the_same_way(self, experiment: int) -> None:
        outcomes = self._each(lambda t, n: t.get_trials(MISSING))
        self._agree(outcomes, "NotFoundError")
        outcomes = self._each(lambda t, n: t.log_trial(self._backend_id(n, experiment), -1, {}, {}))
        self._agree(outcomes, "ValidationError")

    @invariant()
    def every_answer_agrees(self) -> None:
        answers: dict[str, Any] = {}
        for name, tracker in self.backends.items():
            back = {v: k for k, v in self.ids[name].items()}
            listing = [
                (
                    back[e["id"]],
                    e["name"],
                    e["objective"],
                    e["direction"],
                    _normalise(e["summary"]),
                    e["tags"],
                    e["note"],
                )
                for e in tracker.list_experiments()
            ]
            detail = {}
            for logical, *_ in listing:
                eid = self.ids[name][logical]
                trials = tracker.get_trials(eid)
                detail[logical] = {
                    "trials": [
                        (
                            t["trial_number"],
                            t["params"],
                            _normalise(t["performance"]),
                            t["state"],
                            _normalise(t["value"]),
                            t["strategy_code"],
                            None if t["ttpt_result"] is None else t["ttpt_result"]["passed"],
                            t["tags"],
                            t["note"],
                            sorted(
                                (key, step, _normalise(value))
                                for key, pairs in tracker.get_step_metrics(t["id"]).items()
                                for step, value in pairs
                            ),
                            _returns(tracker, t["id"]),
                        )
                        for t in trials
                    ],
                    "family": tracker.overfitting(eid)["n_trials"],
                    "artifacts": sorted(
                        (a["name"], tracker.get_artifact(("experiment", eid), a["name"]))
                        for a in tracker.list_artifacts(("experiment", eid))
                    ),
                    "by_value": [t["trial_number"] for t in tracker.get_trials(eid, order_by="value")],
                    "best": (tracker.best_trial(eid) or {}).get("trial_number"),
                    "rate": tracker.violation_rate(eid),
                    "improvement": _normalise(tracker.get_performance_improvement(eid)),
                }
            filtered = [back[e["id"]] for e in tracker.filter_experiments(max_violation_rate=0.5)]
            by_best = [back[e["id"]] for e in tracker.filter_experiments(min_best_value=0.0)]
            answers[name] = (listing, detail, filtered, by_best)
        expected = self.model.answers()
        for name, answer in answers.items():
            assert answer == expected, name
        families = {  # the overfitting numbers agree between backends (their formulas: test_overfitting)
            name: [
                _normalise({k: v for k, v in tracker.overfitting(eid).items() if k != "best_trial_id"})
                for eid in sorted(self.ids[name].values())
                if eid in {e["id"] for e in tracker.list_experiments()}
            ]
            for name, tracker in self.backends.items()
        }
        assert len({repr(f) for f in families.values()}) == 1, families


Differential.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.skipif(
    (not os.environ.get(PG_ENV) and os.environ.get(REQUIRE_ENV) == "1")
    or (not os.environ.get(MYSQL_ENV) and os.environ.get(REQUIRE_MYSQL_ENV) == "1"),
    reason="unreachable: the fixture fails when PostgreSQL or MariaDB is required but missing",
)
class TestDifferentialPostgresqlMariadbSqliteJson(Differential.TestCase):  # type: ignore[name-defined,misc]
    """Runs on SQLite and JSON, PostgreSQL when TRACKER_TEST_POSTGRES_URL is set and MariaDB when
    TRACKER_TEST_MYSQL_URL is."""


def test_the_state_machine_covers_postgresql_when_required() -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        assert os.environ.get(PG_ENV), "CI must give the differential test a PostgreSQL server"


def test_the_state_machine_covers_mariadb_when_required() -> None:
    if os.environ.get(REQUIRE_MYSQL_ENV) == "1":
        assert os.environ.get(MYSQL_ENV), "CI must give the differential test a MariaDB server"
