"""Stored contents (artifact bytes, strategy code) are collected when nothing references them any
more, on every backend, and a journal's content names are data, never paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, insert, select

from tests.conftest import BACKENDS, SQL_BACKENDS, make_store_url
from tracker import CorruptStoreError, ExperimentTracker
from tracker.cli import main
from tracker.sql.models import blobs


def count_blobs(url: str) -> int:
    """Stored contents: rows of the blobs table (SQL), files beside the journal (JSON)."""
    if not url.startswith(("sqlite", "postgresql", "mysql")):
        folder = Path(url + ".artifacts")
        return len(list(folder.iterdir())) if folder.is_dir() else 0
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(blobs)).scalar_one())
    finally:
        engine.dispose()


def codes(url: str) -> int:
    """Blobs that are strategy code on SQL stores (the journal keeps code in its lines)."""
    return 1 if url.startswith(("sqlite", "postgresql", "mysql")) else 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_replacing_and_deleting_remove_the_contents_nothing_references(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = make_store_url(backend, tmp_path, request)
    with ExperimentTracker(url) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tid = tracker.log_trial(eid, 0, {}, {"sharpe": 1.0}, strategy_code="code one")
        tracker.log_artifact(("experiment", eid), b"first", "r.txt")
        tracker.log_artifact(("trial", tid), b"shared", "s.txt")
        tracker.log_artifact(("experiment", eid), b"shared", "s.txt")
        assert count_blobs(url) == 2 + codes(url)
        tracker.log_artifact(("experiment", eid), b"second", "r.txt", replace=True)
        assert count_blobs(url) == 2 + codes(url)  # "first" went, "second" came
        tracker.log_artifact(("trial", tid), b"third", "s.txt", replace=True)
        assert count_blobs(url) == 3 + codes(url)  # "shared" is still the experiment's
        tracker.log_strategy_metadata(tid, "code two", None, None)
        assert count_blobs(url) == 3 + codes(url)  # "code one" went
        with tracker.repository.transaction():
            tracker.log_artifact(("experiment", eid), b"fourth", "r.txt", replace=True)
            tracker.log_artifact(("trial", tid), b"second", "again.txt")  # "second" is referenced again
        assert count_blobs(url) == 4 + codes(url)
        assert tracker.get_artifact(("trial", tid), "again.txt") == b"second"
        tracker.delete_experiment(eid)
        assert count_blobs(url) == 0


@pytest.mark.parametrize(("source", "destination"), [("sqlite", "json"), ("json", "sqlite")])
def test_archiving_removes_the_moved_contents_from_the_source(
    source: str, destination: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    src, dst = make_store_url(source, tmp_path / "a", request), make_store_url(destination, tmp_path / "b", request)
    with ExperimentTracker(src) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tid = tracker.log_trial(eid, 0, {}, {}, strategy_code="code")
        tracker.log_artifact(("trial", tid), b"bytes", "a.bin")
        assert count_blobs(src) == 1 + codes(src)
        tracker.archive(dst, ids=[eid])
    assert count_blobs(src) == 0
    assert count_blobs(dst) == 1 + codes(dst)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_db_vacuum_removes_the_orphans_older_versions_left_and_says_what_it_freed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_store_url(backend, tmp_path, request)
    with ExperimentTracker(url) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tracker.log_artifact(("experiment", eid), b"kept", "k.txt")
    engine = create_engine(url)
    with engine.begin() as conn:  # what an older version left behind
        conn.execute(
            insert(blobs), [{"sha256": f"{n:064x}", "codec": "none", "size": 5, "data": b"12345"} for n in (1, 2)]
        )
    engine.dispose()
    assert count_blobs(url) == 3
    assert main(["--url", url, "db", "vacuum"]) == 0
    assert "removed 2 unused blob(s), 10 bytes" in capsys.readouterr().out
    assert count_blobs(url) == 1
    with ExperimentTracker(url) as tracker:
        assert tracker.get_artifact(("experiment", eid), "k.txt") == b"kept"


def test_json_compact_removes_orphan_files_and_says_what_it_freed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.jsonl"
    with ExperimentTracker(path) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tracker.log_artifact(("experiment", eid), b"kept", "k.txt")
    (Path(f"{path}.artifacts") / f"{1:064x}.zst").write_bytes(b"Nleft by an older version")
    assert count_blobs(str(path)) == 2
    assert main(["json", "compact", str(path)]) == 0
    assert "removed 1 unused artifact file(s), 25 bytes" in capsys.readouterr().out
    assert count_blobs(str(path)) == 1


@pytest.mark.parametrize(
    "line",
    [
        '{"op":"artifact","kind":"experiment","id":1,"name":"x","media_type":"text/plain","sha256":"/tmp/x",'
        '"size":1,"created_at":"2025-01-01T00:00:00+00:00"}',
        '{"op":"text","sha256":"../../etc/passwd","text":"x"}',
        '{"op":"strategy","trial_id":1,"strategy_code_sha256":"' + "A" * 64 + '","strategy_template":null,'
        '"generation_method":null}',
    ],
)
def test_a_journal_line_whose_sha256_is_not_a_content_name_is_a_corrupt_line(
    tmp_path: Path, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.jsonl"
    with ExperimentTracker(path) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tracker.log_trial(eid, 0, {}, {})
    outside = tmp_path / "x.zst"
    outside.write_bytes(b"Nsecret")
    line = line.replace("/tmp/x", str(tmp_path / "x"))
    with path.open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(CorruptStoreError, match=r"line 4: damaged journal record.*64 lowercase hex"):
        ExperimentTracker(path)
    assert main(["--url", str(path), "artifacts", "get", "experiment", "1", "x", "-o", str(tmp_path / "out")]) != 0
    assert "line 4: damaged journal record" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_only_writers_keep_a_large_sqlite_page_cache(tmp_path: Path) -> None:
    """A writer's connections cache up to CACHE_KIB of pages (index inserts stay in memory); a
    reader's keep SQLite's default, so that ten dashboard clients streaming a 100 MiB artifact
    each through its own connection do not keep most of it in memory (bench/ui.py's RSS row)."""
    from sqlalchemy import text

    from tracker.sql.engine import CACHE_KIB
    from tracker.stores import open_reader

    url = f"sqlite:///{tmp_path / 'cache.db'}"
    with ExperimentTracker(url) as t:
        repository: Any = t._repo
        writer = repository.uow.read(lambda conn: conn.execute(text("PRAGMA cache_size")).scalar_one())
    reader: Any = open_reader(url)
    try:
        read = reader.uow.read(lambda conn: conn.execute(text("PRAGMA cache_size")).scalar_one())
    finally:
        reader.close()
    assert writer == -CACHE_KIB
    assert read == -2000  # SQLite's default: 2,000 KiB
