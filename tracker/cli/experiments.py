"""Commands that read and delete experiments: listing, showing, trials, comparing, exporting, plotting."""

from __future__ import annotations

import argparse

from tracker.cli._app import arg, command
from tracker.cli._output import Column, emit, emit_one, field, moment, out, percent, plain
from tracker.cli._store import confirm, experiment_ids, open_tracker
from tracker.store.retry import atomically

EXPERIMENT = "experiment id, or exact name"
EXPERIMENTS = "experiment ids or exact names"


@command(
    "experiments list",
    "list experiments, newest first",
    arg("--tag", action="append", default=[], metavar="NAME=VALUE", help="only experiments with this tag (repeatable)"),
)
def experiments_list(args: argparse.Namespace) -> int:
    from tracker.cli.annotations import pairs

    with open_tracker(args) as tracker:
        rows = tracker.list_experiments(stats=True, tags=pairs(args.tag, "--tag") or None)
        for row in rows:
            row["verdict"] = tracker.verdict(row["id"])["status"]
            row["overfitting"] = tracker.overfitting(row["id"])["status"]
    columns = [
        field("id"),
        field("name"),
        field("template"),
        field("mode"),
        field("n_trials", "trials"),
        field("best_value", "best"),
        field("violation_rate", "violation rate", percent),
        field("verdict"),
        field("overfitting"),
        field("tags", "tags", lambda tags: " ".join(f"{k}={v}" for k, v in (tags or {}).items()) or "-"),
        field("created_at", "created (UTC)", moment),
    ]
    emit(rows, columns, args.format, "experiments")
    return 0


@command("experiments show", "show one experiment with its statistics", arg("experiment", help=EXPERIMENT))
def experiments_show(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        [experiment_id] = experiment_ids(args, tracker, [args.experiment])
        row = tracker.get_experiment(experiment_id)
        [stats] = tracker.compare_experiments([experiment_id])
    row.update(stats)
    emit_one(row, args.format, f"experiment {experiment_id}", {"violation_rate": percent})
    return 0


@command(
    "experiments delete",
    "delete experiments with their trials and TTPT results",
    arg("experiments", nargs="+", metavar="EXPERIMENT", help=EXPERIMENTS),
    arg("--yes", action="store_true", help="do not ask for confirmation"),
)
def experiments_delete(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        ids = list(dict.fromkeys(experiment_ids(args, tracker, args.experiments)))
        names = {i: tracker.get_experiment(i)["name"] for i in ids}
        shown = ", ".join(f"{i} ({names[i]})" for i in ids)
        question = f"Delete experiment(s) {shown} with all their trials from {tracker.url}?"
        refusal = f"deleting experiment(s) {shown} with all their trials needs confirmation; run again with --yes"
        if not confirm(args, question, refusal):
            out("cancelled; nothing was deleted")
            return 1

        def delete() -> None:
            with tracker.transaction():
                for experiment_id in ids:
                    tracker.delete_experiment(experiment_id)

        atomically(delete, [tracker.repository])
    out(f"deleted experiment(s) {shown}")
    return 0


@command(
    "trials list",
    "list an experiment's trials",
    arg("experiment", help=EXPERIMENT),
    arg("--state", action="append", choices=("complete", "pruned", "failed", "running"), help="only this state"),
    arg("--sort", choices=("number", "value"), default="number", help="by trial number, or best value first"),
    arg("--limit", type=int, help="at most this many trials"),
)
def trials_list(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        [experiment_id] = experiment_ids(args, tracker, [args.experiment])
        rows = tracker.get_trials(
            experiment_id,
            states=args.state,
            order_by="value" if args.sort == "value" else "trial_number",
            limit=args.limit,
        )
    columns = [
        field("id"),
        field("trial_number", "number"),
        field("state"),
        field("value"),
        field("ttpt_result", "ttpt", lambda r: "-" if r is None else ("pass" if r["passed"] else "FAIL")),
        field("params"),
        field("performance"),
    ]
    emit(rows, columns, args.format, f"trials of experiment {experiment_id}")
    return 0


@command(
    "trials diff",
    "a unified diff of two trials' strategy code (from A to B)",
    arg("a", type=int, metavar="A", help="trial id"),
    arg("b", type=int, metavar="B", help="trial id"),
)
def trials_diff(args: argparse.Namespace) -> int:
    from tracker.reports.diff import code_diff

    with open_tracker(args) as tracker:
        old, new = tracker.get_trial(args.a), tracker.get_trial(args.b)
    label = "trial {trial_number} (#{id}) of experiment {experiment_id}"
    text = code_diff(old["strategy_code"], new["strategy_code"], label.format(**old), label.format(**new))
    out(text.rstrip("\n") if text else f"trials {args.a} and {args.b} have the same strategy code")
    return 0


@command(
    "trials pareto",
    "the Pareto front of a multi-objective experiment: its trials no other beats on every objective",
    arg("experiment", help=EXPERIMENT),
)
def trials_pareto(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        [experiment_id] = experiment_ids(args, tracker, [args.experiment])
        found = tracker.pareto_front(experiment_id)
    arrows = {"maximize": "↑", "minimize": "↓"}
    columns = [field("trial_id", "id"), field("trial_number", "number")]
    columns += [objective_column(o["name"], arrows[o["direction"]]) for o in found["objectives"]]
    title = (
        f"Pareto front of experiment {experiment_id}: {len(found['front'])} of {found['n_points']} complete trials, "
        f"hypervolume {found['hypervolume']}"
    )
    emit(found["front"], columns, args.format, title)
    return 0


def objective_column(name: str, arrow: str) -> Column:
    """The column of a front row's value of the objective `name`."""
    return Column(f"{name} {arrow}", lambda row: plain(row["values"][name]))


@command("compare", "compare experiments", arg("experiments", nargs="+", metavar="EXPERIMENT", help=EXPERIMENTS))
def compare(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        rows = tracker.compare_experiments(experiment_ids(args, tracker, args.experiments))
    columns = [
        field("id"),
        field("name"),
        field("objective"),
        field("direction"),
        field("best_value", "best"),
        field("n_trials", "trials"),
        field("n_complete", "complete"),
        field("mean_value", "mean"),
        field("std_value", "std"),
        field("violation_rate", "violation rate", percent),
        field("verdict"),
        field("overfitting_status", "overfitting"),
        field("improvement"),
        field("first_best_trial", "first best trial"),
    ]
    emit(rows, columns, args.format, "comparison")
    return 0


@command(
    "overfitting",
    "how much of the best Sharpe the number of trials explains: PSR, DSR, PBO (one family of trials)",
    arg("experiments", nargs="*", metavar="EXPERIMENT", help=EXPERIMENTS + " (their trials form one family)"),
    arg("--tag", action="append", default=[], metavar="NAME=VALUE", help="and the experiments with this tag"),
    arg("--periods-per-year", type=float, default=252, help="periods of the returns in a year (252: daily)"),
    arg("--n-effective", type=float, help="the number of independent trials, instead of the estimate"),
    arg("--splits", type=int, default=16, help="CSCV blocks (even)"),
    arg("--alpha", type=float, default=0.05, help="significance level"),
    arg(
        "--dask",
        metavar="ADDRESS",
        help="run the matrix passes and CSCV's splits on a Dask cluster: tcp://HOST:8786 or 'local' ([dask])",
    ),
    arg("--n-jobs", type=int, default=1, help="with --dask local: the cluster's worker processes"),
)
def overfitting(args: argparse.Namespace) -> int:
    from tracker.cli.annotations import pairs
    from tracker.ttpt.cluster import optional_executor

    with open_tracker(args) as tracker, optional_executor(args.dask, args.n_jobs) as executor:
        ids = experiment_ids(args, tracker, args.experiments) if args.experiments else None
        found = tracker.overfitting(
            ids,
            tags=pairs(args.tag, "--tag") or None,
            periods_per_year=args.periods_per_year,
            n_effective=args.n_effective,
            splits=args.splits,
            alpha=args.alpha,
            executor=executor,
        )
    emit_one(found, args.format, "overfitting")
    if args.format == "table":
        out(MEANING)
    return 0


MEANING = (
    "psr: chance the best trial's Sharpe is above 0, as if it were the only trial; dsr: the same against the "
    "Sharpe the best of n_effective noise trials would show (expected_max_sharpe); significant when "
    "dsr >= 1 - alpha. pbo: share of CSCV splits where the in-sample winner is below the median out of "
    "sample. Definitions: docs/analysis.md#overfitting"
)


@command(
    "export",
    "export trials to .csv, .parquet, .xlsx or .json",
    arg("experiments", nargs="+", metavar="EXPERIMENT", help=EXPERIMENTS),
    arg("-o", "--output", required=True, help="the file to write; its extension picks the format"),
)
def export(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        path = tracker.export(experiment_ids(args, tracker, args.experiments), args.output)
    out(f"wrote {path}")
    return 0


@command(
    "plot",
    "plot experiments to an image file (.png, .svg, .pdf)",
    arg("experiments", nargs="+", metavar="EXPERIMENT", help=EXPERIMENTS),
    arg("--kind", choices=("history", "ttpt", "params", "compare"), default="history", help="what to plot"),
    arg("-o", "--output", required=True, help="the image file to write"),
)
def plot(args: argparse.Namespace) -> int:
    from tracker.reports import plots

    with open_tracker(args) as tracker:
        figure = plots.plot(tracker, experiment_ids(args, tracker, args.experiments), args.kind)
    plots.save(figure, args.output)
    out(f"wrote {args.output} ({args.kind} plot)")
    return 0
