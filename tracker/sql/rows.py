"""Between records and SQL rows. Most fields are a column of the same name; two kinds are not:
`tags` live in the owner's tag table, and `code` is a reference (`<field>_id`) to a blob."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, select

from tracker.sql.blob_store import CHUNK, BlobStore
from tracker.sql.models import (
    experiment_artifacts,
    experiment_tags,
    experiments,
    trial_artifacts,
    trial_tags,
    trials,
    ttpt_results,
)
from tracker.store import blobs as content
from tracker.store.records import Experiment, OwnerKind, Trial, TTPTResult, kind_of, stored_fields


@dataclass(frozen=True)
class OwnerTables:
    """The tables of one kind of owner (experiments or trials) and their owner-id column name."""

    records: Table
    tags: Table
    artifacts: Table
    key: str


OWNERS: dict[OwnerKind, OwnerTables] = {
    "experiment": OwnerTables(experiments, experiment_tags, experiment_artifacts, "experiment_id"),
    "trial": OwnerTables(trials, trial_tags, trial_artifacts, "trial_id"),
}


def columns(table: Table, record_type: type) -> tuple[Column[Any], ...]:
    """The table's columns for the record's fields, in field order."""
    out = []
    for f in stored_fields(record_type):
        kind = kind_of(f)
        if kind != "tags":
            out.append(table.c[f"{f.name}_id" if kind == "code" else f.name])
    return tuple(out)


EXPERIMENT_COLUMNS = columns(experiments, Experiment)
TRIAL_COLUMNS = columns(trials, Trial)
TTPT_COLUMNS = columns(ttpt_results, TTPTResult)
_CODE_FIELDS: dict[type, tuple[str, ...]] = {
    record_type: tuple(f.name for f in stored_fields(record_type) if kind_of(f) == "code")
    for record_type in (Experiment, Trial)
}


def code_contents(rows: Iterable[dict[str, Any]], record_type: type) -> dict[str, bytes]:
    """The distinct code texts of codec rows, by SHA-256 name, as bytes to store."""
    found: dict[str, bytes] = {}
    for row in rows:
        for name in _CODE_FIELDS[record_type]:
            text = row.get(name)
            if text is not None:
                found.setdefault(content.name_of(text), text.encode("utf-8"))
    return found


def to_sql(row: dict[str, Any], record_type: type, blob_ids: dict[str, int]) -> tuple[dict[str, Any], dict[str, str]]:
    """A codec row as a row of the record's table, and its tags apart."""
    tags = row.pop("tags", None) or {}
    for name in _CODE_FIELDS[record_type]:
        text = row.pop(name)
        row[f"{name}_id"] = None if text is None else blob_ids[content.name_of(text)]
    return row, tags


def tag_rows(kind: OwnerKind, owner_id: int, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{OWNERS[kind].key: owner_id, "key": key, "value": value} for key, value in tags.items()]


class RecordReader:
    """Builds records from rows, with their tags and their code texts."""

    def __init__(self, blob_store: BlobStore) -> None:
        self.blobs = blob_store

    def tags(self, conn: Connection, kind: OwnerKind, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """The tags of each owner id (owners without tags are left out)."""
        table = OWNERS[kind].tags
        key = table.c[OWNERS[kind].key]
        out: dict[int, dict[str, str]] = {}
        for start in range(0, len(ids), CHUNK):
            query = select(key, table.c.key, table.c.value).where(key.in_(ids[start : start + CHUNK]))
            for owner_id, name, value in conn.execute(query):
                out.setdefault(owner_id, {})[name] = value
        return out

    def experiments(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        tags = self.tags(conn, "experiment", [row.id for row in rows])
        names = [c.name for c in EXPERIMENT_COLUMNS]
        out = []
        for row in rows:
            mapping = row._mapping  # a new RowMapping at each access
            out.append(Experiment(**{name: mapping[name] for name in names}, tags=tags.get(row.id, {})))
        return out

    def trials(self, conn: Connection, rows: Sequence[Any]) -> list[Trial]:
        tags = self.tags(conn, "trial", [row.id for row in rows])
        codes = [f"{name}_id" for name in _CODE_FIELDS[Trial]]
        texts = self.blobs.texts(conn, (row._mapping[code] for row in rows for code in codes))
        out = []
        for row in rows:
            values = dict(row._mapping)
            for code in codes:
                blob_id = values.pop(code)
                values[code[:-3]] = None if blob_id is None else texts[blob_id]
            out.append(Trial(**values, tags=tags.get(row.id, {})))
        return out
