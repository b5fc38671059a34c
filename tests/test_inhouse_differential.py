"""In-house differential test: random sequences of the in-house methods, on SQLite, the JSON
journal and PostgreSQL (when TRACKER_TEST_POSTGRES_URL is set), against a reference model of the
in-house semantics. After each step every in-house answer must be the model's, value for value.

The model is written from the in-house description (the seed report and issue 12), not from the
in-house code: ids count up from 1; an experiment's `config` and `summary` read as {} when none
was given; `list_experiments` is newest first; `filter_experiments(rate)` keeps the experiments
that have TTPT results and at most that share of failed ones (in id order); the improvement is
the best sharpe minus the best of the first half of the trials by trial number; `compare` gives
`id`, `name`, `n_trials` and a float `best_sharpe` (0.0 without one); `export_to_dataframe` has
`trial_number` and one column per top-level key of params, then of performance. Where tracker
deliberately differs (a trial without a sharpe is left out, not counted as 0.0; a key in both
params and performance gives two prefixed columns) the model follows docs/compatibility.md.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from tests.conftest import MYSQL_ENV, PG_ENV, REQUIRE_ENV, REQUIRE_MYSQL_ENV, temporary_database, temporary_schema
from tracker import ExperimentTracker

EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "25"))

scalars = st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False, width=32) | st.sampled_from(["ema", "sma"])
params = st.dictionaries(
    st.sampled_from(["lookback", "threshold", "kind", "returns"]),
    scalars | st.fixed_dictionaries({"stop": st.integers(1, 3)}),
    max_size=3,
)
sharpes = st.integers(-2, 3) | st.floats(-3, 3, allow_nan=False, width=32)
performance = st.fixed_dictionaries(
    {}, optional={"sharpe": sharpes, "returns": st.floats(-1, 1, width=32), "trades": st.integers(0, 9)}
)
configs = st.none() | st.dictionaries(st.sampled_from(["n_trials", "seed"]), st.integers(0, 99), max_size=2)


class InHouseModel:
    """The in-house semantics, as plainly as they can be written."""

    def __init__(self) -> None:
        self.experiments: list[dict[str, Any]] = []  # in creation order; id = position + 1
        self.trials: list[dict[str, Any]] = []
        self.ttpt: list[dict[str, Any]] = []

    def create_experiment(self, name: str, template: str, mode: str, config: dict[str, Any] | None) -> int:
        self.experiments.append(
            {"id": len(self.experiments) + 1, "name": name, "template": template, "mode": mode, "config": config}
        )
        self.experiments[-1]["summary"] = None
        return len(self.experiments)

    def log_trial(self, eid: int, number: int, params: dict[str, Any], perf: dict[str, Any]) -> int:
        self.trials.append(
            {
                "id": len(self.trials) + 1,
                "experiment_id": eid,
                "trial_number": number,
                "params": params,
                "performance": perf,
                "strategy_code": None,
                "strategy_template": None,
                "generation_method": None,
            }
        )
        return len(self.trials)

    def log_ttpt_result(self, trial_id: int, passed: bool, violations: int) -> int:
        self.ttpt.append({"trial_id": trial_id, "passed": passed, "num_violations": violations})
        return len(self.ttpt)

    def numbers(self, eid: int) -> set[int]:
        return {t["trial_number"] for t in self.trials if t["experiment_id"] == eid}

    # answers -------------------------------------------------------------------------------

    def experiment(self, eid: int) -> dict[str, Any]:
        e = self.experiments[eid - 1]
        return {**e, "config": e["config"] or {}, "summary": e["summary"] or {}}

    def list_experiments(self) -> list[dict[str, Any]]:
        return [self.experiment(e["id"]) for e in reversed(self.experiments)]  # newest first

    def get_trials(self, eid: int) -> list[dict[str, Any]]:
        return sorted((t for t in self.trials if t["experiment_id"] == eid), key=lambda t: t["trial_number"])

    def filter_experiments(self, rate: float | None) -> list[int]:
        kept = []
        for e in self.experiments:
            trial_ids = {t["id"] for t in self.trials if t["experiment_id"] == e["id"]}
            results = [r for r in self.ttpt if r["trial_id"] in trial_ids]
            if rate is None or (results and sum(not r["passed"] for r in results) / len(results) <= rate):
                kept.append(e["id"])
        return kept

    def sharpes(self, eid: int) -> list[float]:
        """The sharpe of each trial that has one, by trial number."""
        return [t["performance"]["sharpe"] for t in self.get_trials(eid) if "sharpe" in t["performance"]]

    def improvement(self, eid: int) -> float:
        values = self.sharpes(eid)
        if len(values) < 2:
            return 0.0
        return max(values) - max(values[: len(values) // 2])

    def compare(self, ids: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "id": eid,
                "name": self.experiments[eid - 1]["name"],
                "n_trials": len(self.get_trials(eid)),
                "best_sharpe": float(max(self.sharpes(eid), default=0.0)),
            }
            for eid in ids
        ]

    def export(self, eid: int, *, jsonb: bool = False) -> dict[str, list[Any]]:
        """The export columns. With `jsonb`, each dict's keys come in PostgreSQL JSONB's order
        (shorter keys first, then by bytes), as a PostgreSQL store gives them back."""
        trials = self.get_trials(eid)

        def order(d: dict[str, Any]) -> list[str]:
            return sorted(d, key=lambda k: (len(k.encode()), k.encode())) if jsonb else list(d)

        keys = {
            group: list(dict.fromkeys(k for t in trials for k in order(t[group])))
            for group in ("params", "performance")
        }
        both = (set(keys["params"]) & set(keys["performance"])) | {"trial_number"}
        columns: dict[str, list[Any]] = {"trial_number": [t["trial_number"] for t in trials]}
        for group in ("params", "performance"):
            for key in keys[group]:
                columns[f"{group}.{key}" if key in both else key] = [t[group].get(key) for t in trials]
        return columns


def _plain(value: Any) -> Any:
    """A DataFrame cell as a plain value: missing as None, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return value
    try:
        if value is None or bool(value != value):  # NaN, NaT
            return None
    except (TypeError, ValueError):
        pass
    if type(value).__name__ == "NAType":
        return None
    return value.item() if hasattr(value, "item") else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


IN_HOUSE_EXPERIMENT_KEYS = ("id", "name", "template", "mode", "config", "summary")
IN_HOUSE_TRIAL_KEYS = (
    "id",
    "experiment_id",
    "trial_number",
    "params",
    "performance",
    "strategy_code",
    "strategy_template",
    "generation_method",
)


class InHouseDifferential(RuleBasedStateMachine):
    experiments = Bundle("experiments")
    trials = Bundle("trials")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="tracker-inhouse-"))
        self.exits = contextlib.ExitStack()
        urls = {"sqlite": str(self.folder / "in.db"), "json": str(self.folder / "in.jsonl")}
        if os.environ.get(PG_ENV):
            urls["postgresql"] = self.exits.enter_context(temporary_schema())
        if os.environ.get(MYSQL_ENV):
            urls["mysql"] = self.exits.enter_context(temporary_database())
        self.backends = {name: self.exits.enter_context(ExperimentTracker(url)) for name, url in urls.items()}
        self.model = InHouseModel()

    def teardown(self) -> None:
        self.exits.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _all(self, call: Any) -> list[Any]:
        return [call(tracker) for tracker in self.backends.values()]

    @rule(
        target=experiments,
        name=st.sampled_from(["Momentum opt", "mean reversion", "Momentum opt"]),
        config=configs,
    )
    def create_experiment(self, name: str, config: dict[str, Any] | None) -> int:
        expected = self.model.create_experiment(name, "Momentum", "tpe_runtime_ttpt", config)
        got = self._all(lambda t: t.create_experiment(name, "Momentum", "tpe_runtime_ttpt", config))
        assert got == [expected] * len(got)
        return expected

    @rule(target=trials, experiment=experiments, number=st.integers(0, 12), params=params, perf=performance)
    def log_trial(self, experiment: int, number: int, params: dict[str, Any], perf: dict[str, Any]) -> int:
        if number in self.model.numbers(experiment):
            number = max(self.model.numbers(experiment)) + 1  # in-house numbers are distinct per experiment
        expected = self.model.log_trial(experiment, number, params, perf)
        got = self._all(lambda t: t.log_trial(experiment, number, params, perf))
        assert got == [expected] * len(got)
        return expected

    @rule(trial=trials, passed=st.booleans(), violations=st.integers(0, 4))
    def log_ttpt_result(self, trial: int, passed: bool, violations: int) -> None:
        expected = self.model.log_ttpt_result(trial, passed, violations)
        got = self._all(lambda t: t.log_ttpt_result(trial, passed, violations, {"signal_correlation": 0.9}))
        assert got == [expected] * len(got)

    @rule(trial=trials, code=st.sampled_from(["def signal(): ...", ""]))
    def log_strategy_metadata(self, trial: int, code: str) -> None:
        self.model.trials[trial - 1].update(strategy_code=code, strategy_template="Momentum", generation_method="llm")
        self._all(lambda t: t.log_strategy_metadata(trial, code, "Momentum", "llm"))

    @rule(experiment=experiments, best=sharpes)
    def log_experiment_summary(self, experiment: int, best: float) -> None:
        summary = {"best_sharpe": best, "n_trials_completed": len(self.model.get_trials(experiment))}
        self.model.experiments[experiment - 1]["summary"] = summary
        self._all(lambda t: t.log_experiment_summary(experiment, summary))

    @precondition(lambda self: bool(self.model.experiments))
    @rule(data=st.data())
    def compare_experiments(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.integers(1, len(self.model.experiments)), min_size=1, max_size=4))
        expected = self.model.compare(ids)
        for tracker in self.backends.values():
            rows = tracker.compare_experiments(ids)
            got = [{key: row[key] for key in ("id", "name", "n_trials", "best_sharpe")} for row in rows]
            assert all(type(row["best_sharpe"]) is float for row in rows)
            assert _same(got, expected), (tracker.backend, got, expected)

    @invariant()
    def every_in_house_answer_is_the_models(self) -> None:
        model = self.model
        for name, tracker in self.backends.items():
            listing = [{k: e[k] for k in IN_HOUSE_EXPERIMENT_KEYS} for e in tracker.list_experiments()]
            assert _same(listing, model.list_experiments()), name
            for e in model.experiments:
                eid = e["id"]
                got = tracker.get_experiment(eid)
                assert _same({k: got[k] for k in IN_HOUSE_EXPERIMENT_KEYS}, model.experiment(eid)), name
                trials = [{k: t[k] for k in IN_HOUSE_TRIAL_KEYS} for t in tracker.get_trials(eid)]
                assert _same(trials, model.get_trials(eid)), name
                assert math.isclose(tracker.get_performance_improvement(eid), model.improvement(eid), abs_tol=0), name
                frame = tracker.export_to_dataframe(eid)
                exported = {str(c): [_plain(v) for v in frame[c].tolist()] for c in frame.columns}
                expected = model.export(eid, jsonb=name == "postgresql")
                assert list(exported) == list(expected), name
                assert _same(exported, expected), (name, exported, expected)
            for rate in (None, 0.0, 0.25, 0.5, 1.0):
                kept = [e["id"] for e in tracker.filter_experiments(rate)]
                assert kept == model.filter_experiments(rate), (name, rate)


InHouseDifferential.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.skipif(
    (not os.environ.get(PG_ENV) and os.environ.get(REQUIRE_ENV) == "1")
    or (not os.environ.get(MYSQL_ENV) and os.environ.get(REQUIRE_MYSQL_ENV) == "1"),
    reason="unreachable: the fixture fails when PostgreSQL or MariaDB is required but missing",
)
class TestInHouseAnswersOnSqliteJsonPostgresqlMariadb(InHouseDifferential.TestCase):  # type: ignore[name-defined,misc]
    """Runs on SQLite and JSON, PostgreSQL when TRACKER_TEST_POSTGRES_URL is set and MariaDB when
    TRACKER_TEST_MYSQL_URL is."""


def test_the_in_house_model_covers_postgresql_when_required() -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        assert os.environ.get(PG_ENV), "CI must give the in-house differential test a PostgreSQL server"


def test_the_model_itself_follows_the_description() -> None:
    """A fixed sequence, worked by hand, so that the model cannot drift from its description."""
    m = InHouseModel()
    a, b, c = m.create_experiment("a", "T", "m", None), m.create_experiment("b", "T", "m", {"k": 1}), 3
    m.create_experiment("c", "T", "m", {})
    for number, sharpe in ((3, 2.5), (1, 2.0), (2, -1.0), (0, 1.0)):
        m.log_trial(a, number, {"x": number, "returns": 1}, {"sharpe": sharpe, "returns": 0.1})
    m.log_trial(b, 0, {"y": {"deep": 1}}, {"returns": 0.2})
    m.log_ttpt_result(1, True, 0)
    m.log_ttpt_result(2, False, 3)
    assert [e["id"] for e in m.list_experiments()] == [c, b, a]
    assert m.experiment(a)["config"] == {}
    assert m.experiment(a)["summary"] == {}
    assert m.improvement(a) == 2.5 - 2.0  # by trial number: 1.0, 2.0 | -1.0, 2.5
    assert m.compare([b, a]) == [
        {"id": b, "name": "b", "n_trials": 1, "best_sharpe": 0.0},
        {"id": a, "name": "a", "n_trials": 4, "best_sharpe": 2.5},
    ]
    assert m.filter_experiments(0.5) == [a]
    assert m.filter_experiments(0.4) == []
    assert m.filter_experiments(None) == [a, b, c]
    assert list(m.export(a)) == ["trial_number", "x", "params.returns", "sharpe", "performance.returns"]
    assert m.export(b) == {"trial_number": [0], "y": [{"deep": 1}], "returns": [0.2]}
    m.log_trial(c, 0, {"lookback": 1, "n": 2}, {"sharpe": 1.0})
    assert list(m.export(c, jsonb=True)) == ["trial_number", "n", "lookback", "sharpe"]


def test_the_in_house_model_covers_mariadb_when_required() -> None:
    if os.environ.get(REQUIRE_MYSQL_ENV) == "1":
        assert os.environ.get(MYSQL_ENV), "CI must give the in-house differential test a MariaDB server"
