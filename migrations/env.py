"""Alembic environment for tracker. Used by `tracker db ...` (which passes its own connection in
`config.attributes["connection"]`) and by plain `alembic` from a checkout (URL from `-x url=...`,
else $TRACKER_URL, else sqlalchemy.url)."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from tracker.sql.models import Base
from tracker.sql.schema import VERSION_TABLE, note_applied
from tracker.store.codec import dumps, loads

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("TRACKER_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set TRACKER_URL")
    return url


def _options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "render_as_batch": dialect == "sqlite",
        "compare_type": True,
        "on_version_apply": note_applied,
    }


def run_offline() -> None:
    url = _url()
    context.configure(url=url, literal_binds=True, **_options(url.split(":", 1)[0].split("+", 1)[0]))
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), json_serializer=dumps, json_deserializer=loads)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
