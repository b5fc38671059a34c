"""Commands that write whole stores: copying, compacting a journal, and the demo."""

from __future__ import annotations

import argparse

from tracker.cli._app import arg, command
from tracker.cli._output import out


@command("json compact", "rewrite a JSON journal as a snapshot", arg("path", help="the journal file"))
def json_compact(args: argparse.Namespace) -> int:
    from tracker.facade.tracker import ExperimentTracker

    with ExperimentTracker(backend="json", db_path=args.path, create=False) as tracker:
        freed = tracker.compact()
    out(
        f"compacted {args.path}: {freed['bytes_before']} -> {freed['bytes_after']} bytes; removed "
        f"{freed['files_removed']} unused artifact file(s), {freed['bytes_freed']} bytes"
    )
    return 0


@command(
    "copy",
    "copy every experiment from SOURCE into DESTINATION (idempotent; DESTINATION is created if new)",
    arg("source", help="store URL or path to read"),
    arg("destination", help="store URL or path to write"),
    arg("-q", "--quiet", action="store_true", help="no progress bar"),
)
def copy(args: argparse.Namespace) -> int:
    from tracker.stores import open_repository
    from tracker.transfer.copying import copy_store

    source = open_repository(args.source, create=False)
    try:
        destination = open_repository(args.destination, auto_upgrade=False)
        try:
            counts = copy_store(source, destination, progress=not args.quiet)
        finally:
            destination.close()
    finally:
        source.close()
    out("copied: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


@command(
    "demo",
    "run the end-to-end demo (two Optuna studies with runtime TTPT) into --url",
    arg("--trials", type=int, default=150, help="trials per study (default: 150)"),
    arg("--seed", type=int, default=7, help="seed of the prices and the samplers"),
    arg("--output", default=None, help="folder for the CSV and plot (default: next to the store)"),
)
def demo(args: argparse.Namespace) -> int:
    from tracker.demo import run_demo

    return run_demo(args.url, trials=args.trials, seed=args.seed, output=args.output)
