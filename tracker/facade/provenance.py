"""Where a result came from, recorded with each new experiment: the caller's git commit (and
whether its work tree had changes), the Python and library versions, the host and the user, and
a fingerprint of the data when the caller gives one."""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("optuna", "pandas", "numpy")
"""Distributions whose versions are recorded, beside tracker's own."""


def collect(data_fingerprint: str | None = None) -> dict[str, Any]:
    """The provenance of an experiment created now, by this process."""
    from tracker._version import __version__

    versions: dict[str, str | None] = {"tracker": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError):
        user = None
    return {
        **_git(_caller_folder()),
        "python": platform.python_version(),
        "versions": versions,
        "host": socket.gethostname(),
        "user": user,
        "data_fingerprint": data_fingerprint,
    }


def _caller_folder() -> Path:
    """The folder of the running script (its git repository is the one that matters), else the
    working directory."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return Path(script).resolve().parent if script else Path.cwd()


def _git(folder: Path) -> dict[str, Any]:
    """The commit checked out in `folder`'s repository and whether tracked files changed; None for
    both outside a repository or without git."""

    def git(*args: str) -> str | None:
        try:
            run = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                ["git", "-C", str(folder), *args],  # noqa: S607 - git from PATH, as a user runs it
                capture_output=True,
                text=True,
                timeout=5,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return run.stdout.strip() if run.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def fingerprint(data: Any) -> str:
    """A SHA-256 fingerprint of a DataFrame or Series (values, index, columns and dtypes), or of
    a dict of them (e.g. `{"close": prices}`): equal data gives an equal fingerprint."""
    import pandas as pd

    digest = hashlib.sha256()
    frames = data.items() if isinstance(data, dict) else [("", data)]
    for key, frame in sorted(frames, key=lambda item: str(item[0])):
        if not isinstance(frame, pd.DataFrame | pd.Series):
            from tracker.errors import ValidationError

            raise ValidationError(
                "data", f"expected a DataFrame, a Series or a dict of them, got {type(frame).__name__}"
            )
        digest.update(str(key).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        names = frame.columns if isinstance(frame, pd.DataFrame) else [frame.name]
        digest.update(repr([str(n) for n in names]).encode())
        digest.update(
            repr([str(t) for t in (frame.dtypes if isinstance(frame, pd.DataFrame) else [frame.dtype])]).encode()
        )
    return "sha256:" + digest.hexdigest()
