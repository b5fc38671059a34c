"""Turning the constructor's arguments (URL, backend, db_path) into a store location."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracker.errors import ReadOnlyStoreError, ValidationError

DEFAULT_PATH = "experiments.db"
ENV_URL = "TRACKER_URL"
_JSON_SUFFIXES = (".json", ".jsonl")
_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where a store lives: a SQLAlchemy URL for SQL stores, a file path for the JSON journal."""

    backend: Literal["sqlite", "postgresql", "json", "sql"]
    url: str
    path: Path | None

    @property
    def safe_url(self) -> str:
        return mask_password(self.url)


def mask_password(text: str) -> str:
    """Replace the password of every URL in `text` with ***."""
    return _PASSWORD.sub(r"\1***\3", text)


def resolve(
    url: str | os.PathLike[str] | None,
    backend: str | None,
    db_path: str | os.PathLike[str] | None,
    *,
    create: bool = True,
) -> StoreLocation:
    """Pick the store from the arguments, then TRACKER_URL, then ./experiments.db. A file store's
    folder is created unless `create` is False (readers never create anything)."""
    location = _resolve(url, backend, db_path)
    if create and location.path is not None:
        _make_parent(location.path)
    return location


def _resolve(
    url: str | os.PathLike[str] | None, backend: str | None, db_path: str | os.PathLike[str] | None
) -> StoreLocation:
    if url is not None and db_path is not None:
        raise ValidationError("db_path", "give either a URL or db_path, not both")
    if backend is not None and backend not in ("sqlite", "json"):
        raise ValidationError("backend", f"must be 'sqlite' or 'json', got {backend!r}")
    if db_path is not None:
        path = Path(os.fspath(db_path))
        if backend == "json" or (backend is None and path.suffix in _JSON_SUFFIXES):
            return _json(path)
        return _sqlite(path)
    if url is None:
        url = os.environ.get(ENV_URL) or None
    if url is None:
        return _json(Path(DEFAULT_PATH)) if backend == "json" else _sqlite(Path(DEFAULT_PATH))
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("url", "must be a non-empty SQLAlchemy URL, json: URL or file path")
    if text.startswith("json:"):
        rest = text[len("json:") :]
        rest = rest[2:] if rest.startswith("//") else rest
        if not rest:
            raise ValidationError("url", "a json: URL needs a path, e.g. json:///abs/path.jsonl")
        return _json(Path(rest))
    if "://" not in text:
        path = Path(text)
        if backend == "json" or path.suffix in _JSON_SUFFIXES:
            return _json(path)
        return _sqlite(path)
    if backend == "json":
        raise ValidationError("backend", "backend='json' takes a file path, not a database URL")
    scheme = text.split("://", 1)[0]
    if scheme.startswith("sqlite"):
        raw = text.split("://", 1)[1]
        if raw in ("", "/", "/:memory:"):
            raise ValidationError(
                "url", "in-memory SQLite is not supported; give a file, e.g. sqlite:///experiments.db"
            )
        return StoreLocation("sqlite", text, Path(raw[1:].split("?", 1)[0]))
    if scheme in ("postgresql", "postgres"):
        return StoreLocation("postgresql", "postgresql+psycopg://" + text.split("://", 1)[1], None)
    if scheme.startswith("postgresql"):
        return StoreLocation("postgresql", text, None)
    return StoreLocation("sql", text, None)


def _sqlite(path: Path) -> StoreLocation:
    return StoreLocation("sqlite", f"sqlite:///{path}", path)


def _json(path: Path) -> StoreLocation:
    return StoreLocation("json", f"json:{path}", path)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadOnlyStoreError(f"cannot create the folder {path.parent}: {exc.strerror}") from exc
