"""The JSON journal's own guarantees: many writers, torn and damaged lines, compaction, in-house
JSON files, and copying between every pair of backends."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_store_url
from tests.test_value_roundtrip import same
from tracker import CorruptStoreError, ExperimentTracker, StoreError, copy_store

FIXTURES = Path(__file__).parent / "fixtures"


def fill(tracker: ExperimentTracker) -> list[int]:
    ids = []
    for e in range(3):
        eid = tracker.create_experiment(
            f"exp {e} ✓",
            "T",
            "tpe",
            {"e": e, "nan": float("nan")},
            objective="loss" if e == 2 else "sharpe",
            direction="minimize" if e == 2 else "maximize",
        )
        ids.append(eid)
        batch = [
            {
                "trial_number": n,
                "params": {"x": n, "deep": {"y": [n, None]}},
                "performance": {"sharpe": n / 3, "loss": float("inf") if n == 1 else n},
                "state": "complete",
                "ttpt": {
                    "passed": n % 2 == 0,
                    "num_violations": n % 2,
                    "metrics": {"c": 0.5},
                    "violations": [{"at": n}],
                }
                if n % 3 == 0
                else None,
            }
            for n in range(7)
        ]
        tracker.log_trials(eid, [{k: v for k, v in t.items() if v is not None} for t in batch])
        first = tracker.get_trials(eid)[0]["id"]
        tracker.log_ttpt_result(first, True, 0, {"second": 1})
        tracker.log_experiment_summary(eid, {"best": e})
        tracker.set_tags(("experiment", eid), {"desk": "fx", "e": str(e)})
        tracker.set_tags(("trial", first), {"fold": "0"})
        tracker.set_note(("experiment", eid), f"# exp {e}")
        tracker.log_step_metrics_batch(first, {0: {"sharpe": 0.5, "nan": float("nan")}, 1: {"sharpe": 0.75}})
        tracker.log_artifact(("trial", first), b"day,equity\n1,100\n" * 50, name="equity.csv")
        tracker.log_artifact(("experiment", eid), b"same bytes in each", name="report.txt")
    tracker.delete_experiment(ids.pop(1))
    return ids


def snapshot(tracker: ExperimentTracker) -> list[Any]:
    """Everything in the store except ids, for comparing stores record by record."""
    out = []
    for e in sorted(tracker.list_experiments(), key=lambda e: e["id"]):
        trials = tracker.get_trials(e["id"])
        out.append(
            {
                **{k: v for k, v in e.items() if k != "id"},
                "artifacts": _artifacts(tracker, ("experiment", e["id"])),
                "trials": [
                    {
                        **{k: v for k, v in t.items() if k not in ("id", "experiment_id", "ttpt_result")},
                        "ttpt": [
                            {k: v for k, v in r.items() if k not in ("id", "trial_id")}
                            for r in tracker.get_ttpt_results(t["id"])
                        ],
                        "steps": tracker.get_step_metrics(t["id"]),
                        "artifacts": _artifacts(tracker, ("trial", t["id"])),
                    }
                    for t in trials
                ],
            }
        )
    return out


def _artifacts(tracker: ExperimentTracker, owner: tuple[str, int]) -> list[Any]:
    return [
        {**{k: v for k, v in a.items() if k != "owner_id"}, "bytes": tracker.get_artifact(owner, a["name"])}
        for a in tracker.list_artifacts(owner)
    ]


class TestJournal:
    def test_each_write_appends_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        with ExperimentTracker(path) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            lines = len(path.read_bytes().splitlines())
            tracker.log_trials(eid, [{"trial_number": n, "params": {}, "performance": {}} for n in range(50)])
            assert len(path.read_bytes().splitlines()) == lines + 1
            tracker.log_trial(eid, 99, {}, {})
            assert len(path.read_bytes().splitlines()) == lines + 2
        header = json.loads(path.read_text().splitlines()[0])
        assert header["format"] == "tracker-journal"
        assert header["version"] == 2

    def test_a_torn_last_record_is_ignored_by_readers_and_cut_by_the_next_writer_at_every_cut(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "full.jsonl"
        with ExperimentTracker(path) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            tracker.log_trial(eid, 0, {"a": 1}, {"sharpe": 1.0})
            tracker.log_trial(eid, 1, {"a": "ü" * 20}, {"sharpe": 2.0})
        data = path.read_bytes()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        cuts = range(last_start + 1, len(data))  # the last cut drops only the final newline
        assert len(cuts) > 50
        for cut in cuts:
            torn = tmp_path / f"cut{cut}.jsonl"
            torn.write_bytes(data[:cut])
            caplog.clear()
            with caplog.at_level(logging.WARNING), ExperimentTracker(torn) as tracker:
                assert [t["trial_number"] for t in tracker.get_trials(eid)] == [0]
                assert "incomplete" not in caplog.text  # a reader cannot tell a crash from a write in progress
                assert torn.read_bytes() == data[:cut]  # and it changes nothing
                tracker.log_trial(eid, 1, {"a": 2}, {"sharpe": 3.0})
                assert "incomplete" in caplog.text  # the writer repairs, and says so
            with ExperimentTracker(torn) as tracker:
                assert [t["performance"]["sharpe"] for t in tracker.get_trials(eid)] == [1.0, 3.0]

    def test_a_damaged_line_in_the_middle_names_its_line_number(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.jsonl"
        with ExperimentTracker(path) as tracker:
            eid = tracker.create_experiment("e", "t", "m")
            for n in range(3):
                tracker.log_trial(eid, n, {}, {})
        lines = path.read_bytes().splitlines(keepends=True)
        lines[2] = b'{"op": "trials", "experiment_id": 1, "tri\n'
        path.write_bytes(b"".join(lines))
        before = path.read_bytes()
        with pytest.raises(CorruptStoreError, match="line 3"):
            ExperimentTracker(path)
        assert path.read_bytes() == before

    def test_a_journal_from_a_newer_tracker_is_refused_with_the_upgrade_command(self, tmp_path: Path) -> None:
        path = tmp_path / "new.jsonl"
        ExperimentTracker(path).close()
        lines = path.read_bytes().splitlines(keepends=True)
        header = json.loads(lines[0])
        header["version"] = 99
        lines[0] = json.dumps(header).encode() + b"\n"
        path.write_bytes(b"".join(lines))
        before = path.read_bytes()
        with pytest.raises(CorruptStoreError, match="journal version 99") as caught:
            ExperimentTracker(path)
        assert "upgrade tracker (`pip install -U ttpt-tracker`)" in str(caught.value)
        assert path.read_bytes() == before

    def test_a_file_that_is_not_a_journal_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "other.json"
        path.write_text("this is not json\n")
        with pytest.raises(CorruptStoreError, match="neither a tracker journal nor an in-house JSON file"):
            ExperimentTracker(path)
        assert path.read_text() == "this is not json\n"

    def test_compaction_keeps_content_and_id_counters(self, tmp_path: Path) -> None:
        path = tmp_path / "c.jsonl"
        with ExperimentTracker(path) as tracker:
            fill(tracker)
            before = snapshot(tracker)
            size = path.stat().st_size
            tracker.compact()
            assert path.stat().st_size < size
            assert same(snapshot(tracker), before)
            assert tracker.create_experiment("new", "t", "m") == 4
        with ExperimentTracker(path) as tracker:
            assert same(snapshot(tracker)[:2], before)

    def test_many_processes_append_to_one_file_without_losing_a_write(self, tmp_path: Path) -> None:
        path = tmp_path / "shared.jsonl"
        with ExperimentTracker(path) as tracker:
            eid = tracker.create_experiment("shared", "t", "m")
        start = time.time() + 1.5
        code = (
            "import sys, time\nfrom tracker import ExperimentTracker\n"
            f"time.sleep(max(0, {start} - time.time()))\n"
            "w = int(sys.argv[2])\n"
            "with ExperimentTracker(sys.argv[1]) as t:\n"
            "    for n in range(40):\n"
            f"        i = t.log_trial({eid}, w * 1000 + n, {{'w': w}}, {{'sharpe': n}})\n"
            "        if n % 4 == 0: t.log_ttpt_result(i, True, 0, {})\n"
            "        print(i)\n"
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(path), str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for w in range(6)
        ]
        outputs = [w.communicate(timeout=300) for w in workers]
        assert [w.returncode for w in workers] == [0] * 6, [o[1] for o in outputs]
        acknowledged = [int(i) for out, _ in outputs for i in out.split()]
        assert len(acknowledged) == len(set(acknowledged)) == 240
        with ExperimentTracker(path) as tracker:
            trials = tracker.get_trials(eid)
            assert sorted(t["id"] for t in trials) == sorted(acknowledged)
            assert sum(1 for t in trials if t["ttpt_result"] is not None) == 60


class TestInHouseJson:
    def test_an_in_house_json_file_reads_back_completely(self, tmp_path: Path) -> None:
        path = tmp_path / "experiments.json"
        shutil.copy(FIXTURES / "inhouse_v0.json", path)
        source = json.loads((FIXTURES / "inhouse_v0.json").read_text())
        with ExperimentTracker(backend="json", db_path=path) as tracker:
            experiments = tracker.list_experiments()[::-1]  # newest first, as the in-house class listed them
            assert [e["id"] for e in experiments] == [e["id"] for e in source["experiments"]]
            seen_ids = set()
            for e, original in zip(experiments, source["experiments"], strict=True):
                assert e["name"] == original["name"]
                assert same(e["config"], original["config"] or {})  # None and {} both read as {}
                assert same(e["summary"], original.get("summary") or {})
                trials = tracker.get_trials(e["id"])
                assert len(trials) == len(original["trials"])
                for t, o in zip(trials, sorted(original["trials"], key=lambda x: x["trial_number"]), strict=True):
                    assert same(t["params"], o["params"])
                    assert same(t["performance"], o["performance"])
                    assert t["strategy_code"] == o.get("strategy_code")
                    if "ttpt_result" in o:
                        assert t["ttpt_result"]["passed"] is o["ttpt_result"]["passed"]
                        assert same(t["ttpt_result"]["metrics"], o["ttpt_result"]["metrics"])
                    seen_ids.add(t["id"])
            assert len(seen_ids) == sum(len(e["trials"]) for e in source["experiments"])
            assert path.read_bytes() == (FIXTURES / "inhouse_v0.json").read_bytes()  # read in place
            before = snapshot(tracker)
            tracker.log_trial(1, 50, {}, {"sharpe": 9.0})
        backup = tmp_path / "experiments.json.inhouse-backup"
        assert backup.read_bytes() == (FIXTURES / "inhouse_v0.json").read_bytes()
        with ExperimentTracker(backend="json", db_path=path) as tracker:
            after = snapshot(tracker)
            assert same(after[0]["trials"][:-1], before[0]["trials"])
            assert same(after[1:], before[1:])

    def test_repeated_trial_numbers_in_an_in_house_file_are_refused(self, tmp_path: Path) -> None:
        document = json.loads((FIXTURES / "inhouse_v0.json").read_text())
        document["experiments"][0]["trials"].append(dict(document["experiments"][0]["trials"][0]))
        path = tmp_path / "dup.json"
        path.write_text(json.dumps(document))
        with pytest.raises(CorruptStoreError, match="appears twice"):
            ExperimentTracker(path)


NOTHING = dict.fromkeys(
    ("experiments", "trials", "ttpt_results", "summaries", "annotations", "step_metrics", "artifacts"), 0
)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("json", "sqlite"),
        ("sqlite", "postgresql"),
        ("postgresql", "json"),
        ("json", "json"),
        ("sqlite", "mysql"),
        ("mysql", "postgresql"),
    ],
)
def test_copy_round_trips_between_backends_and_is_idempotent(
    source: str, target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src_url = make_store_url(source, tmp_path / "src", request)
    (tmp_path / "src").mkdir(exist_ok=True)
    dst_url = make_store_url(target, tmp_path / "dst", request) if target != source or source != "postgresql" else None
    (tmp_path / "dst").mkdir(exist_ok=True)
    assert dst_url is not None
    with ExperimentTracker(src_url) as src, ExperimentTracker(dst_url) as dst:
        fill(src)
        counts = copy_store(src, dst)
        added = {"experiments": 2, "trials": 14, "ttpt_results": 8, "step_metrics": 6, "artifacts": 4}
        assert counts == {**NOTHING, **added}
        assert same(snapshot(dst), snapshot(src))
        assert copy_store(src, dst) == NOTHING
        assert same(snapshot(dst), snapshot(src))


def test_readers_never_take_the_writer_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another process holds the journal's lock, a tracker still opens and reads; only a
    write waits for the lock (and here times out)."""
    from filelock import FileLock

    import tracker.journal.file as journal_file

    monkeypatch.setattr(journal_file, "LOCK_TIMEOUT_S", 0.2)
    path = tmp_path / "shared.jsonl"
    with ExperimentTracker(path) as tracker:
        eid = tracker.create_experiment("e", "t", "m")
        tracker.log_trial(eid, 0, {"a": 1}, {"sharpe": 1.0})
    before = path.read_bytes()
    holder = FileLock(f"{path}.lock")
    holder.acquire()
    try:
        with ExperimentTracker(path) as reader:
            assert [t["trial_number"] for t in reader.get_trials(eid)] == [0]
            assert reader.get_experiment(eid)["name"] == "e"
            with pytest.raises(StoreError, match="could not lock"):
                reader.log_trial(eid, 1, {}, {})
            assert [t["trial_number"] for t in reader.get_trials(eid)] == [0]
    finally:
        holder.release()
    assert path.read_bytes() == before


def test_the_journal_is_in_parts_none_over_250_lines() -> None:
    """As Optuna splits its journal storage: file backend, replay state, the state kept in step
    with the file, queries, in-house import, repository; no class grows past about 250 lines."""
    import ast

    sizes = {
        f"{path.name}:{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for path in sorted((Path(__file__).parent.parent / "tracker" / "journal").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    assert {"file.py:JournalFile", "replica.py:JournalReplica", "state.py:JournalState"} <= set(sizes)
    assert {name: size for name, size in sizes.items() if size > 250} == {}
