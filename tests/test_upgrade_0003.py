"""Revision 0003 and journal version 2, on the frozen fixtures made by the released 0002 code
(tests/fixtures/make_0002_fixtures.py): every value survives the upgrade, a downgrade to 0002
and an upgrade again, on SQLite, PostgreSQL (the same rows loaded there) and the journal."""

from __future__ import annotations

import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.make_0002_fixtures import experiments, trials
from tests.test_value_roundtrip import same
from tracker import ExperimentTracker, SchemaOutdatedError
from tracker.sql import schema
from tracker.sql.models import MYSQL_DIALECTS
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.location import resolve

FIXTURES = Path(__file__).parent / "fixtures"
DB = FIXTURES / "tracker_0002.db"
JOURNAL = FIXTURES / "tracker_0002.jsonl"
KEPT = [0, 1, 3]  # the generator deletes its third experiment
IDS = {0: 1, 1: 2, 3: 4}


def assert_fixture_intact(tracker: ExperimentTracker, *, added: tuple[int, ...] = ()) -> None:
    """The store holds exactly what the generator wrote (values, types, ids, codes, checks), and
    the experiments `added` since."""
    assert sorted(e["id"] for e in tracker.list_experiments()) == sorted([*IDS.values(), *added])
    for index in KEPT:
        wanted = experiments()[index]
        got = tracker.get_experiment(IDS[index])
        for key in ("name", "template", "mode", "objective", "direction"):
            assert got[key] == wanted[key]
        assert same(got["config"], wanted["config"] or {})  # the API shows a missing one as {}
        assert same(got["summary"], wanted["summary"] or {})
        assert (got["tags"], got["note"], got["provenance"]) == ({}, None, None)
        stored = tracker.get_trials(IDS[index])
        assert [t["trial_number"] for t in stored] == [t["trial_number"] for t in trials(index)]
        for t, want in zip(stored, trials(index), strict=True):
            assert same(t["params"], want["params"])
            assert same(t["performance"], want["performance"])
            assert t["state"] == want.get("state", "complete")
            assert t["strategy_code"] == want.get("strategy_code")
            assert t["strategy_template"] == want.get("strategy_template")
            assert t["generation_method"] == want.get("generation_method")
            assert t["started_at"] == (None if "started_at" not in want else want["started_at"].isoformat())
            objective = want["performance"].get(wanted["objective"])
            expected_value = None if objective is None or math.isnan(objective) else objective
            assert same(t["value"], expected_value)
            assert (t["attributes"], t["note"], t["tags"]) == (None, None, {})
            checks = tracker.get_ttpt_results(t["id"])
            assert [(r["passed"], r["num_violations"]) for r in checks] == [(p, n) for p, n, _ in want.get("ttpt", [])]
            for r, (_, _, metrics) in zip(checks, want.get("ttpt", []), strict=True):
                assert same(r["metrics"], metrics)
                assert r["violations"] == [{"at": "2026-01-05"}]


def sqlite_copy(tmp_path: Path) -> str:
    target = tmp_path / "tracker_0002.db"
    shutil.copy(DB, target)
    return f"sqlite:///{target}"


def load_into_server(url: str) -> None:
    """The fixture's rows, at schema 0002 on PostgreSQL or MariaDB (through its own migration).
    PostgreSQL gets its timestamps with an offset and JSONB casts; MariaDB's DOUBLE columns cannot
    hold infinities, so they hold the largest finite doubles, as tracker writes them."""
    db = UnitOfWork(resolve(url, None, None))
    schema.upgrade(db, "0002")
    mysql = db.dialect in MYSQL_DIALECTS
    db.dispose()
    source = sqlite3.connect(DB)
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in ("experiments", "trials", "ttpt_results"):
            cursor = source.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
            for row in rows:
                if "passed" in row:
                    row["passed"] = bool(row["passed"])
                if mysql and isinstance(row.get("value"), float) and math.isinf(row["value"]):
                    row["value"] = math.copysign(sys.float_info.max, row["value"])
                for key in () if mysql else ("created_at", "started_at", "completed_at"):
                    if row.get(key) is not None:
                        row[key] = row[key] + "+00"
            if mysql:
                columns = ", ".join(f"`{n}`" for n in names)
                values = ", ".join(f":{n}" for n in names)
            else:
                columns = ", ".join(names)
                values = ", ".join(f"CAST(:{n} AS JSONB)" if n in JSON_COLUMNS else f":{n}" for n in names)
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), rows)
            top = source.execute(f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'").fetchone()[0]
            if mysql:
                conn.execute(text(f"ALTER TABLE {table} AUTO_INCREMENT = {int(top) + 1}"))
            else:
                conn.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :s)"), {"t": table, "s": top})
    engine.dispose()
    source.close()


JSON_COLUMNS = {"config", "summary", "params", "performance", "metrics", "violations"}


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_copy(tmp_path)
    url: str = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    load_into_server(url)
    return url


def test_a_0002_database_is_refused_until_upgraded_with_the_printed_command(tmp_path: Path) -> None:
    url = sqlite_copy(tmp_path)
    with pytest.raises(SchemaOutdatedError, match="tracker db upgrade --url") as info:
        ExperimentTracker(url)
    command = str(info.value).split("`")[1]
    assert command.startswith("tracker db upgrade --url")


def test_the_upgrade_keeps_every_value_and_stores_each_code_once(at_0002: str) -> None:
    db = UnitOfWork(resolve(at_0002, None, None))
    report = schema.upgrade(db, "0003")
    assert report.applied == ["0003 (up)"]
    schema.upgrade(db, "head")  # 0004 (tests/test_upgrade_0004.py) and 0005 convert nothing here
    db.dispose()
    assert report.rows == {"blobs": 3, "trials (strategy code stored once)": 5}  # long, short and empty
    with ExperimentTracker(at_0002) as tracker:
        assert_fixture_intact(tracker)
        next_experiment = tracker.create_experiment("after", "t", "m")
        assert next_experiment == 5  # the deleted experiment's id 3 and 4's are never reused


def test_downgrade_to_0002_and_upgrade_again_keep_all_that_0002_holds(at_0002: str) -> None:
    db = UnitOfWork(resolve(at_0002, None, None))
    schema.upgrade(db, "head")
    with ExperimentTracker(at_0002) as tracker:
        tid = tracker.get_trials(1)[0]["id"]
        tracker.set_tags(("trial", tid), {"dropped": "by the downgrade"})
        tracker.log_step_metrics(tid, 0, {"sharpe": 1.0})
    schema.downgrade(db, "0003")  # 0004 holds nothing 0002 has
    report = schema.downgrade(db, "0002")
    assert report.rows == {"trials (strategy code put back)": 5}
    schema.upgrade(db, "head")
    db.dispose()
    with ExperimentTracker(at_0002) as tracker:
        assert_fixture_intact(tracker)
        assert tracker.get_step_metrics(tid) == {}


def test_a_version_1_journal_reads_as_it_is_and_converts_on_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    shutil.copy(JOURNAL, path)
    original = path.read_bytes()
    with ExperimentTracker(path) as tracker:
        assert_fixture_intact(tracker)
        assert path.read_bytes() == original  # reading changes nothing
        assert tracker.create_experiment("after", "t", "m") == 5
        assert_fixture_intact(tracker, added=(5,))
    assert (tmp_path / "runs.jsonl.v1-backup").read_bytes() == original
    first_line = path.read_text().splitlines()[0]
    assert '"version":3' in first_line  # converted straight to the current version
    assert path.read_text().count(experiments()[0]["name"]) == 1
    assert path.read_text().count("rolling(20)") == 4000  # the long code once, not once per trial
    with ExperimentTracker(path) as tracker:
        assert_fixture_intact(tracker, added=(5,))


def test_the_offline_sql_of_0003_is_printed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--url", "postgresql://u@h/db", "db", "upgrade", "--sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE TABLE blobs" in out
    assert "CREATE TABLE trial_metrics" in out
    assert "ALTER TABLE trials DROP COLUMN strategy_code" in out
    assert "rows_to_convert = 0" in out  # the guard that stops the script on rows to convert


def test_a_new_journal_keeps_each_code_once(tmp_path: Path) -> None:
    code = "def f(d, p):\n    return d\n" * 500
    with ExperimentTracker(tmp_path / "j.jsonl") as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tracker.log_trials(
            eid, [{"trial_number": n, "params": {}, "performance": {}, "strategy_code": code} for n in range(50)]
        )
        tracker.log_trial(eid, 50, {}, {}, strategy_code=code)
        assert {t["strategy_code"] for t in tracker.get_trials(eid)} == {code}
    assert (tmp_path / "j.jsonl").read_text().count("return d") == 500
