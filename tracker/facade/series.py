"""A returns series between its public forms (a pandas Series with a DatetimeIndex or positions
0..T-1, an array-like, optionally with an `index` of timestamps) and the `ReturnSeries` the
repository stores. pandas and numpy are imported where they are used."""

from __future__ import annotations

import threading
from typing import Any

from tracker.errors import ValidationError
from tracker.store.returns import ReturnSeries, index_blob, split_index

_HINT = "give a pandas Series with a DatetimeIndex, or an array-like of numbers (positions 0..T-1)"


def _floats(values: Any, field: str) -> Any:
    import numpy as np

    try:
        array = np.asarray(values, dtype="<f8")
    except (TypeError, ValueError):
        raise ValidationError(field, f"expected numbers; {_HINT}") from None
    if array.ndim != 1:
        raise ValidationError(field, f"expected one column of returns, got an array of shape {array.shape}")
    return np.ascontiguousarray(array)


_LAST = threading.local()
"""Per thread, the last DatetimeIndex turned into a blob, with its blob: a study's trials share
one index (pandas indexes are immutable, and the reference kept here stops its id being reused)."""


def _dated(index: Any, field: str) -> bytes:
    """The index blob of a DatetimeIndex (or of what pandas reads as one)."""
    import pandas as pd

    last = getattr(_LAST, "pair", None)
    if last is not None and last[0] is index:
        blob: bytes = last[1]
        return blob
    given = index

    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(index)
        except (TypeError, ValueError):
            raise ValidationError(f"{field}.index", f"expected timestamps; {_HINT}") from None
    if index.hasnans:
        raise ValidationError(f"{field}.index", "holds a missing timestamp (NaT); every value needs its timestamp")
    unit = str(index.unit)
    header = {
        "unit": unit,
        "tz": None if index.tz is None else str(index.tz),
        "freq": index.freqstr,
        "name": index.name if isinstance(index.name, str) else None,
    }
    blob = index_blob(index.asi8.astype("<i8").tobytes(), header)
    if isinstance(given, pd.DatetimeIndex):
        _LAST.pair = (given, blob)
    return blob


def to_returns(value: Any, field: str = "returns", index: Any = None) -> ReturnSeries:
    """The ReturnSeries of `value`; raises ValidationError for what cannot be one (the store's
    own check, `tracker.store.returns.check`, refuses the rest before anything is written)."""
    if isinstance(value, ReturnSeries):
        return value
    if isinstance(value, str | bytes | dict):
        raise ValidationError(field, f"expected a series of returns, got {type(value).__name__}; {_HINT}")
    if type(value).__module__.startswith("pandas") and hasattr(value, "index"):
        if getattr(value, "ndim", 1) != 1:
            raise ValidationError(field, f"expected one column of returns, got a {type(value).__name__}")
        values = _floats(value.to_numpy(dtype=object) if value.dtype == object else value.to_numpy(), field)
        if index is None:
            index = _own_index(value.index, field)
    else:
        values = _floats(value, field)
    blob = None if index is None else _dated(index, field)
    return ReturnSeries(values.tobytes(), blob)


def _own_index(index: Any, field: str) -> Any:
    """A Series' index as timestamps, or None for positions 0..T-1."""
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        return index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    if pd.api.types.is_integer_dtype(index.dtype) and list(index) == list(range(len(index))):
        return None
    raise ValidationError(f"{field}.index", f"expected a DatetimeIndex or positions 0..T-1; {_HINT}")


def to_pandas(series: ReturnSeries, name: str | None = None) -> Any:
    """The pandas Series of a stored series: float64 values, bit for bit, and the index it had."""
    import numpy as np
    import pandas as pd

    values = np.frombuffer(series.values, dtype="<f8").astype(np.float64)
    if series.index is None:
        return pd.Series(values, name=name)
    header, ticks = split_index(series.index)
    stamps = np.frombuffer(ticks, dtype="<i8").astype(np.int64).view(f"M8[{header['unit']}]")
    index = pd.DatetimeIndex(stamps, name=header.get("name"))
    if header.get("tz") is not None:
        index = index.tz_localize("UTC").tz_convert(header["tz"])
    if header.get("freq") is not None:
        index = _with_freq(index, header["freq"])
    return pd.Series(values, index=index, name=name)


def _with_freq(index: Any, freq: str) -> Any:
    """The index with its frequency back (pandas cannot infer one from a single timestamp)."""
    import pandas as pd

    try:
        return pd.DatetimeIndex(index, freq=freq)
    except ValueError:
        rebuilt = pd.date_range(index[0], periods=len(index), freq=freq, name=index.name, unit=index.unit)
        return rebuilt if rebuilt.equals(index) else index
