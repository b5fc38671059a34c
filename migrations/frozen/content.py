"""FROZEN: how revision 0003 names and packs strategy code (tracker/blobs.py of 2026-12-01):
SHA-256 of the UTF-8 text; zstd at level 6, or the bytes as they are when that is not smaller.
Never edit this file."""

from __future__ import annotations

import hashlib


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(data: bytes) -> tuple[str, bytes]:
    import zstandard

    packed = zstandard.ZstdCompressor(level=6).compress(data)
    return ("zstd", packed) if len(packed) < len(data) else ("none", bytes(data))


def unpack(codec: str, data: bytes) -> bytes:
    if codec == "none":
        return bytes(data)
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)
