"""`tracker ttpt import-logs`: the in-house monitor's violation logs, as TTPT results on their trials."""

from __future__ import annotations

import argparse

from tracker.cli._app import arg, command
from tracker.cli._output import emit, field, out
from tracker.cli._store import experiment_ids, open_tracker


@command(
    "ttpt import-logs",
    "import the in-house RuntimeTTPTMonitor's violation logs (cut-short files too) as TTPT results",
    arg("experiment", help="the experiment the study was imported into: id or exact name"),
    arg("folder", help="the monitor's logs folder (logs/ttpt_violations; searched recursively)"),
)
def ttpt_import_logs(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        [experiment_id] = experiment_ids(args, tracker, [args.experiment])
        report = tracker.import_ttpt_logs(experiment_id, args.folder)
    rows = report["records"]
    columns = [
        field("source", "log"),
        field("in_house_trial_number", "in-house trial"),
        field("trial_number", "trial"),
        field("matched_by", "matched by"),
        field("status"),
        field("lost"),
        field("reason"),
    ]
    emit(rows, columns, args.format, f"in-house TTPT logs into experiment {experiment_id}")
    if args.format == "table":
        counts = ", ".join(f"{report[key]} {key.replace('_', ' ')}" for key in ("imported", "already_imported"))
        left = report["unmatched"] + report["unusable"]
        found = f"{len(rows)} log(s) in {args.folder}: {counts}"
        out(f"{found}; {left} not imported (see the reason column)" if left else found)
    return 0
