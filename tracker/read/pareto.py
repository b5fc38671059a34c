"""Pareto fronts and hypervolumes, pure numpy (and `moocore` for 3 objectives or more).

Every function takes points to *minimise*: a row per trial, a column per objective, with the
maximised objectives negated by the caller (`minimised`). A point dominates another when it is no
worse in every objective and better in one; equal points do not dominate each other, so
duplicates on the front are all on it.

- The front of 2 objectives is one sort and one sweep, O(n log n); of more, `moocore`'s
  `is_nondominated` (Kung, Luccio and Preparata's dimension sweep, O(n log n) for 3).
- The hypervolume (Zitzler and Thiele 1999: the measure of the region the front dominates,
  bounded by a reference point) of 2 objectives is a sweep over the sorted front; of more,
  `moocore.hypervolume`.
- The hypervolume history, the hypervolume of the front of trials 0..n at each n where it
  changes: for 2 objectives `Staircase` keeps the front sorted and updates the area locally as
  each trial arrives (amortised O(log n) a trial), in a form that does not depend on the
  reference point; for more, `history_nd` recomputes it at most `CHECKPOINTS` times.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

CHECKPOINTS = 200
"""At most this many hypervolume computations for the history of 3 objectives or more."""


def minimised(values: np.ndarray[Any, Any], maximise: Sequence[bool]) -> np.ndarray[Any, Any]:
    """The values (n x m) with the maximised objectives' columns negated."""
    signs = np.array([-1.0 if m else 1.0 for m in maximise])
    out: np.ndarray[Any, Any] = np.asarray(values, dtype=float) * signs
    return out


def nondominated(points: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A boolean mask of the points that no other point dominates (points to minimise, finite)."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if points.shape[1] != 2:
        import moocore

        return np.asarray(moocore.is_nondominated(points, keep_weakly=True), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    order = np.lexsort((y, x))  # by x, ties by y: every point that could dominate one comes first
    xs, ys = x[order], y[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(ys)[:-1]))
    # a point is dominated by an earlier, different point with y at most its own
    keep_sorted = best_before[group_start] > ys
    mask = np.empty(n, dtype=bool)
    mask[order] = keep_sorted
    return mask


def hypervolume(points: np.ndarray[Any, Any], reference: Sequence[float]) -> float:
    """The hypervolume the points dominate up to `reference` (points to minimise); points not
    better than the reference in every objective add nothing."""
    points = np.asarray(points, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if len(points) == 0:
        return 0.0
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] != 2:
        import moocore

        return float(moocore.hypervolume(points, ref=ref))
    front = points[nondominated(points)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    xs, ys = front[:, 0], front[:, 1]
    right = np.concatenate((xs[1:], [ref[0]]))
    return float(np.sum((right - xs) * (ref[1] - ys)))


class Staircase:
    """The front of 2 objectives (to minimise) as points arrive, and the hypervolume's history.

    The front is kept sorted by x (so y strictly falls). With x1, xk its first and last x, yk
    its last (lowest) y and H the area of the gaps under its steps,
    H = sum over consecutive steps of (x[i+1] - x[i]) * (y[i] - yk),
    the hypervolume up to any reference point (r1, r2) no better than every point is
    (r1 - x1) * (r2 - yk) - H. `entries` records (trial number, x1, xk, yk, G) each time the
    front changes, with G = sum of (x[i+1] - x[i]) * (y[i] - oy) about the first point's y (oy)
    so that H = G - (xk - x1) * (yk - oy) is computed without cancelling large offsets.
    """

    def __init__(self) -> None:
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.gaps = 0.0
        self.origin: float | None = None
        self.entries: list[tuple[int, float, float, float, float]] = []
        self.last_number: int | None = None

    def add(self, number: int, x: float, y: float) -> bool:
        """Add trial `number`'s point (numbers must rise); True if the front changed."""
        self.last_number = number
        xs, ys = self.xs, self.ys
        if self.origin is None:
            self.origin = y
        i = bisect.bisect_left(xs, x)
        if i > 0 and ys[i - 1] <= y:
            return False  # a point with a lower x is no worse in y
        if i < len(xs) and xs[i] == x and ys[i] <= y:
            return False  # the same x and no worse y: dominated, or equal (the front keeps its shape)
        end = i
        while end < len(xs) and ys[end] >= y:
            end += 1
        self.gaps -= self._local(i - 1, end)
        xs[i:end] = [x]
        ys[i:end] = [y]
        self.gaps += self._local(i - 1, i + 1)
        self.entries.append((number, xs[0], xs[-1], ys[-1], self.gaps))
        return True

    def _local(self, start: int, stop: int) -> float:
        """The sum of the gap terms of the steps from index `start` to `stop` (each clipped to
        the front)."""
        xs, ys, origin = self.xs, self.ys, self.origin or 0.0
        total = 0.0
        for j in range(max(start, 0), min(stop, len(xs) - 1)):
            total += (xs[j + 1] - xs[j]) * (ys[j] - origin)
        return total

    def history(self, reference: Sequence[float]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(trial numbers, hypervolumes) at each change of the front, up to `reference` (no
        better than any point added), without the changes that leave the hypervolume as it was."""
        if not self.entries:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        table = np.array([e[1:] for e in self.entries], dtype=float)
        numbers = np.array([e[0] for e in self.entries], dtype=np.int64)
        x1, xk, yk, g = table.T
        oy = self.origin or 0.0
        volumes = (reference[0] - x1) * (reference[1] - yk) - (g - (xk - x1) * (yk - oy))
        return _changes(numbers, np.maximum(volumes, 0.0))


def history_nd(
    numbers: np.ndarray[Any, Any],
    points: np.ndarray[Any, Any],
    reference: Sequence[float],
    checkpoints: int = CHECKPOINTS,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(trial numbers, hypervolumes) of the front of the trials up to each of at most
    `checkpoints` trial numbers evenly spaced over the trials (points to minimise, in rows
    ordered by trial number), without the checkpoints that leave it as it was."""
    n = len(numbers)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    cuts = np.unique(np.linspace(1, n, num=min(checkpoints, n)).round().astype(np.int64))
    front = points[:0]
    volumes, start = [], 0
    for cut in cuts:
        merged = np.concatenate((front, points[start:cut]))
        front = merged[nondominated(merged)]
        start = cut
        volumes.append(hypervolume(front, reference))
    return _changes(numbers[cuts - 1], np.array(volumes))


def _changes(
    numbers: np.ndarray[Any, Any], volumes: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    keep = np.ones(len(volumes), dtype=bool)
    keep[1:] = volumes[1:] != volumes[:-1]
    return numbers[keep], volumes[keep]


def thin(count: int, limit: int) -> np.ndarray[Any, Any]:
    """At most `limit` indices of `count` items, evenly spaced, the first and last included."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, num=limit).round().astype(np.int64))
