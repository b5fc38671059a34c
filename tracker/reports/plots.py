"""Plots of experiments as matplotlib Figures (the `plot` extra): optimisation history, TTPT
validations, parameters against the objective, and a comparison of running-best curves.

Figures are built with the object-oriented API (no pyplot state), so they work headless.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tracker.errors import ValidationError
from tracker.reports.analysis import flat, running_best

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Source(Protocol):
    """What the plots read: the in-house answers of `ExperimentTracker`."""

    def get_experiment(self, experiment_id: int) -> dict[str, Any]: ...

    def get_trials(self, experiment_id: int, *, states: str | Sequence[str] | None = ...) -> list[dict[str, Any]]: ...


KINDS = ("history", "ttpt", "params", "compare")
_PASS, _FAIL, _BEST, _POINT = "#2a9d8f", "#e63946", "#264653", "#8ab17d"


def _figure(width: float = 8.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _trial_axis(ax: Any) -> None:
    """Trial numbers on the x axis, in whole numbers."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend_outside(ax: Any) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0.0)


def _objective_label(e: dict[str, Any]) -> str:
    return f"{e['objective']} ({e['direction']})"


def _valued(tracker: Source, experiment_id: int) -> tuple[list[int], list[float]]:
    """Trial numbers and objective values of the experiment's complete trials with a value."""
    trials = [t for t in tracker.get_trials(experiment_id, states="complete") if t["value"] is not None]
    return [t["trial_number"] for t in trials], [float(t["value"]) for t in trials]


def history(tracker: Source, experiment_id: int) -> Figure:
    """Objective per complete trial, with the running best as a step line."""
    e = tracker.get_experiment(experiment_id)
    numbers, values = _valued(tracker, experiment_id)
    figure = _figure()
    ax = figure.add_subplot()
    ax.scatter(numbers, values, s=18, color=_POINT, label="trial", zorder=2)
    ax.step(numbers, running_best(values, e["direction"]), where="post", color=_BEST, label="running best", zorder=3)
    _trial_axis(ax)
    ax.set_ylabel(_objective_label(e))
    ax.set_title(f"Optimisation history: {e['name']}")
    _legend_outside(ax)
    ax.grid(alpha=0.3)
    return figure


def ttpt(tracker: Source, experiment_id: int) -> Figure:
    """Violations found by the latest TTPT check of each checked trial; red bars failed."""
    e = tracker.get_experiment(experiment_id)
    checked = [t for t in tracker.get_trials(experiment_id) if t["ttpt_result"] is not None]
    figure = _figure()
    ax = figure.add_subplot()
    for passed, color, label in ((True, _PASS, "passed"), (False, _FAIL, "failed (look-ahead found)")):
        chosen = [t for t in checked if t["ttpt_result"]["passed"] is passed]
        ax.bar(
            [t["trial_number"] for t in chosen],
            [max(t["ttpt_result"]["num_violations"], 0.05) for t in chosen],
            color=color,
            label=f"{label}: {len(chosen)}",
            width=0.8,
        )
    _trial_axis(ax)
    ax.set_ylabel("violations (boundaries that changed)")
    ax.set_title(f"TTPT look-ahead checks: {e['name']}")
    _legend_outside(ax)
    ax.grid(alpha=0.3, axis="y")
    return figure


def params(tracker: Source, experiment_id: int) -> Figure:
    """One scatter per parameter: its value against the objective (complete trials)."""
    e = tracker.get_experiment(experiment_id)
    columns: dict[str, list[tuple[Any, float]]] = {}
    for t in tracker.get_trials(experiment_id, states="complete"):
        for key, value in flat(t["params"]).items():
            if isinstance(value, int | float | str | bool) and t["value"] is not None:
                columns.setdefault(key, []).append((value, t["value"]))
    names = sorted(columns) or ["(no parameters)"]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    figure = _figure(4.0 * cols, 3.2 * rows)
    axes = figure.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(names) or names[index] not in columns:
            ax.set_visible(index < len(names))
            continue
        points = columns[names[index]]
        xs = [p[0] for p in points]
        if any(isinstance(x, str) for x in xs):
            categories = sorted({str(x) for x in xs})
            ax.set_xticks(range(len(categories)), categories, rotation=30)
            xs = [categories.index(str(x)) for x in xs]
        ax.scatter(xs, [p[1] for p in points], s=14, color=_POINT)
        ax.set_xlabel(names[index])
        ax.set_ylabel(_objective_label(e))
        ax.grid(alpha=0.3)
    figure.suptitle(f"Parameters vs {e['objective']}: {e['name']}")
    return figure


def compare(tracker: Source, experiment_ids: Sequence[int]) -> Figure:
    """The running-best curves of several experiments on one axis."""
    figure = _figure()
    ax = figure.add_subplot()
    experiments = [tracker.get_experiment(i) for i in experiment_ids]
    for e in experiments:
        numbers, values = _valued(tracker, e["id"])
        ax.step(numbers, running_best(values, e["direction"]), where="post", label=f"{e['id']}: {e['name']}")
    objectives = sorted({_objective_label(e) for e in experiments})
    _trial_axis(ax)
    ax.set_ylabel("running best " + " / ".join(objectives))
    ax.set_title("Comparison: " + " vs ".join(e["name"] for e in experiments))
    _legend_outside(ax)
    ax.grid(alpha=0.3)
    return figure


def plot(tracker: Source, experiment_ids: Sequence[int], kind: str) -> Figure:
    """The figure of `kind` for the experiments (history, ttpt and params take one id)."""
    if kind not in KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if not experiment_ids:
        raise ValidationError("experiment_ids", "name at least one experiment")
    if kind == "compare":
        return compare(tracker, experiment_ids)
    if len(experiment_ids) != 1:
        raise ValidationError("experiment_ids", f"--kind {kind} plots one experiment; use --kind compare for several")
    return {"history": history, "ttpt": ttpt, "params": params}[kind](tracker, experiment_ids[0])


def save(figure: Figure, path: str | os.PathLike[str]) -> None:
    """Write the figure (format from the extension: .png, .svg, .pdf)."""
    figure.savefig(os.fspath(path), dpi=110)
