"""The in-house tracker's schema, exactly: experiments, trials, ttpt_results.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from tracker._migrations.frozen import mysql
from tracker._migrations.frozen.inhouse import IN_HOUSE_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQLITE = IN_HOUSE_DDL
POSTGRESQL = tuple(statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "SERIAL PRIMARY KEY") for statement in SQLITE)


def upgrade() -> None:
    context = op.get_context()
    if mysql.used_by(context):
        statements = mysql.in_house_ddl(SQLITE, context)
    else:
        statements = SQLITE if context.dialect.name == "sqlite" else POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for table in ("ttpt_results", "trials", "experiments"):
        op.drop_table(table)
