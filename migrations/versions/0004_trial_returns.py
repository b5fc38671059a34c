"""Trials' returns series: a new table, trial_returns (one row per trial: its length, the blob of
its index, the codec and the packed values). Nothing else changes, so no row is converted.

A downgrade to 0003 drops the table, and with it every stored returns series; the index blobs it
referred to stay in blobs, unreferenced (0003 collects unreferenced blobs when an experiment is
deleted).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from tracker._migrations.frozen import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    options: dict[str, Any] = mysql.table_options(op.get_context())
    op.create_table(
        "trial_returns",
        sa.Column("trial_id", _id(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("index_id", _id(), nullable=True),
        sa.Column("codec", mysql.text_type(), nullable=False),
        sa.Column("data", mysql.bytes_type(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], ondelete="CASCADE", name="fk_trial_returns_trial_id_trials"
        ),
        sa.ForeignKeyConstraint(["index_id"], ["blobs.id"], name="fk_trial_returns_index_id_blobs"),
        sa.PrimaryKeyConstraint("trial_id", name="pk_trial_returns"),
        **options,
    )
    op.create_index("ix_trial_returns_index_id", "trial_returns", ["index_id"])


def downgrade() -> None:
    op.drop_table("trial_returns")  # its index and foreign keys go with it
