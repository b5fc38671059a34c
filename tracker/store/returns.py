"""A trial's returns series as it crosses the repository boundary, its checks and its packing.

`ReturnSeries` holds the per-period simple returns as float64 bytes (little-endian) and, for a
dated series, its index as one content blob (a JSON header line, then int64 little-endian ticks).
Stored, the values are byte-shuffled (the eight bytes of each float grouped by position, so the
sign-and-exponent bytes sit together) and zstd-compressed; the index is stored once per distinct
content, as strategy code is. numpy is imported where it is used.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.errors import ValidationError

CODEC = "shuffle8-zstd"
"""The packing of stored values: byte-shuffled float64, then zstd."""
ZSTD_LEVEL = 3
"""zstd's default level: a 756-point series packs in about 20 µs; higher levels gain under 2 %."""
MAX_POINTS = 10_000_000
"""Largest series accepted (80 MB of float64)."""


@dataclass(frozen=True, slots=True)
class ReturnSeries:
    """A trial's returns: `values` (float64 little-endian bytes, NaN allowed, no infinities) and
    `index` (None for positions 0..T-1, else an index blob made by `index_blob`)."""

    values: bytes
    index: bytes | None = None

    def __len__(self) -> int:
        return len(self.values) // 8


def index_blob(ticks: bytes, header: dict[str, Any]) -> bytes:
    """The stored form of a dated index: `header` (dtype, tz, freq, name) as a JSON line, then the
    int64 ticks."""
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n" + ticks


def split_index(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the int64 tick bytes of an index blob."""
    head, _, ticks = blob.partition(b"\n")
    header: dict[str, Any] = json.loads(head)
    return header, ticks


_CHECKED = threading.local()
"""The last index blob each thread checked: a study logs one index thousands of times, and the
same bytes object (`tracker.facade.series` reuses it) need not be scanned again."""


def check(series: Any, field: str = "returns") -> ReturnSeries:
    """`series` if it can be stored; raises ValidationError (a length that is not whole float64s,
    an empty series, an infinity, an index of another length or not strictly increasing)."""
    import numpy as np

    if not isinstance(series, ReturnSeries) or not isinstance(series.values, bytes):
        raise ValidationError(field, f"expected a ReturnSeries, got {type(series).__name__}")
    if not series.values or len(series.values) % 8:
        raise ValidationError(field, "is empty or not whole float64 values (8 bytes each); give at least one return")
    if len(series) > MAX_POINTS:
        raise ValidationError(field, f"holds {len(series):,} values; at most {MAX_POINTS:,} are stored")
    values = np.frombuffer(series.values, dtype="<f8")
    if np.isinf(values).any():
        where = int(np.flatnonzero(np.isinf(values))[0])
        raise ValidationError(field, f"value {where} is infinite; returns must be finite numbers (NaN for a gap)")
    if series.index is not None and getattr(_CHECKED, "index", None) is not series.index:
        try:
            header, ticks = split_index(series.index)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError(f"{field}.index", "is not an index blob (see index_blob)") from None
        if not isinstance(header, dict) or len(ticks) % 8:
            raise ValidationError(f"{field}.index", "is not an index blob (see index_blob)")
        if len(ticks) // 8 != len(series):
            raise ValidationError(
                f"{field}.index", f"has {len(ticks) // 8} timestamps for {len(series)} values; give one per value"
            )
        stamps = np.frombuffer(ticks, dtype="<i8")
        if stamps.size > 1 and not (np.diff(stamps) > 0).all():
            where = int(np.flatnonzero(np.diff(stamps) <= 0)[0]) + 1
            raise ValidationError(
                f"{field}.index",
                f"timestamp {where} is not after the one before it; sort the series and drop duplicates",
            )
        _CHECKED.index = series.index
    return series


def of_batch(trials: Sequence[Any]) -> dict[int, ReturnSeries]:
    """The checked returns series of a batch of `NewTrial`s, by position; a ValidationError names
    the trial as `trials[i].` in a batch of several."""
    found = {}
    for index, trial in enumerate(trials):
        if trial.returns is not None:
            try:
                found[index] = check(trial.returns)
            except ValidationError as exc:
                raise (exc.within(f"trials[{index}].") if len(trials) > 1 else exc) from None
    return found


def shuffle(values: bytes) -> bytes:
    """The float64 bytes grouped by byte position (all first bytes, then all second bytes...)."""
    import numpy as np

    return np.frombuffer(values, dtype=np.uint8).reshape(-1, 8).T.tobytes()


def unshuffle(data: bytes) -> bytes:
    """The inverse of `shuffle`."""
    import numpy as np

    return np.frombuffer(data, dtype=np.uint8).reshape(8, -1).T.tobytes()


_COMPRESSORS = threading.local()


def pack(values: bytes) -> bytes:
    """The stored form of float64 value bytes: shuffled, then zstd (one compressor per thread)."""
    compressor = getattr(_COMPRESSORS, "zstd", None)
    if compressor is None:
        import zstandard

        compressor = _COMPRESSORS.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    packed: bytes = compressor.compress(shuffle(values))
    return packed


def unpack(codec: str, data: bytes) -> bytes:
    """The float64 value bytes of a stored form."""
    if codec != CODEC:
        raise ValueError(f"unknown returns codec {codec!r}")
    import zstandard

    return unshuffle(zstandard.ZstdDecompressor().decompress(data))
