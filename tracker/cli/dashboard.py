"""`tracker ui`: the read-only web dashboard (the [ui] extra)."""

from __future__ import annotations

import argparse

from tracker.cli._app import arg, command


@command(
    "ui",
    "serve a read-only web dashboard of the store (needs ttpt-tracker[ui])",
    arg("--host", default="127.0.0.1", help="address to bind (beyond loopback needs --token)"),
    arg("--port", type=int, default=8765, help="port (0 picks a free one)"),
    arg("--token", default=None, help="access token every request must carry (or $TRACKER_UI_TOKEN)"),
    arg("--no-open", action="store_true", help="do not open a browser"),
    arg("--allowed-host", action="append", help="a Host name to answer on a loopback bind (proxies)"),
    arg("--root-path", default="", help="the path prefix under a reverse proxy, e.g. /tracker"),
)
def ui(args: argparse.Namespace) -> int:
    from tracker.ui.server import serve

    return serve(
        args.url,
        host=args.host,
        port=args.port,
        token=args.token,
        open_browser=not args.no_open,
        allowed_hosts=tuple(args.allowed_host or ()),
        root_path=args.root_path,
    )
