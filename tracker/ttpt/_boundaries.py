"""Where a look-ahead check cuts the data: its budget, the boundaries it picks, and its guarantee.

A boundary at row t cuts the data just after row t; every row but the last is a candidate. A check
of budget B spends 2 evaluations on the full run and its repeat (the nondeterminism check) and
B - 2 on boundaries: `uniform_part(B)` = ceil(3/4 (B - 2)) drawn uniformly without replacement,
the rest at rows where the full-run signal changes (where leaks act, as freqtrade's
lookahead-analysis cuts at each entry and exit). Signal-change slots left unused go to uniform
draws. The uniform draws are made among the candidates not already chosen at a signal change, so
a leak that shows at a fraction p of the candidates is caught with probability at least
1 - (1 - p)^k, k the number of uniform draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tracker.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FULL_RUNS = 2
UNIFORM_SHARE = 0.75
DEFAULT_BUDGET = 122  # 2 full runs + 90 uniform boundaries + 30 at signal changes: guarantee(0.05) = 0.9901
Mode = Literal["sampled", "exhaustive", "explicit"]


def check_budget(budget: object) -> int:
    """`budget` as an int; raises ValidationError unless it is an integer of at least 3."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < FULL_RUNS + 1:
        raise ValidationError(
            "budget",
            f"must be an integer of at least {FULL_RUNS + 1} (the full run, its repeat and one boundary), "
            f"got {budget!r}",
        )
    return budget


def uniform_part(budget: int = DEFAULT_BUDGET) -> int:
    """The number of boundaries of a `budget` drawn uniformly at random: ceil(3/4 (budget - 2)).

    It is the least number of uniform draws a sampled check makes (unused signal-change slots add
    more). Raises ValidationError for a budget below 3.
    """
    return math.ceil(UNIFORM_SHARE * (check_budget(budget) - FULL_RUNS))


def guarantee(p: float, budget: int = DEFAULT_BUDGET) -> float:
    """The least probability that a check of `budget` catches a leak that shows at a fraction `p` of
    the boundaries: 1 - (1 - p)^k with k = uniform_part(budget). Raises ValidationError for a `p`
    outside [0, 1] or a budget below 3."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValidationError("p", f"must be a fraction between 0 and 1, got {p!r}")
    return 1.0 - (1.0 - float(p)) ** uniform_part(budget)


@dataclass(frozen=True)
class Plan:
    """The boundaries of one check, as sorted row positions of the data, and how they were chosen."""

    positions: list[int]
    mode: Mode
    candidates: int
    uniform: int = 0
    signal_changes: int = 0

    @property
    def covers_every_candidate(self) -> bool:
        return self.mode != "explicit" and len(self.positions) == self.candidates

    def detection_guarantee(self, p: float) -> float | None:
        """The least detection probability of a leak showing at a fraction `p` of the candidates;
        None for explicit boundaries, 1 when every candidate is checked."""
        if self.mode == "explicit":
            return None
        if self.covers_every_candidate:
            return 1.0 if p > 0 else 0.0
        return 1.0 - (1.0 - p) ** self.uniform


def candidates(rows: int, min_history: float) -> range:
    """Row positions a boundary may cut after: from the first `min_history` fraction on, all but the
    last row. Raises ValidationError when there are none."""
    if rows < 2:
        raise ValidationError("data", f"needs at least 2 rows to check for look-ahead, got {rows}")
    chosen = range(int(rows * min_history), rows - 1)
    if not len(chosen):
        raise ValidationError("min_history", f"{min_history!r} leaves no row to cut the data after; lower it")
    return chosen


def signal_changes(values: np.ndarray, signal_index: pd.Index, data_index: pd.Index) -> np.ndarray:
    """Data row positions at which the full-run signal differs from the row before (NaN-aware)."""
    import numpy as np

    if len(values) < 2:
        return np.zeros(0, dtype=np.int64)
    missing = np.isnan(values)
    same = (values[1:] == values[:-1]) | (missing[1:] & missing[:-1])
    rows = np.flatnonzero(~same.all(axis=1)) + 1
    positions = data_index.searchsorted(signal_index[rows], side="right") - 1
    return np.unique(positions[positions >= 0])


def sampled(allowed: range, changes: np.ndarray, budget: int, seed: int) -> Plan:
    """Budget - 2 boundaries: up to a quarter at signal changes (a seeded sample of them), the rest
    drawn uniformly without replacement among the other candidates (seeded)."""
    import numpy as np

    slots = check_budget(budget) - FULL_RUNS
    if slots >= len(allowed):
        return Plan(list(allowed), "sampled", len(allowed), uniform=len(allowed))
    changes = changes[(changes >= allowed.start) & (changes < allowed.stop)]
    change_slots = slots - uniform_part(budget)
    if len(changes) > change_slots:
        changes = np.random.default_rng([seed, 1]).choice(changes, size=change_slots, replace=False)
    rest = np.setdiff1d(np.arange(allowed.start, allowed.stop), changes)
    drawn = np.random.default_rng([seed, 2]).choice(rest, size=slots - len(changes), replace=False)
    positions = sorted(int(p) for p in np.concatenate([changes, drawn]))
    return Plan(positions, "sampled", len(allowed), uniform=len(drawn), signal_changes=len(changes))


def exhaustive(allowed: range) -> Plan:
    """Every candidate boundary."""
    return Plan(list(allowed), "exhaustive", len(allowed), uniform=len(allowed))


def explicit(index: pd.Index, labels: Sequence[Any]) -> Plan:
    """Boundaries given as index labels; each cuts after the last row at or before its label.
    Raises ValidationError for an empty list or a label before the first row."""
    chosen = list(labels)
    if not chosen:
        raise ValidationError("boundaries", "give at least one boundary")
    positions = set()
    for label in chosen:
        try:
            position = int(index.searchsorted(label, side="right")) - 1
        except TypeError as exc:
            raise ValidationError("boundaries", f"{label!r} cannot be compared with the data's index: {exc}") from None
        if position < 0:
            raise ValidationError("boundaries", f"{label!r} is before the first row of the data ({index[0]!r})")
        positions.add(position)
    return Plan(sorted(positions), "explicit", len(index) - 1)
