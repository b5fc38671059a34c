"""A SQLite store in a folder the reader cannot write is read by the CLI's read commands and the
dashboard, run as a user without write permission (`setpriv`, not root, who may write anything).
A write-ahead log the reader cannot use is an error that says what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker import ExperimentTracker

ROOT = Path(__file__).parent.parent
NOBODY = 65534
TRACKER = [sys.executable, "-m", "tracker.cli"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to run as another user"
)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    """Run `command` as uid/gid 65534 (no supplementary groups)."""
    run = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/nonexistent"}
    return subprocess.run(["setpriv", *run, *command], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder owned by root that everyone may read and no one else may write."""
    path = Path(tempfile.mkdtemp(prefix="tracker-readonly-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def written(folder: Path) -> Path:
    path = folder / "store.db"
    with ExperimentTracker(path) as tracker:
        eid = tracker.create_experiment("shared", "t", "m")
        tracker.log_trial(eid, 0, {"a": 1}, {"sharpe": 0.5})
    path.chmod(0o644)
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]  # the last writer checkpointed
    return path


def test_the_unwritable_folder_really_is_unwritable_for_the_reader(folder: Path) -> None:
    run = as_nobody(sys.executable, "-c", f"open({str(folder / 'probe')!r}, 'w')")
    assert run.returncode != 0
    assert "Permission denied" in run.stderr


def test_cli_read_commands_read_a_checkpointed_store_in_a_folder_they_cannot_write(folder: Path) -> None:
    path = written(folder)
    listing = as_nobody(*TRACKER, "--url", str(path), "--format", "json", "experiments", "list")
    assert listing.returncode == 0, listing.stderr
    assert '"shared"' in listing.stdout
    trials = as_nobody(*TRACKER, "--url", str(path), "--format", "json", "trials", "list", "1")
    assert trials.returncode == 0, trials.stderr
    assert '"trial_number": 0' in trials.stdout
    refused = as_nobody(*TRACKER, "--url", str(path), "tags", "set", "experiment", "1", "a=b")
    assert refused.returncode != 0
    assert "read-only" in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]


def test_the_dashboard_reads_a_checkpointed_store_in_a_folder_it_cannot_write(folder: Path) -> None:
    path = written(folder)
    code = (
        "from starlette.testclient import TestClient\nfrom tracker.ui.app import create_app\n"
        f"client = TestClient(create_app({str(path)!r}), base_url='http://127.0.0.1')\n"
        "r = client.get('/api/experiments')\nprint(r.status_code, r.text)\n"
        "print(client.get('/').status_code)\n"
    )
    run = as_nobody(sys.executable, "-c", code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("200 ")
    assert '"shared"' in run.stdout
    assert run.stdout.splitlines()[-1] == "200"


def test_a_write_ahead_log_the_reader_cannot_use_is_an_error_that_says_what_to_do(folder: Path) -> None:
    path = written(folder)
    holder = subprocess.Popen(  # a writer that keeps its log open, with a -shm only its owner may read
        [
            sys.executable, "-c",
            "import os, sys, time\nfrom tracker import ExperimentTracker\n"
            f"t = ExperimentTracker({str(path)!r})\nt.log_trial(1, 1, {{}}, {{}})\n"
            f"os.chmod({str(path)!r} + '-shm', 0o600)\nprint('ready', flush=True)\nsys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        run = as_nobody(*TRACKER, "--url", str(path), "experiments", "list")
        assert run.returncode != 0
        assert "write-ahead log" in run.stderr
        assert "db checkpoint" in run.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    deadline = time.monotonic() + 10
    while (folder / "store.db-wal").exists() and time.monotonic() < deadline:  # pragma: no cover - timing
        time.sleep(0.05)
    checkpoint = subprocess.run(
        [*TRACKER, "--url", f"sqlite:///{path}", "db", "checkpoint"], capture_output=True, text=True, cwd=ROOT
    )
    assert checkpoint.returncode == 0, checkpoint.stderr
    again = as_nobody(*TRACKER, "--url", str(path), "--format", "json", "trials", "list", "1")
    assert again.returncode == 0, again.stderr
    assert '"trial_number": 1' in again.stdout
