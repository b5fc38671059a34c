"""The Pareto section in headless Chromium (as `tests/test_ui_browser.py`), on every backend:
the scatter and the hypervolume history render, the pair selector changes the axes, and hostile
objective names reach Plotly as text (no link, no bold)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_ui_browser import Served, chromium, page, wait_drawn  # noqa: F401 - fixtures
from tracker import ExperimentTracker
from tracker.ui import create_app

LINK = '<a href="https://evil.example/">x</a>'
BOLD = "<b>dd</b>"


@pytest.fixture
def pareto_served(store_url: str) -> Iterator[tuple[Served, int]]:
    rng = random.Random(4)
    with ExperimentTracker(store_url) as t:
        e = t.create_experiment("mo", "T", "m", objectives={LINK: "maximize", BOLD: "minimize", "turnover": "minimize"})
        items = [
            {
                "trial_number": n,
                "params": {"x": LINK if n % 2 else BOLD},
                "performance": {LINK: rng.random(), BOLD: rng.random(), "turnover": rng.random()},
            }
            for n in range(40)
        ]
        t.log_trials(e, items)
    server = Served(create_app(store_url))
    try:
        yield server, e
    finally:
        server.stop()


def test_the_pareto_section_renders_switches_axes_and_keeps_names_as_text(
    pareto_served: tuple[Served, int],
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    server, e = pareto_served
    page.goto(f"{server.url}/experiments/{e}")
    wait_drawn(page, "pareto-chart")
    wait_drawn(page, "hypervolume-chart")
    assert page.locator("#pareto-chart .scatterlayer .point").count() > 0
    assert page.locator("#pareto-chart .xtitle").text_content() == LINK + " ↑"
    assert page.locator("#pareto-chart .ytitle").text_content() == BOLD + " ↓"
    assert page.locator("#hypervolume-chart .xtitle").text_content() == "trial number"
    assert page.locator("#pareto-table tbody tr").count() >= 1
    assert page.locator("#pareto-table thead").text_content() == f"#{LINK} ↑{BOLD} ↓turnover ↓"
    page.select_option("#pareto-pair select[name=y]", "turnover")
    wait_drawn(page, "pareto-chart", 2)
    assert page.locator("#pareto-chart .ytitle").text_content() == "turnover ↓"
    page.select_option("#pareto-pair select[name=x]", "turnover")  # the other axis's: they swap
    wait_drawn(page, "pareto-chart", 3)
    assert page.locator("#pareto-chart .xtitle").text_content() == "turnover ↓"
    assert page.locator("#pareto-chart .ytitle").text_content() == LINK + " ↑"
    page.locator("#pareto-chart .scatterlayer .trace:last-child .point").first.hover(force=True)
    page.wait_for_selector("#pareto-chart .hoverlayer .hovertext", timeout=15_000)
    assert LINK in (page.locator("#pareto-chart .hoverlayer").text_content() or "")
    assert page.locator("svg a[href]").count() == 0
    assert page.locator("svg b, svg tspan[style*='bold']").count() == 0
    assert page.locator("a[href^='https://evil']").count() == 0


def test_the_two_objective_staircase_turns_at_the_dominated_corners(
    store_url: str,
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """Front (1, 3), (2, 2), (3, 1): maximising x and y, the region the front dominates lies below
    and left, so from (1, 3) the boundary goes down to 2 first ("vh"); minimising x, right first."""
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (0.5, 0.5)]
    with ExperimentTracker(store_url) as t:
        ids = {}
        for direction in ("maximize", "minimize"):
            e = t.create_experiment(direction, "T", "m", objectives={"a": direction, "b": direction})
            t.log_trials(
                e,
                [{"trial_number": n, "params": {}, "performance": {"a": a, "b": b}} for n, (a, b) in enumerate(points)],
            )
            ids[direction] = e
    server = Served(create_app(store_url))
    try:
        for direction, shape in (("maximize", "vh"), ("minimize", "hv")):
            page.goto(f"{server.url}/experiments/{ids[direction]}")
            wait_drawn(page, "pareto-chart")
            drawn = page.evaluate("() => document.getElementById('pareto-chart').data[1].line.shape")
            assert drawn == shape, direction
    finally:
        server.stop()
