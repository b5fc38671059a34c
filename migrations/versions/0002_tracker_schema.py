"""From the in-house schema to tracker's (typed JSON, UTC times, state, value, constraints).

Typed JSON (JSONB on PostgreSQL) with the lossless non-finite encoding, UTC timestamps,
objective and direction, trial state and value, started and completed times, TTPT violations,
cascading foreign keys, unique trial numbers, check constraints and indexes.

Rows that break the new constraints (repeated trial numbers in one experiment, trials of a
missing experiment, TTPT results of a missing trial, negative counts, unreadable JSON) stop the
upgrade with a report that names them; the database is left unchanged.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tracker._migrations.frozen import mysql
from tracker._migrations.frozen.codec_v1 import from_storage
from tracker._migrations.frozen.inhouse import IN_HOUSE_DDL, objective_value, parse_json_text, parse_timestamp
from tracker._migrations.frozen.report import note_rows

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("experiments", "trials", "ttpt_results")


class UpgradeRefusedError(RuntimeError):
    """The in-house data has rows that the new schema cannot hold; nothing was changed."""


CHUNK = 10_000


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.types.TypeEngine[Any]:
    return mysql.time_type()  # DateTime(timezone=True); DATETIME(6) on MariaDB/MySQL


def _text() -> sa.types.TypeEngine[str]:
    return mysql.text_type()  # Text; LONGTEXT on MariaDB/MySQL


def _create_tables() -> None:
    options = mysql.table_options(op.get_context())
    op.create_table(
        "experiments",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("name", _text(), nullable=False),
        sa.Column("template", _text(), nullable=False),
        sa.Column("mode", _text(), nullable=False),
        sa.Column("config", _json(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("summary", _json(), nullable=True),
        sa.Column("objective", _text(), server_default="sharpe", nullable=False),
        sa.Column("direction", _text(), server_default="maximize", nullable=False),
        sa.CheckConstraint("direction IN ('maximize', 'minimize')", name="ck_experiments_direction"),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sqlite_autoincrement=True,
        **options,
    )
    op.create_table(
        "trials",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("experiment_id", _id(), nullable=False),
        sa.Column("trial_number", sa.BigInteger(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("performance", _json(), nullable=False),
        sa.Column("strategy_code", _text(), nullable=True),
        sa.Column("strategy_template", _text(), nullable=True),
        sa.Column("generation_method", _text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("state", _text(), server_default="complete", nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.CheckConstraint("trial_number >= 0", name="ck_trials_trial_number"),
        sa.CheckConstraint("state IN ('complete', 'pruned', 'failed', 'running')", name="ck_trials_state"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], ondelete="CASCADE", name="fk_trials_experiment_id_experiments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.UniqueConstraint("experiment_id", "trial_number", name="uq_trials_experiment_id_trial_number"),
        sqlite_autoincrement=True,
        **options,
    )
    op.create_index("ix_trials_experiment_id_value", "trials", ["experiment_id", "value"])
    op.create_table(
        "ttpt_results",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("trial_id", _id(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("num_violations", sa.Integer(), nullable=False),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("violations", _json(), nullable=True),
        sa.CheckConstraint("num_violations >= 0", name="ck_ttpt_results_num_violations"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], ondelete="CASCADE", name="fk_ttpt_results_trial_id_trials"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ttpt_results"),
        sqlite_autoincrement=True,
        **options,
    )
    op.create_index("ix_ttpt_results_trial_id", "ttpt_results", ["trial_id"])


def _new_tables() -> dict[str, sa.TableClause]:
    """Light table constructs of the new tables, with JSON types, for inserting converted rows."""
    return {
        "experiments": sa.table(
            "experiments",
            *(sa.column(c) for c in ("id", "name", "template", "mode")),
            sa.column("config", _json()),
            sa.column("created_at", _time()),
            sa.column("summary", _json()),
            sa.column("objective"),
            sa.column("direction"),
        ),
        "trials": sa.table(
            "trials",
            *(
                sa.column(c)
                for c in (
                    "id",
                    "experiment_id",
                    "trial_number",
                    "strategy_code",
                    "strategy_template",
                    "generation_method",
                    "state",
                    "value",
                )
            ),
            sa.column("params", _json()),
            sa.column("performance", _json()),
            sa.column("created_at", _time()),
        ),
        "ttpt_results": sa.table(
            "ttpt_results",
            *(sa.column(c) for c in ("id", "trial_id", "passed", "num_violations")),
            sa.column("metrics", _json()),
            sa.column("created_at", _time()),
        ),
    }


def _problems(conn: sa.Connection) -> list[str]:
    """Rows of the in-house tables that the new constraints would refuse."""
    checks = (
        (
            "trial numbers repeated within an experiment (experiment_id, trial_number, copies)",
            "SELECT experiment_id, trial_number, count(*) FROM trials "
            "GROUP BY experiment_id, trial_number HAVING count(*) > 1 ORDER BY 1, 2",
        ),
        (
            "trials whose experiment does not exist (trial id, experiment_id)",
            "SELECT id, experiment_id FROM trials WHERE experiment_id NOT IN (SELECT id FROM experiments) ORDER BY id",
        ),
        (
            "TTPT results whose trial does not exist (ttpt id, trial_id)",
            "SELECT id, trial_id FROM ttpt_results WHERE trial_id NOT IN (SELECT id FROM trials) ORDER BY id",
        ),
        (
            "negative trial numbers (trial id, trial_number)",
            "SELECT id, trial_number FROM trials WHERE trial_number < 0 ORDER BY id",
        ),
        (
            "negative violation counts (ttpt id, num_violations)",
            "SELECT id, num_violations FROM ttpt_results WHERE num_violations < 0 ORDER BY id",
        ),
    )
    report = []
    for what, query in checks:
        rows = conn.execute(sa.text(query)).all()
        if rows:
            shown = ", ".join(str(tuple(r)) for r in rows[:20])
            more = f" and {len(rows) - 20} more" if len(rows) > 20 else ""
            report.append(f"{len(rows)} {what}: {shown}{more}")
    return report


def _chunks(conn: sa.Connection, query: str) -> Iterator[Sequence[sa.Row[Any]]]:
    result = conn.execute(sa.text(query))
    while rows := result.fetchmany(CHUNK):
        yield rows


def _sequence_floor(conn: sa.Connection, table: str) -> int:
    """The highest id the table's counter has handed out (deleted rows included)."""
    if mysql.used_by(conn):
        return mysql.counter(conn, table)
    if conn.dialect.name == "sqlite":
        row = conn.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}).first()
    else:
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
        row = (
            None
            if sequence is None
            else conn.execute(
                sa.text("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + sequence)  # noqa: S608
            ).first()
        )
    return int(row[0]) if row and row[0] is not None else 0


def _set_sequence(conn: sa.Connection, table: str, floor: int) -> None:
    if mysql.used_by(conn):
        mysql.restore(conn, table, floor)
        return
    highest = conn.execute(sa.select(sa.func.coalesce(sa.func.max(sa.column("id")), 0)).select_from(sa.table(table)))
    top = max(floor, int(highest.scalar() or 0))
    if top == 0:
        return
    if conn.dialect.name == "sqlite":
        updated = conn.execute(sa.text("UPDATE sqlite_sequence SET seq = :s WHERE name = :t"), {"s": top, "t": table})
        if updated.rowcount == 0:
            conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"), {"s": top, "t": table})
    else:
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :s)"), {"t": table, "s": top})


def _insert(conn: sa.Connection, table: sa.TableClause, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(sa.insert(table), rows)


def upgrade() -> None:
    conn = op.get_bind()
    if op.get_context().as_sql:
        _offline_guard()
    else:
        problems = _problems(conn)
        if problems:
            raise UpgradeRefusedError(
                "the in-house data has rows that tracker's schema cannot hold, so nothing was changed:\n  "
                + "\n  ".join(problems)
                + "\nFix or delete these rows (after a backup), then run the upgrade again. See docs/migrations.md."
            )
    floors = {} if op.get_context().as_sql else {t: _sequence_floor(conn, t) for t in TABLES}
    for table in TABLES:
        op.rename_table(table, f"_inhouse_{table}")
    _create_tables()
    if not op.get_context().as_sql:
        _copy_up(conn)
        for table in TABLES:
            _set_sequence(conn, table, floors[table])
    for table in reversed(TABLES):
        op.drop_table(f"_inhouse_{table}")


def _offline_guard() -> None:
    """In --sql mode the data conversion cannot run: make the script stop if there is data."""
    op.execute("CREATE TEMPORARY TABLE tracker_upgrade_guard (in_house_rows INTEGER CHECK (in_house_rows = 0))")
    op.execute("INSERT INTO tracker_upgrade_guard SELECT count(*) FROM experiments")
    op.execute("DROP TABLE tracker_upgrade_guard")


def _copy_up(conn: sa.Connection) -> None:
    new = _new_tables()
    count = 0
    for rows in _chunks(
        conn, "SELECT id, name, template, mode, config, created_at, summary FROM _inhouse_experiments ORDER BY id"
    ):
        batch = [
            {
                "id": r.id,
                "name": r.name,
                "template": r.template,
                "mode": r.mode,
                "config": parse_json_text(r.config, f"experiment {r.id} config"),
                "created_at": parse_timestamp(r.created_at or datetime.now(UTC), f"experiment {r.id}"),
                "summary": parse_json_text(r.summary, f"experiment {r.id} summary"),
                "objective": "sharpe",
                "direction": "maximize",
            }
            for r in rows
        ]
        _insert(conn, new["experiments"], batch)
        count += len(batch)
    note_rows("experiments", count)
    count = 0
    for rows in _chunks(
        conn,
        "SELECT id, experiment_id, trial_number, params, performance, strategy_code, "
        "strategy_template, generation_method, created_at FROM _inhouse_trials ORDER BY id",
    ):
        batch = []
        for r in rows:
            performance = parse_json_text(r.performance, f"trial {r.id} performance")
            batch.append(
                {
                    "id": r.id,
                    "experiment_id": r.experiment_id,
                    "trial_number": r.trial_number,
                    "params": parse_json_text(r.params, f"trial {r.id} params"),
                    "performance": performance,
                    "value": mysql.double(objective_value(performance), conn),
                    "state": "complete",
                    "strategy_code": r.strategy_code,
                    "strategy_template": r.strategy_template,
                    "generation_method": r.generation_method,
                    "created_at": parse_timestamp(r.created_at or datetime.now(UTC), f"trial {r.id}"),
                }
            )
        _insert(conn, new["trials"], batch)
        count += len(batch)
    note_rows("trials", count)
    count = 0
    for rows in _chunks(
        conn, "SELECT id, trial_id, passed, num_violations, metrics, created_at FROM _inhouse_ttpt_results ORDER BY id"
    ):
        batch = [
            {
                "id": r.id,
                "trial_id": r.trial_id,
                "passed": bool(r.passed),
                "num_violations": r.num_violations,
                "metrics": parse_json_text(r.metrics, f"ttpt result {r.id} metrics"),
                "created_at": parse_timestamp(r.created_at or datetime.now(UTC), f"ttpt result {r.id}"),
            }
            for r in rows
        ]
        _insert(conn, new["ttpt_results"], batch)
        count += len(batch)
    note_rows("ttpt_results", count)


def _in_house_json(value: Any) -> str | None:
    """A stored value as the in-house tracker wrote it: json.dumps text, NaN tokens included."""
    return None if value is None else json.dumps(from_storage(value))


def _in_house_time(value: datetime | None, dialect: str) -> Any:
    if value is None:
        return None
    utc = (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).replace(tzinfo=None)
    return utc.isoformat(sep=" ") if dialect == "sqlite" else utc


def downgrade() -> None:
    """Back to the in-house schema. Columns it does not have (objective, direction, state, value,
    started_at, completed_at, violations) are dropped; everything else is kept."""
    conn = op.get_bind()
    offline = op.get_context().as_sql
    floors = {} if offline else {t: _sequence_floor(conn, t) for t in TABLES}
    for table in TABLES:
        op.rename_table(table, f"_v2_{table}")
    statements = IN_HOUSE_DDL
    if mysql.used_by(op.get_context()):
        statements = mysql.in_house_ddl(statements, op.get_context())
    elif conn.dialect.name != "sqlite":
        statements = tuple(s.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "SERIAL PRIMARY KEY") for s in statements)
    for statement in statements:
        op.execute(statement)
    if not offline:
        _copy_down(conn)
        for table in TABLES:
            _set_sequence(conn, table, floors[table])
    for table in reversed(TABLES):
        op.drop_table(f"_v2_{table}")


def _copy_down(conn: sa.Connection) -> None:
    dialect = conn.dialect.name
    stored = sa.table("x", sa.column("v", _json()))
    json_column = stored.c.v
    source = {
        "experiments": sa.select(
            sa.column("id"),
            sa.column("name"),
            sa.column("template"),
            sa.column("mode"),
            sa.type_coerce(sa.column("config"), json_column.type).label("config"),
            sa.type_coerce(sa.column("created_at"), _time()).label("created_at"),
            sa.type_coerce(sa.column("summary"), json_column.type).label("summary"),
        )
        .select_from(sa.table("_v2_experiments"))
        .order_by(sa.column("id")),
        "trials": sa.select(
            *(
                sa.column(c)
                for c in (
                    "id",
                    "experiment_id",
                    "trial_number",
                    "strategy_code",
                    "strategy_template",
                    "generation_method",
                )
            ),
            sa.type_coerce(sa.column("params"), json_column.type).label("params"),
            sa.type_coerce(sa.column("performance"), json_column.type).label("performance"),
            sa.type_coerce(sa.column("created_at"), _time()).label("created_at"),
        )
        .select_from(sa.table("_v2_trials"))
        .order_by(sa.column("id")),
        "ttpt_results": sa.select(
            sa.column("id"),
            sa.column("trial_id"),
            sa.column("passed"),
            sa.column("num_violations"),
            sa.type_coerce(sa.column("metrics"), json_column.type).label("metrics"),
            sa.type_coerce(sa.column("created_at"), _time()).label("created_at"),
        )
        .select_from(sa.table("_v2_ttpt_results"))
        .order_by(sa.column("id")),
    }
    json_fields = {"config", "summary", "params", "performance", "metrics"}
    for table, query in source.items():
        result = conn.execute(query)
        count = 0
        while rows := result.fetchmany(CHUNK):
            batch = []
            for r in rows:
                row = dict(r._mapping)
                for key in json_fields & row.keys():
                    row[key] = _in_house_json(row[key])
                    if table == "trials" and row[key] is None:
                        row[key] = "{}"
                row["created_at"] = _in_house_time(row["created_at"], dialect)
                if "passed" in row:
                    row["passed"] = bool(row["passed"])
                batch.append(row)
            columns = list(batch[0])
            conn.execute(sa.insert(sa.table(table, *(sa.column(c) for c in columns))), batch)
            count += len(batch)
        note_rows(table, count)
