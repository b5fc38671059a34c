"""The in-house dict shapes: records as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracker.store.records import Experiment, ExperimentStats, stored_fields


def as_dict(record: Any) -> dict[str, Any]:
    """A record as the API returns it: its fields by name, timestamps as ISO 8601 strings."""
    out: dict[str, Any] = {}
    for f in stored_fields(type(record)):
        value = getattr(record, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def experiment_dict(experiment: Experiment) -> dict[str, Any]:
    """An experiment as the API returns it: `config` and `summary` are `{}` when none was stored,
    as the in-house class returned them."""
    out = as_dict(experiment)
    for key in ("config", "summary"):
        if out[key] is None:
            out[key] = {}
    return out


def stats_dict(s: ExperimentStats, *, trial_stats: bool) -> dict[str, Any]:
    """An experiment dict with its TTPT figures, and its trial figures when `trial_stats`."""
    out = {
        **experiment_dict(s.experiment),
        "violation_rate": s.violation_rate,
        "ttpt_validations": s.ttpt_total,
        "ttpt_violations": s.ttpt_failed,
    }
    if trial_stats:
        out.update(n_trials=s.n_trials, best_value=s.best_value, n_by_state=dict(s.n_by_state))
    return out
