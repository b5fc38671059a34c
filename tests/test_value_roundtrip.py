"""Property tests: any storable value round-trips exactly on every backend (NaN, ±inf, -0.0,
huge floats, big integers, unicode, deep nesting), and what cannot be stored is refused."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import BACKENDS, SERVER_BACKENDS, temporary_store
from tracker import ExperimentTracker, ValidationError

text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(text | st.sampled_from(["$float", "$dict"]), children, max_size=4)
    ),
    max_leaves=20,
)
documents = st.dictionaries(text | st.sampled_from(["$float", "$dict", "sharpe"]), values, max_size=6)


def special(value: Any) -> dict[str, Any]:
    """A document holding `value` as a leaf, in a list and in a nested dict. The explicit examples
    give it the values plain JSON or a backend would change, on every run rather than by chance:
    -0.0 (JSONB keeps 0), NaN and the infinities (no JSON token), integers beyond 64 bits (fast
    parsers read them as floats)."""
    return {"v": value, "in": [value, 1], "deep": {"v": value}}


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type; NaN equals NaN; -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ExperimentTracker, int, itertools.count[int]]]:
    """One tracker per backend for all examples; each example logs a new trial number."""
    folder: Path = tmp_path_factory.mktemp("roundtrip")
    if request.param in SERVER_BACKENDS:
        with temporary_store(request.param) as url, ExperimentTracker(url) as t:
            yield t, t.create_experiment("props", "t", "m"), itertools.count()
        return
    url = f"sqlite:///{folder / 'p.db'}" if request.param == "sqlite" else str(folder / "p.jsonl")
    with ExperimentTracker(url) as t:
        yield t, t.create_experiment("props", "t", "m"), itertools.count()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=documents, performance=documents, metrics=documents)
@example(params=special(-0.0), performance=special(-0.0), metrics=special(-0.0))
@example(params=special(math.nan), performance=special(math.nan), metrics=special(math.nan))
@example(params=special(math.inf), performance=special(math.inf), metrics=special(math.inf))
@example(params=special(-math.inf), performance=special(-math.inf), metrics=special(-math.inf))
@example(params=special(2**63), performance=special(2**63), metrics=special(2**63))
@example(params=special(-(2**63) - 1), performance=special(-(2**63) - 1), metrics=special(-(2**63) - 1))
def test_params_performance_and_metrics_round_trip_exactly(
    shared: tuple[ExperimentTracker, int, itertools.count[int]],
    params: dict[str, Any],
    performance: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    tracker, experiment_id, numbers = shared
    if ("sharpe" in performance and not isinstance(performance["sharpe"], int | float)) or isinstance(
        performance.get("sharpe"), bool
    ):
        performance.pop("sharpe")
    trial_id = tracker.log_trial(experiment_id, next(numbers), params, performance)
    tracker.log_ttpt_result(trial_id, True, 0, metrics, violations=[params])
    trial = tracker.get_trial(trial_id)
    assert same(trial["params"], params)
    assert same(trial["performance"], performance)
    [check] = tracker.get_ttpt_results(trial_id)
    assert same(check["metrics"], metrics)
    assert same(check["violations"], [params])


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_and_pandas_values_are_stored_as_plain_json(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import make_store_url

    with ExperimentTracker(make_store_url(backend, tmp_path, request)) as tracker:
        eid = tracker.create_experiment("np", "t", "m")
        params = {
            "i": np.int64(3),
            "f": np.float32(0.5),
            "nan": np.float64("nan"),
            "b": np.bool_(True),
            "a": np.array([[1, 2], [3, 4]]),
            "ts": pd.Timestamp("2026-01-02T03:04:05", tz="UTC"),
            "t": (1, 2),
        }
        tid = tracker.log_trial(eid, 0, params, {"sharpe": np.float64(1.25)})
        got = tracker.get_trial(tid)
        assert got["params"]["i"] == 3
        assert type(got["params"]["i"]) is int
        assert got["params"]["f"] == 0.5
        assert type(got["params"]["f"]) is float
        assert math.isnan(got["params"]["nan"])
        assert got["params"]["b"] is True
        assert got["params"]["a"] == [[1, 2], [3, 4]]
        assert got["params"]["ts"] == "2026-01-02T03:04:05+00:00"
        assert got["params"]["t"] == [1, 2]
        assert got["value"] == 1.25


class Opaque:
    pass


def _cycle() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


def _deep(n: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for _ in range(n):
        d = {"x": d}
    return d


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"x": Opaque()}, "Opaque is not JSON-able"),
        ({"x": {1, 2}}, "set is not JSON-able"),
        ({"x": b"bytes"}, "bytes is not JSON-able"),
        ({1: "non-string key"}, "dict keys must be strings"),
        (_cycle(), "cycle"),
        (_deep(200), "nested deeper"),
        ({"x": "nul\x00inside"}, "NUL"),
        ({"nul\x00key": 1}, "NUL"),
        ({"x": 2**5000}, "bits"),
        ({"x": "\ud800"}, "surrogate"),
    ],
)
def test_values_that_cannot_be_stored_are_refused_before_writing(
    tracker: ExperimentTracker, bad: dict[Any, Any], message: str
) -> None:
    eid = tracker.create_experiment("bad", "t", "m")
    with pytest.raises(ValidationError, match=message) as info:
        tracker.log_trial(eid, 0, bad, {"sharpe": 1.0})
    assert info.value.field.startswith("params")
    assert tracker.get_trials(eid) == []


objectives = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**80), 2**80)


def _objective(raw: float | int | None) -> float | None:
    """What the `value` column holds for `raw`: a float, NaN as None, -0.0 as 0.0 (all backends)."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    return float(raw) + 0.0


@pytest.fixture(scope="module", params=BACKENDS)
def repository_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("repository")
    if request.param in SERVER_BACKENDS:
        with temporary_store(request.param) as url:
            yield url
        return
    yield f"sqlite:///{folder / 'r.db'}" if request.param == "sqlite" else str(folder / "r.jsonl")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=documents, params=documents, performance=documents, metrics=documents, objective=objectives)
@example(config=special(-0.0), params=special(-0.0), performance=special(-0.0), metrics=special(-0.0), objective=-0.0)
@example(
    config=special(math.nan), params=special(math.nan), performance=special(math.nan), metrics={}, objective=math.nan
)
@example(config=special(math.inf), params={}, performance=special(math.inf), metrics={}, objective=math.inf)
@example(config={}, params=special(-math.inf), performance={}, metrics=special(-math.inf), objective=-math.inf)
@example(config=special(2**63), params=special(2**63), performance={}, metrics=special(2**63), objective=2**63)
def test_values_written_through_the_repository_read_back_identically_and_after_reopening(
    repository_url: str,
    config: dict[str, Any],
    params: dict[str, Any],
    performance: dict[str, Any],
    metrics: dict[str, Any],
    objective: float | int | None,
) -> None:
    """The Repository is public: it encodes raw values itself (no facade in between), and the
    journal's in-memory state equals what a replay of its file gives."""
    from tracker.store.records import NewExperiment, NewTrial, NewTTPTResult
    from tracker.stores import open_repository

    now = datetime.now(UTC)
    repo = open_repository(repository_url)
    try:
        eid = repo.add_experiment(
            NewExperiment(
                name="raw",
                template="t",
                mode="m",
                objective="sharpe",
                direction="maximize",
                created_at=now,
                config=config,
                summary=[metrics],
            )
        )
        trial = NewTrial(
            trial_number=0,
            params=params,
            performance=performance,
            state="complete",
            created_at=now,
            value=objective,
            ttpt=NewTTPTResult(passed=False, num_violations=1, created_at=now, metrics=metrics),
        )
        [tid] = repo.add_trials(eid, [trial])
        repo.add_ttpt_result(tid, NewTTPTResult(passed=True, num_violations=0, created_at=now, violations=[params]))
        first = (repo.get_experiment(eid), repo.get_trial(tid), repo.list_ttpt_results(trial_id=tid))
    finally:
        repo.close()
    reopened = open_repository(repository_url)
    try:
        again = (reopened.get_experiment(eid), reopened.get_trial(tid), reopened.list_ttpt_results(trial_id=tid))
    finally:
        reopened.close()
    for experiment, got, (with_trial, later) in (first, again):
        assert same(experiment.config, config)
        assert same(experiment.summary, [metrics])
        assert same(got.params, params)
        assert same(got.performance, performance)
        assert same(got.value, _objective(objective))
        assert same(with_trial.metrics, metrics)
        assert with_trial.violations is None
        assert same(later.violations, [params])
        assert later.metrics is None


@settings(max_examples=300, deadline=None)
@given(value=values | documents)
@example(value=special(-0.0))
@example(value=special(math.nan))
@example(value=special(math.inf))
@example(value=special(-math.inf))
@example(value=special(2**63))
@example(value=-0.0)
def test_the_fast_encoding_path_gives_what_the_careful_walk_gives(value: Any) -> None:
    """`encode` takes a fast path for plain JSON; wherever it does, the result must be the careful
    walk's, tags included (compared as JSON text, so -0.0 and NaN count)."""
    from tracker.store import codec

    careful = codec._encode(value, "v", 0, set())
    assert codec.dumps(codec.encode(value, "v")) == codec.dumps(careful)
