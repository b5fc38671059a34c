"""Artifact bytes as the dashboard sends them: in pieces of at most `CHUNK` bytes, from any
offset, without holding the artifact in memory (a download costs about two chunks, whatever
its size). Each backend reads the stored (packed) bytes piece by piece; zstd-packed ones are
decompressed as a stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tracker.errors import StoreError
from tracker.store.records import Artifact

CHUNK = 1 << 20
"""Bytes per piece read from the store and per piece sent."""

ReadPacked = Callable[[int, int], bytes]
"""(offset, n) -> at most n stored bytes from that offset (fewer only at the end)."""


@dataclass(frozen=True, slots=True)
class Download:
    """An artifact and a way to read its bytes: `pieces(start, stop)` yields bytes
    [start, stop) of the original content in pieces of at most `CHUNK` bytes."""

    artifact: Artifact
    codec: str
    read_packed: ReadPacked
    piece: int = CHUNK
    """Stored bytes per read (larger where each read costs the store the whole value)."""

    def pieces(self, start: int, stop: int) -> Iterator[bytes]:
        if self.codec == "none":
            for piece in _plain(self.read_packed, start, stop, self.piece):
                yield from (piece[i : i + CHUNK] for i in range(0, len(piece), CHUNK))
        else:
            yield from _window(_unzstd(self.read_packed, self.piece), start, stop)


def _plain(read: ReadPacked, start: int, stop: int, size: int) -> Iterator[bytes]:
    at = start
    while at < stop:
        piece = read(at, min(size, stop - at))
        if not piece:
            raise StoreError("the artifact's stored bytes ended early; was it deleted meanwhile?")
        yield piece
        at += len(piece)


class _Source:
    """The packed bytes as a file-like object for zstandard's streaming reader."""

    def __init__(self, read: ReadPacked) -> None:
        self.read_at, self.at = read, 0

    def read(self, n: int = CHUNK) -> bytes:
        piece = self.read_at(self.at, n)
        self.at += len(piece)
        return piece


def _unzstd(read: ReadPacked, size: int) -> Iterator[bytes]:
    import zstandard

    source: Any = _Source(read)  # a file-like object: read(n) is all zstandard calls
    yield from zstandard.ZstdDecompressor().read_to_iter(source, read_size=size, write_size=CHUNK)


def _window(pieces: Iterator[bytes], start: int, stop: int) -> Iterator[bytes]:
    """Bytes [start, stop) of a stream of pieces."""
    at = 0
    for piece in pieces:
        end = at + len(piece)
        if end > start:
            yield piece[max(0, start - at) : stop - at]
        at = end
        if at >= stop:
            return
