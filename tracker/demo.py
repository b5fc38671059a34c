"""The end-to-end demo (`make demo`, `tracker demo`): two Optuna TPE studies of trading strategies
on synthetic prices, logged live with runtime look-ahead checks, then compared.

One strategy is honest momentum. The other is "too good": it peeks at the next day's return. Its
Sharpe ratio is higher, and its violation rate marks it as invalid.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

TRADING_DAYS = 252
PRICES = "demo_prices.csv"
"""The demo's synthetic closes, written next to its store for `tracker ttpt check`."""
VERDICT_STYLE = {
    "valid": "[green]valid[/green]",
    "look-ahead": "[red]INVALID: look-ahead bias[/red]",
    "unchecked": "[yellow]unchecked[/yellow]",
}


def synthetic_prices(seed: int, assets: int = 4, years: int = 3) -> Any:
    """Daily closes of a few assets with mild momentum (AR(1) returns), reproducible by seed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = TRADING_DAYS * years
    returns = np.zeros((days, assets))
    shocks = rng.normal(0.0003, 0.012, size=(days, assets))
    for t in range(1, days):
        returns[t] = 0.12 * returns[t - 1] + shocks[t]
    index = pd.bdate_range("2022-01-03", periods=days, tz="UTC", name="date")
    columns = [f"ASSET{i + 1}" for i in range(assets)]
    return pd.DataFrame(100.0 * np.exp(np.cumsum(returns, axis=0)), index=index, columns=columns)


def momentum_signal(data: dict[str, Any], params: dict[str, Any]) -> Any:
    """Honest: long/short by the sign of the past `lookback`-day return, flat within `threshold`."""
    import numpy as np

    close = data["close"]
    momentum = close.pct_change(int(params["lookback"]), fill_method=None)
    signal = np.sign(momentum)
    return signal.where(momentum.abs() > float(params["threshold"]), 0.0).where(momentum.notna())


def leaky_signal(data: dict[str, Any], params: dict[str, Any]) -> Any:
    """Too good: momentum plus a peek at tomorrow's return (shift(-1)), the classic look-ahead bug."""
    import numpy as np

    close = data["close"]
    momentum = close.pct_change(int(params["lookback"]), fill_method=None)
    tomorrow = close.pct_change(fill_method=None).shift(-1)
    return np.sign(momentum + float(params["peek"]) * tomorrow)


def performance(signal: Any, close: Any) -> dict[str, float]:
    """Sharpe ratio, annual return and max drawdown of trading `signal` (positions taken next day)."""
    import numpy as np

    daily = (signal.shift(1) * close.pct_change(fill_method=None)).mean(axis=1).fillna(0.0)
    volatility = float(daily.std())
    sharpe = float(daily.mean() / volatility * np.sqrt(TRADING_DAYS)) if volatility > 0 else 0.0
    wealth = (1.0 + daily).cumprod()
    drawdown = float((wealth / wealth.cummax() - 1.0).min())
    return {"sharpe": sharpe, "annual_return": float(daily.mean() * TRADING_DAYS), "max_drawdown": drawdown}


def _study(tracker: Any, name: str, strategy: Any, space: Any, data: dict[str, Any], trials: int, seed: int) -> int:
    import optuna

    from tracker.integrations.optuna import TrackingCallback
    from tracker.ttpt import LookaheadMonitor

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        result = performance(strategy(data, params), data["close"])
        for key in ("annual_return", "max_drawdown"):
            trial.set_user_attr(key, result[key])
        return result["sharpe"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), study_name=name)
    monitor = LookaheadMonitor(strategy, data)  # the default budget: 122 evaluations per check
    with TrackingCallback(
        tracker,
        experiment_name=name,
        template=strategy.__name__,
        ttpt=monitor,
        checkpoint_interval=5,
        metric_names=["sharpe"],
        config={"n_trials": trials, "seed": seed},
    ) as callback:
        study.optimize(objective, n_trials=trials, callbacks=[callback])
    if callback.experiment_id is None:
        raise RuntimeError("the study finished without logging a trial")
    return callback.experiment_id


def run_demo(url: str | None, *, trials: int = 150, seed: int = 7, output: str | None = None) -> int:
    """Run both studies into the store at `url` (default ./experiments.db) and print the comparison."""
    import optuna
    from rich.console import Console
    from rich.table import Table

    from tracker.facade.tracker import ExperimentTracker
    from tracker.reports import plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tracker").setLevel(logging.ERROR)
    console = Console(width=120)
    started = time.perf_counter()
    data = {"close": synthetic_prices(seed)}
    with ExperimentTracker(url) as tracker:
        console.print(
            f"[bold]tracker demo[/bold]: store {tracker.url}; {trials} TPE trials per strategy; "
            f"TTPT every 5th trial; {len(data['close'])} days x {data['close'].shape[1]} assets"
        )
        honest = _study(
            tracker,
            "momentum (honest)",
            momentum_signal,
            lambda t: {
                "lookback": t.suggest_int("lookback", 5, 120),
                "threshold": t.suggest_float("threshold", 0.0, 0.05),
            },
            data,
            trials,
            seed,
        )
        leaky = _study(
            tracker,
            "momentum + peek (leaky)",
            leaky_signal,
            lambda t: {"lookback": t.suggest_int("lookback", 5, 120), "peek": t.suggest_float("peek", 0.0, 20.0)},
            data,
            trials,
            seed + 1,
        )
        rows = tracker.compare_experiments([honest, leaky])
        table = Table(title="Experiments compared")
        for column in (
            "id",
            "experiment",
            "best sharpe",
            "trials",
            "TTPT checks",
            "violation rate",
            "improvement",
            "verdict",
        ):
            table.add_column(column, no_wrap=column == "verdict")
        for row in rows:
            rate = row["violation_rate"]
            checked = row["verdict_coverage"].partition(",")[0]  # "best 3 of 150 checked"; the count is a column
            verdict = f"{VERDICT_STYLE[row['verdict']]}\n{checked}"
            table.add_row(
                str(row["id"]),
                row["name"],
                f"{row['best_value']:.3f}",
                str(row["n_trials"]),
                str(row["ttpt_validations"]),
                "-" if rate is None else f"{rate:.0%}",
                f"{row['improvement']:+.3f}",
                verdict,
            )
        console.print(table)
        folder = Path(output) if output else (Path(tracker.db_path).parent if tracker.db_path else Path.cwd())
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = tracker.export([honest, leaky], folder / f"demo_{honest}_{leaky}_trials.csv")
        prices = folder / PRICES
        data["close"].to_csv(prices)
        plot_path = folder / f"demo_{honest}_{leaky}_compare.png"
        plots.save(plots.compare(tracker, [honest, leaky]), plot_path)
        store = tracker.url
    console.print(f"wrote {csv_path}")
    console.print(f"wrote {plot_path}")
    console.print(f"wrote {prices} (the prices, for `tracker ttpt check`)")
    console.print(f"took {time.perf_counter() - started:.1f} s. Explore further:")
    for command in explore_commands(store, honest, leaky, prices):
        console.print(f"  {command}", highlight=False, soft_wrap=True)
    console.print("Open the dashboard (read-only, in the browser; Ctrl+C stops it):")
    console.print(f"  {dashboard_command(store)}", highlight=False, soft_wrap=True)
    return 0


def dashboard_command(store: str) -> str:
    """The command that serves the demo's store in the dashboard."""
    return f"{shell_name()} --url {shlex.quote(store)} ui"


def explore_commands(store: str, honest: int, leaky: int, prices: Path) -> list[str]:
    """The commands the demo suggests, each ready to paste in the folder the demo ran in."""
    tracker = f"{shell_name()} --url {shlex.quote(store)}"
    return [
        f"{tracker} experiments list",
        f"{tracker} compare {honest} {leaky}",
        f"{tracker} trials list {leaky} --sort value --limit 5",
        f"{tracker} plot {leaky} --kind ttpt -o demo_{leaky}_ttpt.png",
        f"{tracker} ttpt check {leaky} --strategy tracker.demo:leaky_signal"
        f" --data {shlex.quote(str(prices))} --data-key close",
    ]


def shell_name() -> str:
    """How to run this tracker from the shell where it was started: `tracker` when that is on the
    PATH and is this program, else the path it was started by (`.venv/bin/tracker` from `make
    demo` in a fresh clone), else `python -m tracker.cli` with this interpreter."""
    started = sys.argv[0] if sys.argv else ""
    if os.path.basename(started) == "tracker" and os.access(started, os.X_OK):
        found = shutil.which("tracker")
        if found is not None and os.path.realpath(found) == os.path.realpath(started):
            return "tracker"
        return shlex.quote(started)
    return f"{shlex.quote(sys.executable)} -m tracker.cli"
