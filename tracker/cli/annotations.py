"""Commands for what surrounds the numbers: tags, notes and artifacts of experiments and trials,
and archival of whole experiments to another store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.cli._app import arg, command
from tracker.cli._output import emit, field, out
from tracker.cli._store import confirm, experiment_ids, open_tracker
from tracker.errors import DuplicateArtifactError, ValidationError
from tracker.store.records import Owner

if TYPE_CHECKING:
    from tracker.facade.tracker import ExperimentTracker

KIND = arg("kind", choices=("experiment", "trial"), help="what the record is")
REF = arg("ref", metavar="REF", help="an experiment's id or exact name, or a trial's id")


def owner(args: argparse.Namespace, tracker: ExperimentTracker) -> Owner:
    """The experiment or trial that KIND and REF name."""
    if args.kind == "experiment":
        [experiment_id] = experiment_ids(args, tracker, [args.ref])
        return Owner("experiment", experiment_id)
    if not args.ref.isdigit():
        raise ValidationError("REF", f"a trial is named by its id (digits), got {args.ref!r}")
    tracker.get_trial(int(args.ref))
    return Owner("trial", int(args.ref))


def pairs(texts: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE arguments as a dict."""
    found = {}
    for text in texts:
        name, sign, value = text.partition("=")
        if not sign:
            raise ValidationError(what, f"expected NAME=VALUE, got {text!r}")
        found[name] = value
    return found


@command("tags set", "set tags on an experiment or a trial", KIND, REF, arg("tags", nargs="+", metavar="NAME=VALUE"))
def tags_set(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        target = owner(args, tracker)
        tracker.set_tags(target, pairs(args.tags, "NAME=VALUE"))
        out(f"{target.kind} {target.id}: " + ", ".join(f"{k}={v}" for k, v in tracker.get_tags(target).items()))
    return 0


@command("tags delete", "delete tags of an experiment or a trial", KIND, REF, arg("names", nargs="+", metavar="NAME"))
def tags_delete(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        target = owner(args, tracker)
        tracker.delete_tags(target, *args.names)
        out(f"{target.kind} {target.id}: " + ", ".join(f"{k}={v}" for k, v in tracker.get_tags(target).items()))
    return 0


@command("tags list", "list the tags of an experiment or a trial", KIND, REF)
def tags_list(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        found = tracker.get_tags(owner(args, tracker))
    emit([{"name": k, "value": v} for k, v in found.items()], [field("name"), field("value")], args.format, "tags")
    return 0


@command(
    "notes set",
    "replace the Markdown note of an experiment or a trial",
    KIND,
    REF,
    arg("text", help="the note; - reads it from standard input; an empty text removes it"),
)
def notes_set(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    with open_tracker(args) as tracker:
        target = owner(args, tracker)
        tracker.set_note(target, text or None)
    out(f"{target.kind} {target.id}: note {'set' if text else 'removed'}")
    return 0


@command("artifacts list", "list the files attached to an experiment or a trial", KIND, REF)
def artifacts_list(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        rows = tracker.list_artifacts(owner(args, tracker))
    columns = [field("name"), field("media_type", "media type"), field("size", "bytes"), field("created_at", "created")]
    emit(rows, columns, args.format, "artifacts")
    return 0


@command(
    "artifacts get",
    "write an attached file",
    KIND,
    REF,
    arg("name", help="the artifact's name"),
    arg("-o", "--output", help="the file to write (default: the artifact's name, in this folder)"),
)
def artifacts_get(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        data = tracker.get_artifact(owner(args, tracker), args.name)
    target = Path(args.output or Path(args.name).name)
    target.write_bytes(data)
    out(f"wrote {target} ({len(data)} bytes)")
    return 0


@command(
    "artifacts log",
    "attach a file to an experiment or a trial",
    KIND,
    REF,
    arg("path", help="the file to attach"),
    arg("--name", help="its name in the store (default: the file's name)"),
    arg("--media-type", help="e.g. image/png (default: guessed from the name)"),
    arg("--replace", action="store_true", help="replace an artifact of the same name"),
)
def artifacts_log(args: argparse.Namespace) -> int:
    with open_tracker(args) as tracker:
        try:
            found = tracker.log_artifact(
                owner(args, tracker), args.path, args.name, args.media_type, replace=args.replace
            )
        except DuplicateArtifactError as exc:  # the library's advice (replace=True) in command-line words
            raise DuplicateArtifactError(exc.owner, exc.name, "run again with --replace") from None
    what = f"{found['name']} ({found['size']} bytes, {found['media_type']})"
    out(f"attached {what} to {found['owner']} {found['owner_id']}")
    return 0


@command(
    "archive",
    "move experiments to another store, verified record by record; `archive restore` moves them back",
    arg("restore", nargs="*", metavar="restore ID", help="`restore` and the ids (in the archive) to move back"),
    arg("--older-than", metavar="AGE", help="experiments created more than AGE ago: 90d, 12h, 2w"),
    arg("--tag", action="append", default=[], metavar="NAME=VALUE", help="experiments with this tag (repeatable)"),
    arg("--id", action="append", default=[], metavar="EXPERIMENT", help="this experiment, by id or name (repeatable)"),
    arg("--to", metavar="URL", help="the archive store (created if new)"),
    arg("--from", dest="source", metavar="URL", help="with restore: the archive store"),
    arg("--yes", action="store_true", help="do not ask for confirmation"),
)
def archive(args: argparse.Namespace) -> int:
    if args.restore:
        if args.restore[0] != "restore" or len(args.restore) < 2 or not args.source:
            raise ValidationError("restore", "usage: tracker archive restore ID... --from URL")
        ids = [int(i) if i.isdigit() else -1 for i in args.restore[1:]]
        if min(ids) < 1:
            raise ValidationError("ID", "restore takes the experiments' ids in the archive (see `experiments list`)")
        with open_tracker(args, create=True) as tracker:
            report = tracker.restore(ids, args.source)
        return _report(report, "restored")
    if not args.to or not (args.older_than or args.tag or args.id):
        raise ValidationError(
            "--to", "usage: tracker archive [--older-than 90d] [--tag NAME=VALUE] [--id EXPERIMENT] --to URL"
        )
    with open_tracker(args) as tracker:
        chosen = experiment_ids(args, tracker, args.id) if args.id else None
        question = f"Move the chosen experiments of {tracker.url} to {args.to}?"
        if not confirm(args, question, f"moving experiments to {args.to} needs confirmation; run again with --yes"):
            out("cancelled; nothing was moved")
            return 1
        report = tracker.archive(args.to, older_than=args.older_than, tags=pairs(args.tag, "--tag") or None, ids=chosen)
    return _report(report, "moved")


def _report(report: dict[str, Any], verb: str) -> int:
    moved: list[dict[str, int]] = report["moved"]
    for item in moved:
        out(f"{verb} experiment {item['source_id']} -> {item['destination_id']}")
    out(f"{verb} {len(moved)} experiment(s)")
    return 0
