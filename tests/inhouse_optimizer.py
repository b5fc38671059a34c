"""A copy of the in-house optimizer's calling convention, written for the tests (the in-house code
itself is not ours to ship), as its report and its users describe it:

- `TPEOptimizer().optimize_with_runtime_ttpt(objective_fn, strategy_fn, data, n_trials,
  param_space, checkpoint_interval)` runs an Optuna TPE study (`optimizer.study`);
- strategies are called `strategy_fn(data_dict, params)`, with `data_dict = {"close": prices}`;
- its `RuntimeTTPTMonitor` counts trials from 1 and checks every `checkpoint_interval`-th one,
  keeping each result in `validation_history`;
- each failed check is logged to `logs/ttpt_violations/violation_trial_{N}_{YYYYmmdd_HHMMSS}.json`
  with `json.dump`, which raises at the `TTPTViolation` objects left in
  `metrics.shift_results`; the monitor prints "Failed to log violation" and the file stays cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Strategy = Callable[[dict[str, pd.DataFrame], dict[str, Any]], pd.DataFrame]


@dataclass
class TTPTViolation:
    shift_days: int
    violation_type: str
    metric_name: str
    original_value: float
    shifted_value: float
    change: float
    severity: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prices(seed: int = 5, days: int = 400, assets: int = 3) -> pd.DataFrame:
    returns = np.random.default_rng(seed).normal(0.0003, 0.01, size=(days, assets))
    index = pd.bdate_range("2023-01-02", periods=days, name="date")
    return pd.DataFrame(100 * np.exp(np.cumsum(returns, axis=0)), index=index, columns=["A", "B", "C"])


def honest(data_dict: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    return np.sign(data_dict["close"].pct_change(int(params["lookback"]), fill_method=None)).fillna(0.0)


def leaky(data_dict: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    """Momentum plus a peek at tomorrow's return: the look-ahead the monitor exists to catch."""
    close = data_dict["close"]
    tomorrow = close.pct_change(fill_method=None).shift(-1)
    momentum = close.pct_change(int(params["lookback"]), fill_method=None)
    return np.sign(momentum + float(params["peek"]) * tomorrow).fillna(0.0)


def sharpe(signals: pd.DataFrame, data_dict: dict[str, pd.DataFrame]) -> float:
    daily = (signals.shift(1) * data_dict["close"].pct_change(fill_method=None)).mean(axis=1).fillna(0.0)
    return float(daily.mean() / daily.std() * np.sqrt(252)) if daily.std() > 0 else 0.0


class RuntimeTTPTMonitor:
    """Checks every `checkpoint_interval`-th trial (counted from 1) by shifting the end of the data
    away: a strategy without look-ahead keeps its signals on the days it still sees."""

    def __init__(
        self,
        strategy_fn: Strategy,
        data: dict[str, pd.DataFrame],
        checkpoint_interval: int = 10,
        log_dir: str | Path = "logs/ttpt_violations",
        shifts: tuple[int, ...] = (1, 5, 20),
    ) -> None:
        self.strategy_fn, self.data, self.checkpoint_interval = strategy_fn, data, checkpoint_interval
        self.log_dir, self.shifts = Path(log_dir), shifts
        self.trial_count = 0
        self.validation_history: list[dict[str, Any]] = []
        self.printed: list[str] = []

    def on_trial_complete(self, params: dict[str, Any]) -> dict[str, Any] | None:
        self.trial_count += 1
        if self.trial_count % self.checkpoint_interval != 0:
            return None
        result = self.validate(params)
        self.validation_history.append(result)
        if not result["passed"]:
            self._log_violation(result)
        return result

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        full = self.strategy_fn(self.data, params)
        shift_results, violations = [], []
        for days in self.shifts:
            cut = {key: frame.iloc[:-days] for key, frame in self.data.items()}
            shifted = self.strategy_fn(cut, params)
            seen = full.loc[shifted.index]
            changed = float((seen != shifted).to_numpy().mean())
            found = [
                TTPTViolation(days, "signal_change", "changed_signals", 0.0, changed, changed, self._severity(changed))
            ]
            found = found if changed > 0 else []
            violations += found
            shift_results.append({"shift_days": days, "changed_signals": changed, "violations": found})
        return {
            "trial_number": self.trial_count,
            "timestamp": datetime.now().isoformat(),
            "params": dict(params),
            "passed": not violations,
            "violations": [v.to_dict() for v in violations],
            "metrics": {"n_shifts": len(self.shifts), "shift_results": shift_results},
        }

    @staticmethod
    def _severity(change: float) -> str:
        return "high" if change > 0.001 else "low"

    def _log_violation(self, result: dict[str, Any]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"violation_trial_{result['trial_number']}_{datetime.now():%Y%m%d_%H%M%S}.json"
        try:
            with open(path, "w") as f:
                json.dump(result, f, indent=2)
        except Exception as exc:  # as the in-house monitor does
            self.printed.append(f"Failed to log violation: {exc}")


class TPEOptimizer:
    def __init__(self, seed: int = 0, log_dir: str | Path = "logs/ttpt_violations") -> None:
        self.seed, self.log_dir = seed, log_dir
        self.study: Any = None
        self.monitor: RuntimeTTPTMonitor | None = None

    def optimize_with_runtime_ttpt(
        self,
        objective_fn: Callable[[pd.DataFrame, dict[str, pd.DataFrame]], float],
        strategy_fn: Strategy,
        data: dict[str, pd.DataFrame],
        n_trials: int,
        param_space: dict[str, tuple[Any, ...]],
        checkpoint_interval: int = 10,
    ) -> dict[str, Any]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        monitor = self.monitor = RuntimeTTPTMonitor(strategy_fn, data, checkpoint_interval, self.log_dir)
        self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed))

        def objective(trial: Any) -> float:
            params = {name: _suggest(trial, name, spec) for name, spec in param_space.items()}
            value = objective_fn(strategy_fn(data, params), data)
            monitor.on_trial_complete(params)
            return value

        self.study.optimize(objective, n_trials=n_trials)
        failed = sum(1 for r in monitor.validation_history if not r["passed"])
        return {
            "best_params": self.study.best_params,
            "best_value": self.study.best_value,
            "trials": [{"number": t.number, "params": t.params, "value": t.value} for t in self.study.trials],
            "ttpt_summary": {"validations": len(monitor.validation_history), "violations": failed},
        }


def _suggest(trial: Any, name: str, spec: tuple[Any, ...]) -> Any:
    kind, *bounds = spec
    if kind == "int":
        return trial.suggest_int(name, *bounds)
    if kind == "categorical":
        return trial.suggest_categorical(name, bounds[0])
    return trial.suggest_float(name, *bounds)
