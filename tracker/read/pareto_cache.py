"""What the browser keeps per multi-objective experiment for its Pareto view, brought up to date
from new trials only.

A `ParetoCache` holds the trial id, trial number and objective values of every complete trial
with a finite value for each objective, fed by the backend from the rows above its mark (the
highest trial id it has read). For 2 objectives it also keeps the `Staircase` of those trials in
trial-number order, so the hypervolume history grows with the new trials alone; a trial that
arrives with a lower number than the history's end (a late worker) makes it start again from all
the points. The front, the reference point and the chart's points are computed once per version
of the experiment (its highest trial id and trial count) and pair of objectives, then served from
memory: a warm request costs the same at 10,000 and 1,000,000 trials.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from tracker.errors import ValidationError
from tracker.read.pareto import Staircase, history_nd, hypervolume, minimised, nondominated, thin
from tracker.read.records import ParetoTrial, ParetoView
from tracker.store.objectives import Objectives

ObjectiveRow = tuple[int, int, tuple[float, ...] | None]
"""(trial id, trial number, the objectives' values): None for a trial that is not complete or
lacks a finite value for some objective. A backend gives one per trial, whatever its state."""


def pick_pair(objectives: Objectives, x: str | None, y: str | None) -> tuple[int, int]:
    """The indices of the objectives named `x` and `y` (by default the first two that are not the
    other); raises ValidationError for a single-objective experiment, an unknown name or x = y."""
    names = [name for name, _ in objectives]
    if len(names) < 2:
        raise ValidationError(
            "experiment",
            f"has one objective ({names[0]!r}): a Pareto front needs two or more; declare them with "
            "create_experiment(..., objectives={'sharpe': 'maximize', 'max_drawdown': 'minimize'})",
        )
    for field, name in (("x", x), ("y", y)):
        if name is not None and name not in names:
            raise ValidationError(field, f"must be one of the objectives {', '.join(map(repr, names))}, got {name!r}")
    if x is not None and x == y:
        raise ValidationError("y", f"must differ from x ({x!r})")
    first = names.index(x) if x is not None else next(i for i, n in enumerate(names) if n != y)
    second = names.index(y) if y is not None else next(i for i, n in enumerate(names) if i != first)
    return first, second


class ParetoCache:
    """One experiment's points, front and hypervolume history (see the module's docstring)."""

    def __init__(self, objectives: Objectives) -> None:
        self.objectives = objectives
        self.maximise = [direction == "maximize" for _, direction in objectives]
        self.key: tuple[int, int] = (-1, -1)
        self.mark = 0
        self.n_seen = 0
        self.ids: array[int] = array("q")
        self.numbers: array[int] = array("q")
        self.values: array[float] = array("d")
        self.staircase = Staircase() if len(objectives) == 2 else None
        self._computed: dict[str, Any] | None = None
        self._views: dict[tuple[int, int, int], ParetoView] = {}

    def add(self, rows: list[ObjectiveRow]) -> None:
        """Take the trials read since the mark."""
        fresh: list[tuple[int, int, tuple[float, ...]]] = []
        for trial_id, number, values in rows:
            self.n_seen += 1
            self.mark = max(self.mark, trial_id)
            if values is not None:
                fresh.append((number, trial_id, values))
        fresh.sort()
        for number, trial_id, values in fresh:
            self.ids.append(trial_id)
            self.numbers.append(number)
            self.values.extend(values)
        self._feed_staircase(fresh)
        self._computed = None
        self._views.clear()

    def _feed_staircase(self, fresh: list[tuple[int, int, tuple[float, ...]]]) -> None:
        stairs = self.staircase
        if stairs is None or not fresh:
            return
        if stairs.last_number is not None and fresh[0][0] < stairs.last_number:
            stairs = self.staircase = Staircase()  # a late trial: start the history again
            order = np.argsort(np.frombuffer(self.numbers, dtype=np.int64), kind="stable")
            points = self._points()[order]
            numbers = np.frombuffer(self.numbers, dtype=np.int64)[order]
            for number, (x, y) in zip(numbers.tolist(), points.tolist(), strict=True):
                stairs.add(number, x, y)
            return
        sign = [-1.0 if m else 1.0 for m in self.maximise]
        for number, _, (a, b) in fresh:
            stairs.add(number, sign[0] * a, sign[1] * b)

    def _points(self) -> np.ndarray[Any, Any]:
        """The points to minimise, a row per trial in the order they were added."""
        table = np.frombuffer(self.values, dtype=float).reshape(-1, len(self.objectives))
        return minimised(table, self.maximise)

    def _compute(self) -> dict[str, Any]:
        if self._computed is not None:
            return self._computed
        points = self._points()
        numbers = np.frombuffer(self.numbers, dtype=np.int64)
        if len(points) == 0:
            self._computed = {"front": np.zeros(0, dtype=bool), "reference": None, "volume": None, "history": ([], [])}
            return self._computed
        mask = nondominated(points)
        worst = points.max(axis=0)
        if self.staircase is not None:
            steps, volumes = self.staircase.history(worst.tolist())
        else:
            order = np.argsort(numbers, kind="stable")
            steps, volumes = history_nd(numbers[order], points[order], worst.tolist())
        reference = minimised(worst[None, :], self.maximise)[0]
        self._computed = {
            "front": mask,
            "reference": tuple(float(v) for v in reference),
            "volume": hypervolume(points[mask], worst.tolist()),
            "history": (steps.tolist(), volumes.tolist()),
        }
        return self._computed

    def view(self, experiment_id: int, pair: tuple[int, int], n_trials: int, max_points: int) -> ParetoView:
        """The view for this pair of objectives, at most `max_points` points on the chart and in
        the history (the whole front always)."""
        memo = (pair[0], pair[1], max_points)
        found = self._views.get(memo)
        if found is not None:
            return found
        done = self._compute()
        mask: np.ndarray[Any, Any] = done["front"]
        table = np.frombuffer(self.values, dtype=float).reshape(-1, len(self.objectives))
        numbers = np.frombuffer(self.numbers, dtype=np.int64)
        ids = np.frombuffer(self.ids, dtype=np.int64)
        on_front = np.flatnonzero(mask)
        x = table[on_front, pair[0]] * (-1.0 if self.maximise[pair[0]] else 1.0)
        on_front = on_front[np.lexsort((numbers[on_front], x))]
        rest = np.flatnonzero(~mask)
        rest = rest[np.argsort(numbers[rest], kind="stable")]
        chosen = rest[thin(len(rest), max(max_points - len(on_front), 0))] if len(rest) else rest
        steps, volumes = done["history"]
        kept = thin(len(steps), max_points).tolist()

        def trials(indices: np.ndarray[Any, Any]) -> tuple[ParetoTrial, ...]:
            rows = table[indices].tolist()
            return tuple(
                ParetoTrial(int(ids[i]), int(numbers[i]), tuple(row))
                for i, row in zip(indices.tolist(), rows, strict=True)
            )

        view = ParetoView(
            experiment_id=experiment_id,
            objectives=tuple((name, direction) for name, direction in self.objectives),
            x=pair[0],
            y=pair[1],
            n_trials=n_trials,
            n_points=len(numbers),
            front=trials(on_front),
            others=trials(chosen),
            sampled=len(chosen) < len(rest),
            reference=done["reference"],
            hypervolume=done["volume"],
            history=tuple((int(steps[i]), float(volumes[i])) for i in kept),
            history_sampled=len(kept) < len(steps),
            max_points=max_points,
            version=self.key,
        )
        self._views[memo] = view
        return view
