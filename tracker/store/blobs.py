"""Content-addressed bytes, shared by every backend: a SHA-256 name, zstd compression (the
`zstandard` package), and bounded caches of texts by name and names by text.

Strategy code and artifacts are stored once per distinct content. A content's name never changes,
so a decoded text can be cached safely for the life of the process.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Literal

Codec = Literal["zstd", "none"]
ZSTD_LEVEL = 6
"""Compression level: strategy code shrinks 3-5x; a 100 MiB artifact compresses in about a second."""
MAX_ARTIFACT_BYTES = 100 * 1024 * 1024
"""Largest artifact accepted, before compression: 100 MiB (larger files belong in a file store)."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: object) -> bool:
    """Whether `text` is a content name: 64 lowercase hex digits (never a path)."""
    return isinstance(text, str) and _SHA256.fullmatch(text) is not None


def digest(data: bytes) -> str:
    """The SHA-256 of `data`, in hex: its name in the store."""
    return hashlib.sha256(data).hexdigest()


def pack(data: bytes) -> tuple[Codec, bytes]:
    """`data` compressed with zstd, or as it is when compression does not make it smaller."""
    import zstandard

    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    return ("zstd", packed) if len(packed) < len(data) else ("none", bytes(data))


def unpack(codec: str, data: bytes) -> bytes:
    """The original bytes of a packed blob."""
    if codec == "none":
        return bytes(data)
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)


class LRU(OrderedDict[str, str]):
    """A small least-recently-used map of strings (texts by name, names by text)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: str) -> str | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


TEXTS = LRU(512)
"""Decoded strategy code by SHA-256, for every store of the process (contents never change)."""
NAMES = LRU(512)
"""SHA-256 by strategy code text: a repeated text is not hashed again."""


def name_of(text: str) -> str:
    """The SHA-256 name of a text's UTF-8 bytes (cached)."""
    known = NAMES.get_fresh(text)
    if known is None:
        known = digest(text.encode("utf-8"))
        NAMES.put(text, known)
        TEXTS.put(known, text)
    return known
