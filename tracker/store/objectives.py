"""An experiment's objectives: the one place that says what they are.

No column holds them. The first objective is the experiment's own `objective` and `direction`;
a multi-objective experiment declares all of them in its config, as the Optuna integration and
`create_experiment(..., objectives={...})` write it: `config["objectives"]` (names, the first
being the experiment's objective) and `config["directions"]` ("maximize" or "minimize", one per
name). Objective 1's value is the trial's `value`; the others are numbers in its `performance`
under their names.

A config that does not say this consistently (lengths differ, an unknown direction, a first
name other than the objective, a repeated name) is read as a single objective, without an error:
reading never fails on what an old or foreign writer stored. `best_trial`, `compare_experiments`
and the verdicts use the first objective only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracker.errors import ValidationError
from tracker.store.records import DIRECTIONS, Direction, Experiment

Objectives = tuple[tuple[str, Direction], ...]
"""(name, direction) of each objective, the experiment's own objective first."""


def objectives_of(experiment: Experiment) -> Objectives:
    """The experiment's objectives: its config's when they are declared consistently, else its
    one objective."""
    return objectives_from(experiment.objective, experiment.direction, experiment.config)


def objectives_from(objective: str, direction: Direction, config: Any) -> Objectives:
    """As `objectives_of`, from an experiment's fields."""
    single: Objectives = ((objective, direction),)
    if not isinstance(config, Mapping):
        return single
    names, directions = config.get("objectives"), config.get("directions")
    if not isinstance(names, list) or not isinstance(directions, list) or len(names) != len(directions):
        return single
    if len(names) < 2 or names[0] != objective or directions[0] != direction:
        return single
    if not all(type(n) is str and n for n in names) or len(set(names)) != len(names):
        return single
    if not all(d in DIRECTIONS for d in directions):
        return single
    return tuple(zip(names, directions, strict=True))


def declare(
    objectives: Mapping[str, str] | None, objective: str, direction: Direction
) -> tuple[str, Direction, dict[str, Any]]:
    """(objective, direction, config keys) for `create_experiment(..., objectives={...})`: the
    first entry becomes the experiment's objective. None keeps `objective` and `direction` and
    adds nothing. Raises ValidationError, saying how to fix it, for anything else than a mapping
    of at least one name to "maximize" or "minimize"."""
    if objectives is None:
        return objective, direction, {}
    example = "objectives={'sharpe': 'maximize', 'max_drawdown': 'minimize'}"
    if not isinstance(objectives, Mapping) or not objectives:
        raise ValidationError("objectives", f"must map each objective's name to its direction, e.g. {example}")
    for name, way in objectives.items():
        if type(name) is not str or not name.strip():
            raise ValidationError("objectives", f"names must be non-empty strings, got {name!r}; e.g. {example}")
        if way not in DIRECTIONS:
            raise ValidationError(
                "objectives", f"{name!r}: the direction must be 'maximize' or 'minimize', got {way!r}; e.g. {example}"
            )
    pairs: list[tuple[str, Direction]] = [
        (n, "maximize" if w == "maximize" else "minimize") for n, w in objectives.items()
    ]
    first, way = pairs[0]
    if len(pairs) == 1:
        return first, way, {}
    return first, way, {"objectives": [n for n, _ in pairs], "directions": [w for _, w in pairs]}
