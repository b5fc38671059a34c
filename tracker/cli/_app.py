"""The command registry, the parser built from it, and `main`: global options, logging, errors."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracker._version import __version__
from tracker.errors import TrackerError, UnknownKeyWarning
from tracker.store.location import ENV_URL, mask_password

Handler = Callable[[argparse.Namespace], int]
FORMATS = ("table", "json", "csv")
COMMAND_MODULES = (
    "tracker.cli.experiments",
    "tracker.cli.db",
    "tracker.cli.maintenance",
    "tracker.cli.annotations",
    "tracker.cli.ttpt",
    "tracker.cli.inhouse",
    "tracker.cli.dashboard",
)
"""The modules whose `@command` functions make up the command line, in the order of `--help`."""
GROUPS = {
    "experiments": "list, show and delete experiments",
    "trials": "list the trials of an experiment",
    "db": "schema migrations of SQL databases",
    "json": "JSON journal maintenance",
    "tags": "set, delete and list tags of experiments and trials",
    "notes": "edit the notes of experiments and trials",
    "artifacts": "list, get and attach files of experiments and trials",
    "ttpt": "look-ahead checks after the fact, and the in-house monitor's logs",
}
"""Help of the command groups (`tracker db ...`); a group without an entry gets none."""

log = logging.getLogger("tracker.cli")


@dataclass(frozen=True)
class Argument:
    """The arguments of one `add_argument` call."""

    names: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*names: str, **options: Any) -> Argument:
    """An argument of a command, as `ArgumentParser.add_argument` takes it."""
    return Argument(names, options)


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    run: Handler
    help: str
    arguments: tuple[Argument, ...]


_COMMANDS: dict[tuple[str, ...], Command] = {}


def command(path: str, help: str, *arguments: Argument) -> Callable[[Handler], Handler]:
    """Register the decorated function as the command `path` ("compare", "db upgrade"). It takes
    the parsed arguments (with `url`, `verbose` and `format` always set) and returns the exit code."""

    def register(run: Handler) -> Handler:
        key = tuple(path.split())
        if key in _COMMANDS:
            raise ValueError(f"the command {path!r} is registered twice")
        _COMMANDS[key] = Command(key, run, help, arguments)
        return run

    return register


def _global_options() -> argparse.ArgumentParser:
    """The options every parser takes. Their defaults are SUPPRESS so that a subparser does not
    overwrite a value given before the command; `main` fills in the real defaults."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=f"store URL or path (default: ${ENV_URL}, else ./experiments.db)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="-v logs what tracker does (INFO); -vv also debug lines with SQL timings",
    )
    group.add_argument(
        "--format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="output of listings: table (default), json (strict RFC 8259: NaN and ±inf are null) or csv",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    shared = _global_options()
    parser = argparse.ArgumentParser(
        prog="tracker", description="Record and explore optimisation experiments.", parents=[shared]
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    top = parser.add_subparsers(metavar="COMMAND")
    groups: dict[str, Any] = {}
    for key, cmd in _COMMANDS.items():
        where = top
        if len(key) == 2:
            group = key[0]
            if group not in groups:
                group_parser = top.add_parser(
                    group, help=GROUPS.get(group), description=GROUPS.get(group), parents=[shared]
                )
                group_parser.set_defaults(group_parser=group_parser)
                groups[group] = group_parser.add_subparsers(metavar="ACTION")
            where = groups[group]
        sub = where.add_parser(key[-1], help=cmd.help, description=cmd.help, parents=[shared])
        for argument in cmd.arguments:
            sub.add_argument(*argument.names, **argument.options)
        sub.set_defaults(handler=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tracker` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.url = getattr(args, "url", None)
    args.verbose = getattr(args, "verbose", 0)
    args.format = getattr(args, "format", "table")
    _configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        getattr(args, "group_parser", parser).print_help()
        return 2
    try:
        return handler(args)
    except BrokenPipeError:
        return _closed_pipe()
    except TrackerError as exc:
        return _fail(str(exc))
    except (OSError, ImportError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("tracker: interrupted\n")
        return 130


def _fail(message: str) -> int:
    sys.stderr.write(f"tracker: error: {mask_password(message)}\n")
    return 1


def _closed_pipe() -> int:
    """The reader of our output went away (`tracker ... | head`): stop quietly, successfully.
    Standard output goes to /dev/null so that the final flush at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 0


def _configure_logging(verbosity: int) -> None:
    """Warnings only by default; -v: tracker's (and Alembic's) INFO lines; -vv: DEBUG lines
    too, with the time of every SQL statement. Other libraries stay at WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    warnings.showwarning = _show_warning
    if verbosity <= 0:
        return
    level = logging.INFO if verbosity == 1 else logging.DEBUG
    for name in ("tracker", "alembic"):
        logging.getLogger(name).setLevel(level)
    if verbosity >= 2:
        _log_sql_timings()


_SHOW_WARNING = warnings.showwarning
_SHOWN: set[str] = set()


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """tracker's own warnings as one line, `tracker: warning: ...`, each text once a command (a
    command may read an in-house file more than once); others as Python shows them."""
    if issubclass(category, UnknownKeyWarning):
        text = mask_password(str(message))
        if text not in _SHOWN:
            _SHOWN.add(text)
            sys.stderr.write(f"tracker: warning: {text}\n")
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _log_sql_timings() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    timing = logging.getLogger("tracker.sql.timing")

    def started(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info.setdefault("tracker_started", []).append(time.perf_counter())

    def finished(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        begun = conn.info.get("tracker_started")
        if begun:
            took = (time.perf_counter() - begun.pop()) * 1000
            timing.debug("%.3f ms: %s", took, " ".join(statement.split())[:300])

    event.listen(Engine, "before_cursor_execute", started)
    event.listen(Engine, "after_cursor_execute", finished)
