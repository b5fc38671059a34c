"""What the dashboard's handlers share: the store, its browser and the importance cache."""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.requests import Request

from tracker import stores
from tracker.store.repository import Repository
from tracker.ui import overfit

IMPORTANCE_TTL_S = 60.0
COUNTING = "counting"
"""The overfitting status shown while the browser is still reading the store (`ExperimentOverview.counting`)."""


class Dashboard:
    """The store and what the handlers share."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.browser = stores.browser_of(repository)
        self.store = repository.location.safe_url
        self._importance: dict[int, tuple[int, float, dict[str, Any]]] = {}
        self._importance_lock = threading.Lock()
        self.families = overfit.Families(repository)

    def warm_up(self) -> None:
        """Start building the browser's digests (`warming`: the thread doing it); pages are
        answered meanwhile (`counting`)."""
        self.warming = self.browser.warm_in_background()

    def context(self, request: Request, **values: Any) -> dict[str, Any]:
        return {
            "store": self.store,
            "root": str(request.scope.get("root_path", "")),
            "params": _params(request),
            **values,
        }

    def importance(self, experiment_id: int) -> dict[str, Any]:
        """Parameter importance on the sample, computed at most once a minute per experiment
        while the study grows (it takes a second or two)."""
        from tracker.ui.importance import param_importances

        o = self.browser.overview(experiment_id)
        with self._importance_lock:
            cached = self._importance.get(experiment_id)
            if cached and (cached[0] == o.n_trials or time.monotonic() - cached[1] < IMPORTANCE_TTL_S):
                return cached[2]
        sample = self.browser.sample(experiment_id)
        started = time.perf_counter()
        values = param_importances(sample, o.experiment.direction)
        answer = {
            "evaluator": "optuna.importance.PedAnovaImportanceEvaluator()",
            "sample": sample.description,
            "n": len(sample.trials),
            "importances": values,
            "seconds": round(time.perf_counter() - started, 3),
        }
        with self._importance_lock:
            self._importance[experiment_id] = (o.n_trials, time.monotonic(), answer)
        return answer

    def with_badges(self, listed: dict[str, Any]) -> dict[str, Any]:
        """The experiments list with each row's overfitting status (`overfitting`), computed per
        experiment and cached until the experiment changes."""
        for row in listed["items"]:
            row["overfitting"] = COUNTING if row["counting"] else self.families.status(row["id"], _stamp(row))
        return listed

    def with_overfitting(self, experiment: dict[str, Any]) -> dict[str, Any]:
        """An experiment's answer with its trials' overfitting numbers (`overfitting`)."""
        if experiment["counting"]:  # it reads every trial: after the digests
            experiment["overfitting"] = {"status": COUNTING, "meanings": {}}
            return experiment
        found = self.families.of((experiment["id"],), _stamp(experiment))
        experiment["overfitting"] = overfit.answer(found, experiment["objective"])
        return experiment

    def logits(self, experiment_id: int) -> dict[str, Any]:
        """`GET /api/experiments/{id}/overfitting`: the numbers with CSCV's logits."""
        from tracker.ui.payloads import overview

        row = overview(self.browser.overview(experiment_id))
        return overfit.logits(self.families.of((experiment_id,), _stamp(row)))

    def with_family(self, compared: dict[str, Any]) -> dict[str, Any]:
        """The compare answer with its experiments' overfitting numbers taken as one family."""
        rows = compared["experiments"]
        found = self.families.of([e["id"] for e in rows], " ".join(map(_stamp, rows)))
        compared["overfitting"] = overfit.answer(found)
        return compared


def _stamp(row: dict[str, Any]) -> str:
    """What changes when an experiment's family may: its version and its complete trials."""
    return f"{row['version']}-{row['n_by_state'].get('complete', 0)}"


def _params(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if key == "state" or len(values) > 1 else values[0]
    return out
