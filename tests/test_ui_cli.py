"""`tracker ui` through the real entry point: it prints the address and serves it, refuses to
serve beyond loopback without a token, and creates nothing for a missing store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.test_ui_api import seed

BOUND_S = 60


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=BOUND_S,
        env=env,
    )


def test_it_prints_the_address_and_serves_the_store(tmp_path: Path) -> None:
    url = str(tmp_path / "store.db")
    seed(url)
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker.cli", "--url", url, "ui", "--no-open", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server printed its address (or died)
        assert line.startswith("tracker ui: serving "), process.stderr.read() if process.stderr else line
        assert "read-only" in line
        address = line.rsplit(" at ", 1)[1].strip()
        assert address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(address + "api/experiments", timeout=BOUND_S) as answer:  # noqa: S310 - loopback
            assert json.loads(answer.read())["total"] == 2
    finally:
        process.terminate()
        process.wait(BOUND_S)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])  # noqa: S104 - refused before binding
def test_serving_beyond_loopback_without_a_token_is_refused(tmp_path: Path, host: str) -> None:
    url = str(tmp_path / "store.db")
    seed(url)
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_UI_TOKEN"}
    run = run_cli("--url", url, "ui", "--no-open", "--host", host, env=env)
    assert run.returncode == 1
    assert "needs a token" in run.stderr
    assert "--token" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("name", ["nothing/here.db", "nothing/here.jsonl"])
def test_a_missing_store_is_an_error_and_nothing_is_created(tmp_path: Path, name: str) -> None:
    run = run_cli("--url", str(tmp_path / name), "ui", "--no-open", "--port", "0")
    assert run.returncode == 1
    assert "creates nothing" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_importing_tracker_loads_no_web_stack() -> None:
    code = (
        "import sys, tracker, tracker.ui, tracker.read.browser\n"
        "print([m for m in ('starlette', 'jinja2', 'uvicorn', 'plotly', 'pygments', 'sqlalchemy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
