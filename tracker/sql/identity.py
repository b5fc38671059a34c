"""Whether two engines reach the same server database (and PostgreSQL schema), asked of the
servers rather than guessed from URLs (host names, ports, proxies such as pgbouncer and search
paths can all spell one database differently): a lock taken through one connection is looked for
through the other, and the database and schema names are compared."""

from __future__ import annotations

import secrets

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tracker.sql.errors import translate
from tracker.sql.models import MYSQL_DIALECTS
from tracker.sql.unit_of_work import UnitOfWork

_WHERE_PG = "SELECT current_database(), current_schema()"
_WHERE_MYSQL = "SELECT DATABASE(), ''"


def same_database(one: UnitOfWork, other: UnitOfWork) -> bool:
    """Whether `one` and `other` are the same database of the same server (PostgreSQL: and the
    same schema). Raises the translated database error when either cannot be asked."""
    try:
        return _same(one, other)
    except SQLAlchemyError as exc:
        raise translate(exc, other.location) from None


def _same(one: UnitOfWork, other: UnitOfWork) -> bool:
    if one.dialect != other.dialect and not {one.dialect, other.dialect} <= set(MYSQL_DIALECTS):
        return False
    postgres = one.dialect == "postgresql"
    token = secrets.randbits(62)
    name = f"tracker-identity-{token:x}"
    with one.engine.connect() as holder, other.engine.connect() as seer:
        if postgres:
            holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": token})
            seen = seer.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
                    "AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": token >> 32, "low": token & 0xFFFFFFFF},
            ).scalar()
        else:
            holder.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": name})
            seen = seer.execute(text("SELECT IS_USED_LOCK(:name) IS NOT NULL"), {"name": name}).scalar()
            holder.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        where = _WHERE_PG if postgres else _WHERE_MYSQL
        same_place = tuple(holder.execute(text(where)).one()) == tuple(seer.execute(text(where)).one())
        holder.rollback()
        seer.rollback()
    return bool(seen) and same_place
