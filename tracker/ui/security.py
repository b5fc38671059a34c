"""What keeps the dashboard's data to its users: the access token, the Host check and the
response headers (a Content-Security-Policy with no inline scripts).

With a token, every request must carry it: as `Authorization: Bearer TOKEN`, as an
`X-Tracker-Token` header, or as the `tracker_token` cookie, which a first visit with `?token=TOKEN`
sets (the answer redirects to the same URL without the token, so it does not stay in the address
bar or the history).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tracker.errors import ValidationError

TOKEN_ENV = "TRACKER_UI_TOKEN"  # noqa: S105 - the name of the variable, not a token
COOKIE = "tracker_token"
HEADER = "x-tracker-token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline or foreign scripts. Inline styles are allowed because Plotly sets them on its SVG."""
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

Scope = dict[str, Any]


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token (ValidationError saying how to give one)."""
    if not is_loopback(host) and not token:
        raise ValidationError(
            "--host",
            f"serving on {host} makes the dashboard reachable from other machines, so it needs a token: "
            f"pass --token SECRET or set {TOKEN_ENV} (every request must then carry it), or bind 127.0.0.1",
        )
    if token is not None:
        check_token(token)


MIN_TOKEN = 16


def check_token(token: str) -> None:
    """Refuse a token a browser cannot carry or a guesser finds soon: fewer than 16 characters,
    or any whitespace or control character, or a `;` or `,` (which end a cookie's value).
    Raises ValidationError saying how to make one."""
    how = "e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
    if len(token) < MIN_TOKEN:
        raise ValidationError("--token", f"must be at least {MIN_TOKEN} characters; {how}")
    if any(c.isspace() or not c.isprintable() or c in ';,"\\' for c in token):
        raise ValidationError(
            "--token", f"must be printable characters without spaces, quotes, backslashes, ';' or ','; {how}"
        )


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, read as browsers send it (RFC 6265 5.4:
    `a=1; b=2`), whatever else the header holds: one malformed cookie of another site on the
    same host does not hide this one. Surrounding double quotes are removed."""
    for part in header.split(";"):
        key, equals, value = part.partition("=")
        if equals and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def same_origin_path(path: str) -> str:
    """`path` as a path on this origin: leading slashes and backslashes become one slash, so a
    redirect to `//evil.example/` (which a browser reads as another host) stays here."""
    return "/" + path.lstrip("/\\")


def serves_beyond_loopback(scope: Scope) -> bool:
    """Whether the connection arrived on an address other than loopback: ASGI's `server` is the
    local address of the socket the request came in on (a Unix socket has no port)."""
    server = scope.get("server")
    if not server:
        return True
    host, port = server[0], server[1] if len(server) > 1 else None
    if port is None:
        return False
    return not is_loopback(str(host))


class Guard:
    """ASGI middleware: security headers on every answer; the token when one is set; on a
    loopback server, requests must name a loopback host (no DNS rebinding)."""

    def __init__(self, app: Any, token: str | None, loopback_only: bool, allowed_hosts: Sequence[str] = ()) -> None:
        if token is not None:
            check_token(token)
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and not self._host_allowed(headers.get("host", "")):
            await _plain(send_with_headers, 421, "this dashboard answers only to requests for 127.0.0.1 or localhost")
            return
        if self.token is None and serves_beyond_loopback(scope):
            await _plain(
                send_with_headers,
                403,
                "this dashboard has no token, so it answers only on a loopback address (127.0.0.1, ::1); "
                f"to serve other machines, give it one: tracker ui --token SECRET, or set {TOKEN_ENV}",
            )
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and self._valid(given):
                rest = urlencode(
                    [(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1")) if k != "token"]
                )
                root, path = scope.get("root_path", ""), scope["path"]
                path = path if path.startswith(root) else root + path  # servers differ on including it
                location = same_origin_path(path) + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict"
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": b""})
                return
            if not self._carries_token(headers):
                await _plain(
                    send_with_headers,
                    401,
                    "this dashboard needs its token: open the address with ?token=TOKEN once, "
                    "or send the header Authorization: Bearer TOKEN",
                )
                return
        await self.app(scope, receive, send_with_headers)

    def _host_allowed(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower()
        return name in LOOPBACK_NAMES or name in self.allowed_hosts or is_loopback(name)

    def _valid(self, given: str) -> bool:
        assert self.token is not None  # noqa: S101 - only called with a token
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _carries_token(self, headers: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer ") and self._valid(authorization[7:].strip()):
            return True
        if HEADER in headers and self._valid(headers[HEADER]):
            return True
        value = cookie_value(headers.get("cookie", ""), COOKIE)
        return value is not None and self._valid(value)


async def _plain(send: Any, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})
