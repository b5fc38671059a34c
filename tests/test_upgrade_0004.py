"""Revision 0004 and journal version 3, on the frozen fixtures made by the released 0003 code
(tests/fixtures/make_0003_fixtures.py): every value survives the upgrade, a downgrade to 0003 and
an upgrade again, on SQLite and the journal; returns stored afterwards read back bit for bit."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.make_0002_fixtures import experiments, trials
from tests.fixtures.make_0003_fixtures import ARTIFACT, extras
from tests.test_value_roundtrip import same
from tracker import ExperimentTracker, SchemaOutdatedError
from tracker.sql import schema
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.location import resolve

FIXTURES = Path(__file__).parent / "fixtures"
KEPT = {0: 1, 1: 2, 3: 4}  # generator index -> id; the third experiment is deleted


def assert_0003_intact(tracker: ExperimentTracker) -> None:
    """Every value the 0003 generator wrote, 0003's own parts (tags, notes, attributes, steps,
    artifacts) included."""
    assert sorted(e["id"] for e in tracker.list_experiments()) >= sorted(KEPT.values())
    for index, eid in KEPT.items():
        wanted = experiments()[index]
        got = tracker.get_experiment(eid)
        assert (got["name"], got["objective"], got["direction"]) == (
            wanted["name"],
            wanted["objective"],
            wanted["direction"],
        )
        assert same(got["summary"], wanted["summary"] or {})
        assert got["tags"] == {"campaign": "q3", "index": str(index)}
        assert got["note"] == "experiment note — ü"
        assert tracker.get_artifact(("experiment", eid), "report.txt") == "report ü".encode()
        stored = tracker.get_trials(eid)
        assert [t["trial_number"] for t in stored] == [t["trial_number"] for t in trials(index)]
        for t, want in zip(stored, trials(index), strict=True):
            assert same(t["params"], want["params"])
            assert same(t["performance"], want["performance"])
            assert t["strategy_code"] == want.get("strategy_code")
            more = extras(index, want["trial_number"])
            assert same(t["attributes"], more["attributes"])
            assert (t["note"], t["tags"]) == (more["note"], more["tags"])
            steps = tracker.get_step_metrics(t["id"])["fold_sharpe"]
            assert steps[0] == (0, 0.5)
            assert steps[1][0] == 1
            assert math.isnan(steps[1][1])
            assert tracker.get_artifact(("trial", t["id"]), "weights.bin") == ARTIFACT
            assert [r["passed"] for r in tracker.get_ttpt_results(t["id"])] == [p for p, _, _ in want.get("ttpt", [])]


def _series() -> pd.Series:
    index = pd.bdate_range("2023-01-02", periods=30, tz="UTC")
    values = np.random.default_rng(4).normal(0, 0.01, 30)
    values[5] = np.nan
    return pd.Series(values, index=index)


def _returns_round_trip(tracker: ExperimentTracker) -> None:
    tid = tracker.get_trials(1)[0]["id"]
    tracker.log_returns(tid, _series())
    got = tracker.get_returns(tid)
    assert got.to_numpy().tobytes() == _series().to_numpy().tobytes()
    assert got.index.equals(_series().index)


@pytest.fixture
def at_0003(tmp_path: Path) -> str:
    target = tmp_path / "tracker_0003.db"
    shutil.copy(FIXTURES / "tracker_0003.db", target)
    return f"sqlite:///{target}"


def test_a_0003_database_is_refused_until_upgraded(at_0003: str) -> None:
    with pytest.raises(SchemaOutdatedError, match="tracker db upgrade --url"):
        ExperimentTracker(at_0003)


def test_the_upgrade_from_0003_keeps_every_value_and_then_stores_returns(at_0003: str) -> None:
    db = UnitOfWork(resolve(at_0003, None, None))
    report = schema.upgrade(db, "head")
    db.dispose()
    assert report.applied == ["0004 (up)", "0005 (up)"]
    with ExperimentTracker(at_0003) as tracker:
        assert_0003_intact(tracker)
        _returns_round_trip(tracker)
        assert tracker.create_experiment("after", "t", "m") == 5  # ids 3 and 4 are never reused


def test_downgrade_to_0003_and_upgrade_again_keep_all_that_0003_holds(at_0003: str) -> None:
    db = UnitOfWork(resolve(at_0003, None, None))
    schema.upgrade(db, "head")
    with ExperimentTracker(at_0003) as tracker:
        _returns_round_trip(tracker)
    schema.downgrade(db, "0003")
    schema.upgrade(db, "head")
    db.dispose()
    with ExperimentTracker(at_0003) as tracker:
        assert_0003_intact(tracker)
        with pytest.raises(LookupError, match="has no returns"):  # the downgrade dropped them
            tracker.get_returns(tracker.get_trials(1)[0]["id"])


def test_the_0002_and_in_house_databases_upgrade_through_0004_to_head(tmp_path: Path) -> None:
    for name in ("tracker_0002.db", "inhouse_v0.db"):
        target = tmp_path / name
        shutil.copy(FIXTURES / name, target)
        with ExperimentTracker(f"sqlite:///{target}", auto_upgrade=True) as tracker:
            first = tracker.list_experiments()[-1]["id"]
            tid = tracker.log_trial(first, 10**6, {}, {}, returns=_series())
            assert tracker.get_returns(tid).to_numpy().tobytes() == _series().to_numpy().tobytes()
        db = UnitOfWork(resolve(f"sqlite:///{target}", None, None))
        assert db.read(schema.current_revision) == schema.REVISIONS[-1] == "0005"
        db.dispose()


def test_a_version_2_journal_reads_as_it_is_and_converts_on_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    shutil.copy(FIXTURES / "tracker_0003.jsonl", path)
    shutil.copytree(FIXTURES / "tracker_0003.jsonl.artifacts", tmp_path / "runs.jsonl.artifacts")
    original = path.read_bytes()
    with ExperimentTracker(path) as tracker:
        assert_0003_intact(tracker)
        assert path.read_bytes() == original  # reading changes nothing
        _returns_round_trip(tracker)
    assert (tmp_path / "runs.jsonl.v2-backup").read_bytes() == original
    assert '"version":3' in path.read_text().splitlines()[0]
    with ExperimentTracker(path) as tracker:
        assert_0003_intact(tracker)
        tracker.compact()  # keeps the returns files, drops nothing referred to
        _returns_round_trip(tracker)
