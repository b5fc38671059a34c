"""The end-to-end demo (`make demo`, `tracker demo`): two Optuna TPE studies of trading strategies
on synthetic prices, logged live with runtime look-ahead checks, then compared.

One strategy is honest momentum. The other is "too good": it peeks at the next day's return. Its
Sharpe ratio is higher, and its violation rate marks it as invalid. Every trial logs its daily
returns, so the closing table also says whether each best Sharpe survives the number of trials
(the Deflated Sharpe Ratio), beside the look-ahead verdict.
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


def daily_returns(signal: Any, close: Any) -> Any:
    """The daily returns of trading `signal` (positions taken the next day), equal weight."""
    return (signal.shift(1) * close.pct_change(fill_method=None)).mean(axis=1).fillna(0.0)


def performance(daily: Any) -> dict[str, float]:
    """Sharpe ratio, annual return and max drawdown of daily returns."""
    import numpy as np

    volatility = float(daily.std())
    sharpe = float(daily.mean() / volatility * np.sqrt(TRADING_DAYS)) if volatility > 0 else 0.0
    wealth = (1.0 + daily).cumprod()
    drawdown = float((wealth / wealth.cummax() - 1.0).min())
    return {"sharpe": sharpe, "annual_return": float(daily.mean() * TRADING_DAYS), "max_drawdown": drawdown}


def _study(tracker: Any, name: str, strategy: Any, space: Any, data: dict[str, Any], trials: int, seed: int) -> int:
    """One TPE study, each trial logged with its daily returns and every 5th checked for look-ahead."""
    import optuna

    from tracker.integrations.optuna import TrackingCallback
    from tracker.ttpt import LookaheadMonitor

    callback = TrackingCallback(
        tracker,
        experiment_name=name,
        template=strategy.__name__,
        ttpt=LookaheadMonitor(strategy, data),  # the default budget: 122 evaluations per check
        checkpoint_interval=5,
        metric_names=["sharpe"],
        config={"n_trials": trials, "seed": seed},
    )

    def objective(trial: optuna.Trial) -> float:
        daily = daily_returns(strategy(data, space(trial)), data["close"])
        callback.report_returns(trial, daily)  # stored with the trial: the overfitting numbers use them
        result = performance(daily)
        for key in ("annual_return", "max_drawdown"):
            trial.set_user_attr(key, result[key])
        return result["sharpe"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), study_name=name)
    with callback:
        study.optimize(objective, n_trials=trials, callbacks=[callback])
    if callback.experiment_id is None:
        raise RuntimeError("the study finished without logging a trial")
    return callback.experiment_id


def _both_studies(tracker: Any, data: dict[str, Any], trials: int, seed: int) -> tuple[int, int]:
    honest = _study(
        tracker,
        "momentum (honest)",
        momentum_signal,
        lambda t: {"lookback": t.suggest_int("lookback", 5, 120), "threshold": t.suggest_float("threshold", 0.0, 0.05)},
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
    return honest, leaky


COLUMNS = ("id", "experiment", "best sharpe", "trials", "TTPT checks", "violation rate", "verdict", "overfitting")


def closing_table(tracker: Any, ids: list[int]) -> Any:
    """The comparison the demo ends with: the look-ahead verdict and, beside it, the overfitting
    status with the DSR (never merged into one word)."""
    from rich.table import Table

    table = Table(title="Experiments compared")
    for column in COLUMNS:
        table.add_column(column, no_wrap=column in ("verdict", "overfitting"))
    for row in tracker.compare_experiments(ids):
        rate, dsr = row["violation_rate"], row["overfitting_dsr"]
        checked = row["verdict_coverage"].partition(",")[0]  # "best 3 of 150 checked"; the count is a column
        table.add_row(
            str(row["id"]),
            row["name"],
            f"{row['best_value']:.3f}",
            str(row["n_trials"]),
            str(row["ttpt_validations"]),
            "-" if rate is None else f"{rate:.0%}",
            f"{VERDICT_STYLE[row['verdict']]}\n{checked}",
            f"{row['overfitting_status']}\nDSR {'-' if dsr is None else f'{dsr:.2f}'}",
        )
    return table


def _write_files(tracker: Any, data: dict[str, Any], ids: tuple[int, int], output: str | None) -> list[Path]:
    """The trials' CSV, the comparison plot and the prices, in `output` (else beside the store)."""
    from tracker.reports import plots

    honest, leaky = ids
    folder = Path(output) if output else (Path(tracker.db_path).parent if tracker.db_path else Path.cwd())
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = Path(tracker.export([honest, leaky], folder / f"demo_{honest}_{leaky}_trials.csv"))
    prices = folder / PRICES
    data["close"].to_csv(prices)
    plot_path = folder / f"demo_{honest}_{leaky}_compare.png"
    plots.save(plots.compare(tracker, [honest, leaky]), plot_path)
    return [csv_path, plot_path, prices]


def run_demo(url: str | None, *, trials: int = 150, seed: int = 7, output: str | None = None) -> int:
    """Run both studies into the store at `url` (default ./experiments.db) and print the comparison."""
    import optuna
    from rich.console import Console

    from tracker.facade.tracker import ExperimentTracker

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
        honest, leaky = _both_studies(tracker, data, trials, seed)
        console.print(closing_table(tracker, [honest, leaky]))
        console.print(READING)
        csv_path, plot_path, prices = _write_files(tracker, data, (honest, leaky), output)
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


READING = (
    "verdict: did a strategy use data from the future (look-ahead)? overfitting: is the best Sharpe more than "
    "the best of this many trials would show by luck (DSR >= 0.95 is significant)? They answer different "
    "questions: a leaky strategy can look significant, an honest one can be luck."
)


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
        f"{tracker} overfitting {honest}",
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
