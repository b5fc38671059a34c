"""A wheel built from the repository, installed in a fresh virtual environment with no checkout
on its path, upgrades an in-house database with `tracker db upgrade`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_migrations import assert_in_house_data_intact, in_house_copy
from tracker import ExperimentTracker

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_an_installed_wheel_upgrades_an_in_house_database(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("ttpt_tracker-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    database = in_house_copy(work)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRACKER_URL")}
    where = subprocess.run(
        [str(python), "-c", "import tracker, tracker._migrations as m; print(tracker.__file__, m.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where
    assert str(ROOT) not in where
    run = subprocess.run(
        [str(venv / "bin" / "tracker"), "--url", str(database), "db", "upgrade", "--yes"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "rows trials: 7" in run.stdout
    with ExperimentTracker(db_path=database) as tracker:
        assert_in_house_data_intact(tracker)
