"""FROZEN: how a revision reports the rows it converted. The runner (`tracker.schema`) passes a
dict in the Alembic config's attributes; plain `alembic` from a checkout passes none."""

from __future__ import annotations

from alembic import op


def note_rows(table: str, count: int) -> None:
    """Add `count` converted rows of `table` to the running report, if there is one."""
    config = op.get_context().config
    rows = None if config is None else config.attributes.get("tracker_rows")
    if rows is not None:
        rows[table] = rows.get(table, 0) + count
