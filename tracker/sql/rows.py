"""Between records and SQL rows. Most fields are a column of the same name; two kinds are not:
`tags` live in the owner's tag table, and `code` is a reference (`<field>_id`) to a blob.

`RecordReader` is the SQL store's row reader: the engine hands JSON columns over in the codec's
storage form (parsed, not decoded, as a journal line is), and the reader decodes them, so values
are decoded at the repository on both backends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Row, Table, select

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
from tracker.store.codec import decode
from tracker.store.records import (
    TRIAL_FRAME_FIELDS,
    TRIAL_STATES,
    TTPT_FRAME_FIELDS,
    Experiment,
    ExperimentStats,
    OwnerKind,
    Trial,
    TrialTable,
    TTPTResult,
    kind_of,
    stored_fields,
)


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


_JSON_FIELDS: dict[type, frozenset[str]] = {
    record_type: frozenset(f.name for f in stored_fields(record_type) if kind_of(f) == "json")
    for record_type in (Experiment, Trial, TTPTResult)
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
        names = [c.name for c in EXPERIMENT_COLUMNS]  # listing rows carry aggregates too
        return [Experiment(**_decoded(row, Experiment, names), tags=tags.get(row.id, {})) for row in rows]

    def trials(self, conn: Connection, rows: Sequence[Any]) -> list[Trial]:
        tags = self.tags(conn, "trial", [row.id for row in rows])
        codes = [f"{name}_id" for name in _CODE_FIELDS[Trial]]
        texts = self.blobs.texts(conn, (row._mapping[code] for row in rows for code in codes))
        out = []
        for row in rows:
            values = _decoded(row, Trial)
            for code in codes:
                blob_id = values.pop(code)
                values[code[:-3]] = None if blob_id is None else texts[blob_id]
            out.append(Trial(**values, tags=tags.get(row.id, {})))
        return out

    @staticmethod
    def ttpt_results(rows: Iterable[Any]) -> list[TTPTResult]:
        return [TTPTResult(**_decoded(row, TTPTResult)) for row in rows]

    def table(self, conn: Connection, names: Sequence[str], rows: Sequence[Any], with_code: bool) -> TrialTable:
        """A `TrialTable` chunk from rows of `trial_table_statement` (columns `names`), with the
        trials' tags and, `with_code`, their strategy codes."""
        columns = {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}
        for name in _TABLE_JSON:
            columns[name] = [decode(value) for value in columns[name]]
        columns["ttpt.passed"] = [None if p is None else bool(p) for p in columns["ttpt.passed"]]
        found = self.tags(conn, "trial", columns["id"])
        columns["tags"] = [found.get(i, {}) for i in columns["id"]]
        if with_code:
            texts = self.blobs.texts(conn, columns["strategy_code"])
            columns["strategy_code"] = [None if i is None else texts[i] for i in columns["strategy_code"]]
        return TrialTable(columns)


_TABLE_JSON = tuple(
    [f.name for f in TRIAL_FRAME_FIELDS if kind_of(f) == "json"]
    + [f"ttpt.{name}" for name in TTPT_FRAME_FIELDS if name in _JSON_FIELDS[TTPTResult]]
)
"""The JSON columns of a `TrialTable`."""


def _decoded(row: Row[Any], record_type: type, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The row's columns (or those `names`) by name, the record's JSON values decoded by the codec."""
    mapping = row._mapping  # one RowMapping (each access builds one)
    values = dict(mapping) if names is None else {name: mapping[name] for name in names}
    for name in _JSON_FIELDS[record_type]:
        values[name] = decode(values[name])
    return values


def experiment_stats(row: Row[Any], experiment: Experiment, with_trials: bool) -> ExperimentStats:
    """An experiment's stats from a row of `listing_statement`."""
    return ExperimentStats(
        experiment=experiment,
        n_trials=int(row.n_trials or 0) if with_trials else 0,
        n_by_state={state: int(getattr(row, f"n_{state}") or 0) for state in TRIAL_STATES} if with_trials else {},
        best_value=row.best_value if with_trials else None,
        ttpt_total=int(row.ttpt_total_),
        ttpt_failed=int(row.ttpt_failed_),
        n_ranked=int(row.n_ranked or 0) if with_trials else 0,
    )
