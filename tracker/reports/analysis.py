"""Analysis over a repository: DataFrames, improvement, running best and comparison.

DataFrames are built from columns (`Repository.trial_table`), never from one ORM object per
trial. Nested params and metrics are flattened with dotted keys.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.errors import NotFoundError
from tracker.store.records import (
    TRIAL_FRAME_FIELDS,
    TRIAL_TABLE_COLUMNS,
    Direction,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    TrialQuery,
    TrialState,
    TrialTable,
    best_of,
    frame_of,
    kind_of,
)

if TYPE_CHECKING:
    import pandas as pd

    from tracker.store.repository import Repository

_IDENTITY = (
    "experiment_id",
    "experiment_name",
    "trial_id",
    "trial_number",
    "state",
    "value",
    "created_at",
    "started_at",
    "completed_at",
    "duration",
)


def _valued(repo: Repository, experiment_id: int) -> tuple[Direction, list[tuple[int, float]]]:
    """The direction and (trial_number, value) of the complete trials with a value, by number."""
    experiment = repo.get_experiment(experiment_id)
    trials = repo.list_trials(experiment_id, TrialQuery(states=("complete",)))
    return experiment.direction, [(t.trial_number, t.value) for t in trials if t.value is not None]


def improvement(repo: Repository, experiment_id: int) -> float:
    direction, pairs = _valued(repo, experiment_id)
    return _improvement([v for _, v in pairs], direction)


def _improvement(values: list[float], direction: Direction) -> float:
    if len(values) < 2:
        return 0.0
    overall = best_of(values, direction)
    first = best_of(values[: len(values) // 2], direction)
    if overall is None or first is None:
        return 0.0
    gain = overall - first
    return gain if direction == "maximize" else -gain


def running_best(values: Iterable[float], direction: Direction) -> list[float]:
    """The best value so far at each position, for the direction."""
    best: list[float] = []
    for v in values:
        if not best:
            best.append(v)
        else:
            best.append(max(best[-1], v) if direction == "maximize" else min(best[-1], v))
    return best


def improvement_curve(repo: Repository, experiment_id: int) -> pd.DataFrame:
    """Columns: trial_number, value, best_value (running best), improved (bool)."""
    import pandas as pd

    direction, pairs = _valued(repo, experiment_id)
    values = [v for _, v in pairs]
    best = running_best(values, direction)
    improved = [i == 0 or best[i] != best[i - 1] for i in range(len(best))]
    return pd.DataFrame(
        {
            "trial_number": pd.Series([n for n, _ in pairs], dtype="int64"),
            "value": pd.Series(values, dtype="float64"),
            "best_value": pd.Series(best, dtype="float64"),
            "improved": pd.Series(improved, dtype="bool"),
        }
    )


def _stats_by_id(repo: Repository, ids: Sequence[int]) -> dict[int, ExperimentStats]:
    found = {s.experiment.id: s for s in repo.list_experiments(ExperimentQuery(ids=tuple(ids)))}
    for experiment_id in ids:
        if experiment_id not in found:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
    return found


def identity(e: Experiment) -> dict[str, Any]:
    """What names an experiment in every answer that lists experiments (compare rows, the dashboard)."""
    return {
        "id": e.id,
        "name": e.name,
        "template": e.template,
        "mode": e.mode,
        "objective": e.objective,
        "direction": e.direction,
    }


def compare(repo: Repository, ids: Sequence[int]) -> list[dict[str, Any]]:
    from tracker.reports.family import overfitting_of
    from tracker.ttpt.verdict import experiment_verdict

    stats = _stats_by_id(repo, ids)
    rows = []
    for experiment_id in ids:
        s = stats[experiment_id]
        e = s.experiment
        judged = experiment_verdict(repo, experiment_id)
        direction, pairs = _valued(repo, experiment_id)
        values = [v for _, v in pairs]
        finite = [v for v in values if math.isfinite(v)]
        first_best = None
        if s.best_value is not None:
            first_best = next(n for n, v in pairs if v == s.best_value)
        rows.append(
            {
                **identity(e),
                "n_trials": s.n_trials,
                # The in-house key is a float, 0.0 without a valued trial; best_value is None then.
                f"best_{e.objective}": 0.0 if s.best_value is None else s.best_value,
                "best_value": s.best_value,
                "mean_value": statistics.fmean(finite) if finite else None,
                "std_value": statistics.stdev(finite) if len(finite) > 1 else None,
                **{f"n_{state}": count for state, count in s.n_by_state.items()},
                "ttpt_validations": s.ttpt_total,
                "ttpt_violations": s.ttpt_failed,
                "violation_rate": s.violation_rate,
                "improvement": _improvement(values, direction),
                "first_best_trial": first_best,
                "verdict": judged.status,
                "verdict_coverage": judged.coverage,
                **overfitting_columns(overfitting_of(repo, [experiment_id])),
            }
        )
    return rows


OVERFITTING_COLUMNS = ("status", "dsr", "psr", "expected_max_sharpe", "n_effective", "pbo")
"""The overfitting numbers a comparison adds, as `overfitting_<key>` (the rest: `overfitting()`)."""


def overfitting_columns(found: Any) -> dict[str, Any]:
    """A comparison's overfitting keys of an `Overfitting` record (defaults throughout)."""
    numbers = found.as_dict()
    return {f"overfitting_{key}": numbers[key] for key in OVERFITTING_COLUMNS}


def compare_frame(repo: Repository, ids: Sequence[int]) -> pd.DataFrame:
    import pandas as pd

    rows = compare(repo, ids)
    for row in rows:  # objective-named columns differ per experiment; best_value carries them
        for key in [k for k in row if k.startswith("best_") and k != "best_value"]:
            del row[key]
    keys = list(rows[0]) if rows else ["id", "name"]
    return pd.DataFrame({key: _series([row[key] for row in rows]) for key in keys})


def flat(value: Any) -> dict[str, Any]:
    """The leaves of nested dicts by dotted key (`{"a": {"b": 1}}` -> `{"a.b": 1}`); the one
    flattener of tables, exports, plots and the dashboard."""
    out: dict[str, Any] = {}
    flatten(value, "", out)
    return out


def flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Put the leaves of nested dicts into `out` under dotted keys that start with `prefix`."""
    if type(value) is dict:
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else key, out)
    else:
        out[prefix] = value


def _flat_columns(records: Sequence[Any], prefix: str) -> dict[str, list[Any]]:
    """Columns of the flattened dicts (None where a row lacks a key), in first-seen key order."""
    empty: dict[str, Any] = {}
    flat_rows: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    shape: Any = None
    for record in records:
        if record is None:
            flat = empty
        elif any(type(v) is dict for v in record.values()):
            flat = {}
            flatten(record, prefix, flat)
        else:
            flat = record
        flat_rows.append(flat)
        if flat.keys() != shape:
            shape = flat.keys()
            for key in flat:
                keys.setdefault(key)
    return {key: [flat.get(key) for flat in flat_rows] for key in keys}


def _series(values: list[Any]) -> pd.Series:
    """A Series with the right dtype: numbers numeric, bools boolean, missing as NaN/<NA>."""
    import pandas as pd

    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds and kinds <= {bool}:
        return pd.Series(values, dtype="boolean")
    if kinds and kinds <= {int}:
        if len(present) == len(values) and all(-(2**63) <= v < 2**63 for v in present):
            return pd.Series(values, dtype="int64")
        if all(-(2**63) <= v < 2**63 for v in present):
            return pd.Series(values, dtype="Int64")
        return pd.Series(values, dtype="object")
    if kinds and kinds <= {int, float}:
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kinds and kinds <= {str}:
        return pd.Series(values, dtype="str")
    return pd.Series(values, dtype="object")


def _time_series(values: list[Any]) -> pd.Series:
    import pandas as pd

    series = pd.Series(values, dtype="object")
    if all(isinstance(v, str) for v in values if v is not None):
        series = series.astype("str")
    return pd.Series(pd.to_datetime(series, utc=True, format="ISO8601"), dtype="datetime64[us, UTC]")


_NULLABLE = {"int64": "Int64", "bool": "boolean"}
_SCALARS = tuple(f for f in TRIAL_FRAME_FIELDS if frame_of(f) == "scalar")
_FLATTENED = tuple(f.name for f in TRIAL_FRAME_FIELDS if frame_of(f) == "flatten")
_GROUPS = {name: number for number, name in enumerate((*_FLATTENED, "ttpt"), start=1)}
_DTYPES = {"id": "int64", "count": "int64", "number": "float64", "flag": "boolean"}
"""The dtype of a scalar trial column by the field's kind; text kinds are "str"."""


def _group(name: str) -> int:
    """Identity columns first, then each flattened group, then ttpt (a stable sort key)."""
    return _GROUPS.get(name.split(".", 1)[0], 0) if "." in name else 0


def _identity_order(name: str) -> int:
    return _IDENTITY.index(name) if name in _IDENTITY else len(_IDENTITY)


class _FrameBuilder:
    """Collects trial chunks as typed column pieces and joins them into one DataFrame, so that
    peak memory stays near the size of the frame itself."""

    def __init__(self, names: dict[int, str] | None, *, identity: bool, include_ttpt: bool) -> None:
        self.names = names or {}
        self.identity = identity
        self.include_ttpt = include_ttpt
        self.pieces: dict[str, list[tuple[int, pd.Series]]] = {}
        self.rows = 0

    def add(self, table: TrialTable) -> None:
        import pandas as pd

        given = table.columns
        columns: dict[str, pd.Series] = {}
        for f in _SCALARS if self.identity else ():
            label = "trial_id" if f.name == "id" else f.name
            kind = kind_of(f)
            if kind == "time":
                columns[label] = _time_series(given[f.name])
            elif kind == "number":
                columns[label] = pd.Series([math.nan if v is None else v for v in given[f.name]], dtype="float64")
            else:
                columns[label] = pd.Series(given[f.name], dtype=_DTYPES.get(kind, "str"))
        if "strategy_code" in given:
            columns["strategy_code"] = pd.Series(given["strategy_code"], dtype="str")
        if self.identity:
            columns["experiment_name"] = pd.Series([self.names.get(i) for i in given["experiment_id"]], dtype="str")
            columns["duration"] = columns["completed_at"] - columns["started_at"]
            columns = {name: columns[name] for name in sorted(columns, key=_identity_order)}
        else:
            columns["trial_number"] = pd.Series(given["trial_number"], dtype="int64")
        for label in _FLATTENED:
            for key, values in _flat_columns(given[label], "").items():
                columns[f"{label}.{key}"] = _series(values)
        if self.include_ttpt:
            columns["ttpt.passed"] = pd.Series(given["ttpt.passed"], dtype="boolean")
            columns["ttpt.num_violations"] = pd.Series(given["ttpt.num_violations"], dtype="Int64")
            for key, values in _flat_columns(given["ttpt.metrics"], "").items():
                if key not in ("passed", "num_violations"):
                    columns[f"ttpt.{key}"] = _series(values)
        for name, series in columns.items():
            self.pieces.setdefault(name, []).append((self.rows, series))
        self.rows += len(table)

    def _column(self, name: str) -> pd.Series:
        """One column over all rows: its pieces joined, rows without the key missing (NaN/<NA>)."""
        import pandas as pd

        pieces = self.pieces.pop(name)
        if len(pieces) == 1 and len(pieces[0][1]) == self.rows:
            return pieces[0][1]
        dtype = str(pieces[0][1].dtype)
        filler = _NULLABLE.get(dtype, dtype)
        parts: list[pd.Series] = []
        cursor = 0
        for start, series in pieces:
            if start > cursor:
                parts.append(pd.Series([None] * (start - cursor), dtype=filler))
            parts.append(series)
            cursor = start + len(series)
        if self.rows > cursor:
            parts.append(pd.Series([None] * (self.rows - cursor), dtype=filler))
        joined = pd.concat(parts, ignore_index=True)
        return joined.astype("float64") if str(joined.dtype) == "Float64" else joined

    def frame(self, *, prefix: bool) -> pd.DataFrame:
        """The DataFrame; without `prefix`, params and performance keys are bare unless they clash
        with each other or with an identity column."""
        import pandas as pd

        if self.rows == 0:
            self.add(TrialTable({name: [] for name in TRIAL_TABLE_COLUMNS}))
        order = sorted(self.pieces, key=_group)  # stable: first-seen order within each group
        keys = {group: {n.split(".", 1)[1] for n in order if n.startswith(f"{group}.")} for group in _GROUPS}
        clash = {
            key for group in _FLATTENED for key in keys[group] if any(key in keys[g] for g in _FLATTENED if g != group)
        }
        columns: dict[str, pd.Series] = {}
        for name in order:
            group, _, key = name.partition(".")
            bare = not prefix and group in _FLATTENED and key not in clash and key not in _IDENTITY
            columns[key if bare else name] = self._column(name)
        return pd.DataFrame(columns)


def trials_frame(
    repo: Repository,
    ids: Sequence[int] | None,
    *,
    prefix: bool = True,
    include_ttpt: bool = True,
    states: Sequence[TrialState] | None = None,
    tags: Mapping[str, str] | None = None,
    strategy_code: bool = False,
) -> pd.DataFrame:
    """Identity columns, then params.*, performance.*, attributes.*, tags.*, and (optionally)
    ttpt.* columns; a `strategy_code` column with `strategy_code`."""
    names = _names(repo, ids)
    builder = _FrameBuilder(names, identity=True, include_ttpt=include_ttpt)
    repo.trial_table(ids, states, builder.add, tags=tags, with_code=strategy_code)
    return builder.frame(prefix=prefix)


def _names(repo: Repository, ids: Sequence[int] | None) -> dict[int, str]:
    """Experiment names by id (all experiments when `ids` is None); raises NotFoundError."""
    query = ExperimentQuery(ids=None if ids is None else tuple(ids), trial_stats=False)
    names = {s.experiment.id: s.experiment.name for s in repo.list_experiments(query)}
    if ids is not None and len(names) != len(set(ids)):
        _stats_by_id(repo, ids)
    return names


def steps_frame(repo: Repository, ids: Sequence[int] | None) -> pd.DataFrame:
    """Metrics per step as a long frame: experiment_id, experiment_name, trial_id, trial_number,
    step, key, value; one row per trial, metric and step."""
    import pandas as pd

    names = _names(repo, ids)
    rows: list[tuple[int, str, int, int, int, str, float]] = []
    for experiment_id in sorted(names):
        numbers = {t.id: t.trial_number for t in repo.list_trials(experiment_id, TrialQuery())}
        rows += [
            (experiment_id, names[experiment_id], m.trial_id, numbers[m.trial_id], m.step, m.key, m.value)
            for m in repo.list_step_metrics(experiment_id=experiment_id)
        ]
    columns = ("experiment_id", "experiment_name", "trial_id", "trial_number", "step", "key", "value")
    dtypes = ("int64", "str", "int64", "int64", "int64", "str", "float64")
    return pd.DataFrame(
        {
            name: pd.Series([row[i] for row in rows], dtype=dtype)
            for i, (name, dtype) in enumerate(zip(columns, dtypes, strict=True))
        }
    )


def export_frame(repo: Repository, experiment_id: int) -> pd.DataFrame:
    """The in-house export shape: trial_number, then one column per top-level param key, then per
    top-level performance key (nested values stay whole; prefixed `params.`/`performance.` where
    a key is in both, or is `trial_number`)."""
    import pandas as pd

    repo.get_experiment(experiment_id)
    numbers: list[int] = []
    groups: dict[str, list[Any]] = {name: [] for name in _FLATTENED}

    def collect(table: TrialTable) -> None:
        numbers.extend(table.columns["trial_number"])
        for name in _FLATTENED:
            groups[name].extend(table.columns[name])

    repo.trial_table([experiment_id], None, collect)
    keyed = {name: _top_level_columns(values) for name, values in groups.items()}
    clash = {"trial_number"}
    for name, columns in keyed.items():
        clash |= {key for key in columns if any(key in keyed[other] for other in keyed if other != name)}
    frame: dict[str, pd.Series] = {"trial_number": pd.Series(numbers, dtype="int64")}
    for name, columns in keyed.items():
        for key, values in columns.items():
            frame[f"{name}.{key}" if key in clash else key] = _series(values)
    return pd.DataFrame(frame)


def _top_level_columns(records: Sequence[Any]) -> dict[str, list[Any]]:
    """One column per top-level key of the dicts (None where a row lacks it), first-seen order."""
    keys: dict[str, None] = {}
    for record in records:
        if record:
            keys.update(dict.fromkeys(record))
    return {key: [None if record is None else record.get(key) for record in records] for key in keys}
