"""The `tracker` command line. Errors print one line on stderr and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tracker import __version__
from tracker.errors import TrackerError, ValidationError
from tracker.urls import ENV_URL, mask_password

Handler = Callable[[argparse.Namespace], int]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _tracker(args: argparse.Namespace) -> Any:
    from tracker.api import ExperimentTracker

    return ExperimentTracker(args.url, auto_upgrade=False)


def _emit(rows: list[dict[str, Any]], columns: list[str], fmt: str, title: str | None = None) -> None:
    """Print rows as a rich table, JSON or CSV."""
    if fmt == "json":
        _out(json.dumps(rows, default=str, indent=2, allow_nan=True))
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    Console(width=max(100, os.get_terminal_size().columns if sys.stdout.isatty() else 160)).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


# db ------------------------------------------------------------------------------------------


def _sql_database(args: argparse.Namespace) -> Any:
    from tracker.sql.unit_of_work import UnitOfWork
    from tracker.urls import resolve

    location = resolve(args.url, None, None)
    if location.backend == "json":
        raise ValidationError("url", "`tracker db` works on SQL databases; JSON journals need no migrations")
    return UnitOfWork(location)


def _confirm(args: argparse.Namespace, action: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise ValidationError("--yes", f"{action} needs confirmation; pass --yes when running without a terminal")
    answer = input(f"{action}? Back up the database first. Type 'yes' to go on: ")
    return answer.strip().lower() == "yes"


def _db_current(args: argparse.Namespace) -> int:
    from tracker import schema

    db = _sql_database(args)
    try:
        revision = db.read(schema.current_revision)
    finally:
        db.dispose()
    shown = {None: "empty (no tracker tables)", "in-house": "in-house tracker database (unversioned)"}
    _out(f"{db.location.safe_url}: {shown.get(revision, revision)} (this tracker's head: {schema.HEAD})")
    return 0


def _db_history(args: argparse.Namespace) -> int:
    from alembic.script import ScriptDirectory

    from tracker import schema

    scripts = ScriptDirectory.from_config(schema.alembic_config())
    for script in reversed(list(scripts.walk_revisions())):
        summary = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        _out(f"{script.revision}  {summary}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from tracker import schema

    if args.sql:
        return _offline_sql(args, "upgrade", args.revision)
    db = _sql_database(args)
    try:
        before = db.read(schema.current_revision)
        _out(f"database: {db.location.safe_url}")
        _out(f"current revision: {before or 'empty'}; target: {args.revision}")
        if before == schema.HEAD and args.revision in ("head", schema.HEAD):
            _out("already up to date")
            return 0
        if not _confirm(args, f"Upgrade {db.location.safe_url} to {args.revision}"):
            _out("cancelled")
            return 1
        report = schema.upgrade(db, args.revision)
    finally:
        db.dispose()
    return _report(report)


def _db_downgrade(args: argparse.Namespace) -> int:
    from tracker import schema

    if args.sql:
        return _offline_sql(args, "downgrade", args.revision)
    db = _sql_database(args)
    try:
        if not _confirm(
            args, f"Downgrade {db.location.safe_url} to {args.revision} (columns newer than it are dropped)"
        ):
            _out("cancelled")
            return 1
        report = schema.downgrade(db, args.revision)
    finally:
        db.dispose()
    return _report(report)


def _report(report: Any) -> int:
    from tracker import schema

    for line in schema.describe(report):
        _out(line)
    return 0


def _offline_sql(args: argparse.Namespace, direction: str, revision: str) -> int:
    from alembic import command

    from tracker import schema
    from tracker.urls import resolve

    location = resolve(args.url, None, None)
    config = schema.alembic_config(url=location.url)
    target = revision if ":" in revision else (f"base:{revision}" if direction == "upgrade" else f"head:{revision}")
    getattr(command, direction)(config, target, sql=True)
    return 0


# json, copy ----------------------------------------------------------------------------------


def _json_compact(args: argparse.Namespace) -> int:
    from tracker.api import ExperimentTracker

    with ExperimentTracker(backend="json", db_path=args.path) as tracker:
        before = os.path.getsize(args.path)
        tracker.compact()
        _out(f"compacted {args.path}: {before} -> {os.path.getsize(args.path)} bytes")
    return 0


def _copy(args: argparse.Namespace) -> int:
    from tracker.copying import copy_store
    from tracker.stores import open_repository

    source = open_repository(args.source)
    try:
        destination = open_repository(args.destination, auto_upgrade=False)
        try:
            counts = copy_store(source, destination, progress=not args.quiet)
        finally:
            destination.close()
    finally:
        source.close()
    _out("copied: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


# listings ------------------------------------------------------------------------------------


def _experiments_list(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        rows = tracker.list_experiments(stats=True)
    for row in rows:
        row["trials"] = row.pop("n_trials")
        row["best"] = row.pop("best_value")
        row["created"] = (row["created_at"] or "")[:19].replace("T", " ")
    columns = ["id", "name", "template", "mode", "trials", "best", "violation_rate", "created"]
    _emit(rows, columns, args.format, "experiments")
    return 0


def _experiments_show(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        [row] = tracker.compare_experiments([args.id])
        experiment = tracker.get_experiment(args.id)
    row.update(config=experiment["config"], summary=experiment["summary"], created_at=experiment["created_at"])
    if args.format == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"experiment {args.id}", show_header=False)
        for key, value in row.items():
            table.add_row(key, _cell(value))
        Console(width=160).print(table)
    else:
        _emit([row], list(row), args.format)
    return 0


def _trials_list(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        trials = tracker.get_trials(
            args.experiment,
            states=args.state,
            order_by="value" if args.sort == "value" else "trial_number",
            limit=args.limit,
        )
    rows = [
        {
            "id": t["id"],
            "number": t["trial_number"],
            "state": t["state"],
            "value": t["value"],
            "ttpt": None if t["ttpt_result"] is None else ("pass" if t["ttpt_result"]["passed"] else "FAIL"),
            "params": t["params"],
            "performance": t["performance"],
        }
        for t in trials
    ]
    _emit(
        rows,
        ["id", "number", "state", "value", "ttpt", "params", "performance"],
        args.format,
        f"trials of {args.experiment}",
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        rows = tracker.compare_experiments(args.ids)
    columns = [
        "id",
        "name",
        "objective",
        "direction",
        "best_value",
        "n_trials",
        "n_complete",
        "mean_value",
        "std_value",
        "violation_rate",
        "improvement",
        "first_best_trial",
    ]
    _emit(rows, columns, args.format, "comparison")
    return 0


def _export(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        path = tracker.export(args.ids, args.output)
    _out(f"wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from tracker import plots

    with _tracker(args) as tracker:
        figure = plots.plot(tracker, args.ids, args.kind)
    plots.save(figure, args.output)
    _out(f"wrote {args.output}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tracker.demo import run_demo

    return run_demo(args.url, trials=args.trials, seed=args.seed, output=args.output)


def _ui(args: argparse.Namespace) -> int:
    """`tracker ui`: serve the store read-only in the browser (the [ui] extra)."""
    from tracker.ui.server import serve

    return serve(
        args.url,
        host=args.host,
        port=args.port,
        token=args.token,
        open_browser=not args.no_open,
        allowed_hosts=tuple(args.allowed_host or ()),
        root_path=args.root_path,
    )


# parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Record and explore optimisation experiments.")
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    parser.add_argument(
        "--url", default=os.environ.get(ENV_URL), help=f"store URL or path (default: ${ENV_URL}, else ./experiments.db)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def formats(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--format", choices=("table", "json", "csv"), default="table")

    db = commands.add_parser("db", help="schema migrations of SQL databases").add_subparsers(metavar="ACTION")
    sub = add(db, "upgrade", _db_upgrade, "upgrade the schema (back up first)")
    sub.add_argument("--revision", default="head")
    sub.add_argument("--sql", action="store_true", help="print the SQL instead of running it (for a DBA)")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub = add(db, "downgrade", _db_downgrade, "downgrade the schema to REVISION")
    sub.add_argument("revision")
    sub.add_argument("--sql", action="store_true")
    sub.add_argument("--yes", action="store_true")
    add(db, "current", _db_current, "show the database's schema revision")
    add(db, "history", _db_history, "list the schema revisions")

    js = commands.add_parser("json", help="JSON journal maintenance").add_subparsers(metavar="ACTION")
    add(js, "compact", _json_compact, "rewrite a journal as a snapshot").add_argument("path")

    sub = add(commands, "copy", _copy, "copy every experiment from SOURCE into DESTINATION (idempotent)")
    sub.add_argument("source")
    sub.add_argument("destination")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    experiments = commands.add_parser("experiments", help="list and show experiments").add_subparsers(metavar="ACTION")
    formats(add(experiments, "list", _experiments_list, "list experiments"))
    sub = add(experiments, "show", _experiments_show, "show one experiment")
    sub.add_argument("id", type=int)
    formats(sub)

    trials = commands.add_parser("trials", help="list trials").add_subparsers(metavar="ACTION")
    sub = add(trials, "list", _trials_list, "list an experiment's trials")
    sub.add_argument("experiment", type=int)
    sub.add_argument("--state", action="append", choices=("complete", "pruned", "failed", "running"))
    sub.add_argument("--sort", choices=("number", "value"), default="number")
    sub.add_argument("--limit", type=int)
    formats(sub)

    sub = add(commands, "compare", _compare, "compare experiments")
    sub.add_argument("ids", type=int, nargs="+")
    formats(sub)

    sub = add(commands, "export", _export, "export trials to .csv, .parquet, .xlsx or .json")
    sub.add_argument("ids", type=int, nargs="+")
    sub.add_argument("-o", "--output", required=True)

    sub = add(commands, "plot", _plot, "plot experiments to an image file")
    sub.add_argument("ids", type=int, nargs="+")
    sub.add_argument("--kind", choices=("history", "ttpt", "params", "compare"), default="history")
    sub.add_argument("-o", "--output", required=True)

    sub = add(commands, "ui", _ui, "serve a read-only web dashboard of the store (needs tracker[ui])")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (beyond loopback needs --token)")
    sub.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    sub.add_argument("--token", default=None, help="access token every request must carry (or $TRACKER_UI_TOKEN)")
    sub.add_argument("--no-open", action="store_true", help="do not open a browser")
    sub.add_argument("--allowed-host", action="append", help="a Host name to answer on a loopback bind (proxies)")
    sub.add_argument("--root-path", default="", help="the path prefix under a reverse proxy, e.g. /tracker")

    sub = add(commands, "demo", _demo, "run the end-to-end demo (two Optuna studies with runtime TTPT)")
    sub.add_argument("--trials", type=int, default=150, help="trials per study")
    sub.add_argument("--seed", type=int, default=7)
    sub.add_argument("--output", default=None, help="folder for the CSV and plot (default: next to the store)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tracker` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except TrackerError as exc:
        sys.stderr.write(f"tracker: error: {mask_password(str(exc))}\n")
        return 1
    except (OSError, ImportError) as exc:
        sys.stderr.write(f"tracker: error: {mask_password(str(exc))}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("tracker: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
