"""The in-house JSON file: keys its format does not have are named, never dropped silently."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tracker import CorruptStoreError, ExperimentTracker, UnknownKeyWarning

FIXTURE = Path(__file__).parent / "fixtures" / "inhouse_v0.json"


def with_unknown_keys(tmp_path: Path) -> Path:
    """The fixture as a new user might have written it: `ttpt_results` (a list) for `ttpt_result`."""
    document = json.loads(FIXTURE.read_text())
    trial = document["experiments"][0]["trials"][1]
    trial["ttpt_results"] = [{"passed": False, "num_violations": 2, "metrics": {}}]
    document["experiments"][1]["owner"] = "desk 4"
    document["version"] = 2
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps(document))
    return path


def test_opening_and_upgrading_name_each_unknown_key_and_where_it_is(tmp_path: Path) -> None:
    path = with_unknown_keys(tmp_path)
    with pytest.warns(UnknownKeyWarning) as opened:
        tracker = ExperimentTracker(backend="json", db_path=path)
    message = str(opened[0].message)
    assert str(path) in message
    assert "experiments[0].trials[1]: 'ttpt_results' (did you mean 'ttpt_result'?)" in message
    assert "experiments[1]: 'owner'" in message
    assert "top level: 'version'" in message
    original = path.read_bytes()
    with tracker:
        with pytest.warns(UnknownKeyWarning, match="ttpt_results"):  # a read replays the file, and warns
            trials = tracker.get_trials(1)
        assert trials[1]["ttpt_result"] is None  # not imported, and said so
        with pytest.warns(UnknownKeyWarning, match="ttpt_results"):
            tracker.log_trial(1, 99, {}, {"sharpe": 1.0})  # the first write upgrades the file
    assert (tmp_path / "experiments.json.inhouse-backup").read_bytes() == original
    assert path.read_bytes().startswith(b'{"format"')


def test_strict_refuses_the_file_and_changes_nothing(tmp_path: Path) -> None:
    path = with_unknown_keys(tmp_path)
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match=r"experiments\[0\]\.trials\[1\]: 'ttpt_results'"):
        ExperimentTracker(backend="json", db_path=path, strict=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.json"]


def test_a_file_in_the_in_house_format_opens_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "clean.json"
    path.write_bytes(FIXTURE.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ExperimentTracker(backend="json", db_path=path, strict=True) as tracker:
            assert len(tracker.list_experiments()) == len(json.loads(FIXTURE.read_text())["experiments"])


def test_the_command_line_shows_the_warning_as_one_line(tmp_path: Path) -> None:
    path = with_unknown_keys(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--url", str(path), "experiments", "list", "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("tracker: warning: ")
    assert run.stderr.count("\n") == 1, run.stderr
    assert "experiments[0].trials[1]: 'ttpt_results' (did you mean 'ttpt_result'?)" in run.stderr
    assert len(json.loads(run.stdout)) == len(json.loads(FIXTURE.read_text())["experiments"])
