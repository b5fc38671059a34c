"""The first hour of a new user, replayed on a clean temporary folder laid out like a fresh clone
(`.venv` beside it, the shell's PATH without it), the way the README says:

1. `make demo` (which runs `.venv/bin/tracker demo`), then every command the demo prints, as
   printed; they must be the README's.
2. Mistakes: a mistyped path, a malformed URL, an unknown id and an unknown name. Each gets one
   clear line on stderr and a non-zero status, and nothing is created.
3. An in-house database opened, then upgraded with the exact command from the error message.
4. JSON and CSV output parsed strictly.

Every command that an error message, a doc page or the demo prints is run as pasted: error
messages put commands between backticks; docs put them in ```bash blocks (lines starting with
`tracker` or `.venv/bin/tracker`), which run with `.venv` activated.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import in_terminal, strict_json
from tests.test_migrations import IN_HOUSE_DB, expected_in_house
from tracker import DuplicateArtifactError, ExperimentTracker

ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:tracker|\.venv/bin/tracker)\s")
IN_BACKTICKS = re.compile(r"`((?:tracker|\.venv/bin/tracker) [^`]+)`")


def fresh_shell() -> dict[str, str]:
    """A new terminal in the clone: no TRACKER_URL, and the venv not on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_URL", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN)
    return env


def activated_shell() -> dict[str, str]:
    """The same terminal after `source .venv/bin/activate`."""
    env = fresh_shell()
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    return env


def sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def is_dashboard(command: str) -> bool:
    return "ui" in command.split()


def serve(command: str, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    """Run a `tracker ... ui` command as pasted (on a free port, without opening a browser, with a
    token in the environment for addresses beyond loopback): it must print its address and answer
    there; return its experiments listing. The server is stopped afterwards."""
    env = {**env, "TRACKER_UI_TOKEN": "first-hour-token"}
    server = subprocess.Popen(
        ["bash", "-c", f"exec {command} --no-open --port 0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        address = re.search(r"http://\S+", line)
        assert address is not None, (command, line, server.stderr.read() if server.poll() is not None else "")
        base = address.group(0).rstrip("/").replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - a URL, not a bind
        request = urllib.request.Request(  # noqa: S310 - a local test server
            f"{base}/api/experiments", headers={"Authorization": "Bearer first-hour-token"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - a local test server
            listing: dict[str, object] = json.load(answer)
        return listing
    finally:
        server.terminate()
        server.wait(timeout=30)


def files(folder: Path) -> set[str]:
    """Every file and folder under `folder` (the `.venv` link is not followed)."""
    found = set()
    for where, folders, names in os.walk(folder):
        found.update(os.path.relpath(os.path.join(where, n), folder) for n in (*folders, *names))
    return found


def bash_commands(page: Path) -> list[str]:
    """The tracker commands of the page's ```bash blocks, without trailing comments."""
    commands, inside = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and COMMAND.match(line):
            commands.append(re.sub(r"\s+#.*$", "", line).strip())
    return commands


def readme_dashboard() -> str:
    """The dashboard command of the README's first-hour section (its second ```bash block)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The first hour") :]
    second = section.index("```bash", section.index("```bash") + 7)
    block = section[second + len("```bash") : section.index("```", second + 7)]
    return block.strip().splitlines()[0].split("  #")[0].strip()


def readme_first_hour() -> list[str]:
    """The commands of the first ```bash block of the README's first-hour section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The first hour") :]
    block = section[section.index("```bash") + len("```bash") : section.index("```", section.index("```bash") + 7)]
    return [line for line in block.strip().splitlines() if line]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like a fresh clone after `make demo`: `.venv` and the demo's store and files."""
    folder = tmp_path_factory.mktemp("clone")
    (folder / ".venv").symlink_to(VENV_BIN.parent)
    return folder


@pytest.fixture(scope="module")
def demo_output(clone: Path) -> str:
    run = sh(".venv/bin/tracker demo", clone, fresh_shell())  # what `make demo` runs
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_1_the_demo_prints_the_readme_commands_and_each_works_as_printed(clone: Path, demo_output: str) -> None:
    explore = demo_output[demo_output.index("Explore further:") : demo_output.index("Open the dashboard")]
    commands = [line.strip() for line in explore.splitlines()[1:] if line.strip()]
    assert commands == readme_first_hour()
    assert len(commands) == 6
    for command in commands:
        run = sh(command, clone, fresh_shell())
        assert run.returncode == 0, (command, run.stderr)
        assert run.stdout.strip(), command
        assert run.stderr == "", command
    assert (clone / "demo_2_ttpt.png").stat().st_size > 1000
    dashboard = demo_output[demo_output.index("Open the dashboard") :].splitlines()[1].strip()
    assert dashboard == readme_dashboard()
    names = {e["name"] for e in serve(dashboard, clone, fresh_shell())["items"]}
    assert names >= {"momentum (honest)", "momentum + peek (leaky)"}
    assert (clone / "demo_1_2_compare.png").stat().st_size > 1000
    assert "wrote demo_1_2_compare.png" in demo_output


def test_2_mistakes_get_a_clear_error_and_create_nothing(clone: Path, demo_output: str) -> None:
    before = files(clone)
    mistakes = {
        "tracker --url experiment.db experiments list": "no tracker store at experiment.db: the file does not exist",
        "tracker --url exps/experiments.db compare 1 2": "the folder exps does not exist",
        "tracker --url sqlite:/experiments.db experiments list": "Supported forms",
        "tracker --url sqlite://experiments.db trials list 1": "has two slashes after sqlite:",
        "tracker --url oracle://me@localhost/db experiments list": "unknown scheme or driver 'oracle'",
        "tracker experiments show 99": "experiment 99 does not exist",
        "tracker compare 1 'momentum (honset)'": "no experiment is named 'momentum (honset)'",
        "tracker plot 77 -o never.png": "experiment 77 does not exist",
    }
    suggested = []
    for command, message in mistakes.items():
        run = sh(command, clone, activated_shell())
        assert run.returncode == 1, (command, run.stdout, run.stderr)
        assert run.stderr.startswith("tracker: error: "), command
        assert run.stderr.count("\n") == 1, run.stderr
        assert message in run.stderr, (command, run.stderr)
        assert "Traceback" not in run.stderr
        suggested += IN_BACKTICKS.findall(run.stderr)
        assert files(clone) == before, command
    assert suggested, "an unknown id or name points to the command that lists the experiments"
    for command in suggested:
        run = sh(command, clone, activated_shell())
        assert run.returncode == 0, (command, run.stderr)
        assert "momentum (honest)" in run.stdout


def test_3_an_in_house_database_is_upgraded_with_the_command_from_the_error(clone: Path) -> None:
    shutil.copy(IN_HOUSE_DB, clone / "inhouse.db")
    script = (
        "from tracker import ExperimentTracker, SchemaOutdatedError\n"
        "try:\n    ExperimentTracker('inhouse.db')\n"
        "except SchemaOutdatedError as error:\n    raise SystemExit(str(error))\n"
    )
    opened = subprocess.run(
        [sys.executable, "-c", script], cwd=clone, env=activated_shell(), capture_output=True, text=True
    )
    assert opened.returncode == 1
    assert "is an in-house tracker database" in opened.stderr
    listed = sh("tracker --url inhouse.db experiments list", clone, activated_shell())
    assert listed.returncode == 1
    [command] = IN_BACKTICKS.findall(listed.stderr)
    assert IN_BACKTICKS.findall(opened.stderr) == [command]
    assert command == "tracker db upgrade --url sqlite:///inhouse.db"
    code, output = in_terminal(["bash", "-c", command], "y", cwd=clone, env=activated_shell())
    assert code == 0, output
    assert "rows trials: 7" in output
    after = sh("tracker --url inhouse.db experiments list --format json", clone, activated_shell())
    assert after.returncode == 0, after.stderr
    assert len(strict_json(after.stdout)) == len(expected_in_house()["experiments"])


def test_4_json_and_csv_output_parse_strictly(clone: Path, demo_output: str) -> None:
    env = activated_shell()
    for command in (
        "tracker experiments list --format json",
        "tracker --format json compare 1 2",
        "tracker trials list 2 --format json --limit 20",
        "tracker experiments show 'momentum (honest)' --format json",
    ):
        run = sh(command, clone, env)
        assert run.returncode == 0, (command, run.stderr)
        strict_json(run.stdout)
    run = sh("tracker trials list 1 --format csv", clone, env)
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert len(rows) == 150
    for row in rows:
        assert strict_json(row["params"])["lookback"] >= 5
        assert "T" in row["created_at"]
        if row["ttpt_result"]:
            assert strict_json(row["ttpt_result"])["passed"] is True
    run = sh("tracker export 1 2 -o first-hour.csv", clone, env)
    assert run.returncode == 0, run.stderr
    exported = list(csv.DictReader((clone / "first-hour.csv").open()))
    assert len(exported) == 300
    assert all("T" in row["created_at"] and float(row["duration"]) >= 0 for row in exported)


PAGES = [page for page in DOCS if bash_commands(page)]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_in_the_docs_works_when_pasted(page: Path, demo_output: str, clone: Path, tmp_path: Path) -> None:
    commands = bash_commands(page)
    sandbox = tmp_path / "clone"  # a copy of the clone after the demo, so pages cannot disturb each other
    sandbox.mkdir()
    (sandbox / ".venv").symlink_to(VENV_BIN.parent)
    for made in ("experiments.db", "demo_prices.csv"):  # what the demo made
        shutil.copy(clone / made, sandbox / made)
    for command in commands:
        env = fresh_shell() if command.startswith(".venv/") else activated_shell()
        if is_dashboard(command):
            serve(command, sandbox, env)
            continue
        run = sh(command, sandbox, env)
        assert run.returncode == 0, (page.name, command, run.stderr)
        assert run.stderr == "" or command.split()[1] in ("-v", "-vv"), (command, run.stderr)


def test_the_docs_have_commands_to_paste() -> None:
    pages = {page.name: bash_commands(page) for page in DOCS}
    assert len(pages["README.md"]) >= 8
    assert len(pages["cli.md"]) >= 5
    assert pages["migrations.md"]


NOT_RUN = re.compile(r"<!-- not run: ([^>]+) -->\s*$")
"""A ```python block right after such a comment (saying why: it names a server or an absolute path
the reader replaces) is compiled, not run."""
GIVEN = """
import optuna
from pathlib import Path
from tracker import ExperimentTracker
from tracker.demo import daily_returns, momentum_signal, performance, synthetic_prices
from tracker.integrations.optuna import TrackingCallback

# What the docs' blocks use without defining it: a strategy, its prices, a study and its objective,
# files to attach, and a tracker with a trial.
prices = synthetic_prices(seed=5, assets=2, years=1)
strategy_fn = momentum_signal
params = {"lookback": 20, "threshold": 0.01}
png_bytes = b"\\x89PNG\\r\\n\\x1a\\n"
Path("equity.csv").write_text("day,equity\\n1,1.0\\n")
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    chosen = {"lookback": trial.suggest_int("lookback", 5, 60), "threshold": trial.suggest_float("threshold", 0, 0.05)}
    return performance(daily_returns(strategy_fn({"close": prices}, chosen), prices))["sharpe"]


def backtest(lookback):
    return daily_returns(strategy_fn({"close": prices}, {"lookback": lookback, "threshold": 0.01}), prices)


daily = backtest(20)
p, m = params, {"sharpe": 0.5}
tracker = ExperimentTracker("given.db")
exp = tracker.create_experiment("given", "t", "m")
trial_id = tracker.log_trial(exp, 100, params, {"sharpe": 1.0})
"""


def python_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, why not run or None) of each ```python block of the page."""
    blocks, lines = [], page.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "```python":
            end = lines.index("```", number + 1)
            marker = NOT_RUN.search(lines[number - 1]) if number else None
            blocks.append((number + 1, "\n".join(lines[number + 1 : end]), marker.group(1) if marker else None))
    return blocks


BLOCKS = [(page, *block) for page in DOCS for block in python_blocks(page)]


def test_the_docs_have_python_blocks_and_say_why_any_is_not_run() -> None:
    assert len(BLOCKS) >= 7
    assert sum(1 for *_, why in BLOCKS if why is None) >= 5
    for page, line, code, why in BLOCKS:
        compile(code, f"{page.name}:{line}", "exec")  # a block not run must still be Python
        assert why is None or len(why.split()) >= 3, (page.name, line, "say why the block is not run")


@pytest.mark.parametrize(
    ("page", "line", "code"),
    [(page, line, code) for page, line, code, why in BLOCKS if why is None],
    ids=[f"{page.name}:{line}" for page, line, _, why in BLOCKS if why is None],
)
def test_every_python_block_in_the_docs_runs(page: Path, line: int, code: str, tmp_path: Path) -> None:
    """Each block runs in a new folder, after GIVEN (what it uses without defining)."""
    env = {**fresh_shell(), "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, "-c", GIVEN + "\n" + code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, (page.name, line, run.stderr[-3000:])


def test_every_pip_install_in_the_library_names_the_distribution() -> None:
    """`pip install tracker` installs someone else's code: every message and docstring that
    prints a pip command names ttpt-tracker (directly or through errors.DISTRIBUTION)."""
    commands = [
        (path.relative_to(ROOT), match.group(0))
        for path in sorted((ROOT / "tracker").rglob("*.py"))
        for match in re.finditer(r"pip install[^\n\"`)]*", path.read_text())
    ]
    assert len(commands) >= 4
    wrong = [
        (str(path), command) for path, command in commands if not re.search(r"ttpt-tracker|\{DISTRIBUTION\}", command)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:5432/nothing", "psycopg", "postgres"),
        ("mysql+pymysql://root@127.0.0.1:3306/nothing", "pymysql", "mysql"),
    ],
)
def test_a_missing_driver_names_the_extra_that_installs_it(url: str, driver: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{driver!r}] = None\n"  # as if the extra were not installed
        "from tracker import ExperimentTracker, StoreConnectionError\n"
        "try:\n"
        f"    ExperimentTracker({url!r})\n"
        "except StoreConnectionError as exc:\n"
        "    print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"install it with: pip install 'ttpt-tracker[{extra}]'" in run.stdout


# -- the rough edges a new user met (issue 25), each with its test -----------------------------------


def one_error(run: subprocess.CompletedProcess[str]) -> str:
    """The one `tracker: error: ...` line of a failed command, without its prefix."""
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("tracker: error: "), run.stderr
    return run.stderr.removeprefix("tracker: error: ").strip()


def test_a_confirmation_without_a_terminal_is_asked_for_in_a_sentence(tmp_path: Path) -> None:
    shutil.copy(IN_HOUSE_DB, tmp_path / "experiments.db")
    before = (tmp_path / "experiments.db").read_bytes()
    upgrade = one_error(sh("tracker db upgrade", tmp_path, activated_shell()))
    assert upgrade == (
        "upgrading sqlite:///experiments.db needs confirmation; back up the database first, then run again with --yes"
    )
    assert (tmp_path / "experiments.db").read_bytes() == before
    assert sh("tracker db upgrade --yes", tmp_path, activated_shell()).returncode == 0
    deleting = one_error(sh("tracker experiments delete 1", tmp_path, activated_shell()))
    assert deleting.startswith("deleting experiment(s) 1 (")
    assert deleting.endswith("with all their trials needs confirmation; run again with --yes")
    assert "?" not in upgrade + deleting
    assert "--yes:" not in upgrade + deleting
    assert sh("tracker experiments delete 1 --yes", tmp_path, activated_shell()).returncode == 0


def test_the_command_line_speaks_of_its_own_options_not_library_keywords(tmp_path: Path) -> None:
    with ExperimentTracker(tmp_path / "experiments.db") as tracker:
        tracker.create_experiment("Momentum", "Momentum", "tpe")
    (tmp_path / "equity.csv").write_text("day,equity\n1,100\n")
    attach = "tracker artifacts log experiment 1 equity.csv"
    assert sh(attach, tmp_path, activated_shell()).returncode == 0
    message = one_error(sh(attach, tmp_path, activated_shell()))
    assert message == (
        "experiment 1 already has an artifact named 'equity.csv'; choose another name, "
        "or run again with --replace to overwrite it"
    )
    assert sh(f"{attach} --replace", tmp_path, activated_shell()).returncode == 0
    with ExperimentTracker(tmp_path / "experiments.db") as tracker, pytest.raises(DuplicateArtifactError) as library:
        tracker.log_artifact(("experiment", 1), b"x", name="equity.csv")
    assert "pass replace=True to overwrite it" in str(library.value)  # the library keeps its own words


def test_inf_and_nan_read_the_same_in_every_table_cell_and_json_stays_strict(tmp_path: Path) -> None:
    with ExperimentTracker(tmp_path / "experiments.db") as tracker:
        eid = tracker.create_experiment("Momentum", "Momentum", "tpe")
        tracker.log_trial(eid, 0, {"lookback": 5}, {"sharpe": math.inf, "floor": -math.inf, "skew": math.nan})
        tracker.log_trial(eid, 1, {"lookback": 9}, {"sharpe": math.inf})
    listed = sh("tracker trials list 1", tmp_path, activated_shell())
    assert listed.returncode == 0, listed.stderr
    assert '{"sharpe": inf, "floor": -inf, "skew": nan}' in listed.stdout
    assert "null" not in listed.stdout
    assert re.search(r"│ 0\s+│ complete │ inf ", listed.stdout), listed.stdout
    compared = sh("tracker compare 1", tmp_path, activated_shell())
    assert compared.returncode == 0, compared.stderr
    cells = [cell.strip() for cell in compared.stdout.splitlines()[-2].split("│")]
    assert cells[5] == "inf"  # best
    assert cells[-3] == "nan"  # improvement: inf - inf
    as_json = sh("tracker trials list 1 --format json", tmp_path, activated_shell())
    assert strict_json(as_json.stdout)[0]["performance"] == {"sharpe": None, "floor": None, "skew": None}


def test_a_misspelt_name_gets_the_closest_names(clone: Path, demo_output: str) -> None:
    message = one_error(sh("tracker experiments show 'momentum (honset)'", clone, activated_shell()))
    assert "no experiment is named 'momentum (honset)' (did you mean 'momentum (honest)'?)" in message
    folder = clone.parent / "names"
    folder.mkdir(exist_ok=True)
    with ExperimentTracker(folder / "experiments.db") as tracker:
        for name in ("Momentum", "Momentum 2", "Momentum 3", "Momentum 4", "MeanRev"):
            tracker.create_experiment(name, "T", "m")
    message = one_error(sh("tracker compare Momentun", folder, activated_shell()))
    found = re.search(r"\(did you mean ('[^?]*)\?\)", message)
    assert found is not None, message
    names = re.findall(r"'([^']*)'", found[1])
    assert names[0] == "Momentum"  # the closest first
    assert len(names) == 3  # at most 3
    assert set(names) < {"Momentum", "Momentum 2", "Momentum 3", "Momentum 4"}


def test_the_demo_leaves_the_clone_clean_for_git(clone: Path, demo_output: str) -> None:
    written = re.findall(r"^wrote (\S+)", demo_output, flags=re.MULTILINE)
    assert "demo_prices.csv" in written
    made = [*written, "experiments.db", "experiments.db-wal", "demo_2_ttpt.png"]  # with the printed plot command
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *made], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert sorted(ignored.stdout.split()) == sorted(made)


def test_ttpt_check_help_says_where_the_module_comes_from_and_what_the_data_holds(
    clone: Path, demo_output: str
) -> None:
    shown = " ".join(sh("tracker ttpt check --help", clone, activated_shell()).stdout.split())
    assert "MODULE is imported from the current folder" in shown
    assert "set PYTHONPATH=DIR to import it from DIR" in shown
    assert "the first column is the dates, then one column per asset" in shown
    assert "--data-key" in shown
    elsewhere = clone.parent / "strategies"  # the help's advice, followed: a module in another folder
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "desk_strategies.py").write_text("from tracker.demo import leaky_signal as peek\n")
    command = (
        f"PYTHONPATH={elsewhere} tracker ttpt check 2 --strategy desk_strategies:peek"
        " --data demo_prices.csv --data-key close --k 1"
    )
    run = sh(command, clone, activated_shell())
    assert run.returncode == 0, run.stderr
    assert "verdict: look-ahead" in run.stdout


IMPORTS = (
    "import json, sys\n"
    "from tracker.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
)


def imported_by(command: list[str], cwd: Path) -> set[str]:
    """The modules a `tracker` command imports, from the process that ran it."""
    run = subprocess.run(
        [sys.executable, "-c", IMPORTS, *command], cwd=cwd, env=activated_shell(), capture_output=True, text=True
    )
    return {name.partition(".")[0] for name in json.loads(run.stderr[run.stderr.index("[") :])}


def test_a_command_imports_only_what_it_uses(clone: Path, demo_output: str) -> None:
    assert "sqlalchemy" not in imported_by(["--help"], clone)
    assert "sqlalchemy" not in imported_by(["ttpt", "check", "--help"], clone)
    for reading in (["experiments", "list"], ["trials", "list", "1"], ["compare", "1", "2"], ["db", "current"]):
        loaded = imported_by(reading, clone)
        assert "sqlalchemy" in loaded, reading  # what the command does import, so the check is real
        assert {"pandas", "optuna", "matplotlib", "alembic"}.isdisjoint(loaded), (reading, loaded)
        # numpy only where the overfitting column is computed (the demo's studies log returns)
        assert ("numpy" in loaded) == (reading[0] in ("experiments", "compare")), (reading, loaded)
    assert "pandas" in imported_by(["export", "1", "-o", "imports.csv"], clone)  # where pandas is used
