"""Screenshots of the dashboard's pages for the docs (make screenshots): runs the demo into a
temporary store, adds what users record beside the numbers (tags, notes, an equity-curve image
and a CSV of the leaky study's best trial, and that trial's Sharpe ratio and hit rate over the
last three months, month by month, as metrics per step), serves it with `tracker ui`, and has
headless Chromium (Debian's package, driven by Playwright) save each page to
docs/images/ui-*.png."""

from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("TRACKER_BROWSER", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOUND_MS = 30_000
HONEST, LEAKY, PARETO = 1, 2, 3
"""The demo's experiment ids, and the two-objective copy of the honest one made here."""
MONTH = 21
"""Trading days per step of the per-month metrics."""


def annotate(store: str) -> int | None:
    """Tags on both studies, notes, artifacts and metrics per step on the leaky one and its best
    trial, computed from the demo's own prices and strategy."""
    import numpy as np
    from matplotlib.figure import Figure

    from tracker import ExperimentTracker
    from tracker.demo import TRADING_DAYS, leaky_signal, synthetic_prices
    from tracker.reports import plots

    with ExperimentTracker(store) as t:
        t.set_tags(("experiment", HONEST), {"desk": "demo", "status": "candidate"})
        t.set_tags(("experiment", LEAKY), {"desk": "demo", "status": "rejected"})
        t.set_note(
            ("experiment", LEAKY),
            "## Rejected: look-ahead\n\nThe signal adds `peek * tomorrow's return` (`shift(-1)`): its Sharpe "
            "ratio is out of reach of any honest strategy, and the **TTPT checks fail** on the best trials. "
            "Kept as the demo's negative control.",
        )
        t.log_artifact(("experiment", LEAKY), _png(plots.history(t, LEAKY)), name="plots/history.png")
        best = t.best_trial(LEAKY)
        if best is None:
            raise RuntimeError("the demo's leaky study has no complete trial")
        trial_id, params = best["id"], best["params"]
        t.set_tags(("trial", trial_id), {"review": "look-ahead"})
        t.set_note(("trial", trial_id), "Best value of the study, and an artefact: see the failed checks below.")
        close = synthetic_prices(7)  # the demo's prices (its default seed)
        daily = (leaky_signal({"close": close}, params).shift(1) * close.pct_change(fill_method=None)).mean(axis=1)
        daily = daily.fillna(0.0)
        wealth = (1.0 + daily).cumprod()
        figure = Figure(figsize=(8, 3.2), layout="constrained")
        axes = figure.add_subplot()
        axes.plot(wealth.index, wealth.to_numpy(), color="#d62728")
        axes.set_title(f"Equity of trial {best['trial_number']} (too good to be true)")
        axes.set_ylabel("wealth")
        t.log_artifact(("trial", trial_id), _png(figure), name="equity.png")
        t.log_artifact(("trial", trial_id), daily.to_csv(header=["return"]).encode(), name="daily_returns.csv")
        steps: dict[int, dict[str, float]] = {}
        for step, end in enumerate(range(MONTH, len(daily) + 1, MONTH)):
            window = daily.iloc[max(0, end - 3 * MONTH) : end]  # the last three months
            volatility = float(window.std())
            steps[step] = {
                "sharpe_3m": float(window.mean() / volatility * np.sqrt(TRADING_DAYS)) if volatility else 0.0,
                "hit_rate_3m": float((window > 0).mean()),
            }
        t.log_step_metrics_batch(trial_id, steps)
        # The best trial's code (the demo's leaky signal), and an honest variant of it as an LLM
        # might propose it: the strategy diff between them.
        code = inspect.getsource(leaky_signal)
        t.log_strategy_metadata(trial_id, code, "leaky_signal", "llm")
        honest = code.replace(".shift(-1)", ".shift(1)").replace("Too good: momentum plus a peek at", "Honest:")
        last = max(r["trial_number"] for r in t.get_trials(LEAKY))
        t.log_trial(LEAKY, last + 1, params, {"sharpe": 0.4}, strategy_code=honest, generation_method="llm-fix")
        # The honest study's trials again, judged on two objectives: the Pareto front.
        both = t.create_experiment(
            "honest: sharpe and drawdown",
            "Momentum",
            "tpe",
            objectives={"sharpe": "maximize", "max_drawdown": "maximize"},  # drawdowns are negative
        )
        t.log_trials(
            both,
            [
                {"trial_number": r["trial_number"], "params": r["params"], "performance": r["performance"]}
                for r in t.get_trials(HONEST, states=["complete"])
            ],
        )
        return last + 1
    return None


def _png(figure: Any) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def main() -> int:
    from playwright.sync_api import sync_playwright

    tracker = str(Path(sys.executable).parent / "tracker")
    with tempfile.TemporaryDirectory(prefix="tracker-shots-") as folder:
        store = f"sqlite:///{folder}/experiments.db"
        subprocess.run([tracker, "--url", store, "demo", "--trials", "150"], check=True, capture_output=True)
        variant = annotate(store)
        server = subprocess.Popen(
            [tracker, "--url", store, "ui", "--no-open", "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            address = server.stdout.readline().rsplit(" at ", 1)[1].strip().rstrip("/")
            pages = {
                "ui-experiments.png": "/",
                "ui-experiment-first-screen.png": f"/experiments/{LEAKY}",
                "ui-trial.png": "/trials/{best}",
                "ui-trial-diff.png": f"/trials/{{best}}?diff={variant}#code",
                "ui-compare.png": "/compare?ids=1,2",
            }
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                best = page.request.get(f"{address}/api/experiments/{LEAKY}").json()["best_trial_id"]
                for name, path in pages.items():
                    page.goto(address + path.format(best=best))
                    page.wait_for_selector("[data-chart]:not([data-drawn])", state="detached", timeout=BOUND_MS)
                    if name == "ui-compare.png":
                        page.check("#compare-scale input[value=normalised]")
                        page.wait_for_selector("#compare-chart[data-drawn='2']", timeout=BOUND_MS)
                    page.mouse.move(5, 5)  # the pointer off the charts: no tool bar
                    first_screen = name in ("ui-experiment-first-screen.png", "ui-trial-diff.png")
                    page.screenshot(path=str(IMAGES / name), full_page=not first_screen)
                    print(f"wrote docs/images/{name}")
                page.request.get(f"{address}/api/experiments/{PARETO}/pareto")  # computed: the page lists it
                page.goto(f"{address}/experiments/{PARETO}")
                page.wait_for_selector("#pareto-chart[data-drawn]", timeout=BOUND_MS)
                page.mouse.move(5, 5)
                page.locator("#pareto").screenshot(path=str(IMAGES / "ui-pareto.png"))
                print("wrote docs/images/ui-pareto.png")
                page.set_viewport_size({"width": 1400, "height": 2200})
                page.goto(f"{address}/experiments/{LEAKY}")
                page.wait_for_selector("[data-chart]:not([data-drawn])", state="detached", timeout=BOUND_MS)
                page.screenshot(path=str(IMAGES / "ui-experiment.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
