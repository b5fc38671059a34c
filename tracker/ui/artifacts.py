"""Artifacts as the dashboard serves them: their descriptions in the API, their URLs, and the
headers their bytes go out with.

Only raster images (PNG, JPEG, GIF, WebP) are served for display, so that the pages can show them
with `<img>`. Everything else, SVG included (it can carry script), is served as a download
(`Content-Disposition: attachment`) under its stored media type, or `application/octet-stream`
when that is not a well-formed one; the app adds `X-Content-Type-Options: nosniff` to every answer.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from tracker.store.records import Artifact, Owner

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Media types shown in the pages; browsers render these without running anything."""
FALLBACK_TYPE = "application/octet-stream"
SANDBOX = "sandbox; default-src 'none'; img-src 'self'"
"""A second Content-Security-Policy for artifact answers: should a browser ever render one as a
document, it runs nothing and loads nothing."""
_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]*"  # an RFC 6838 type or subtype name, lower-case
_ESSENCE = re.compile(rf"{_NAME}/{_NAME}")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def essence(media_type: str) -> str:
    """The media type without its parameters, lower-case: 'Text/CSV; charset=x' -> 'text/csv'."""
    return media_type.split(";", 1)[0].strip().lower()


def is_inline(media_type: str) -> bool:
    """Whether an artifact of this media type is served for display (a raster image)."""
    return essence(media_type) in INLINE_TYPES


def content_type(media_type: str) -> str:
    """The Content-Type to serve: the stored media type when it is well formed (printable ASCII,
    a type/subtype essence), else application/octet-stream."""
    if _PRINTABLE.fullmatch(media_type) and _ESSENCE.fullmatch(essence(media_type)):
        return media_type.strip()
    return FALLBACK_TYPE


def disposition(name: str, inline: bool) -> str:
    """The Content-Disposition of the artifact `name`: inline or attachment, with the last part
    of the name as the file name (RFC 6266, an ASCII fallback and the UTF-8 form)."""
    filename = name.rsplit("/", 1)[-1]
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def url(root: str, owner: Owner, name: str) -> str:
    """The path of the artifact's bytes: /api/trials/{id}/artifacts/{name}. The name keeps its
    slashes unless a part of it is empty or a dot, which a browser would normalise away."""
    parts = name.split("/")
    safe = "" if any(part in ("", ".") for part in parts) else "/"
    return f"{root}/api/{owner.kind}s/{owner.id}/artifacts/{quote(name, safe=safe)}"


def describe(artifact: Artifact, root: str) -> dict[str, Any]:
    """An artifact as the API lists it."""
    return {
        "name": artifact.name,
        "size": artifact.size,
        "media_type": artifact.media_type,
        "sha256": artifact.sha256,
        "created_at": artifact.created_at.isoformat(),
        "url": url(root, artifact.owner, artifact.name),
        "inline": is_inline(artifact.media_type),
    }
