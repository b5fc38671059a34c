"""Serving the dashboard with uvicorn: `tracker ui`."""

from __future__ import annotations

import os
import socket
import sys
import threading
import webbrowser

from tracker.errors import DISTRIBUTION, StoreError, ValidationError
from tracker.ui.security import TOKEN_ENV, check_binding, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(
    url: str | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = True,
    allowed_hosts: tuple[str, ...] = (),
    root_path: str = "",
) -> int:
    """Serve the store until interrupted; print the address first. Raises ValidationError for a
    non-loopback host without a token, StoreError for a store that cannot be opened or a port in
    use, ImportError (with the install command) without the `[ui]` extra."""
    token = token or os.environ.get(TOKEN_ENV) or None
    check_binding(host, token)
    try:
        import uvicorn

        from tracker.ui.app import create_app
    except ImportError as exc:
        raise ImportError(f"tracker ui needs the ui extra: pip install '{DISTRIBUTION}[ui]' ({exc})") from None
    app = create_app(url, token=token, loopback_only=is_loopback(host), allowed_hosts=allowed_hosts)
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{sock.getsockname()[1]}/"
    store = app.app.state.dashboard.store
    sys.stdout.write(f"tracker ui: serving {store} read-only at {address}\n")
    if root_path:
        sys.stdout.write(f"its links start with {root_path}/, for a reverse proxy that strips that prefix\n")
    if token:
        sys.stdout.write(f"open {address}?token=<your token> once; the browser keeps it in a cookie\n")
    sys.stdout.write("press Ctrl+C to stop\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", root_path=root_path, lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(address)).start()
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and small answers would otherwise wait 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
            raise StoreError(
                f"port {port} on {host} is in use; pick another with --port (0 picks a free one)"
            ) from None
        raise ValidationError("--host", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
