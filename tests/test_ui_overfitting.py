"""The dashboard's overfitting views (issues 22 and 24): the badge beside the look-ahead verdict,
the panel's numbers, the expected-maximum line and CSCV's logits, served by the API on every
backend with the numbers `ExperimentTracker.overfitting` gives, and drawn in Chromium."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.test_ui_api import HOSTILE, LOCAL, strict
from tracker import ExperimentTracker
from tracker.ui import create_app
from tracker.ui.overfit import MEANINGS

PERIODS = 160
"""Returns per trial: 10 periods in each of CSCV's 16 blocks."""


def log_study(t: ExperimentTracker, eid: int, n: int, seed: int, start: int = 0) -> None:
    """`n` complete trials of noise returns, every third one with a small drift."""
    rng = np.random.default_rng(seed)
    for k in range(start, start + n):
        returns = rng.normal(0.0005 * (k % 3), 0.01, PERIODS)
        trial = t.log_trial(eid, k, {"k": k}, {"sharpe": float(returns.mean() / returns.std(ddof=1))})
        t.log_returns(trial, returns)


def seed(url: str) -> dict[str, int]:
    """`sharpe`: 12 trials with returns, objective `sharpe`; `other`: 8 trials with returns and a
    hostile objective name (not a Sharpe); `bare`: one trial and no returns."""
    with ExperimentTracker(url) as t:
        a = t.create_experiment("sharpe", "Momentum", "tpe")
        log_study(t, a, 12, 1)
        b = t.create_experiment("other", "Mean reversion", "tpe", objective=HOSTILE)
        log_study(t, b, 8, 2)
        c = t.create_experiment("bare", "Breakout", "grid")
        t.log_trial(c, 0, {"k": 0}, {"sharpe": 0.1})
    return {"sharpe": a, "other": b, "bare": c}


def expected(found: dict[str, Any]) -> dict[str, Any]:
    """The facade's numbers as strict JSON carries them (non-finite floats as null)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in found.items()}


def numbers(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("meanings", "max_sharpe_line", "logits")}


@pytest.fixture
def api(store_url: str) -> Iterator[tuple[TestClient, dict[str, int], str]]:
    ids = seed(store_url)
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        yield client, ids, store_url


def test_the_api_serves_the_numbers_the_tracker_computes(api: tuple[TestClient, dict[str, int], str]) -> None:
    client, ids, url = api
    with ExperimentTracker(url) as t:
        truth = {name: expected(t.overfitting(eid)) for name, eid in ids.items()}
        report = t.overfitting_report(ids["sharpe"])
        family = expected(t.overfitting([ids["sharpe"], ids["other"]]))
    assert truth["sharpe"]["n_trials"] == 12
    assert truth["bare"]["status"] == "unknown"
    for name, eid in ids.items():
        answer = strict(client.get(f"/api/experiments/{eid}"))["overfitting"]
        assert numbers(answer) == truth[name], name
        assert answer["meanings"] == MEANINGS
    sharpe = strict(client.get(f"/api/experiments/{ids['sharpe']}"))["overfitting"]
    assert sharpe["max_sharpe_line"] == truth["sharpe"]["expected_max_sharpe"] is not None
    assert strict(client.get(f"/api/experiments/{ids['other']}"))["overfitting"]["max_sharpe_line"] is None
    listed = strict(client.get("/api/experiments"))["items"]
    assert {row["id"]: row["overfitting"] for row in listed} == {eid: truth[n]["status"] for n, eid in ids.items()}
    cscv = strict(client.get(f"/api/experiments/{ids['sharpe']}/overfitting"))
    assert cscv["logits"] == list(report.logits)
    assert len(cscv["logits"]) == math.comb(16, 8)
    assert numbers(cscv) == truth["sharpe"]
    compared = strict(client.get(f"/api/compare?ids={ids['sharpe']},{ids['other']}"))["overfitting"]
    assert numbers(compared) == family
    assert family["n_trials"] == 20


def test_the_numbers_follow_new_trials(api: tuple[TestClient, dict[str, int], str]) -> None:
    client, ids, url = api
    before = strict(client.get(f"/api/experiments/{ids['sharpe']}"))["overfitting"]
    with ExperimentTracker(url) as t:
        log_study(t, ids["sharpe"], 3, 9, start=12)
        truth = expected(t.overfitting(ids["sharpe"]))
    after = strict(client.get(f"/api/experiments/{ids['sharpe']}"))["overfitting"]
    assert before["n_trials"] == 12
    assert numbers(after) == truth
    assert truth["n_trials"] == 15


def test_the_pages_show_badge_panel_and_family_escaped(api: tuple[TestClient, dict[str, int], str]) -> None:
    client, ids, url = api
    with ExperimentTracker(url) as t:
        truth = t.overfitting(ids["other"])
    listed = client.get("/").text
    assert listed.count('class="overfitting overfitting-') == 3
    html = client.get(f"/experiments/{ids['other']}").text
    assert f'<span class="overfitting overfitting-{truth["status"]}"' in html
    assert 'id="overfitting-panel"' in html
    assert 'data-chart="logits"' in html
    assert "is not a Sharpe ratio" in html
    assert 'data-max-sharpe=""' in html
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    for key in MEANINGS:
        assert f'<tr data-key="{key}">' in html
    line = client.get(f"/experiments/{ids['sharpe']}").text
    assert "The dashed horizontal line on the history plot is expected_max_sharpe" in line
    compared = client.get(f"/compare?ids={ids['sharpe']},{ids['other']}").text
    assert 'id="family-overfitting"' in compared
    assert compared.count('<tr data-key="') == len(MEANINGS)
