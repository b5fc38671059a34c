"""`GET /api/experiments/{id}/pareto`: an experiment's Pareto front and hypervolume history
(`tracker.read.browser.Browser.pareto`), as the experiment page shows them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tracker.read.browser import Browser, ParetoTrial
from tracker.read.pareto_cache import pick_pair
from tracker.store.objectives import objectives_of
from tracker.store.records import Experiment
from tracker.ui import params

MAX_POINTS = 2_000


def objectives(e: Experiment) -> list[dict[str, str]]:
    """The experiment's objectives, first the one `best_trial` and comparisons use."""
    return [{"name": name, "direction": direction} for name, direction in objectives_of(e)]


def pending(listed: list[dict[str, str]], query: Mapping[str, str]) -> dict[str, Any]:
    """What the page shows while the front is computed in the background: the objectives (as
    `objectives` lists them) and the pair asked for, chosen as `pareto` would; the charts load
    from the API when it is done. Raises ValidationError for a name the experiment lacks."""
    known = tuple((o["name"], o["direction"]) for o in listed)
    first, second = pick_pair(known, query.get("x") or None, query.get("y") or None)  # type: ignore[arg-type]
    return {"pending": True, "objectives": listed, "x": known[first][0], "y": known[second][0]}


def pareto(browser: Browser[Any], experiment_id: int, query: Mapping[str, str]) -> dict[str, Any]:
    """The answer for the query's `x`, `y` (objective names) and `max_points`; raises
    NotFoundError, ValidationError."""
    max_points = params.int_param(query, "max_points", MAX_POINTS)
    view = browser.pareto(experiment_id, query.get("x") or None, query.get("y") or None, max_points)

    def trial(p: ParetoTrial) -> dict[str, Any]:
        values = [v if math.isfinite(v) else None for v in p.values]
        return {"trial_id": p.trial_id, "trial_number": p.trial_number, "values": values}

    return {
        "experiment_id": view.experiment_id,
        "objectives": [{"name": name, "direction": direction} for name, direction in view.objectives],
        "x": view.objectives[view.x][0],
        "y": view.objectives[view.y][0],
        "n_trials": view.n_trials,
        "n_points": view.n_points,
        "front": [trial(p) for p in view.front],
        "others": [trial(p) for p in view.others],
        "sampled": view.sampled,
        "reference": None if view.reference is None else list(view.reference),
        "hypervolume": view.hypervolume,
        "history": [[number, volume] for number, volume in view.history],
        "history_sampled": view.history_sampled,
        "max_points": view.max_points,
        "version": f"{view.version[0]}-{view.version[1]}",
    }
