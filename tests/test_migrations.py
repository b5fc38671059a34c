"""Schema versioning: the in-house baseline, upgrades of frozen in-house data on SQLite and
PostgreSQL, downgrades, refusals, the model/migration comparison, races, and sharing with Optuna."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import make_store_url
from tests.test_value_roundtrip import same
from tracker import ExperimentTracker, MigrationError, SchemaError, SchemaOutdatedError, SchemaTooNewError
from tracker._migrations.frozen.inhouse import IN_HOUSE_DDL
from tracker.sql import schema
from tracker.sql.models import Base
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.location import resolve
from tracker.stores import open_reader

FIXTURES = Path(__file__).parent / "fixtures"
IN_HOUSE_DB = FIXTURES / "inhouse_v0.db"
ROOT = Path(__file__).parent.parent


IN_HOUSE_ROWS = {"experiments": 4, "trials": 7, "ttpt_results": 4}
CODES_STORED_ONCE = {"blobs": 2, "trials (strategy code stored once)": 2}
"""The in-house fixture has 2 trials with strategy code, with 2 distinct texts."""


def in_house_copy(tmp_path: Path) -> Path:
    target = tmp_path / "experiments.db"
    shutil.copy(IN_HOUSE_DB, target)
    return target


def raw_rows(path: Path, query: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def expected_in_house() -> dict[str, Any]:
    """What the frozen in-house database holds, read the way the in-house code read it."""
    loads = lambda text: None if text is None else json.loads(text)  # noqa: E731
    return {
        "experiments": {
            r["id"]: (r["name"], loads(r["config"]), loads(r["summary"]), r["created_at"])
            for r in raw_rows(IN_HOUSE_DB, "SELECT * FROM experiments")
        },
        "trials": {
            r["id"]: (
                r["experiment_id"],
                r["trial_number"],
                loads(r["params"]),
                loads(r["performance"]),
                r["strategy_code"],
                r["created_at"],
            )
            for r in raw_rows(IN_HOUSE_DB, "SELECT * FROM trials")
        },
        "ttpt": {
            r["id"]: (r["trial_id"], bool(r["passed"]), r["num_violations"], loads(r["metrics"]))
            for r in raw_rows(IN_HOUSE_DB, "SELECT * FROM ttpt_results")
        },
    }


def assert_in_house_data_intact(tracker: ExperimentTracker) -> None:
    expected = expected_in_house()
    experiments = {e["id"]: e for e in tracker.list_experiments()}
    assert set(experiments) == set(expected["experiments"])
    for eid, (name, config, summary, created) in expected["experiments"].items():
        e = experiments[eid]
        assert e["name"] == name
        assert same(e["config"], {} if config is None else config)  # the API reads NULL as {}, as in-house
        assert same(e["summary"], {} if summary is None else summary)
        stored = tracker.repository.get_experiment(eid)
        assert same(stored.config, config)  # the store keeps NULL as None
        assert same(stored.summary, summary)
        assert e["created_at"] == created.replace(" ", "T") + "+00:00"
    seen = 0
    for eid in expected["experiments"]:
        for t in tracker.get_trials(eid):
            exp_id, number, params, performance, code, created = expected["trials"][t["id"]]
            assert (t["experiment_id"], t["trial_number"], t["strategy_code"]) == (exp_id, number, code)
            assert same(t["params"], params)
            assert same(t["performance"], performance)
            assert t["created_at"] == created.replace(" ", "T") + "+00:00"
            sharpe = performance.get("sharpe")
            if sharpe is None or (isinstance(sharpe, float) and math.isnan(sharpe)):
                assert t["value"] is None
            else:
                assert t["value"] == float(sharpe)
            for r in tracker.get_ttpt_results(t["id"]):
                assert (r["trial_id"], r["passed"], r["num_violations"]) == expected["ttpt"][r["id"]][:3]
                assert same(r["metrics"], expected["ttpt"][r["id"]][3])
                seen += 1
            expected["trials"].pop(t["id"])
    assert expected["trials"] == {}
    assert seen == len(expected["ttpt"])


def load_in_house_rows(url: str) -> None:
    """Put the frozen in-house rows into a database at the baseline revision (raw SQL, like the old code)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for table, columns in (("experiments", 7), ("trials", 9), ("ttpt_results", 6)):
            rows = [tuple(r) for r in raw_rows(IN_HOUSE_DB, f"SELECT * FROM {table}")]
            names = [d[1] for d in sqlite3.connect(IN_HOUSE_DB).execute(f"PRAGMA table_info({table})")]
            marks = ", ".join(f":{n}" for n in names)
            params = [dict(zip(names, r, strict=True)) for r in rows]
            if table == "ttpt_results":
                for p in params:
                    p["passed"] = bool(p["passed"])
            conn.execute(text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"), params)
            assert len(names) == columns
        for table in ("experiments", "trials", "ttpt_results"):
            floor = raw_rows(IN_HOUSE_DB, f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'")[0][0]
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(text(f"ALTER TABLE {table} AUTO_INCREMENT = {int(floor) + 1}"))
            else:
                conn.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :s)"), {"t": table, "s": floor})
    engine.dispose()


def database(url: str) -> UnitOfWork:
    return UnitOfWork(resolve(url, None, None))


def compare_with_models(url: str) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": schema.VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(diff)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TestBaseline:
    def test_the_first_revision_creates_exactly_the_in_house_tables(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'base.db'}"
        db = database(url)
        schema.upgrade(db, "0001")
        db.dispose()
        made = {
            r["name"]: r["sql"]
            for r in raw_rows(tmp_path / "base.db", "SELECT name, sql FROM sqlite_master WHERE type='table'")
        }
        assert {k: v for k, v in made.items() if k not in ("sqlite_sequence", schema.VERSION_TABLE)} == {
            s.split()[2]: s for s in IN_HOUSE_DDL
        }

    def test_the_known_revisions_are_the_scripts_in_order(self) -> None:
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(schema.alembic_config())
        assert tuple(s.revision for s in reversed(list(scripts.walk_revisions()))) == schema.REVISIONS


class TestOpening:
    def test_an_in_house_database_is_refused_with_the_exact_upgrade_command(self, tmp_path: Path) -> None:
        path = in_house_copy(tmp_path)
        before = file_digest(path)
        with pytest.raises(SchemaOutdatedError, match=r"`tracker db upgrade --url sqlite:///.*experiments\.db`"):
            ExperimentTracker(db_path=path)
        assert file_digest(path) == before

    def test_auto_upgrade_opts_in_and_keeps_every_value(self, tmp_path: Path) -> None:
        with ExperimentTracker(db_path=in_house_copy(tmp_path), auto_upgrade=True) as tracker:
            assert_in_house_data_intact(tracker)

    def test_a_database_from_a_newer_tracker_is_refused_and_not_written(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        ExperimentTracker(db_path=path).close()
        conn = sqlite3.connect(path)
        conn.execute(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'")
        conn.commit()
        conn.close()
        before = file_digest(path)
        for auto in (False, True):
            with pytest.raises(SchemaTooNewError, match="9999") as caught:
                ExperimentTracker(db_path=path, auto_upgrade=auto)
            assert "(`pip install -U ttpt-tracker`)" in str(caught.value)
        with pytest.raises(SchemaTooNewError, match="9999") as caught:
            open_reader(f"sqlite:///{path}")
        assert "(`pip install -U ttpt-tracker`)" in str(caught.value)
        assert file_digest(path) == before

    def test_an_older_revision_is_refused_and_upgrades_on_request(self, sql_url: str) -> None:
        db = database(sql_url)
        schema.upgrade(db, "0001")
        db.dispose()
        with pytest.raises(SchemaOutdatedError, match="revision 0001"):
            ExperimentTracker(sql_url)
        with ExperimentTracker(sql_url, auto_upgrade=True) as tracker:
            assert tracker.list_experiments() == []

    def test_processes_opening_a_new_database_at_once_do_not_race(self, sql_url: str) -> None:
        start = time.time() + 2.0
        code = (
            "import sys, time; from tracker import ExperimentTracker\n"
            f"time.sleep(max(0, {start} - time.time()))\n"
            "t = ExperimentTracker(sys.argv[1]); t.create_experiment('race', 't', 'm'); t.close()\n"
        )
        workers = [subprocess.Popen([sys.executable, "-c", code, sql_url], stderr=subprocess.PIPE) for _ in range(6)]
        errors = [w.communicate(timeout=120)[1].decode() for w in workers]
        assert [w.returncode for w in workers] == [0] * 6, errors
        with ExperimentTracker(sql_url) as tracker:
            assert len(tracker.list_experiments()) == 6
        engine = create_engine(sql_url)
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {schema.VERSION_TABLE}")).scalar() == 1
        engine.dispose()


class TestUpgrades:
    @pytest.mark.parametrize("server", ["postgresql", "mysql"])
    def test_the_upgrade_from_the_baseline_keeps_every_value_on_a_server(
        self, server: str, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        url = make_store_url(server, tmp_path, request)
        db = database(url)
        schema.upgrade(db, "0001")
        load_in_house_rows(url)
        report = schema.upgrade(db, "head")
        db.dispose()
        assert report.rows == {**IN_HOUSE_ROWS, **CODES_STORED_ONCE}
        assert report.applied == ["0002 (up)", "0003 (up)", "0004 (up)", "0005 (up)"]
        with ExperimentTracker(url) as tracker:
            assert_in_house_data_intact(tracker)
            new_trial = tracker.log_trial(1, 99, {}, {"sharpe": 1.0})
            assert new_trial > 8  # the in-house counter had handed out 8; ids are never reused

    def test_ids_are_not_reused_after_upgrading_sqlite(self, tmp_path: Path) -> None:
        with ExperimentTracker(db_path=in_house_copy(tmp_path), auto_upgrade=True) as tracker:
            assert tracker.log_trial(1, 99, {}, {"sharpe": 1.0}) == 9

    def test_after_upgrade_the_schema_matches_the_models(self, sql_url: str) -> None:
        db = database(sql_url)
        schema.upgrade(db, "head")
        db.dispose()
        assert compare_with_models(sql_url) == []

    def test_a_new_database_matches_the_models(self, sql_url: str) -> None:
        ExperimentTracker(sql_url).close()
        assert compare_with_models(sql_url) == []

    def test_upgrade_downgrade_upgrade_keeps_the_data(self, sql_url: str, tmp_path: Path) -> None:
        if sql_url.startswith("sqlite"):
            sql_url = f"sqlite:///{in_house_copy(tmp_path)}"
            db = database(sql_url)
        else:
            db = database(sql_url)
            schema.upgrade(db, "0001")
            load_in_house_rows(sql_url)
        schema.upgrade(db, "head")
        report = schema.downgrade(db, "0001")
        assert report.rows == {**IN_HOUSE_ROWS, "trials (strategy code put back)": 2}
        assert report.applied == ["0005 (down)", "0004 (down)", "0003 (down)", "0002 (down)"]
        schema.upgrade(db, "head")
        db.dispose()
        with ExperimentTracker(sql_url) as tracker:
            assert_in_house_data_intact(tracker)

    def test_0005_fills_the_performance_table_as_the_writer_would_and_drops_it(
        self, sql_url: str, tmp_path: Path
    ) -> None:
        from sqlalchemy import create_engine, inspect, text

        from tracker.sql import performance

        if sql_url.startswith("sqlite"):
            sql_url = f"sqlite:///{in_house_copy(tmp_path)}"
            db = database(sql_url)
        else:
            db = database(sql_url)
            schema.upgrade(db, "0001")
            load_in_house_rows(sql_url)
        schema.upgrade(db, "0003")
        engine = create_engine(sql_url)
        with engine.begin() as conn:  # nested and odd leaves, as users log them
            conn.execute(
                text("UPDATE trials SET performance = :p WHERE id = (SELECT min(id) FROM trials)"),
                {"p": '{"sharpe": 1.5, "risk": {"var": -2, "tag": "x"}, "flag": true, "big": {"$float": "1e+20"}}'},
            )
        schema.upgrade(db, "head")
        with engine.connect() as conn:
            cast = "CHAR" if conn.dialect.name in ("mysql", "mariadb") else "TEXT"
            stored = conn.execute(
                text(f"SELECT id, experiment_id, trial_number, CAST(performance AS {cast}) FROM trials")
            ).all()
            got = sorted(tuple(r) for r in conn.execute(text("SELECT * FROM trial_performance")).all())
        expected = []
        for _, experiment_id, number, perf in stored:
            expected += [(experiment_id, key, value, number) for key, value in performance.leaves(json.loads(perf))]
        assert got == sorted(expected)
        assert ("sharpe", 1.5) in {(k, v) for _, k, v, _ in got}
        assert not {k for _, k, _, _ in got} & {"flag", "risk", "big"}  # bool, nested, tagged
        with ExperimentTracker(sql_url) as tracker:  # the writer makes the same rows
            perf = {"sharpe": 1.5, "risk": {"var": -2}, "flag": True, "big": 1e20, "n": 3, "nan": math.nan}
            tracker.log_trial(1, 500, {}, perf)
        with engine.connect() as conn:
            written = conn.execute(text("SELECT * FROM trial_performance WHERE trial_number = 500")).all()
        assert sorted(tuple(r) for r in written) == [(1, "n", 3.0, 500), (1, "sharpe", 1.5, 500)]
        schema.downgrade(db, "0003")
        db.dispose()
        with engine.connect() as conn:
            assert "trial_performance" not in inspect(conn).get_table_names()
        engine.dispose()

    @pytest.mark.parametrize(
        ("damage", "reported"),
        [
            (
                "INSERT INTO trials (experiment_id, trial_number, params, performance) VALUES (1, 0, '{}', '{}')",
                "repeated within an experiment",
            ),
            (
                "INSERT INTO trials (experiment_id, trial_number, params, performance) VALUES (42, 0, '{}', '{}')",
                "experiment does not exist",
            ),
            ("INSERT INTO ttpt_results (trial_id, passed, num_violations) VALUES (4242, 1, 0)", "trial does not exist"),
        ],
    )
    def test_rows_that_break_the_new_constraints_stop_the_upgrade_and_change_nothing(
        self, tmp_path: Path, damage: str, reported: str
    ) -> None:
        path = in_house_copy(tmp_path)
        conn = sqlite3.connect(path)
        conn.execute(damage)
        conn.commit()
        conn.close()
        before = file_digest(path)
        with pytest.raises(MigrationError, match=reported):
            ExperimentTracker(db_path=path, auto_upgrade=True)
        assert (
            file_digest(path) == before
            or raw_rows(path, "SELECT name FROM sqlite_master WHERE name LIKE '_inhouse%'") == []
        )
        assert {r[0] for r in raw_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")} == {
            "experiments",
            "trials",
            "ttpt_results",
            "sqlite_sequence",
        }


class TestCommands:
    def test_tracker_db_upgrade_reports_what_it_did(self, tmp_path: Path) -> None:
        path = in_house_copy(tmp_path)
        out = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", str(path), "db", "upgrade", "--yes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "revisions applied: 0001 (up)" not in out
        assert "0002 (up), 0003 (up), 0004 (up), 0005 (up)" in out
        assert "rows trials: 7" in out
        assert "rows blobs: 2" in out
        assert "took" in out
        current = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", str(path), "db", "current"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f": {schema.HEAD} (this tracker's head: {schema.HEAD})" in current

    def test_upgrade_without_yes_and_without_a_terminal_refuses(self, tmp_path: Path) -> None:
        path = in_house_copy(tmp_path)
        before = file_digest(path)
        run = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", str(path), "db", "upgrade"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert run.returncode == 1
        assert "back up the database first, then run again with --yes" in run.stderr
        assert "Traceback" not in run.stderr
        assert file_digest(path) == before

    def test_offline_sql_is_printed_for_a_dba(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "tracker.cli", "--url", "postgresql://u@h/db", "db", "upgrade", "--sql"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "CREATE TABLE tracker_alembic_version" in out
        assert "JSONB" in out
        assert "ON DELETE CASCADE" in out

    def test_plain_alembic_works_from_the_checkout(self, tmp_path: Path) -> None:
        url = f"sqlite:///{in_house_copy(tmp_path)}"
        subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={url}", "stamp", "0001"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        with ExperimentTracker(url) as tracker:
            assert_in_house_data_intact(tracker)


class TestSharing:
    """Optuna's RDBStorage names a table `trials`, like the in-house schema that tracker keeps. They
    share one PostgreSQL database through two schemas; in one SQLite file tracker refuses clearly."""

    def test_optuna_and_tracker_share_one_postgresql_database_and_each_upgrades(self, pg_url: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        tracker_schema = pg_url.rsplit("search_path%3D", 1)[-1]
        optuna_schema = f"{tracker_schema}_optuna"
        optuna_url = pg_url.replace(tracker_schema, optuna_schema)
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{optuna_schema}"'))
        try:
            db = database(pg_url)
            schema.upgrade(db, "0001")
            db.dispose()
            storage = optuna.storages.RDBStorage(optuna_url)
            study = optuna.create_study(storage=storage, study_name="shared")
            study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
            with ExperimentTracker(pg_url, auto_upgrade=True) as tracker:
                eid = tracker.create_experiment("shared", "t", "m")
                tracker.log_trial(eid, 0, {"x": 1}, {"sharpe": 1})
            storage.upgrade()
            assert storage.get_current_version() == storage.get_head_version()
            assert len(optuna.load_study(study_name="shared", storage=storage).trials) == 3
            storage.remove_session()
            storage.engine.dispose()
            with ExperimentTracker(pg_url) as tracker:
                assert len(tracker.get_trials(eid)) == 1
            assert create_engine(optuna_url).url.database == create_engine(pg_url).url.database
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{optuna_schema}" CASCADE'))
            admin.dispose()

    def test_a_sqlite_file_holding_optuna_tables_is_refused_untouched(self, tmp_path: Path) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = tmp_path / "shared.db"
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
        optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        storage.remove_session()
        storage.engine.dispose()
        before = file_digest(path)
        with pytest.raises(SchemaError, match="Optuna's RDBStorage tables"):
            ExperimentTracker(db_path=path)
        assert file_digest(path) == before


class TestFrozenRevisions:
    ALLOWED = ("__future__", "alembic", "sqlalchemy", "zstandard", "tracker._migrations.frozen")

    def test_revisions_and_their_helpers_import_nothing_from_live_tracker_code(self) -> None:
        import ast

        files = sorted((ROOT / "migrations" / "versions").glob("*.py")) + sorted(
            (ROOT / "migrations" / "frozen").glob("*.py")
        )
        assert len(files) >= 6
        for path in files:
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    assert top in sys.stdlib_module_names or name.startswith(self.ALLOWED), (path.name, name)

    def test_a_change_to_the_live_codec_does_not_change_what_an_old_revision_does(self, tmp_path: Path) -> None:
        """The upgrade runs twice, the second time in a process whose live codec and in-house
        reading raise when called (patched before anything imports them): the result is the same."""
        (tmp_path / "plain").mkdir()
        (tmp_path / "changed").mkdir()
        plain, later = in_house_copy(tmp_path / "plain"), in_house_copy(tmp_path / "changed")
        db = database(f"sqlite:///{plain}")
        schema.upgrade(db, "0002")
        db.dispose()
        script = (
            "import tracker.store.codec, tracker.store.checks, tracker.journal.items, tracker.journal.inhouse\n"
            "def changed(*args, **kwargs):\n"
            "    raise AssertionError('an old revision called the live codec')\n"
            "for module, names in ((tracker.store.codec, ('encode', 'decode', 'number')),\n"
            "                      (tracker.store.checks, ('to_row', 'to_values')),\n"
            "                      (tracker.journal.items, ('to_item', 'to_values')),\n"
            "                      (tracker.journal.inhouse, ('parse_timestamp', 'objective_value'))):\n"
            "    for name in names:\n"
            "        setattr(module, name, changed)\n"
            "from tracker.sql import schema\n"
            "from tracker.sql.unit_of_work import UnitOfWork\n"
            "from tracker.store.location import resolve\n"
            f"db = UnitOfWork(resolve('sqlite:///{later}', None, None))\n"
            "schema.upgrade(db, '0002')\n"
            "db.dispose()\n"
        )
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        for table in ("experiments", "trials", "ttpt_results"):
            query = f"SELECT * FROM {table} ORDER BY id"
            assert [tuple(r) for r in raw_rows(plain, query)] == [tuple(r) for r in raw_rows(later, query)]
