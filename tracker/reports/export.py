"""Writing trials to files (.csv, .parquet, .xlsx, .json) and reading such files back.

CSV is written for other tools: timestamps are ISO 8601 with `T` and offset, `duration` is in
seconds, and list or dict cells are JSON text in the lossless encoding (never Python reprs).

NaN and ±inf: Parquet keeps them; CSV writes NaN as an empty field and inf as `inf`/`-inf`,
which read back exactly; Excel cannot hold them, so NaN is an empty cell and ±inf the text
`inf`/`-inf`; JSON uses the tracker's lossless encoding ({"$float": "nan"}). Excel cannot hold
timezones either: its timestamps are naive UTC, to the millisecond.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.errors import ValidationError
from tracker.store.codec import decode, dumps, encode, loads
from tracker.store.records import ExperimentQuery

if TYPE_CHECKING:
    import pandas as pd

    from tracker.store.repository import Repository

FORMATS = (".csv", ".parquet", ".xlsx", ".json")
_TIME_COLUMNS = ("created_at", "started_at", "completed_at")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationError("path", f"unknown export format {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    return suffix


def export(repo: Repository, experiment_ids: list[int], path: str | os.PathLike[str]) -> str:
    """Write the trials of the experiments to `path`, in the format its extension names."""
    from tracker.reports.analysis import trials_frame

    target = Path(path)
    suffix = _format(target)
    frame = trials_frame(repo, experiment_ids)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _for_csv(frame).to_csv(target, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(target, index=False)
    elif suffix == ".xlsx":
        experiments = _experiments_frame(repo, experiment_ids)
        with _excel_writer(target) as writer:
            _naive(frame).to_excel(writer, sheet_name="trials", index=False, inf_rep="inf")
            _naive(experiments).to_excel(writer, sheet_name="experiments", index=False, inf_rep="inf")
    else:
        rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        target.write_text(dumps(encode(rows, "rows")) + "\n", encoding="utf-8")
    return str(target)


def _for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text with `T`, durations as seconds, nested cells as JSON text."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
            out[column] = pd.Series([None if pd.isna(v) else v.isoformat() for v in series], dtype="object")
        elif pd.api.types.is_timedelta64_dtype(series):
            out[column] = series.dt.total_seconds()
        elif series.dtype == object:
            out[column] = [dumps(encode(v, str(column))) if isinstance(v, dict | list) else v for v in series]
    return out


def _excel_writer(target: Path) -> Any:
    import pandas as pd

    return pd.ExcelWriter(target, engine="openpyxl")


def _experiments_frame(repo: Repository, ids: list[int]) -> pd.DataFrame:
    import pandas as pd

    stats = repo.list_experiments(ExperimentQuery(ids=tuple(ids)))
    return pd.DataFrame(
        [
            {
                "id": s.experiment.id,
                "name": s.experiment.name,
                "template": s.experiment.template,
                "mode": s.experiment.mode,
                "objective": s.experiment.objective,
                "direction": s.experiment.direction,
                "created_at": s.experiment.created_at,
                "n_trials": s.n_trials,
                "best_value": s.best_value,
                "violation_rate": s.violation_rate,
                "config": dumps(encode(s.experiment.config, "config")),
                "summary": dumps(encode(s.experiment.summary, "summary")),
            }
            for s in stats
        ]
    )


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if hasattr(out[column], "dt") and getattr(out[column].dt, "tz", None) is not None:
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _plain(value: Any) -> Any:
    """A frame cell as a JSON-able value (timestamps as ISO strings, missing as None)."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if hasattr(value, "item"):
        return value.item()
    return value


def read_export(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a file written by `export` back into a DataFrame of trials."""
    import pandas as pd

    source = Path(path)
    suffix = _format(source)
    if suffix == ".csv":
        frame = pd.read_csv(source)
        if "duration" in frame.columns:
            frame["duration"] = pd.to_timedelta(frame["duration"], unit="s")
    elif suffix == ".parquet":
        frame = pd.read_parquet(source)
    elif suffix == ".xlsx":
        frame = pd.read_excel(source, sheet_name="trials")
    else:
        frame = pd.DataFrame(decode(loads(source.read_text(encoding="utf-8"))))
    for column in _TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
