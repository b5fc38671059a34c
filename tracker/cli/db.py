"""`tracker db ...`: the schema revision of SQL databases, upgrades and downgrades."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Literal

from tracker.cli._app import arg, command
from tracker.cli._output import out
from tracker.cli._store import confirm
from tracker.errors import ValidationError

if TYPE_CHECKING:
    from tracker.sql.unit_of_work import UnitOfWork


def _database(args: argparse.Namespace) -> UnitOfWork:
    """The SQL database of --url. A SQLite file must exist: `tracker db` never creates one."""
    from tracker.sql.unit_of_work import UnitOfWork
    from tracker.store.location import prepare_path, resolve

    location = resolve(args.url, None, None)
    if location.backend == "json":
        raise ValidationError("--url", "`tracker db` works on SQL databases; JSON journals need no migrations")
    prepare_path(location, create=False)
    return UnitOfWork(location)


@command("db current", "show the database's schema revision")
def db_current(args: argparse.Namespace) -> int:
    from tracker.sql import schema

    db = _database(args)
    try:
        revision = db.read(schema.current_revision)
    finally:
        db.dispose()
    shown = {None: "empty (no tracker tables)", "in-house": "in-house tracker database (unversioned)"}
    out(f"{db.location.safe_url}: {shown.get(revision, revision)} (this tracker's head: {schema.HEAD})")
    return 0


@command("db history", "list the schema revisions")
def db_history(args: argparse.Namespace) -> int:
    from alembic.script import ScriptDirectory

    from tracker.sql import schema

    scripts = ScriptDirectory.from_config(schema.alembic_config())
    for script in reversed(list(scripts.walk_revisions())):
        summary = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        out(f"{script.revision}  {summary}")
    return 0


@command(
    "db upgrade",
    "upgrade the schema (back up first)",
    arg("--revision", default="head", help="the revision to reach (default: head)"),
    arg("--sql", action="store_true", help="print the SQL instead of running it (for a DBA)"),
    arg("--yes", action="store_true", help="do not ask for confirmation"),
)
def db_upgrade(args: argparse.Namespace) -> int:
    return _migrate(args, "upgrade")


DROPPED = {
    "0002": "objective, direction, state, value, start and end times and TTPT violations",
    "0003": "tags, notes, trial attributes, step metrics, provenance and artifacts",
    "0005": "trial_performance: the numbers of each trial's performance, for sorting by a metric on an index",
}
"""What undoing each revision drops, for the downgrade's question."""


@command(
    "db downgrade",
    "downgrade the schema to REVISION",
    arg("revision", help="the revision to go back to"),
    arg("--sql", action="store_true", help="print the SQL instead of running it (for a DBA)"),
    arg("--yes", action="store_true", help="do not ask for confirmation"),
)
def db_downgrade(args: argparse.Namespace) -> int:
    return _migrate(args, "downgrade")


def _migrate(args: argparse.Namespace, direction: Literal["upgrade", "downgrade"]) -> int:
    """Show where the database is, ask, then move it to `args.revision` (or print the SQL)."""
    from tracker.sql import schema

    if args.sql:
        return _offline_sql(args, direction, args.revision)
    db = _database(args)
    try:
        before = db.read(schema.current_revision)
        where = db.location.safe_url
        out(f"database: {where}")
        out(f"current revision: {before or 'empty'}; target: {args.revision}")
        if direction == "upgrade":
            if before == schema.HEAD and args.revision in ("head", schema.HEAD):
                out("already up to date")
                return 0
            question = f"Upgrade {where} to {args.revision}? Back up the database first."
            refusal = f"upgrading {where} needs confirmation; back up the database first, then run again with --yes"
        else:
            undone = schema.REVISIONS[_position(args.revision) + 1 : _position(before) + 1]
            dropped = "; ".join(DROPPED[r] for r in undone if r in DROPPED) or "columns newer than it"
            question = f"Downgrade {where} to {args.revision}? This drops {dropped}."
            refusal = (
                f"downgrading {where} to {args.revision} drops {dropped} and needs confirmation; "
                "back up the database first, then run again with --yes"
            )
        if not confirm(args, question, refusal):
            out("cancelled; nothing was changed")
            return 1
        migrate = schema.upgrade if direction == "upgrade" else schema.downgrade
        report = migrate(db, args.revision)
    finally:
        db.dispose()
    return _report(report)


def _position(revision: str | None) -> int:
    """The index of a revision in schema.REVISIONS; -1 for none, `base` or the in-house schema."""
    from tracker.sql import schema

    return schema.REVISIONS.index(revision) if revision in schema.REVISIONS else -1


def _report(report: Any) -> int:
    from tracker.sql import schema

    for line in schema.describe(report):
        out(line)
    return 0


def _offline_sql(args: argparse.Namespace, direction: str, revision: str) -> int:
    from alembic import command as alembic

    from tracker.sql import schema
    from tracker.store.location import resolve

    location = resolve(args.url, None, None)
    if location.backend == "json":
        raise ValidationError("--url", "`tracker db` works on SQL databases; JSON journals need no migrations")
    config = schema.alembic_config(url=location.url)
    target = revision if ":" in revision else (f"base:{revision}" if direction == "upgrade" else f"head:{revision}")
    getattr(alembic, direction)(config, target, sql=True)
    return 0


@command("db vacuum", "delete the stored contents nothing references any more, and report what was freed")
def db_vacuum(args: argparse.Namespace) -> int:
    from tracker.sql.maintenance import vacuum

    db = _database(args)
    try:
        freed = vacuum(db)
    finally:
        db.dispose()
    line = f"{db.location.safe_url}: removed {freed['blobs_removed']} unused blob(s), {freed['bytes_freed']} bytes"
    if db.location.path is not None:
        line += f"; file {freed['file_bytes_before']} -> {freed['file_bytes_after']} bytes"
    out(line)
    return 0


@command("db checkpoint", "write a SQLite file's write-ahead log into it (so readers without write access can read)")
def db_checkpoint(args: argparse.Namespace) -> int:
    from tracker.sql.maintenance import checkpoint

    db = _database(args)
    try:
        checkpoint(db)
    finally:
        db.dispose()
    out(f"{db.location.safe_url}: write-ahead log checkpointed")
    return 0
