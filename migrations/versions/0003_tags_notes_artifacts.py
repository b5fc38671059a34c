"""Tags, notes, attributes, step metrics, provenance and artifacts; strategy code stored once.

New tables: blobs (content-addressed, zstd-compressed bytes), experiment_tags, trial_tags,
trial_metrics, experiment_artifacts, trial_artifacts. New columns: experiments.note,
experiments.provenance, trials.attributes, trials.note. trials.strategy_code (text in every row)
becomes trials.strategy_code_id, a reference to the blob holding each distinct text once.

A downgrade to 0002 puts the strategy code text back in every trial and drops what 0002 cannot
hold: tags, notes, attributes, step metrics, provenance and artifacts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tracker._migrations.frozen import content, mysql, sqlite_counter
from tracker._migrations.frozen.report import note_rows

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHUNK = 10_000


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.types.TypeEngine[Any]:
    return mysql.time_type()  # DateTime(timezone=True); DATETIME(6) on MariaDB/MySQL


def _text() -> sa.types.TypeEngine[str]:
    return mysql.text_type()  # Text; LONGTEXT on MariaDB/MySQL


def _trials(*extra: sa.Column[Any]) -> sa.Table:
    """The trials table as revision 0002 made it, plus `extra` columns (for SQLite's rebuild)."""
    return sa.Table(
        "trials",
        sa.MetaData(),
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
        *extra,
        sa.CheckConstraint("trial_number >= 0", name="ck_trials_trial_number"),
        sa.CheckConstraint("state IN ('complete', 'pruned', 'failed', 'running')", name="ck_trials_state"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], ondelete="CASCADE", name="fk_trials_experiment_id_experiments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.UniqueConstraint("experiment_id", "trial_number", name="uq_trials_experiment_id_trial_number"),
        sa.Index("ix_trials_experiment_id_value", "experiment_id", "value"),
        sqlite_autoincrement=True,
    )


def _experiments(*extra: sa.Column[Any]) -> sa.Table:
    """The experiments table as revision 0002 made it, plus `extra` columns."""
    return sa.Table(
        "experiments",
        sa.MetaData(),
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("name", _text(), nullable=False),
        sa.Column("template", _text(), nullable=False),
        sa.Column("mode", _text(), nullable=False),
        sa.Column("config", _json(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("summary", _json(), nullable=True),
        sa.Column("objective", _text(), server_default="sharpe", nullable=False),
        sa.Column("direction", _text(), server_default="maximize", nullable=False),
        *extra,
        sa.CheckConstraint("direction IN ('maximize', 'minimize')", name="ck_experiments_direction"),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sqlite_autoincrement=True,
    )


NEW_TRIAL_COLUMNS = ("strategy_code_id", "attributes", "note")


def _new_trial_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("strategy_code_id", _id(), nullable=True),
        sa.Column("attributes", _json(), nullable=True),
        sa.Column("note", _text(), nullable=True),
    ]


def _new_experiment_columns() -> list[sa.Column[Any]]:
    return [sa.Column("note", _text(), nullable=True), sa.Column("provenance", _json(), nullable=True)]


def upgrade() -> None:
    conn = op.get_bind()
    offline = op.get_context().as_sql
    if offline:
        _offline_guard("SELECT count(*) FROM trials WHERE strategy_code IS NOT NULL")
    counters = {t: (0 if offline else sqlite_counter.counter(conn, t)) for t in ("experiments", "trials")}
    op.create_table(
        "blobs",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("codec", _text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", mysql.bytes_type(), nullable=False),
        sa.CheckConstraint("codec IN ('zstd', 'none')", name="ck_blobs_codec"),
        sa.PrimaryKeyConstraint("id", name="pk_blobs"),
        sa.UniqueConstraint("sha256", name="uq_blobs_sha256"),
        sqlite_autoincrement=True,
        **mysql.table_options(op.get_context()),
    )
    with op.batch_alter_table("trials", copy_from=_trials(), table_kwargs={"sqlite_autoincrement": True}) as batch:
        for column in _new_trial_columns():
            batch.add_column(column)
    if not offline:
        _codes_to_blobs(conn)
    with op.batch_alter_table(
        "trials", copy_from=_trials(*_new_trial_columns()), table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_column("strategy_code")
        if mysql.used_by(conn):  # the index first, or InnoDB makes one of its own for the key
            batch.create_index("ix_trials_strategy_code_id", ["strategy_code_id"])
            batch.create_foreign_key("fk_trials_strategy_code_id_blobs", "blobs", ["strategy_code_id"], ["id"])
        else:
            batch.create_foreign_key("fk_trials_strategy_code_id_blobs", "blobs", ["strategy_code_id"], ["id"])
            batch.create_index("ix_trials_strategy_code_id", ["strategy_code_id"])
    with op.batch_alter_table(
        "experiments", copy_from=_experiments(), table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for column in _new_experiment_columns():
            batch.add_column(column)
    _create_owned_tables()
    if not offline:
        for table, floor in counters.items():
            sqlite_counter.restore(conn, table, floor)


def _create_owned_tables() -> None:
    options = mysql.table_options(op.get_context())
    for owner, parent in (("experiment", "experiments"), ("trial", "trials")):
        key = f"{owner}_id"
        op.create_table(
            f"{owner}_tags",
            sa.Column(key, _id(), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", _text(), nullable=False),
            sa.ForeignKeyConstraint(
                [key], [f"{parent}.id"], ondelete="CASCADE", name=f"fk_{owner}_tags_{key}_{parent}"
            ),
            sa.PrimaryKeyConstraint(key, "key", name=f"pk_{owner}_tags"),
            **options,
        )
        op.create_table(
            f"{owner}_artifacts",
            sa.Column(key, _id(), nullable=False),
            sa.Column("name", sa.String(250), nullable=False),
            sa.Column("media_type", _text(), nullable=False),
            sa.Column("blob_id", _id(), nullable=False),
            sa.Column("created_at", _time(), nullable=False),
            sa.ForeignKeyConstraint(
                [key], [f"{parent}.id"], ondelete="CASCADE", name=f"fk_{owner}_artifacts_{key}_{parent}"
            ),
            sa.ForeignKeyConstraint(["blob_id"], ["blobs.id"], name=f"fk_{owner}_artifacts_blob_id_blobs"),
            sa.PrimaryKeyConstraint(key, "name", name=f"pk_{owner}_artifacts"),
            **options,
        )
        op.create_index(f"ix_{owner}_artifacts_blob_id", f"{owner}_artifacts", ["blob_id"])
    op.create_table(
        "trial_metrics",
        sa.Column("trial_id", _id(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], ondelete="CASCADE", name="fk_trial_metrics_trial_id_trials"
        ),
        sa.PrimaryKeyConstraint("trial_id", "key", "step", name="pk_trial_metrics"),
        **options,
    )


def _codes_to_blobs(conn: sa.Connection) -> None:
    """Store each distinct strategy code once and point every trial at it."""
    trials = sa.table("trials", sa.column("id"), sa.column("strategy_code"), sa.column("strategy_code_id"))
    blobs = sa.table(
        "blobs", sa.column("id"), sa.column("sha256"), sa.column("codec"), sa.column("size"), sa.column("data")
    )
    ids: dict[str, int] = {}
    converted = 0
    last = 0
    while True:
        rows = conn.execute(
            sa.select(trials.c.id, trials.c.strategy_code)
            .where(trials.c.id > last, trials.c.strategy_code.is_not(None))
            .order_by(trials.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        updates = []
        for trial_id, text in rows:
            data = text.encode("utf-8")
            sha = content.digest(data)
            if sha not in ids:
                codec, packed = content.pack(data)
                conn.execute(sa.insert(blobs), {"sha256": sha, "codec": codec, "size": len(data), "data": packed})
                ids[sha] = int(conn.execute(sa.select(blobs.c.id).where(blobs.c.sha256 == sha)).scalar_one())
            updates.append({"trial": trial_id, "blob": ids[sha]})
        conn.execute(
            sa.update(trials).where(trials.c.id == sa.bindparam("trial")).values(strategy_code_id=sa.bindparam("blob")),
            updates,
        )
        converted += len(rows)
        last = rows[-1][0]
    note_rows("trials (strategy code stored once)", converted)
    note_rows("blobs", len(ids))


def _offline_guard(count_query: str) -> None:
    """In --sql mode the data conversion cannot run: make the script stop if there is data."""
    op.execute("CREATE TEMPORARY TABLE tracker_upgrade_guard (rows_to_convert INTEGER CHECK (rows_to_convert = 0))")
    op.execute(f"INSERT INTO tracker_upgrade_guard {count_query}")
    op.execute("DROP TABLE tracker_upgrade_guard")


def downgrade() -> None:
    conn = op.get_bind()
    offline = op.get_context().as_sql
    if offline:
        _offline_guard("SELECT count(*) FROM trials WHERE strategy_code_id IS NOT NULL")
    counters = {t: (0 if offline else sqlite_counter.counter(conn, t)) for t in ("experiments", "trials")}
    for table in ("trial_metrics", "trial_artifacts", "experiment_artifacts", "trial_tags", "experiment_tags"):
        op.drop_table(table)
    new_trials = _trials(*_new_trial_columns())
    with op.batch_alter_table("trials", copy_from=new_trials, table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("strategy_code", _text(), nullable=True))
    if not offline:
        _blobs_to_codes(conn)
    with_code = _trials(*_new_trial_columns())
    with_code.append_constraint(
        sa.ForeignKeyConstraint(["strategy_code_id"], ["blobs.id"], name="fk_trials_strategy_code_id_blobs")
    )
    with_code.append_constraint(sa.Index("ix_trials_strategy_code_id", "strategy_code_id"))
    with op.batch_alter_table("trials", copy_from=with_code, table_kwargs={"sqlite_autoincrement": True}) as batch:
        if mysql.used_by(conn):  # InnoDB keeps the index while the foreign key needs it
            batch.drop_constraint("fk_trials_strategy_code_id_blobs", type_="foreignkey")
            batch.drop_index("ix_trials_strategy_code_id")
        else:
            batch.drop_index("ix_trials_strategy_code_id")
            batch.drop_constraint("fk_trials_strategy_code_id_blobs", type_="foreignkey")
        for name in NEW_TRIAL_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table(
        "experiments", copy_from=_experiments(*_new_experiment_columns()), table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_column("note")
        batch.drop_column("provenance")
    op.drop_table("blobs")
    if not offline:
        for table, floor in counters.items():
            sqlite_counter.restore(conn, table, floor)


def _blobs_to_codes(conn: sa.Connection) -> None:
    """Put each trial's strategy code text back in the trial."""
    blobs = sa.table("blobs", sa.column("id"), sa.column("codec"), sa.column("data"))
    trials = sa.table("trials", sa.column("strategy_code"), sa.column("strategy_code_id"))
    count = 0
    for blob_id, codec, data in conn.execute(sa.select(blobs.c.id, blobs.c.codec, blobs.c.data)).all():
        text = content.unpack(codec, data).decode("utf-8")
        result = conn.execute(sa.update(trials).where(trials.c.strategy_code_id == blob_id).values(strategy_code=text))
        count += result.rowcount
    note_rows("trials (strategy code put back)", count)
