"""Creating, checking and migrating the SQL schema. The only place that creates tables.

A new database is created from the models at the head revision and stamped. A database at an
older revision, or an in-house database (its tables without our version table), is refused with
`SchemaOutdatedError` unless `auto_upgrade` is set. Alembic is only imported to migrate.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, MetaData, String, Table, inspect, select, text

from tracker.errors import (
    UPGRADE_TRACKER,
    MigrationError,
    SchemaError,
    SchemaOutdatedError,
    SchemaTooNewError,
    StoreError,
    StoreNotFoundError,
)
from tracker.sql.engine import pooler_of, session_lock
from tracker.sql.models import MYSQL_DIALECTS, Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from tracker.sql.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

VERSION_TABLE = "tracker_alembic_version"
BASELINE = "0001"
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005")
"""Every revision this version knows, oldest first; a test checks it against migrations/versions."""
HEAD = REVISIONS[-1]
IN_HOUSE_TABLES = frozenset({"experiments", "trials", "ttpt_results"})
OPTUNA_TABLES = frozenset({"studies", "trials", "trial_params"})
_ADVISORY_LOCK_KEY = 0x7472_6163_6B65  # "tracke"

version_table = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)


def upgrade_command(safe_url: str) -> str:
    """The shell command that upgrades the database (quoted for a POSIX shell)."""
    return f"tracker db upgrade --url {shlex.quote(safe_url)}"


def current_revision(conn: Connection) -> str | None:
    """Our revision of the database, "in-house" for an unversioned in-house one, None when empty."""
    names = set(inspect(conn).get_table_names())
    if VERSION_TABLE in names:
        row = conn.execute(select(version_table.c.version_num)).first()
        if row is not None:
            return str(row[0])
    if names >= OPTUNA_TABLES:
        raise SchemaError(
            "this database (schema) holds Optuna's RDBStorage tables, and Optuna's `trials` table has the "
            "same name as tracker's. Keep them apart: a separate SQLite file, or on PostgreSQL a separate "
            "schema of the same database (CREATE SCHEMA tracker; then add ?options=-csearch_path%3Dtracker "
            "to tracker's URL). Nothing was written."
        )
    if names >= IN_HOUSE_TABLES:
        return "in-house"
    return None


@contextmanager
def schema_lock(conn: Connection) -> Iterator[None]:
    """Serialise schema work between processes (PostgreSQL advisory lock; SQLite's write lock;
    on MariaDB and MySQL a named lock held until the connection's transaction is over)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif conn.dialect.name in MYSQL_DIALECTS:
        session_lock(conn, "schema")
    yield


def prepare(db: UnitOfWork, *, auto_upgrade: bool, create: bool = True) -> None:
    """Make sure the database is at head: create a new one (unless `create` is False: then an
    empty database raises StoreNotFoundError), upgrade on request, or refuse."""

    def check(conn: Connection) -> str | None:
        with schema_lock(conn):
            revision = current_revision(conn)
            if revision is None and not create:
                raise StoreNotFoundError(
                    db.location.safe_url,
                    "the database has no tracker tables (ExperimentTracker(url) creates them; reading never does)",
                )
            if revision is None:
                Base.metadata.create_all(conn)
                version_table.create(conn, checkfirst=True)
                conn.execute(version_table.insert().values(version_num=HEAD))
                log.info("created a new tracker schema at revision %s", HEAD)
                return HEAD
            return revision

    revision = db.write(check)
    if revision == HEAD:
        return
    if revision not in REVISIONS and revision != "in-house":
        raise SchemaTooNewError(
            f"the database {db.location.safe_url} is at schema revision {revision}, which this "
            f"version of tracker does not know (it knows up to {HEAD}). It was written by a newer "
            f"tracker: {UPGRADE_TRACKER}. Nothing was written."
        )
    if not auto_upgrade:
        what = "an in-house tracker database" if revision == "in-house" else f"at schema revision {revision}"
        raise SchemaOutdatedError(
            f"the database {db.location.safe_url} is {what}; this tracker needs revision {HEAD}. "
            f"Back it up, then run `{upgrade_command(db.location.safe_url)}` "
            "(or open it with ExperimentTracker(url, auto_upgrade=True))"
        )
    upgrade(db, HEAD)


def check(db: UnitOfWork) -> None:
    """For readers: make sure the database is at head without writing anything. Raises SchemaError
    for an empty database, SchemaOutdatedError or SchemaTooNewError otherwise."""
    revision = db.read(current_revision)
    if revision == HEAD:
        return
    where = db.location.safe_url
    if revision is None:
        raise SchemaError(
            f"the database {where} holds no tracker tables; a reader creates nothing. "
            "Check the URL, or log an experiment there first"
        )
    if revision not in REVISIONS and revision != "in-house":
        raise SchemaTooNewError(
            f"the database {where} is at schema revision {revision}, which this version of tracker does "
            f"not know (it knows up to {HEAD}): {UPGRADE_TRACKER}"
        )
    what = "an in-house tracker database" if revision == "in-house" else f"at schema revision {revision}"
    raise SchemaOutdatedError(
        f"the database {where} is {what}; this tracker reads revision {HEAD}. "
        f"Back it up, then run: {upgrade_command(where)}"
    )


@dataclass
class UpgradeReport:
    """What an upgrade or downgrade did."""

    from_revision: str | None
    to_revision: str | None
    applied: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def migrations_path() -> Path:
    """The folder of the packaged migrations (env.py and versions/)."""
    return Path(str(resources.files("tracker._migrations")))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code: packaged scripts, our version table, escaped URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: UnitOfWork, revision: str = "head") -> UpgradeReport:
    """Upgrade the database to `revision` in one locked transaction; report what was done."""
    return _migrate(db, revision, "upgrade")


def downgrade(db: UnitOfWork, revision: str) -> UpgradeReport:
    """Downgrade the database to `revision` in one locked transaction."""
    return _migrate(db, revision, "downgrade")


def _migrate(db: UnitOfWork, revision: str, direction: str) -> UpgradeReport:
    from alembic import command

    if pooler_of(db.location) == "transaction":
        raise MigrationError(
            f"refusing to {direction} the schema through a transaction pooler ({db.location.safe_url}): "
            "Alembic's DDL and version lock need one server session. Run `tracker db upgrade --url URL` "
            "with the URL of the PostgreSQL server itself (its own host and port, without ?pooler=)"
        )
    started = time.perf_counter()
    config = alembic_config()
    report = UpgradeReport(None, None)

    def work(conn: Connection) -> None:
        with schema_lock(conn):
            before = current_revision(conn)
            report.from_revision = before
            report.applied.clear()  # a retried attempt reports afresh
            report.rows.clear()
            if before == "in-house":
                version_table.create(conn, checkfirst=True)
                conn.execute(version_table.insert().values(version_num=BASELINE))
            elif before is not None and before not in REVISIONS:
                raise SchemaTooNewError(f"unknown schema revision {before}; refusing to migrate")
            config.attributes["connection"] = conn
            config.attributes["tracker_applied"] = report.applied
            config.attributes["tracker_rows"] = report.rows
            try:
                getattr(command, direction)(config, revision)
            except StoreError:
                raise
            except Exception as exc:
                raise MigrationError(f"{direction} to {revision} failed, nothing was changed: {exc}") from exc
            report.to_revision = current_revision(conn)

    db.migrate(work)
    report.seconds = time.perf_counter() - started
    return report


def note_applied(*, ctx: MigrationContext, step: object, heads: object, run_args: object) -> None:
    """Alembic `on_version_apply` hook: add each revision applied to the runner's report, which
    `_migrate` passes in the config's attributes (plain `alembic` passes none)."""
    applied = None if ctx.config is None else ctx.config.attributes.get("tracker_applied")
    if applied is not None:
        direction = "up" if getattr(step, "is_upgrade", True) else "down"
        applied.append(f"{getattr(step, 'up_revision_id', '?')} ({direction})")


def describe(report: UpgradeReport) -> list[str]:
    lines = [
        f"from revision {report.from_revision or '(empty)'} to {report.to_revision or '(base)'}",
        "revisions applied: " + (", ".join(report.applied) or "none"),
    ]
    lines += [f"rows {table}: {count}" for table, count in sorted(report.rows.items())]
    lines.append(f"took {report.seconds:.2f} s")
    return lines
