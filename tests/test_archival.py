"""Archival never loses data: every ordered pair of backends with default data, the same store
refused in every spelling, a wrong copy rolled back, a write in the window before the delete kept,
`--older-than` counted from the last write, and content keys over the whole content."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BACKENDS, make_store_url
from tracker import ExperimentTracker, StoreError, ValidationError
from tracker.cli import main
from tracker.store.records import NewExperiment, NewStepMetric, NewTrial, NewTTPTResult, Owner
from tracker.store.repository import Repository
from tracker.transfer.archive import CHANGED, Hooks, move
from tracker.transfer.copying import copy_store, snapshot

PAIRS = [(a, b) for a in BACKENDS for b in BACKENDS if a != b]
OLD = datetime(2024, 1, 1, tzinfo=UTC)


def stores(source: str, destination: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    return make_store_url(source, tmp_path / "src", request), make_store_url(destination, tmp_path / "dst", request)


def fill(tracker: ExperimentTracker) -> int:
    """An experiment with default data (provenance on) and everything an experiment can hold."""
    eid = tracker.create_experiment(
        "momentum", "ma_cross", "optimize", {"z": 1, "a": {"y": [1.5, -0.0, math.nan, math.inf]}, "m": "text"},
        tags={"desk": "fx", "owner": "ana"}, note="# why\nbecause", data_fingerprint="f" * 64,
    )  # fmt: skip
    for n in range(4):
        tid = tracker.log_trial(
            eid, n, {"lookback": n, "b": 0.1 * n, "a": [n, {"k": None}]}, {"sharpe": n / 3, "dd": -0.5, "z": 1e300},
            strategy_code=("# header\n" * 200) + f"return {n}\n", attributes={"fold": [n, "x"], "ok": True},
            tags={"fold": str(n)}, note=f"trial {n}",
        )  # fmt: skip
        if n % 2 == 0:
            tracker.log_ttpt_result(tid, n == 0, n, {"window": n, "x": 0.25}, violations=[{"col": "close"}])
        tracker.log_step_metrics_batch(tid, {0: {"sharpe": 0.1 * n, "nan": math.nan}, 1: {"sharpe": -0.0}})
        tracker.log_artifact(("trial", tid), b"curve %d\n" % n * 50, "curve.csv")
        dates = pd.date_range("2024-01-01", periods=30, freq="B", tz="UTC")
        tracker.log_returns(tid, pd.Series([0.001 * (n + i) - 0.01 for i in range(29)] + [math.nan], index=dates))
    tracker.log_artifact(("experiment", eid), b"report " * 400, "report.txt")
    tracker.log_experiment_summary(eid, {"best": {"sharpe": 1.0, "params": {"b": 2, "a": 1}}})
    return eid


def only(tracker: ExperimentTracker) -> int:
    [experiment] = tracker.list_experiments()
    return int(experiment["id"])


@pytest.mark.parametrize(("source", "destination"), PAIRS)
def test_archive_and_restore_over_every_ordered_pair_keep_every_value(
    source: str, destination: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src_url, dst_url = stores(source, destination, tmp_path, request)
    with ExperimentTracker(src_url) as src, ExperimentTracker(dst_url) as dst:
        eid = fill(src)
        original = snapshot(src.repository, eid)
        assert original["experiment"]["provenance"] is not None
        report = src.archive(dst, ids=[eid])
        assert report["kept"] == []
        assert len(report["moved"]) == 1
        assert src.list_experiments() == []
        assert snapshot(dst.repository, only(dst)) == original
        back = src.restore([only(dst)], dst)
        assert len(back["moved"]) == 1
        assert dst.list_experiments() == []
        assert snapshot(src.repository, only(src)) == original


def test_verification_compares_values_not_their_spelling() -> None:
    from tracker.transfer.parts import canonical

    assert canonical({"a": 1, "b": [2.0]}) == canonical({"b": [2.0], "a": 1})  # dicts as dicts
    assert canonical(math.nan) == canonical(float("-nan"))  # NaN equals NaN
    assert canonical(0.0) != canonical(-0.0)  # floats bit for bit
    assert canonical(1) != canonical(1.0)
    assert canonical(True) != canonical(1)
    assert canonical(5e-324) != canonical(0.0)
    moment = datetime(2025, 1, 1, 12, tzinfo=UTC)
    from datetime import timedelta, timezone

    assert canonical(moment) == canonical(moment.astimezone(timezone(timedelta(hours=5))))  # instants


# the same store ------------------------------------------------------------------------------


def _spellings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    if backend == "sqlite":
        (tmp_path / "real").mkdir()
        os.symlink(tmp_path / "real", tmp_path / "alias")
        return "sqlite:///real/x.db", [
            "sqlite:///real/x.db", "real/x.db", "./real/x.db", "real/../real/x.db",
            f"sqlite:///{tmp_path}/real/x.db", "alias/x.db", f"sqlite:///{tmp_path}/alias/x.db",
        ]  # fmt: skip
    if backend == "json":
        (tmp_path / "real").mkdir()
        os.symlink(tmp_path / "real" / "x.jsonl", tmp_path / "link.jsonl")
        return "real/x.jsonl", [
            "real/x.jsonl", "./real/x.jsonl", "json:real/x.jsonl", f"json://{tmp_path}/real/x.jsonl",
            "link.jsonl", f"{tmp_path}/link.jsonl",
        ]  # fmt: skip
    from sqlalchemy.engine import make_url

    url = make_store_url(backend, tmp_path, request)
    parsed = make_url(url)
    other_host = parsed.set(host="localhost" if parsed.host == "127.0.0.1" else "127.0.0.1")
    spelled = [url, other_host.render_as_string(hide_password=False)]
    if backend == "mysql":
        spelled.append(parsed.set(drivername="mariadb+pymysql").render_as_string(hide_password=False))
    else:
        spelled.append(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    return url, spelled


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_is_never_copied_or_moved_into_itself_however_it_is_spelled(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url, spellings = _spellings(backend, tmp_path, request)
    with ExperimentTracker(url) as tracker:
        eid = fill(tracker)
        before = snapshot(tracker.repository, eid)
        if backend == "sqlite":
            os.link(tmp_path / "real" / "x.db", tmp_path / "hard.db")
            spellings.append("hard.db")
        for other in spellings:
            for attempt in (
                lambda other=other: tracker.archive(other, ids=[eid]),
                lambda other=other: tracker.archive(other, older_than="0d"),
                lambda other=other: tracker.restore([eid], other),
                lambda other=other: copy_store(url, other),
                lambda other=other: move(url, other, ids=[eid]),
            ):
                with pytest.raises(ValidationError, match="is the source store itself"):
                    attempt()
            assert snapshot(tracker.repository, eid) == before, other
            with ExperimentTracker(other) as same, pytest.raises(ValidationError, match="is the source store itself"):
                tracker.archive(same, ids=[eid])
        assert snapshot(tracker.repository, eid) == before


def test_the_cli_refuses_to_archive_a_store_into_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ExperimentTracker("sqlite:///x.db") as tracker:
        eid = fill(tracker)
        before = snapshot(tracker.repository, eid)
    for args in (
        ["--url", "sqlite:///x.db", "archive", "--older-than", "0d", "--to", "sqlite:///x.db", "--yes"],
        ["--url", "sqlite:///x.db", "archive", "--older-than", "0d", "--to", "./x.db", "--yes"],
        ["--url", "x.db", "archive", "restore", str(eid), "--from", f"{tmp_path}/x.db"],
        ["copy", "x.db", "sqlite:///./x.db"],
    ):
        assert main(args) != 0
    with ExperimentTracker("x.db") as tracker:
        assert snapshot(tracker.repository, eid) == before


def test_two_schemas_of_one_postgresql_database_are_two_stores(request: pytest.FixtureRequest) -> None:
    from tests.conftest import temporary_schema

    with temporary_schema() as first, temporary_schema() as second:
        with ExperimentTracker(first) as src:
            fill(src)
            assert len(src.archive(second, older_than="0d")["moved"]) == 1
        with ExperimentTracker(second) as dst:
            assert len(dst.list_experiments()) == 1


# a wrong copy, a write in the window -----------------------------------------------------------


def _note(dst: Repository, target: int) -> None:
    dst.set_note(Owner("experiment", target), "not what the source says")


def _ttpt(dst: Repository, target: int) -> None:
    from tracker.store.records import TrialQuery

    first = dst.list_trials(target, TrialQuery())[1]
    dst.add_ttpt_result(first.id, NewTTPTResult(passed=True, num_violations=0, created_at=OLD))


def _step(dst: Repository, target: int) -> None:
    from tracker.store.records import TrialQuery

    first = dst.list_trials(target, TrialQuery())[0]
    dst.add_step_metrics(first.id, [NewStepMetric(step=9, key="extra", value=1.0)])


def _returns(dst: Repository, target: int) -> None:
    from tracker.facade.series import to_returns
    from tracker.store.records import TrialQuery

    first = dst.list_trials(target, TrialQuery())[0]
    dst.set_returns(first.id, to_returns([0.5, -0.0, math.nan], "returns", None))


def _tag(dst: Repository, target: int) -> None:
    dst.set_tags(Owner("experiment", target), {"desk": "rates"})


def _artifact(dst: Repository, target: int) -> None:
    from tracker.store.records import NewArtifact

    dst.add_artifact(Owner("experiment", target), NewArtifact("report.txt", "text/plain", b"other", OLD), replace=True)


WRONG: dict[str, Callable[[Repository, int], None]] = {
    "note": _note, "ttpt": _ttpt, "steps": _step, "tags": _tag, "artifacts": _artifact,
}  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "json"])
@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_a_wrong_copy_is_rolled_back_and_the_source_keeps_the_experiment(
    backend: str, wrong: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src_url, dst_url = stores(backend, "json" if backend == "sqlite" else "sqlite", tmp_path, request)
    with ExperimentTracker(src_url) as src, ExperimentTracker(dst_url) as dst:
        eid = fill(src)
        copy_store(src, dst)  # an earlier copy; the source then changes
        src.set_note(("experiment", eid), "newer note")
        src.set_tags(("experiment", eid), {"owner": "bo"})
        before_src, before_dst = snapshot(src.repository, eid), snapshot(dst.repository, only(dst))
        with pytest.raises(StoreError, match=r"differs from the source.*rolled back"):
            move(src, dst, ids=[eid], hooks=Hooks(after_copy=WRONG[wrong]))
        assert snapshot(src.repository, eid) == before_src
        assert snapshot(dst.repository, only(dst)) == before_dst  # annotations included


@pytest.mark.parametrize(("source", "destination"), [("sqlite", "json"), ("json", "sqlite"), ("postgresql", "mysql")])
def test_a_write_between_the_verification_and_the_delete_is_never_deleted(
    source: str, destination: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src_url, dst_url = stores(source, destination, tmp_path, request)
    with ExperimentTracker(src_url) as src, ExperimentTracker(dst_url) as dst:
        eid = fill(src)

        def write_in_the_window(repo: Repository, experiment_id: int) -> None:
            with ExperimentTracker(src_url) as other:  # another writer, with its own connections
                other.log_trial(experiment_id, 99, {"late": True}, {"sharpe": 9.0})

        report = move(src, dst, ids=[eid], hooks=Hooks(before_delete=write_in_the_window))
        assert report["moved"] == []
        assert report["kept"][0]["reason"] == CHANGED
        assert 99 in {t["trial_number"] for t in src.get_trials(eid)}
        assert len(move(src, dst, ids=[eid])["moved"]) == 1
        assert 99 in {t["trial_number"] for t in dst.get_trials(only(dst))}
        assert src.list_experiments() == []


@pytest.mark.parametrize("source", BACKENDS)
def test_a_writer_that_comes_while_the_source_is_checked_waits_and_is_refused_never_lost(
    source: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import threading

    from tracker import NotFoundError

    src_url, dst_url = stores(source, "sqlite" if source != "sqlite" else "json", tmp_path, request)
    outcome: list[str] = []
    with ExperimentTracker(src_url) as src, ExperimentTracker(dst_url) as dst:
        eid = fill(src)
        first = src.get_trials(eid)[0]["id"]

        def write() -> None:
            with ExperimentTracker(src_url) as other:
                try:
                    other.log_ttpt_result(first, True, 0, {"late": 1})
                    outcome.append("acknowledged")
                except NotFoundError:
                    outcome.append("refused")

        writer = threading.Thread(target=write)

        def while_locked(repo: Repository, experiment_id: int) -> None:
            writer.start()
            writer.join(timeout=1.0)  # it must wait for the check-and-delete: the writers are kept out

        assert len(move(src, dst, ids=[eid], hooks=Hooks(while_locked=while_locked))["moved"]) == 1
        writer.join()
        assert outcome == ["refused"]  # a clear error, after the move; never acknowledged then deleted
        assert src.list_experiments() == []


def test_the_cli_says_which_experiments_changed_during_the_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracker.cli.annotations import _report

    assert _report({"moved": [], "kept": [{"source_id": 3, "destination_id": 1, "reason": CHANGED}]}, "moved") == 1
    assert "experiment 3 stayed: it changed during the move" in capsys.readouterr().out


# which experiments are old --------------------------------------------------------------------


def test_older_than_counts_from_the_last_write_not_the_creation(tmp_path: Path) -> None:
    with ExperimentTracker(tmp_path / "src.db") as src:
        repo = src.repository
        new = NewExperiment(name="e", template="t", mode="m", objective="sharpe", direction="maximize", created_at=OLD)
        quiet, active = repo.add_experiment(new), repo.add_experiment(new)
        repo.add_trials(quiet, [NewTrial(trial_number=0, params={}, performance={}, state="complete", created_at=OLD)])
        src.log_trial(active, 0, {}, {"sharpe": 1.0})  # written now
        report = src.archive(tmp_path / "dst.db", older_than="90d")
        assert [m["source_id"] for m in report["moved"]] == [quiet]
        assert [e["id"] for e in src.list_experiments()] == [active]


# content keys over the whole content ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_codes_and_artifacts_that_differ_only_after_their_first_kilobyte_read_back_apart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    head = "# the same header\n" * 100
    with ExperimentTracker(make_store_url(backend, tmp_path, request)) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        codes = [head + "return 1\n", head + "return 2\n"]
        ids = [tracker.log_trial(eid, n, {}, {}, strategy_code=code) for n, code in enumerate(codes)]
        data = [head.encode() + b"one", head.encode() + b"two"]
        for trial_id, content in zip(ids, data, strict=True):
            tracker.log_artifact(("trial", trial_id), content, "a.txt")
        tracker.repository.close()
        assert [t["strategy_code"] for t in tracker.get_trials(eid)] == codes
        assert [tracker.get_artifact(("trial", i), "a.txt") for i in ids] == data


def test_a_snapshot_tells_apart_copies_that_differ_in_any_part(tmp_path: Path) -> None:
    """Each part of PARTS is compared: changing any one makes the snapshots differ."""
    from tracker.transfer.copying import differences
    from tracker.transfer.parts import PARTS

    changed = {"ttpt": _ttpt, "steps": _step, "artifacts": _artifact, "returns": _returns, "trials": None}
    assert {part.name for part in PARTS} == set(changed)
    for name, change in changed.items():
        with ExperimentTracker(tmp_path / f"{name}.db") as tracker:
            eid = fill(tracker)
            before = snapshot(tracker.repository, eid)
            if change is None:
                tracker.set_note(("trial", tracker.get_trials(eid)[0]["id"]), "changed")
            else:
                change(tracker.repository, eid)
            assert differences(before, snapshot(tracker.repository, eid)) == [name]


# a real writer during repeated moves -----------------------------------------------------------


@pytest.mark.parametrize("rate", [5, 40])
@pytest.mark.parametrize(
    ("source", "destination"), [("sqlite", "sqlite"), ("sqlite", "postgresql"), ("json", "sqlite"), ("mysql", "json")]
)
def test_every_trial_a_writer_process_saw_acknowledged_ends_in_exactly_one_store(
    source: str, destination: str, rate: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.test_reliability import stress

    src_url, dst_url = stores(source, destination, tmp_path, request)
    report = stress("live", "--url", src_url, "--to", dst_url, "--rate", str(rate), "--rounds", "2", "--seconds", "3")
    assert report["acknowledged"] >= 2 * 3  # the writer wrote before and during the moves
    assert report["moved_while_writing"] >= 1
    failures = ("lost", "in_both", "unacknowledged_stored", "unclear_errors")
    assert {key: report[key] for key in failures} == dict.fromkeys(failures, 0)
