"""The command line through its real entry point, in subprocesses, on real stores."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_migrations import in_house_copy
from tracker import ExperimentTracker

TRACKER = [sys.executable, "-m", "tracker.cli"]


def tracker_cli(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_URL"}
    run = subprocess.run([*TRACKER, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def in_terminal(
    args: list[str], answer: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run `args` with a terminal as standard input, type `answer` and Enter; the exit code and output."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            args, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
        os.close(terminal)
        os.write(controller, answer.encode() + b"\n")
        output, _ = proc.communicate()
    finally:
        os.close(controller)
    return proc.returncode, output.decode()


def _refuse(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


def strict_json(text: str) -> Any:
    """Parse RFC 8259 JSON: NaN, Infinity and -Infinity are refused."""
    return json.loads(text, parse_constant=_refuse)


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = str(tmp_path / "cli.db")
    with ExperimentTracker(url) as t:
        a = t.create_experiment("alpha", "Momentum", "tpe", {"lookback": [5, 10], "odd": math.nan})
        b = t.create_experiment("beta", "MeanRev", "grid")
        for n in range(5):
            trial = t.log_trial(a, n, {"x": n, "risk": {"stop": n / 10}}, {"sharpe": n / 2, "tail": math.inf})
            t.log_ttpt_result(trial, n != 2, 0 if n != 2 else 1, {})
            t.log_trial(b, n, {"y": n}, {"sharpe": 1 - n}, state="pruned" if n == 4 else "complete")
        t.create_experiment("empty", "T", "m")
    return url


def test_version_and_help() -> None:
    assert tracker_cli("--version").stdout.startswith("tracker ")
    assert "experiments" in tracker_cli("--help").stdout
    assert "upgrade" in tracker_cli("db", "--help").stdout


def test_global_options_work_before_or_after_the_command(store: str) -> None:
    before = tracker_cli("--url", store, "--format", "json", "experiments", "list").stdout
    after = tracker_cli("experiments", "list", "--url", store, "--format", "json").stdout
    between = tracker_cli("--format", "json", "experiments", "--url", store, "list").stdout
    assert before == after == between
    assert [e["name"] for e in strict_json(before)] == ["empty", "beta", "alpha"]
    for args in (("db", "upgrade", "--url", store, "--yes"), ("--url", store, "db", "upgrade", "--yes")):
        assert "already up to date" in tracker_cli(*args).stdout


def test_json_listings_are_strict_and_carry_each_api_field_once(store: str) -> None:
    rows = strict_json(tracker_cli("--url", store, "experiments", "list", "--format", "json").stdout)
    with ExperimentTracker(store) as t:
        api = t.list_experiments(stats=True)
    # the API's names, in its order, the verdict (tracker.verdict(id)["status"]) and, beside it, the
    # overfitting status (tracker.overfitting(id)["status"]: unknown without returns)
    assert [list(r) for r in rows] == [[*a, "verdict", "overfitting"] for a in api]
    assert [r["overfitting"] for r in rows] == ["unknown"] * 3
    assert [r["verdict"] for r in rows] == ["unchecked", "unchecked", "look-ahead"]  # alpha's best trial failed
    alpha = rows[2]
    assert (alpha["n_trials"], alpha["best_value"], alpha["violation_rate"]) == (5, 2.0, 0.2)
    assert alpha["config"] == {"lookback": [5, 10], "odd": None}  # NaN is null
    assert rows[0]["config"] == {}
    assert rows[0]["summary"] == {}
    trials = strict_json(tracker_cli("--url", store, "trials", "list", "alpha", "--format", "json").stdout)
    assert trials[0]["performance"] == {"sharpe": 0.0, "tail": None}  # inf is null
    assert {"trial_number", "ttpt_result", "created_at"} <= set(trials[0])
    assert "number" not in trials[0]
    shown = strict_json(tracker_cli("--url", store, "experiments", "show", "alpha", "--format", "json").stdout)
    assert (shown["name"], shown["best_sharpe"], shown["config"]["odd"]) == ("alpha", 2.0, None)
    compared = strict_json(tracker_cli("--url", store, "compare", "1", "2", "3", "--format", "json").stdout)
    assert [c["violation_rate"] for c in compared] == [0.2, None, None]
    assert [c["best_sharpe"] for c in compared] == [2.0, 1.0, 0.0]


def test_csv_has_json_text_for_nested_values_and_iso_timestamps(store: str) -> None:
    out = tracker_cli("--url", store, "experiments", "list", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["empty", "beta", "alpha"]
    assert strict_json(rows[2]["config"]) == {"lookback": [5, 10], "odd": None}
    assert strict_json(rows[2]["n_by_state"])["complete"] == 5
    assert "T" in rows[2]["created_at"]
    assert rows[2]["created_at"].endswith("+00:00")
    trials = list(
        csv.DictReader(io.StringIO(tracker_cli("--url", store, "trials", "list", "1", "--format", "csv").stdout))
    )
    assert strict_json(trials[1]["params"]) == {"x": 1, "risk": {"stop": 0.1}}
    assert strict_json(trials[1]["performance"]) == {"sharpe": 0.5, "tail": None}


def test_export_csv_is_readable_by_other_tools(store: str, tmp_path: Path) -> None:
    with ExperimentTracker(store) as t:
        eid = t.create_experiment("timed", "T", "m")
        from datetime import UTC, datetime, timedelta

        start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        t.log_trial(
            eid, 0, {"w": [1, 2]}, {"sharpe": 1.0}, started_at=start, completed_at=start + timedelta(seconds=90)
        )
    tracker_cli("--url", store, "export", "timed", "-o", str(tmp_path / "t.csv"))
    [row] = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert row["started_at"] == "2026-01-02T03:04:05+00:00"
    assert float(row["duration"]) == 90.0
    assert json.loads(row["params.w"]) == [1, 2]


def test_tables_show_rates_as_percentages_and_never_cut_a_header(store: str) -> None:
    for args in (("experiments", "list"), ("compare", "1", "2", "3"), ("trials", "list", "1")):
        table = tracker_cli("--url", store, *args).stdout
        lines = table.splitlines()
        top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
        rule = next(i for i, line in enumerate(lines) if line.startswith("┡"))
        assert rule == top + 2, f"the header of {args} wraps:\n{table}"
        headers = [h.strip() for h in lines[top + 1].strip("┃").split("┃")]
        assert all(headers), table
        if args[0] != "trials":
            assert "violation rate" in headers
            assert "20%" in table
    assert "first best trial" in tracker_cli("--url", store, "compare", "1", "2").stdout


def test_experiments_are_found_by_name_and_an_ambiguous_name_lists_its_ids(store: str, tmp_path: Path) -> None:
    shown = strict_json(tracker_cli("--url", store, "experiments", "show", "beta", "--format", "json").stdout)
    assert shown["id"] == 2
    tracker_cli("--url", store, "plot", "alpha", "beta", "--kind", "compare", "-o", str(tmp_path / "c.png"))
    assert (
        "compare plot"
        in tracker_cli("--url", store, "plot", "beta", "--kind", "compare", "-o", str(tmp_path / "b.png")).stdout
    )
    with ExperimentTracker(store) as t:
        t.create_experiment("beta", "again", "m")
    run = tracker_cli("--url", store, "compare", "alpha", "beta", check=False)
    assert run.returncode == 1
    assert "2 experiments are named 'beta' (ids 2, 4)" in run.stderr
    run = tracker_cli("--url", store, "trials", "list", "gamma", check=False)
    assert run.returncode == 1
    assert "no experiment is named 'gamma'" in run.stderr


def test_a_missing_id_or_bad_option_is_one_line_on_stderr_with_a_command_that_works(store: str) -> None:
    run = tracker_cli("--url", store, "experiments", "show", "99", check=False)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("tracker: error: experiment 99 does not exist; see them with `tracker --url ")
    suggested = run.stderr.split("`")[1].split()
    assert suggested[0] == "tracker"
    assert "alpha" in tracker_cli(*suggested[1:]).stdout
    run = tracker_cli("--url", store, "trials", "list", "1", "--sort", "nonsense", check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr


def test_experiments_delete_asks_and_deletes_all_or_nothing(store: str) -> None:
    run = tracker_cli("--url", store, "experiments", "delete", "beta", "99", "--yes", check=False)
    assert run.returncode == 1
    run = tracker_cli("--url", store, "experiments", "delete", "beta", check=False)  # no terminal, no --yes
    assert run.returncode == 1
    assert "--yes" in run.stderr
    code, output = in_terminal([*TRACKER, "--url", store, "experiments", "delete", "2"], "n")
    assert (code, "cancelled" in output) == (1, True)
    with ExperimentTracker(store) as t:
        assert len(t.list_experiments()) == 3
    code, output = in_terminal([*TRACKER, "--url", store, "experiments", "delete", "beta", "3"], "y")
    assert code == 0, output
    assert "deleted experiment(s) 2 (beta), 3 (empty)" in output
    tracker_cli("--url", store, "experiments", "delete", "alpha", "--yes")
    with ExperimentTracker(store) as t:
        assert t.list_experiments() == []


@pytest.mark.parametrize("answer", ["y", "yes", "YES"])
def test_the_upgrade_prompt_accepts_y_and_yes(tmp_path: Path, answer: str) -> None:
    database = in_house_copy(tmp_path)
    code, output = in_terminal([*TRACKER, "db", "upgrade", "--url", str(database)], answer)
    assert code == 0, output
    assert "[y/N]" in output
    assert "rows trials: 7" in output


def test_a_refused_upgrade_changes_nothing(tmp_path: Path) -> None:
    database = in_house_copy(tmp_path)
    before = database.read_bytes()
    code, output = in_terminal([*TRACKER, "db", "upgrade", "--url", str(database)], "no")
    assert (code, "cancelled" in output) == (1, True)
    assert database.read_bytes() == before


@pytest.mark.parametrize(
    ("target", "dropped"),
    [
        ("0002", ["This drops tags, notes"]),
        ("0001", ["objective, direction", "; tags, notes"]),
    ],
)
def test_the_downgrade_prompt_says_what_is_dropped_and_a_refusal_changes_nothing(
    store: str, target: str, dropped: list[str]
) -> None:
    before = Path(store).read_bytes()
    code, output = in_terminal([*TRACKER, "--url", store, "db", "downgrade", target], "n")
    assert (code, "cancelled" in output) == (1, True)
    assert all(text in output for text in dropped), output
    assert Path(store).read_bytes() == before


READING = [
    ("experiments", "list"),
    ("experiments", "show", "1"),
    ("trials", "list", "1"),
    ("compare", "1"),
    ("export", "1", "-o", "out.csv"),
    ("plot", "1", "-o", "out.png"),
    ("db", "current"),
]


MISSING = ["nothere.db", "no/such/folder/x.db", "runs.jsonl", "sqlite:///nothere.db"]
READ_CASES = [  # `tracker db` refuses JSON journals before it looks for them
    (missing, command) for missing in MISSING for command in READING if not (command[0] == "db" and ".jsonl" in missing)
]


@pytest.mark.parametrize(("missing", "command"), READ_CASES, ids=[f"{m}-{' '.join(c[:2])}" for m, c in READ_CASES])
def test_commands_that_only_read_never_create_a_store(tmp_path: Path, missing: str, command: tuple[str, ...]) -> None:
    run = tracker_cli("--url", missing, *command, check=False, cwd=tmp_path)
    assert run.returncode == 1
    assert "no tracker store at" in run.stderr
    assert missing.removeprefix("sqlite:///") in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_json_compact_of_a_missing_journal_creates_nothing(tmp_path: Path) -> None:
    run = tracker_cli("json", "compact", "gone.jsonl", check=False, cwd=tmp_path)
    assert (run.returncode, "no tracker store at gone.jsonl" in run.stderr) == (1, True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["sqlite:/x.db", "sqlite://relative.db", "foo://bar", "postgresql+psycopg2://u@h/db", "json://x.jsonl"]
)
def test_a_malformed_url_is_refused_with_the_supported_forms_and_creates_nothing(tmp_path: Path, url: str) -> None:
    for command in (("experiments", "list"), ("demo", "--trials", "1"), ("copy", url, "copy.db")):
        run = tracker_cli("--url", url, *command, check=False, cwd=tmp_path)
        assert run.returncode == 1
        assert "Supported forms: a file path" in run.stderr
        assert "sqlite:///relative/path.db" in run.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_exits_quietly_with_status_zero(store: str) -> None:
    for args in (("db", "upgrade", "--sql"), ("trials", "list", "1", "--format", "json")):
        proc = subprocess.Popen(
            [*TRACKER, "--url", store, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first line
        error = proc.stderr.read().decode()
        proc.stderr.close()
        assert (proc.wait(), error) == (0, "")
    shell = f"set -o pipefail; {' '.join(TRACKER)} --url {store} db upgrade --sql | head -1"
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
    assert (run.returncode, run.stderr) == (0, "")


def test_verbose_shows_info_lines_and_twice_verbose_shows_sql_timings(store: str) -> None:
    quiet = tracker_cli("--url", store, "experiments", "list").stderr
    assert quiet == ""
    info = tracker_cli("--url", store, "experiments", "list", "-v").stderr
    assert "INFO tracker.cli: opened sqlite:///" in info
    assert "DEBUG" not in info
    debug = tracker_cli("-vv", "--url", store, "experiments", "list").stderr
    assert "INFO tracker.cli" in debug
    assert any(line.startswith("DEBUG tracker.sql.timing: ") and " ms: SELECT" in line for line in debug.splitlines())


def test_copy_and_json_compact(store: str, tmp_path: Path) -> None:
    journal = tmp_path / "copy.jsonl"
    first = tracker_cli("copy", store, str(journal), "-q").stdout
    assert "3 experiments, 10 trials, 5 ttpt_results" in first
    again = tracker_cli("copy", store, str(journal), "-q").stdout
    assert "0 experiments, 0 trials, 0 ttpt_results" in again
    assert "compacted" in tracker_cli("json", "compact", str(journal)).stdout
    with ExperimentTracker(journal) as t:
        assert len(t.get_trials(1)) == 5
    run = tracker_cli("copy", str(tmp_path / "absent.db"), str(tmp_path / "dest.db"), check=False)
    assert (run.returncode, "absent.db" in run.stderr) == (1, True)
    assert not (tmp_path / "dest.db").exists()


def test_export_and_plot_write_files(store: str, tmp_path: Path) -> None:
    assert "wrote" in tracker_cli("--url", store, "export", "1", "2", "-o", str(tmp_path / "e.csv")).stdout
    assert (tmp_path / "e.csv").exists()
    for kind in ("history", "ttpt", "params"):
        tracker_cli("--url", store, "plot", "1", "--kind", kind, "-o", str(tmp_path / f"{kind}.png"))
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000


def test_the_command_module_layout_is_a_registry() -> None:
    from tracker.cli._app import _COMMANDS, build_parser

    build_parser()
    names = {" ".join(key) for key in _COMMANDS}
    assert {"experiments list", "experiments delete", "db upgrade", "compare", "demo"} <= names


def test_trials_diff_shows_what_changed_in_the_strategy_code(tmp_path: Path) -> None:
    url = str(tmp_path / "diff.db")
    with ExperimentTracker(url) as t:
        e = t.create_experiment("llm", "Generated", "grid")
        honest = t.log_trial(e, 0, {"x": 1}, {"sharpe": 1.0}, strategy_code="def s(d):\n    return d.shift(1)\n")
        leaky = t.log_trial(e, 1, {"x": 2}, {"sharpe": 3.0}, strategy_code="def s(d):\n    return d.shift(-1)\n")
    shown = tracker_cli("--url", url, "trials", "diff", str(honest), str(leaky)).stdout
    assert shown.splitlines() == [
        f"--- trial 0 (#{honest}) of experiment {e}",
        f"+++ trial 1 (#{leaky}) of experiment {e}",
        "@@ -1,2 +1,2 @@",
        " def s(d):",
        "-    return d.shift(1)",
        "+    return d.shift(-1)",
    ]
    same = tracker_cli("--url", url, "trials", "diff", str(honest), str(honest)).stdout
    assert same == f"trials {honest} and {honest} have the same strategy code\n"
    missing = tracker_cli("--url", url, "trials", "diff", str(honest), "999", check=False)
    assert missing.returncode != 0
    assert "trial 999 does not exist" in missing.stderr
