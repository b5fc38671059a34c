"""The bad-input catalogue: every row runs on every backend, must raise the documented error with
its message, and must leave the store exactly as it was. The table in docs/errors.md is generated
from it (`python -m tests.test_bad_input` rewrites it) and a test keeps the two equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.test_json_store import snapshot
from tests.test_value_roundtrip import Opaque, _cycle, _deep, same
from tracker import (
    DuplicateArtifactError,
    DuplicateStepError,
    DuplicateTrialError,
    ExperimentTracker,
    NotFoundError,
    StoreNotFoundError,
    TrackerError,
    ValidationError,
)

DOCS = Path(__file__).parent.parent / "docs" / "errors.md"


@dataclass(frozen=True)
class Case:
    entry: str
    bad_input: str
    error: type[TrackerError]
    message: str
    call: Callable[[ExperimentTracker, dict[str, int]], Any]


def trial(t: ExperimentTracker, c: dict[str, int], **overrides: Any) -> Any:
    args = {"experiment_id": c["eid"], "trial_number": 5, "params": {"a": 1}, "performance": {"sharpe": 1.0}}
    args.update(overrides)
    return t.log_trial(**args)


def ttpt(t: ExperimentTracker, c: dict[str, int], **overrides: Any) -> Any:
    args = {"trial_id": c["tid"], "passed": True, "num_violations": 0, "metrics": {}}
    args.update(overrides)
    return t.log_ttpt_result(**args)


V, N, D, S = ValidationError, NotFoundError, DuplicateTrialError, StoreNotFoundError
CASES = [
    Case(
        "create_experiment",
        "empty name",
        V,
        "name: must not be empty or only whitespace",
        lambda t, c: t.create_experiment("", "T", "m"),
    ),
    Case(
        "create_experiment",
        "whitespace-only name",
        V,
        "name: must not be empty or only whitespace",
        lambda t, c: t.create_experiment("   \t", "T", "m"),
    ),
    Case(
        "create_experiment",
        "name that is not a string (123)",
        V,
        "name: expected a string, got int",
        lambda t, c: t.create_experiment(123, "T", "m"),
    ),  # type: ignore[arg-type]
    Case(
        "create_experiment",
        "template None",
        V,
        "template: expected a string, got NoneType",
        lambda t, c: t.create_experiment("n", None, "m"),
    ),  # type: ignore[arg-type]
    Case(
        "create_experiment",
        "config that is a list",
        V,
        "config: expected a dict, got list",
        lambda t, c: t.create_experiment("n", "T", "m", [1, 2]),
    ),  # type: ignore[arg-type]
    Case(
        "create_experiment",
        "direction 'up'",
        V,
        "direction: must be one of maximize, minimize, got 'up'",
        lambda t, c: t.create_experiment("n", "T", "m", direction="up"),
    ),  # type: ignore[arg-type]
    Case(
        "create_experiment",
        "empty objective",
        V,
        "objective: must not be empty",
        lambda t, c: t.create_experiment("n", "T", "m", objective=""),
    ),
    Case(
        "create_experiment",
        "NUL character in the name",
        V,
        "name: contains a NUL character",
        lambda t, c: t.create_experiment("a\x00b", "T", "m"),
    ),
    Case(
        "log_trial",
        "experiment_id True (a bool)",
        V,
        "experiment_id: expected an integer, got bool True",
        lambda t, c: trial(t, c, experiment_id=True),
    ),
    Case(
        "log_trial",
        "experiment_id '1' (a string)",
        V,
        "experiment_id: expected an integer, got str",
        lambda t, c: trial(t, c, experiment_id="1"),
    ),
    Case(
        "log_trial",
        "unknown experiment id",
        N,
        "experiment 999 does not exist",
        lambda t, c: trial(t, c, experiment_id=999),
    ),
    Case(
        "log_trial",
        "negative trial number",
        V,
        "trial_number: must be at least 0, got -1",
        lambda t, c: trial(t, c, trial_number=-1),
    ),
    Case(
        "log_trial",
        "non-integer trial number 1.5",
        V,
        "trial_number: expected an integer, got float 1.5",
        lambda t, c: trial(t, c, trial_number=1.5),
    ),
    Case(
        "log_trial",
        "NaN as trial number",
        V,
        "trial_number: expected an integer, got float NaN",
        lambda t, c: trial(t, c, trial_number=math.nan),
    ),
    Case(
        "log_trial",
        "bool as trial number",
        V,
        "trial_number: expected an integer, got bool",
        lambda t, c: trial(t, c, trial_number=False),
    ),
    Case(
        "log_trial",
        "trial number the experiment already has",
        D,
        "already has trial number(s) 0",
        lambda t, c: trial(t, c, trial_number=0),
    ),
    Case(
        "log_trial",
        "params that are not a dict",
        V,
        "params: expected a dict, got list",
        lambda t, c: trial(t, c, params=[1]),
    ),
    Case(
        "log_trial",
        "an arbitrary object in params",
        V,
        "params.x: Opaque is not JSON-able",
        lambda t, c: trial(t, c, params={"x": Opaque()}),
    ),
    Case(
        "log_trial",
        "a set in params",
        V,
        "params.x: set is not JSON-able",
        lambda t, c: trial(t, c, params={"x": {1, 2}}),
    ),
    Case(
        "log_trial",
        "bytes in params",
        V,
        "params.x: bytes is not JSON-able",
        lambda t, c: trial(t, c, params={"x": b"raw"}),
    ),
    Case(
        "log_trial",
        "a non-string key in params",
        V,
        "params: key 1 is a int; dict keys must be strings",
        lambda t, c: trial(t, c, params={1: "a"}),
    ),
    Case(
        "log_trial",
        "params that contain themselves (a cycle)",
        V,
        "contains a reference to itself",
        lambda t, c: trial(t, c, params=_cycle()),
    ),
    Case(
        "log_trial",
        "params nested 100 levels deep",
        V,
        "nested deeper than 64 levels",
        lambda t, c: trial(t, c, params=_deep(100)),
    ),
    Case(
        "log_trial",
        "NUL in a params key",
        V,
        "params key: contains a NUL character",
        lambda t, c: trial(t, c, params={"k\x00": 1}),
    ),
    Case(
        "log_trial",
        "NUL in a performance value",
        V,
        "performance.note: contains a NUL character",
        lambda t, c: trial(t, c, performance={"note": "x\x00y"}),
    ),
    Case(
        "log_trial",
        "a non-numeric objective ('high')",
        V,
        "performance.sharpe: the objective must be a number, got str",
        lambda t, c: trial(t, c, performance={"sharpe": "high"}),
    ),
    Case(
        "log_trial",
        "an unknown state",
        V,
        "state: must be one of complete, pruned, failed, running, got 'done'",
        lambda t, c: trial(t, c, state="done"),
    ),
    Case(
        "log_trial",
        "started_at that is not a timestamp",
        V,
        "started_at: 'yesterday' is not an ISO 8601 timestamp",
        lambda t, c: trial(t, c, started_at="yesterday"),
    ),
    Case(
        "log_trial",
        "a 50 MB strategy_code (limit 16 MiB)",
        V,
        "strategy_code: is larger than the limit of 16 MiB",
        lambda t, c: trial(t, c, strategy_code="x" * (50 * 1024 * 1024)),
    ),
    Case(
        "log_trials",
        "trials that are not a list",
        V,
        "trials: expected a list of trial mappings",
        lambda t, c: t.log_trials(c["eid"], "trials"),
    ),  # type: ignore[arg-type]
    Case(
        "log_trials",
        "an item without params",
        V,
        "trials[0].params: is required",
        lambda t, c: t.log_trials(c["eid"], [{"trial_number": 7, "performance": {}}]),
    ),
    Case(
        "log_trials",
        "an item with an unknown key",
        V,
        "trials[0].colour: unknown key",
        lambda t, c: t.log_trials(c["eid"], [{"trial_number": 7, "params": {}, "performance": {}, "colour": 1}]),
    ),
    Case(
        "log_trials",
        "a ttpt item without passed",
        V,
        "trials[1].ttpt.passed: is required",
        lambda t, c: t.log_trials(
            c["eid"],
            [
                {"trial_number": 7, "params": {}, "performance": {}},
                {"trial_number": 8, "params": {}, "performance": {}, "ttpt": {"num_violations": 1}},
            ],
        ),
    ),
    Case(
        "log_trials",
        "the same trial number twice in one batch",
        D,
        "already has trial number(s) 7",
        lambda t, c: t.log_trials(c["eid"], [{"trial_number": 7, "params": {}, "performance": {}}] * 2),
    ),
    Case(
        "log_trials",
        "a batch with one number the experiment has",
        D,
        "already has trial number(s) 0",
        lambda t, c: t.log_trials(c["eid"], [{"trial_number": n, "params": {}, "performance": {}} for n in (9, 0)]),
    ),
    Case("log_ttpt_result", "unknown trial id", N, "trial 999 does not exist", lambda t, c: ttpt(t, c, trial_id=999)),
    Case(
        "log_ttpt_result",
        "passed 'yes' (not a bool)",
        V,
        "passed: expected True or False, got 'yes'",
        lambda t, c: ttpt(t, c, passed="yes"),
    ),
    Case(
        "log_ttpt_result",
        "negative num_violations",
        V,
        "num_violations: must be at least 0, got -2",
        lambda t, c: ttpt(t, c, num_violations=-2),
    ),
    Case(
        "log_ttpt_result",
        "metrics that are not a dict",
        V,
        "metrics: expected a dict, got float",
        lambda t, c: ttpt(t, c, metrics=0.5),
    ),
    Case(
        "log_ttpt_result",
        "violations that are not a list",
        V,
        "violations: expected a list, got str",
        lambda t, c: ttpt(t, c, violations="many"),
    ),
    Case(
        "log_strategy_metadata",
        "unknown trial id",
        N,
        "trial 999 does not exist",
        lambda t, c: t.log_strategy_metadata(999, "code", "T", "llm"),
    ),
    Case(
        "log_experiment_summary",
        "a summary that is not a dict",
        V,
        "summary: expected a dict, got str",
        lambda t, c: t.log_experiment_summary(c["eid"], "great"),
    ),  # type: ignore[arg-type]
    Case(
        "log_experiment_summary",
        "unknown experiment id",
        N,
        "experiment 999 does not exist",
        lambda t, c: t.log_experiment_summary(999, {}),
    ),
    Case(
        "delete_experiment",
        "unknown experiment id",
        N,
        "experiment 999 does not exist",
        lambda t, c: t.delete_experiment(999),
    ),
    Case("get_experiment", "id 0", V, "experiment_id: must be at least 1, got 0", lambda t, c: t.get_experiment(0)),
    Case(
        "get_trials",
        "order_by 'speed'",
        V,
        "order_by: must be 'trial_number' or 'value'",
        lambda t, c: t.get_trials(c["eid"], order_by="speed"),
    ),
    Case(
        "get_trials",
        "an unknown state filter",
        V,
        "state: must be one of",
        lambda t, c: t.get_trials(c["eid"], states=["weird"]),
    ),
    Case(
        "filter_experiments",
        "max_violation_rate 'low' (not a number)",
        V,
        "max_violation_rate: expected a number, got str",
        lambda t, c: t.filter_experiments("low"),
    ),  # type: ignore[arg-type]
    Case(
        "filter_experiments",
        "max_violation_rate 1.5",
        V,
        "max_violation_rate: must be between 0 and 1, got 1.5",
        lambda t, c: t.filter_experiments(1.5),
    ),
    Case(
        "filter_experiments",
        "created_after that is not a timestamp",
        V,
        "created_after: expected a datetime, got int",
        lambda t, c: t.filter_experiments(created_after=20260101),
    ),  # type: ignore[arg-type]
    Case(
        "compare_experiments",
        "an unknown id among them",
        N,
        "experiment 999 does not exist",
        lambda t, c: t.compare_experiments([c["eid"], 999]),
    ),
    Case(
        "compare_experiments",
        "a string instead of a list of ids",
        V,
        "experiment_ids: expected a list of experiment ids",
        lambda t, c: t.compare_experiments("1"),
    ),  # type: ignore[arg-type]
    Case(
        "ExperimentTracker",
        "URL sqlite:/x.db (one slash)",
        V,
        "url: 'sqlite:/x.db' is malformed: 'sqlite:' must be followed by '//'. Supported forms: a file path",
        lambda t, c: ExperimentTracker("sqlite:/x.db"),
    ),
    Case(
        "ExperimentTracker",
        "URL sqlite://relative.db (two slashes)",
        V,
        "has two slashes after sqlite:, so its path would be read as a host name. Supported forms",
        lambda t, c: ExperimentTracker("sqlite://relative.db"),
    ),
    Case(
        "ExperimentTracker",
        "URL with an unknown scheme (oracle://)",
        V,
        "has an unknown scheme or driver 'oracle'. Supported forms",
        lambda t, c: ExperimentTracker("oracle://user@host/db"),
    ),
    Case(
        "ExperimentTracker",
        "MariaDB URL without a database (mysql://user@host)",
        V,
        "names no database: add /dbname after the host. Supported forms",
        lambda t, c: ExperimentTracker("mysql://user:secret@host:3306"),
    ),
    Case(
        "ExperimentTracker",
        "URL with an unsupported driver (postgresql+psycopg2://)",
        V,
        "has an unknown scheme or driver 'postgresql+psycopg2'",
        lambda t, c: ExperimentTracker("postgresql+psycopg2://user@host/db"),
    ),
    Case(
        "ExperimentTracker",
        "URL json://runs.jsonl (two slashes)",
        V,
        "has two slashes after json:",
        lambda t, c: ExperimentTracker("json://runs.jsonl"),
    ),
    Case(
        "ExperimentTracker",
        "create=False and no such SQLite file",
        S,
        "no tracker store at nothere.db: the file does not exist",
        lambda t, c: ExperimentTracker("nothere.db", create=False),
    ),
    Case(
        "ExperimentTracker",
        "create=False and no such folder",
        S,
        "no tracker store at no/such/x.db: the folder no/such does not exist",
        lambda t, c: ExperimentTracker("sqlite:///no/such/x.db", create=False),
    ),
    Case(
        "ExperimentTracker",
        "create=False and no such journal",
        S,
        "no tracker store at runs.jsonl: the file does not exist",
        lambda t, c: ExperimentTracker(backend="json", db_path="runs.jsonl", create=False),
    ),
    Case(
        "ExperimentTracker",
        "create that is not a bool",
        V,
        "create: expected True or False",
        lambda t, c: ExperimentTracker("x.db", create="no"),  # type: ignore[arg-type]
    ),
    Case(
        "experiment_id",
        "a name no experiment has",
        N,
        "no experiment is named 'nosuch'",
        lambda t, c: t.experiment_id("nosuch"),
    ),
    Case(
        "experiment",
        "an existing name with another objective",
        V,
        "objective: experiment 1 ('base') has objective 'sharpe', not 'loss'",
        lambda t, c: t.experiment("base", "T", "m", objective="loss"),
    ),
    Case(
        "export",
        "an unknown file extension",
        V,
        "path: unknown export format '.txt'",
        lambda t, c: t.export([c["eid"]], "/nonexistent-never-written/out.txt"),
    ),
    Case(
        "set_tags",
        "an empty tag name",
        V,
        "tag name '' is not valid",
        lambda t, c: t.set_tags(("experiment", c["eid"]), {"": "x"}),
    ),
    Case(
        "set_tags",
        "a tag name with '!' and a leading space",
        V,
        "use 1-250 letters, digits, spaces and _ . - / :",
        lambda t, c: t.set_tags(("trial", c["tid"]), {" bad!": "x"}),
    ),
    Case(
        "set_tags",
        "a tag value that is a number",
        V,
        "tags.desk: a tag value must be a string, got int",
        lambda t, c: t.set_tags(("experiment", c["eid"]), {"desk": 5}),
    ),  # type: ignore[dict-item]
    Case(
        "set_tags",
        "a NUL character in a tag value",
        V,
        "contains a NUL character",
        lambda t, c: t.set_tags(("experiment", c["eid"]), {"desk": "f\x00x"}),
    ),
    Case(
        "set_tags",
        "an owner that is not an experiment or a trial",
        V,
        "an owner is an 'experiment' or a 'trial', got 'run'",
        lambda t, c: t.set_tags(("run", c["eid"]), {"a": "b"}),
    ),
    Case(
        "set_note",
        "a NUL character in a note",
        V,
        "note: contains a NUL character",
        lambda t, c: t.set_note(("trial", c["tid"]), "ok\x00"),
    ),
    Case(
        "log_step_metrics",
        "a metric that is text",
        V,
        "metrics[0].value: expected a number, got str",
        lambda t, c: t.log_step_metrics(c["tid"], 3, {"sharpe": "high"}),
    ),  # type: ignore[dict-item]
    Case(
        "log_step_metrics",
        "a negative step",
        V,
        "step: must be at least 0, got -1",
        lambda t, c: t.log_step_metrics(c["tid"], -1, {"sharpe": 1.0}),
    ),
    Case(
        "log_step_metrics",
        "a step the trial already has",
        DuplicateStepError,
        "already has metric(s) at sharpe@0",
        lambda t, c: t.log_step_metrics(c["tid"], 0, {"sharpe": 2.0}),
    ),
    Case(
        "log_artifact",
        "a file that does not exist",
        N,
        "the artifact file /nonexistent-never-written/equity.csv does not exist",
        lambda t, c: t.log_artifact(("trial", c["tid"]), "/nonexistent-never-written/equity.csv"),
    ),
    Case(
        "log_artifact",
        "a file over 100 MiB",
        V,
        "over the limit of 100 MiB per artifact",
        lambda t, c: t.log_artifact(("trial", c["tid"]), bytes(100 * 2**20 + 1), name="big.bin"),
    ),
    Case(
        "log_artifact",
        "bytes without a name",
        V,
        "name: give a name when logging bytes",
        lambda t, c: t.log_artifact(("trial", c["tid"]), b"data"),
    ),
    Case(
        "log_artifact",
        "a name that climbs out with '..'",
        V,
        "must be relative, without '..'",
        lambda t, c: t.log_artifact(("experiment", c["eid"]), b"x", name="../outside.txt"),
    ),
    Case(
        "log_artifact",
        "a NUL character in the name",
        V,
        "is not valid",
        lambda t, c: t.log_artifact(("experiment", c["eid"]), b"x", name="a\x00b"),
    ),
    Case(
        "log_artifact",
        "a name in use",
        DuplicateArtifactError,
        "already has an artifact named 'curve.csv'; choose another name, or pass replace=True",
        lambda t, c: t.log_artifact(("experiment", c["eid"]), b"other", name="curve.csv"),
    ),
    Case(
        "import_ttpt_logs",
        "unknown experiment id",
        N,
        "experiment 999 does not exist",
        lambda t, c: t.import_ttpt_logs(999, "."),
    ),
    Case(
        "import_ttpt_logs",
        "a folder that does not exist",
        V,
        "folder: 'no-such-logs' is not a folder; give the monitor's logs/ttpt_violations",
        lambda t, c: t.import_ttpt_logs(c["eid"], "no-such-logs"),
    ),
    Case(
        "import_ttpt_history",
        "a history that is a dict, not a list",
        V,
        "history: expected the monitor's validation_history list, got dict",
        lambda t, c: t.import_ttpt_history(c["eid"], {"trial_number": 1}),  # type: ignore[arg-type]
    ),
]


@pytest.fixture
def prepared(tracker: ExperimentTracker) -> tuple[ExperimentTracker, dict[str, int]]:
    eid = tracker.create_experiment("base", "T", "m", {"k": 1})
    tid = tracker.log_trial(eid, 0, {"a": 0}, {"sharpe": 0.5}, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    tracker.log_ttpt_result(tid, False, 1, {"c": 1.0}, violations=[{"at": 1}])
    tracker.log_experiment_summary(eid, {"best": 0.5})
    tracker.set_tags(("experiment", eid), {"desk": "fx"})
    tracker.log_step_metrics(tid, 0, {"sharpe": 0.25})
    tracker.log_artifact(("experiment", eid), b"day,equity\n1,100\n", name="curve.csv")
    return tracker, {"eid": eid, "tid": tid}


@pytest.mark.parametrize("case", CASES, ids=[f"{i + 1}-{c.entry}-{c.bad_input}" for i, c in enumerate(CASES)])
def test_bad_input_raises_the_documented_error_and_changes_nothing(
    prepared: tuple[ExperimentTracker, dict[str, int]],
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracker, context = prepared
    before = snapshot(tracker)
    elsewhere = tmp_path / "working-directory"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths land here: nothing may appear
    with pytest.raises(case.error) as info:
        case.call(tracker, context)
    assert case.message in str(info.value)
    assert same(snapshot(tracker), before)
    assert list(elsewhere.iterdir()) == []
    assert tracker.create_experiment("still usable", "T", "m") > context["eid"]


def test_the_catalogue_has_at_least_thirty_cases_and_the_docs_match_it() -> None:
    assert len(CASES) >= 30
    assert documented() == render(), "regenerate the table: python -m tests.test_bad_input"


def test_sql_metacharacters_are_stored_verbatim_in_every_string_field(tracker: ExperimentTracker) -> None:
    nasty = 'Robert\'); DROP TABLE experiments; -- %_\\ "quoted" ; SELECT * FROM trials'
    eid = tracker.create_experiment(nasty, nasty, nasty, {nasty: nasty}, objective=nasty)
    tid = tracker.log_trial(
        eid, 0, {nasty: nasty}, {nasty: 1.0}, strategy_code=nasty, strategy_template=nasty, generation_method=nasty
    )
    tracker.log_ttpt_result(tid, True, 0, {nasty: nasty}, violations=[nasty])
    e = tracker.get_experiment(eid)
    assert (e["name"], e["template"], e["mode"], e["objective"], e["config"]) == (
        nasty,
        nasty,
        nasty,
        nasty,
        {nasty: nasty},
    )
    t = tracker.get_trial(tid)
    assert (t["params"], t["performance"], t["strategy_code"], t["value"]) == ({nasty: nasty}, {nasty: 1.0}, nasty, 1.0)
    assert tracker.get_ttpt_results(tid)[0]["violations"] == [nasty]
    assert [x["id"] for x in tracker.filter_experiments(name_contains="%_\\")] == [eid]
    assert tracker.filter_experiments(name_contains="%x_") == []
    assert [x["id"] for x in tracker.filter_experiments(template=nasty, mode=nasty)] == [eid]


START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def render() -> str:
    """The catalogue table that docs/errors.md holds between its START and END markers."""
    lines = ["| # | entry point | bad input | exception | message contains |", "| --- | --- | --- | --- | --- |"]
    for number, case in enumerate(CASES, start=1):
        message = case.message.replace("|", "\\|")
        lines.append(f"| {number} | `{case.entry}` | {case.bad_input} | `{case.error.__name__}` | {message} |")
    return "\n".join(lines)


def documented() -> str:
    text = DOCS.read_text()
    return text[text.index(START) + len(START) : text.index(END)].strip()


if __name__ == "__main__":
    page = DOCS.read_text()
    DOCS.write_text(page[: page.index(START) + len(START)] + "\n" + render() + "\n" + page[page.index(END) :])
