"""The trial_performance table: the numbers among each trial's top-level performance metrics, so
that the dashboard sorts trials by a metric on an index (SQLite makes the rows itself with
json_each, as tracker's writer does there; elsewhere they are made here, in Python, from the
trials read in chunks by id). Dropped on downgrade. FROZEN once released: imports only stdlib, alembic, sqlalchemy and
tracker._migrations.frozen.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from tracker._migrations.frozen import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CHUNK = 10_000
MAX_KEY = 250


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


SQLITE_FILL = (
    "INSERT INTO trial_performance (experiment_id, key, value, trial_number) "
    "SELECT t.experiment_id, j.key, j.value, t.trial_number "
    "FROM trials AS t, json_each(t.performance) AS j "
    "WHERE j.type IN ('integer', 'real') AND length(j.key) <= 250 "
    "ORDER BY 2, 3, 4"
)


def _leaves(stored: Any) -> Iterator[tuple[str, float]]:
    """(key, number) of every top-level JSON number of a stored performance."""
    if type(stored) is not dict:
        return
    for name, value in stored.items():
        if type(value) in (int, float) and math.isfinite(value) and len(name) <= MAX_KEY:
            yield str(name), float(value)


def upgrade() -> None:
    op.create_table(
        "trial_performance",
        sa.Column("experiment_id", _id(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("trial_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "key", "value", "trial_number", name="pk_trial_performance"),
        sqlite_with_rowid=False,
        **mysql.table_options(op.get_context()),
    )
    if op.get_context().as_sql:
        return  # offline: the table starts empty; upgrade online to fill it
    _fill(op.get_bind())


def _fill(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(sa.text(SQLITE_FILL))
        return
    # The stored JSON text, parsed here: the engine's own JSON decoder would turn tagged floats
    # ({"$float": "nan"}) back into numbers, and the sort reads the stored form.
    trials = sa.table(
        "trials",
        sa.column("id", _id()),
        sa.column("experiment_id", _id()),
        sa.column("trial_number", sa.BigInteger()),
        sa.column("performance", sa.Text()),
    )
    target = sa.table(
        "trial_performance",
        sa.column("experiment_id"),
        sa.column("key"),
        sa.column("value"),
        sa.column("trial_number"),
    )
    last = 0
    while True:
        query = (
            sa.select(
                trials.c.id, trials.c.experiment_id, trials.c.trial_number, sa.cast(trials.c.performance, sa.Text())
            )
            .where(trials.c.id > last)
            .order_by(trials.c.id)
            .limit(CHUNK)
        )
        batch = conn.execute(query).all()
        if not batch:
            return
        rows = [
            {"experiment_id": e, "key": key, "value": number, "trial_number": n}
            for _, e, n, performance in batch
            for key, number in _leaves(json.loads(performance) if performance is not None else None)
        ]
        if rows:
            conn.execute(sa.insert(target), rows)
        last = batch[-1][0]


def downgrade() -> None:
    op.drop_table("trial_performance")
