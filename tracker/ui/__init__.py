"""The read-only web dashboard: `tracker ui`, or `tracker.ui.create_app(url)` for any ASGI server.

Needs the `[ui]` extra (pip install 'tracker[ui]'). Importing this package is cheap; Starlette,
Jinja2 and the rest load with `create_app`.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["create_app"]


def create_app(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    loopback_only: bool = True,
    allowed_hosts: tuple[str, ...] = (),
) -> Any:
    """An ASGI app serving the store at `url` read-only; see `tracker.ui.app.create_app`."""
    from tracker.ui.app import create_app as build

    return build(url, token=token, loopback_only=loopback_only, allowed_hosts=allowed_hosts)
