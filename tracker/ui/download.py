"""An artifact's bytes over HTTP: streamed in pieces (`tracker.read.downloads`), with single
byte ranges (RFC 9110 14: `Range: bytes=A-B`, `bytes=A-`, `bytes=-N`) answered 206, an
unsatisfiable one 416, several ranges or an `If-Range` that no longer matches answered whole."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tracker.read.browser import Browser
from tracker.store.records import Owner, OwnerKind
from tracker.ui import artifacts, params

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """[start, stop) asked for by a Range header; None to send it all; False when unsatisfiable."""
    match = _RANGE.fullmatch((header or "").replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, stop = max(0, size - int(last)), size
        return (start, stop) if int(last) > 0 and size > 0 else False
    start = int(first)
    stop = size if last == "" else min(size, int(last) + 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignored, as RFC 9110 says
    return (start, stop) if start < size else False


def respond(browser: Browser[Any], kind: OwnerKind, request: Request) -> Response:
    """The artifact named in the request's path, streamed; raises NotFoundError."""
    owner = Owner(kind, params.path_id(request, f"{kind}_id", kind))
    found = browser.download(owner, request.path_params["name"])
    a = found.artifact
    etag = f'"{a.sha256}"'
    headers = {
        "content-type": artifacts.content_type(a.media_type),
        "content-disposition": artifacts.disposition(a.name, artifacts.is_inline(a.media_type)),
        "content-security-policy": artifacts.SANDBOX,
        "cache-control": "no-cache",
        "etag": etag,
        "accept-ranges": "bytes",
    }
    if_range = request.headers.get("if-range")
    wanted = byte_range(request.headers.get("range"), a.size) if if_range in (None, etag) else None
    if wanted is False:
        headers["content-range"] = f"bytes */{a.size}"
        return Response(b"", status_code=416, headers=headers)
    start, stop = wanted if isinstance(wanted, tuple) else (0, a.size)
    headers["content-length"] = str(stop - start)
    if isinstance(wanted, tuple):
        headers["content-range"] = f"bytes {start}-{stop - 1}/{a.size}"
    body = found.pieces(start, stop) if request.method != "HEAD" else iter(())
    return StreamingResponse(body, status_code=206 if isinstance(wanted, tuple) else 200, headers=headers)
