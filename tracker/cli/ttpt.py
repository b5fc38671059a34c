"""`tracker ttpt check`: run the look-ahead check on an experiment's best trials after the fact,
with the strategy named as `module:function` and the price data read from a file."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from tracker.cli._app import arg, command
from tracker.cli._output import emit, field, out
from tracker.cli._store import experiment_ids, open_tracker
from tracker.errors import ValidationError

DATA_SUFFIXES = (".csv", ".parquet")


def load_strategy(spec: str) -> Any:
    """The function that `module:function` names; the current folder is importable, as it is for
    `python -m`. Raises ValidationError saying what is missing."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ValidationError("--strategy", f"expected MODULE:FUNCTION (e.g. mystrategies:momentum), got {spec!r}")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            "--strategy", f"cannot import {module_name!r} ({exc}); run from the folder that holds it"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing: say how, in one line
        raise ValidationError("--strategy", f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise ValidationError("--strategy", f"{module_name!r} has no function {name!r}")
    return found


def load_data(path: str, key: str | None) -> Any:
    """The DataFrame in a .csv (first column is the index, dates parsed) or .parquet file; with
    `key`, the dict {key: frame} that strategies taking several inputs expect."""
    import pandas as pd

    file = Path(path)
    if file.suffix.lower() not in DATA_SUFFIXES:
        raise ValidationError("--data", f"{path!r}: expected a .csv or .parquet file")
    if not file.is_file():
        raise ValidationError("--data", f"{path!r} does not exist")
    try:
        if file.suffix.lower() == ".csv":
            frame = pd.read_csv(file, index_col=0, parse_dates=True)
        else:
            frame = pd.read_parquet(file)
    except ImportError as exc:
        raise ValidationError(
            "--data", f"reading {path!r} needs {exc.name}: pip install 'ttpt-tracker[parquet]'"
        ) from None
    except (ValueError, OSError) as exc:
        raise ValidationError("--data", f"cannot read {path!r}: {exc}") from None
    return frame if key is None else {key: frame}


STRATEGY_HELP = (
    "the strategy, function(data, params) -> signals; MODULE is imported from the current folder "
    "(run from the folder that holds it, or set PYTHONPATH=DIR to import it from DIR)"
)
DATA_HELP = (
    "the prices the strategy ran on, a .csv or .parquet file: the first column is the dates, then one "
    "column per asset (with --data-key, the strategy gets {NAME: that table})"
)


@command(
    "ttpt check",
    "run the look-ahead check on the best trials of experiments and store the results",
    arg("experiment", nargs="+", help="experiments' ids or exact names"),
    arg("--strategy", required=True, metavar="MODULE:FUNCTION", help=STRATEGY_HELP),
    arg("--data", required=True, metavar="FILE", help=DATA_HELP),
    arg("--data-key", metavar="NAME", help="pass the data as {NAME: frame}, for strategies that take a dict"),
    arg("--k", type=int, default=3, help="how many of each experiment's best complete trials to check (default 3)"),
    arg("--budget", type=int, help="evaluations per check (default 122: see docs/optuna-and-ttpt.md)"),
    arg("--exhaustive", action="store_true", help="check at every row instead of a budget"),
    arg("--n-jobs", type=int, default=1, help="worker processes (with --dask local: the cluster's workers)"),
    arg(
        "--dask",
        metavar="ADDRESS",
        help="run the boundaries on a Dask cluster: a scheduler (tcp://HOST:8786) or 'local' (needs [dask])",
    ),
)
def ttpt_check(args: argparse.Namespace) -> int:
    from tracker.integrations.optuna import check_best_of
    from tracker.ttpt import LookaheadMonitor, LookaheadOptions
    from tracker.ttpt.cluster import optional_executor

    if args.k < 1:
        raise ValidationError("--k", f"must be at least 1, got {args.k}")
    strategy = load_strategy(args.strategy)
    data = load_data(args.data, args.data_key)
    options = LookaheadOptions(budget=args.budget, exhaustive=args.exhaustive, n_jobs=args.n_jobs)
    with open_tracker(args) as tracker:
        ids = experiment_ids(args, tracker, args.experiment)
        with optional_executor(args.dask, args.n_jobs) as executor:
            monitor = LookaheadMonitor(strategy, data, options, executor=executor)
            checked = check_best_of(tracker, ids, monitor, args.k, recheck=True)
        rows = [_row(tracker.get_trial(trial_id)) for trial_id in checked]
        summaries = tracker.compare_experiments(ids)
    columns = [
        field("experiment_id", "experiment"),
        field("trial_id", "trial id"),
        field("trial_number", "number"),
        field("value"),
        field("passed"),
        field("num_violations", "violations"),
        field("evaluations"),
    ]
    emit(rows, columns, args.format, "look-ahead checks")
    if args.format == "table":
        for summary in summaries:
            out(f"experiment {summary['id']} verdict: {summary['verdict']} ({summary['verdict_coverage']})")
            out(f"experiment {summary['id']} overfitting: {summary['overfitting_status']}")
    return 0


def _row(trial: dict[str, Any]) -> dict[str, Any]:
    result = trial["ttpt_result"]
    return {
        "experiment_id": trial["experiment_id"],
        "trial_id": trial["id"],
        "trial_number": trial["trial_number"],
        "value": trial["value"],
        "passed": result["passed"],
        "num_violations": result["num_violations"],
        "evaluations": result["metrics"].get("evaluations"),
    }
