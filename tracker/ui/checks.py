"""A TTPT result as the trial page shows it: a short summary read from its metrics and
violations (as `tracker.ttpt` records them), the violations as rows, and whether any boundary
changed only to or from NaN, which `max_abs_diff` and `signal_correlation` do not see."""

from __future__ import annotations

from typing import Any

from tracker.store.records import TTPTResult

VIOLATION_COLUMNS = (
    "boundary",
    "boundary_row",
    "first_changed_at",
    "first_changed_row",
    "changed_points",
    "max_abs_diff",
)


def summary(r: TTPTResult) -> dict[str, Any]:
    """{mode, boundaries, failed, first_violation_at, first_violation_row, detection_guarantee,
    nan_changes, violations}: None where the result does not say; `nan_changes` counts the failed
    boundaries whose changes are all to or from NaN (their `max_abs_diff` is null)."""
    metrics = r.metrics if isinstance(r.metrics, dict) else {}
    found = [v for v in r.violations if isinstance(v, dict)] if isinstance(r.violations, list) else []
    first = found[0] if found else {}
    return {
        "mode": metrics.get("mode"),
        "boundaries": metrics.get("boundaries"),
        "failed": metrics.get("failed_boundaries", r.num_violations),
        "first_violation_at": first.get("first_changed_at", first.get("boundary")),
        "first_violation_row": first.get("first_changed_row", first.get("boundary_row")),
        "detection_guarantee": metrics.get("detection_guarantee_5pct"),
        "nan_changes": sum(1 for v in found if v.get("changed_points") and v.get("max_abs_diff") is None),
        "violations": [{key: v.get(key) for key in VIOLATION_COLUMNS} for v in found],
    }
