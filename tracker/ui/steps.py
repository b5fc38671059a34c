"""A trial's metrics per step as the trial page charts them: one series per key, downsampled on
the server to at most `max_points` points per key."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tracker.errors import ValidationError
from tracker.store.records import StepMetric

Point = tuple[int, float]


def series(metrics: Sequence[StepMetric], max_points: int) -> tuple[dict[str, list[Point]], dict[str, int]]:
    """({key: [(step, value), ...] by step, at most `max_points` each}, {key: how many steps it
    has}). `metrics` come ordered by key and step, as `Repository.list_step_metrics` returns them."""
    whole: dict[str, list[Point]] = {}
    for m in metrics:
        whole.setdefault(m.key, []).append((m.step, m.value))
    return {key: min_max(points, max_points) for key, points in whole.items()}, {
        key: len(points) for key, points in whole.items()
    }


def min_max(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most `max_points` (4 or more) of the points, in their order: all of them when they fit;
    else the first and the last, and the lowest and the highest finite value of each of equal
    buckets between them, so that the line keeps its envelope and its extremes. Raises
    ValidationError for a `max_points` below 4."""
    if max_points < 4:
        raise ValidationError("max_points", f"must be 4 or more, got {max_points}")
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = (max_points - 2) // 2
    inner = n - 2
    chosen = {0, n - 1}
    for b in range(buckets):
        start, end = 1 + b * inner // buckets, 1 + (b + 1) * inner // buckets
        finite = [i for i in range(start, end) if math.isfinite(points[i][1])]
        if not finite:
            chosen.add(start)
            continue
        chosen.add(min(finite, key=lambda i: points[i][1]))
        chosen.add(max(finite, key=lambda i: points[i][1]))
    return [points[i] for i in sorted(chosen)]
