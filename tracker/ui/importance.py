"""Parameter importance with Optuna's own evaluator (PED-ANOVA, which needs no scikit-learn), on
a sample of trials rebuilt as an in-memory Optuna study. Distributions are inferred from the
sample: a param whose values are all integers is an IntDistribution over their range, other
numbers a FloatDistribution, anything else categorical. Params that are missing from some trials
or take a single value are left out.
"""

from __future__ import annotations

import math
from typing import Any

from tracker.read.browser import Sample
from tracker.reports.analysis import flat
from tracker.store.records import Direction

MAX_CATEGORIES = 50


def param_importances(sample: Sample, direction: Direction) -> dict[str, float]:
    """{param: importance} summing to 1, most important first; {} when nothing can be rated."""
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    rows = []
    for t in sample.trials:
        if t.value is None or not math.isfinite(t.value) or not isinstance(t.params, dict):
            continue
        rows.append((t.value, flat(t.params)))
    if len(rows) < 3:
        return {}
    keys = [k for k in rows[0][1] if all(k in params for _, params in rows)]
    distributions: dict[str, BaseDistribution] = {}
    for key in keys:
        values = [params[key] for _, params in rows]
        if any(isinstance(v, dict | list) for v in values):
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values) and all(math.isfinite(v) for v in numbers):
            low, high = min(numbers), max(numbers)
            if low == high:
                continue
            if all(isinstance(v, int) for v in numbers):
                distributions[key] = IntDistribution(int(low), int(high))
            else:
                distributions[key] = FloatDistribution(float(low), float(high))
        else:
            choices = sorted({str(v) for v in values})
            if 1 < len(choices) <= MAX_CATEGORIES:
                distributions[key] = CategoricalDistribution(choices)
    if not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    frozen = []
    for value, params in rows:
        chosen: dict[str, Any] = {}
        for key, distribution in distributions.items():
            raw = params[key]
            chosen[key] = str(raw) if isinstance(distribution, CategoricalDistribution) else raw
        frozen.append(optuna.trial.create_trial(params=chosen, distributions=distributions, value=value))
    study.add_trials(frozen)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {key: float(value) for key, value in found.items()}
