"""The records are the one list of fields: the tables, the `New*` records, the API dicts and the
trial table all follow them, so a new column cannot be added in one place and forgotten in another."""

from __future__ import annotations

from dataclasses import fields

import pytest

from tracker.facade.answers import as_dict
from tracker.sql.models import experiments, trials, ttpt_results
from tracker.store.records import (
    TRIAL_TABLE_COLUMNS,
    Experiment,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    Trial,
    TTPTResult,
    new_fields,
    stored_fields,
)

PAIRS = [(Experiment, NewExperiment, experiments), (Trial, NewTrial, trials), (TTPTResult, NewTTPTResult, ttpt_results)]


@pytest.mark.parametrize(("record", "new", "table"), PAIRS, ids=["experiment", "trial", "ttpt"])
def test_a_record_its_new_record_and_its_table_hold_the_same_fields(record: type, new: type, table: object) -> None:
    from tracker.sql.rows import columns

    stored = {f.name for f in stored_fields(record)}
    assert {c.name for c in columns(table, record)} == set(table.c.keys())  # type: ignore[arg-type,attr-defined]
    assert {c.name.removesuffix("_id") if c.name == "strategy_code_id" else c.name for c in columns(table, record)} == (  # type: ignore[arg-type]
        stored - {"tags"}
    )
    assert set(new_fields(record)) == {f.name for f in stored_fields(new)} == set(new_fields(new))
    assert stored - set(new_fields(record)) <= {"id", "experiment_id", "trial_id"}


def test_every_stored_field_says_how_the_codec_stores_it() -> None:
    for record in (Experiment, NewExperiment, Trial, NewTrial, TTPTResult, NewTTPTResult):
        for f in fields(record):
            assert f.name in ("ttpt", "returns") or {"kind", "frame"} <= set(f.metadata), (record.__name__, f.name)


def test_api_dicts_follow_the_record_fields_in_order(tracker: object) -> None:
    from tracker import ExperimentTracker

    assert isinstance(tracker, ExperimentTracker)
    eid = tracker.create_experiment("a", "b", "c")
    tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0})
    assert list(tracker.get_experiment(eid)) == [f.name for f in stored_fields(Experiment)]
    assert list(tracker.get_trial(tid))[:-1] == [f.name for f in stored_fields(Trial)]
    assert list(as_dict(tracker.repository.get_trial(tid))) == [f.name for f in stored_fields(Trial)]


def test_the_trial_table_carries_the_framed_trial_fields_and_the_latest_ttpt() -> None:
    assert TRIAL_TABLE_COLUMNS[-3:] == ("ttpt.passed", "ttpt.num_violations", "ttpt.metrics")
    assert "strategy_code" not in TRIAL_TABLE_COLUMNS
    assert {"id", "experiment_id", "trial_number", "params", "performance", "value"} <= set(TRIAL_TABLE_COLUMNS)
