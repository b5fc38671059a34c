"""The read-only web dashboard: `tracker ui`, or `tracker.ui.create_app(url)` for any ASGI server.

Needs the `[ui]` extra (pip install 'ttpt-tracker[ui]'). Importing this package is cheap; Starlette,
Jinja2 and the rest load with `create_app`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """`create_app` (`tracker.ui.app.create_app`), imported on first use."""
    if name == "create_app":
        from tracker.ui.app import create_app

        return create_app
    raise AttributeError(f"module 'tracker.ui' has no attribute {name!r}")
