"""Turning the constructor's arguments (URL, backend, db_path) into a store location."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracker.errors import ReadOnlyStoreError, StoreNotFoundError, ValidationError

DEFAULT_PATH = "experiments.db"
ENV_URL = "TRACKER_URL"
_JSON_SUFFIXES = (".json", ".jsonl")
_PASSWORD = re.compile(r"(://[^:/@\s'\"]*:)([^@\s'\"]*)(@)")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where a store lives: a SQLAlchemy URL for SQL stores, a file path for the JSON journal."""

    backend: Literal["sqlite", "postgresql", "mysql", "json", "sql"]
    url: str
    path: Path | None

    @property
    def safe_url(self) -> str:
        return mask_password(self.url)


def mask_password(text: str) -> str:
    """Replace the password of every URL in `text` with ***."""
    return _PASSWORD.sub(r"\1***\3", text)


SUPPORTED_FORMS = (
    "a file path (experiments.db, runs.jsonl; .json/.jsonl is a JSON journal, anything else SQLite), "
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "postgresql+psycopg://user@host:5432/dbname (postgresql:// and postgres:// mean the same), "
    "mysql+pymysql://user@host:3306/dbname or mariadb+pymysql://user@host:3306/dbname "
    "(mysql:// means mysql+pymysql://), "
    "json:relative/path.jsonl, json:///absolute/path.jsonl"
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_MYSQL_SCHEMES = {"mysql": "mysql+pymysql", "mysql+pymysql": "mysql+pymysql", "mariadb+pymysql": "mariadb+pymysql"}


def _malformed(text: str, problem: str) -> ValidationError:
    return ValidationError("url", f"{mask_password(text)!r} {problem}. Supported forms: {SUPPORTED_FORMS}")


def resolve(
    url: str | os.PathLike[str] | None, backend: str | None, db_path: str | os.PathLike[str] | None
) -> StoreLocation:
    """Pick the store from the arguments, then TRACKER_URL, then ./experiments.db.

    Only reads the arguments: a malformed URL raises ValidationError and nothing on disk is
    touched (folders are made when a store is created, by `prepare_path`).
    """
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
        raise ValidationError("url", f"must be a non-empty store URL or file path. Supported forms: {SUPPORTED_FORMS}")
    scheme_match = _SCHEME.match(text)
    if scheme_match is None:  # a plain path
        path = Path(text)
        if backend == "json" or path.suffix in _JSON_SUFFIXES:
            return _json(path)
        return _sqlite(path)
    return _from_url(text, scheme_match.group(1).lower(), backend)


def _from_url(text: str, scheme: str, backend: str | None) -> StoreLocation:
    """The store a URL with a scheme names; raises ValidationError when it is malformed."""
    rest = text[len(scheme) + 1 :]
    if scheme == "json":
        if rest.startswith("//"):
            if not rest.startswith("///"):
                raise _malformed(text, "has two slashes after json:, so its path would be read as a host name")
            rest = rest[2:]
        if not rest.strip("/"):
            raise _malformed(text, "has no file path")
        return _json(Path(rest))
    if not rest.startswith("//"):
        raise _malformed(text, f"is malformed: '{scheme}:' must be followed by '//'")
    rest = rest[2:]
    if backend == "json":
        raise ValidationError("backend", "backend='json' takes a file path, not a database URL")
    if scheme in _SQLITE_SCHEMES:
        return _sqlite_url(text, rest)
    if scheme in _POSTGRES_SCHEMES:
        return StoreLocation("postgresql", "postgresql+psycopg://" + rest, None)
    if scheme in _MYSQL_SCHEMES:
        if not rest.split("?", 1)[0].partition("/")[2]:
            raise _malformed(text, "names no database: add /dbname after the host")
        return StoreLocation("mysql", f"{_MYSQL_SCHEMES[scheme]}://{rest}", None)
    raise _malformed(text, f"has an unknown scheme or driver {scheme!r}")


def _sqlite_url(text: str, rest: str) -> StoreLocation:
    """A sqlite:// URL's store (`rest` follows "sqlite://"): a file, never in memory."""
    if rest in ("", "/", "/:memory:"):
        raise ValidationError("url", "in-memory SQLite is not supported; give a file, e.g. sqlite:///experiments.db")
    if not rest.startswith("/"):
        raise _malformed(text, "has two slashes after sqlite:, so its path would be read as a host name")
    path_text = rest[1:].split("?", 1)[0]
    if not path_text or path_text.endswith("/"):
        raise _malformed(text, "has no file name")
    return StoreLocation("sqlite", text, Path(path_text))


def _sqlite(path: Path) -> StoreLocation:
    return StoreLocation("sqlite", f"sqlite:///{path}", path)


def _json(path: Path) -> StoreLocation:
    return StoreLocation("json", f"json:{path}", path)


def prepare_path(location: StoreLocation, *, create: bool) -> None:
    """Get a file store's place ready before it is opened. With `create`, make its folder;
    without, raise StoreNotFoundError when the file (or its folder) does not exist, so that
    nothing is created. Server stores have no path and pass."""
    path = location.path
    if path is None:
        return
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReadOnlyStoreError(f"cannot create the folder {path.parent}: {exc.strerror}") from exc
        return
    if path.is_file():
        return
    if path.is_dir():
        problem = "it is a folder, not a store file"
    elif not path.parent.is_dir():
        problem = f"the folder {path.parent} does not exist"
    else:
        problem = "the file does not exist"
    raise StoreNotFoundError(
        str(path), f"{problem}. Check the path or URL (opening a store only to read it never creates one)"
    )
