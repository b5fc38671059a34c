"""The dashboard in a real browser: headless Chromium from the operating system's packages,
driven by Playwright. Without the browser these tests skip and say why, unless
TRACKER_REQUIRE_BROWSER=1 (set by .ci/run), which turns that skip into a failure.

Each test serves a real store with uvicorn on a free loopback port, in a thread of the test
process. Waits are for conditions, with a bound."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_ui_overfitting
from tests.test_ui_api import CSV, HOSTILE, LINK, STEP_KEY, STEPS, SVG, seed
from tracker import ExperimentTracker
from tracker.ui import create_app
from tracker.ui.render import number

BROWSER_ENV = "TRACKER_BROWSER"
REQUIRE_ENV = "TRACKER_REQUIRE_BROWSER"
CHROMIUM = os.environ.get(BROWSER_ENV, "/usr/bin/chromium")
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
BOUND_MS = 15_000
TOKEN = "browser-test-token-1234"  # noqa: S105 - a test token


def _missing() -> str | None:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium, or set {BROWSER_ENV})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the browser tests need Playwright for Python (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


class Served:
    """An app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


@pytest.fixture
def served(store_url: str) -> Iterator[tuple[Served, dict[str, int], str]]:
    ids = seed(store_url)
    server = Served(create_app(store_url))
    try:
        yield server, ids, store_url
    finally:
        server.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    tab.problems = problems
    yield tab
    context.close()
    assert problems == [], problems  # no script error, no CSP violation on any page


def cells(tab: Any, selector: str) -> list[str]:
    return [c.strip() for c in tab.locator(selector).all_inner_texts()]


def wait_drawn(tab: Any, chart: str, times: int = 1) -> None:
    """Wait until the chart was drawn `times` times (selectors only: the page's CSP forbids the
    eval that Playwright's wait_for_function would need)."""
    undrawn = "".join(f":not([data-drawn='{n}'])" for n in range(1, times))
    tab.wait_for_selector(f"#{chart}[data-drawn]{undrawn}", timeout=BOUND_MS)


def api(tab: Any, url: str) -> Any:
    return tab.request.get(url).json()


def test_every_page_shows_the_numbers_the_api_serves(served: tuple[Served, dict[str, int], str], page: Any) -> None:
    server, ids, _ = served
    a = ids["alpha"]
    listing = api(page, f"{server.url}/api/experiments")["items"]
    page.goto(server.url + "/")
    assert [e["id"] for e in listing] == sorted((e["id"] for e in listing), reverse=True)  # newest first
    assert cells(page, "#experiments tbody td.name") == [e["name"] for e in listing]
    assert cells(page, "#experiments tbody td.best") == [number(e["best_value"]) for e in listing]
    assert cells(page, "#experiments tbody td.trials") == [number(e["n_trials"]) for e in listing]
    assert cells(page, "#experiments tbody td.checks") == [number(e["ttpt_checks"]) for e in listing]
    assert cells(page, "#experiments tbody .verdict") == [e["verdict"]["status"] for e in listing]
    coverage = [v.get_attribute("title") for v in page.locator("#experiments tbody .verdict").all()]
    assert coverage == [e["verdict"]["coverage"] for e in listing]  # the verdict's tooltip
    assert cells(page, f"#experiments tr[data-id='{a}'] td.rate") == ["33%"]  # 5 of 15 checks failed

    e = api(page, f"{server.url}/api/experiments/{a}")
    page.goto(f"{server.url}/experiments/{a}")
    assert page.locator("#verdict .verdict").inner_text() == e["verdict"]["status"]
    assert e["verdict"]["coverage"] in page.locator("#verdict").inner_text()
    assert page.locator("#facts dd.best").inner_text().startswith(number(e["best_value"]))
    assert page.locator("#facts dd.trials").inner_text().startswith("30 (30 complete)")
    assert page.locator("#facts dd.checks").inner_text() == "15 (5 failed, violation rate 33%)"
    rows = api(page, f"{server.url}/api/experiments/{a}/trials?sort=value")["items"]  # the page's default
    assert [r["trial_number"] for r in rows[:3]] == [29, 28, 27]
    assert cells(page, "#trials-table thead th a")[1] == "sharpe"  # the objective, once
    assert "sharpe" not in cells(page, "#trials-table thead th a")[2:]
    assert cells(page, "#trials-table tbody td.value") == [number(r["value"]) for r in rows]
    assert cells(page, "#trials-table tbody td.ttpt") == [r["ttpt"] or "-" for r in rows]
    for chart in ("history-chart", "ttpt-chart", "importance-chart", "parallel-chart", "slice-charts"):
        wait_drawn(page, chart)
    assert page.locator("#history-chart .scatterlayer .trace").count() >= 3
    failed_points = page.locator("#history-chart .scatterlayer .trace:nth-child(2) .point").count()
    assert failed_points == 5  # the trials whose latest check failed, in red

    trial = api(page, f"{server.url}/api/trials/{ids['first']}")
    page.goto(f"{server.url}/trials/{ids['first']}")
    assert page.locator("h1").inner_text().startswith("Trial 0")
    assert page.locator("#trial-facts dd.rank").inner_text() == f"{trial['rank']} of {trial['n_ranked']}"
    assert page.locator("#trial-verdict").inner_text().startswith("1 of 1 TTPT checks failed")
    assert cells(page, "#params th") == ["kind", "lookback"] or cells(page, "#params th") == ["lookback", "kind"]
    assert "shift" in page.locator("#strategy-code .code").inner_text()
    assert page.locator("#strategy-code .code span").count() > 3  # highlighted

    page.goto(f"{server.url}/compare?ids={a},{ids['hostile']}")
    wait_drawn(page, "compare-chart")
    assert cells(page, "#compare-table tr.best td") == [number(e["best_value"]), "2"]
    assert cells(page, "#compare-table tr.trials td") == ["30", "3"]
    assert page.locator("#compare-chart .scatterlayer .trace").count() == 2


def test_tags_notes_provenance_artifacts_and_step_metrics_show_as_the_api_serves_them(
    served: tuple[Served, dict[str, int], str], page: Any
) -> None:
    server, ids, _ = served
    a, h, first = ids["alpha"], ids["hostile"], ids["first"]
    page.goto(server.url + "/")
    assert cells(page, f"#experiments tr[data-id='{a}'] .tag") == ["desk=fx", "stage=final"]
    assert cells(page, f"#experiments tr[data-id='{h}'] .tag") == [f"owner={HOSTILE}"]
    page.click(f"#experiments tr[data-id='{a}'] a.tag >> text=desk=fx")
    page.wait_for_url(re.compile(r"tag=desk%3Dfx"))
    assert cells(page, "#experiments tbody td.name") == ["alpha"]
    page.fill("input[name=tag]", "owner")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"tag=owner"))
    assert cells(page, "#experiments tbody td.name") == [HOSTILE]

    e = api(page, f"{server.url}/api/experiments/{a}")
    page.goto(f"{server.url}/experiments/{a}")
    assert cells(page, "#facts .tag") == ["desk=fx", "stage=final"]
    assert page.locator("#experiment-note h1").inner_text() == "Why momentum"  # Markdown, rendered
    assert page.locator("#experiment-note em").inner_text() == "first"
    assert not page.locator("#provenance").is_visible()  # folded
    page.click("#provenance-box summary")
    provenance = dict(zip(cells(page, "#provenance th"), cells(page, "#provenance td"), strict=True))
    assert provenance["python"] == e["provenance"]["python"]
    assert provenance["git_commit"] == (e["provenance"]["git_commit"] or "-")
    image = page.locator("#experiment-artifacts img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 8  # loaded and decoded

    trial = api(page, f"{server.url}/api/trials/{first}")
    page.goto(f"{server.url}/trials/{first}")
    assert cells(page, "#trial-facts .tag") == ["fold=all"]
    assert page.locator("#trial-note strong").inner_text() == "day 3"
    assert page.locator("#trial-artifacts img").evaluate("img => img.complete && img.naturalWidth") == 4
    for name, data in (("trades.csv", CSV), ("drawing.svg", SVG)):
        with page.expect_download(timeout=BOUND_MS) as started:
            page.click(f"#trial-artifacts a >> text={name}")
        download = started.value
        assert download.suggested_filename == name
        assert Path(download.path()).read_bytes() == data
    assert page.evaluate("document.body.dataset.pwned") is None  # the svg's script never ran
    wait_drawn(page, "step-charts")
    assert page.locator("#step-charts .slice").count() == 2
    sharpe = page.locator("#step-charts .slice[data-key=sharpe]")
    assert sharpe.evaluate("el => el.data[0].x.length") == len(trial["step_metrics"]["sharpe"]) <= 2_000
    shown = len(trial["step_metrics"]["sharpe"])
    assert f"{shown:,} of {STEPS:,} steps, downsampled" in (sharpe.locator(".gtitle").text_content() or "")
    drawdown = page.locator("#step-charts .slice[data-key=drawdown]")
    assert drawdown.evaluate("el => el.data[0].y") == [v for _, v in trial["step_metrics"]["drawdown"]]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sort_filter_paginate_and_jump(served: tuple[Served, dict[str, int], str], page: Any) -> None:
    server, ids, url = served
    with ExperimentTracker(url) as t:
        for i in range(12):
            t.create_experiment(f"extra {i:02d}", "Extra", "grid")
    page.goto(server.url + "/?limit=5")
    page.click("thead a[data-sort=name]")
    page.wait_for_url(re.compile(r"sort=name"))
    assert cells(page, "#experiments tbody td.name")[:3] == [HOSTILE, "alpha", "extra 00"]  # "<" sorts first
    page.click("thead a[data-sort=name]")
    page.wait_for_url(re.compile(r"order=desc"))
    assert cells(page, "#experiments tbody td.name")[:2] == ["extra 11", "extra 10"]
    page.fill("input[name=q]", "extra 1")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=extra"))
    assert cells(page, "#experiments tbody td.name") == ["extra 11", "extra 10"]
    page.goto(server.url + "/?limit=5&sort=id")
    page.click("nav.pager a.next")
    page.wait_for_url(re.compile(r"offset=5"))
    assert cells(page, "#experiments tbody td.num:nth-child(2)") == ["6", "7", "8", "9", "10"]
    page.fill("nav.pager input[name=page]", "3")
    page.click("nav.pager button")
    page.wait_for_url(re.compile(r"page=3"))
    assert cells(page, "#experiments tbody td.num:nth-child(2)") == ["11", "12", "13", "14"]

    a = ids["alpha"]
    page.goto(f"{server.url}/experiments/{a}?limit=10")  # by the objective, best first
    assert cells(page, "#trials-table tbody td.num:first-child") == [str(n) for n in range(29, 19, -1)]
    page.click("#live-trials nav.pager a.next")
    page.wait_for_url(re.compile(r"after="))
    assert cells(page, "#trials-table tbody td.num:first-child") == [str(n) for n in range(19, 9, -1)]
    page.fill("#live-trials nav.pager input[name=page]", "3")
    page.click("#live-trials nav.pager button")
    page.wait_for_url(re.compile(r"page=3"))
    assert cells(page, "#trials-table tbody td.num:first-child") == [str(n) for n in range(9, -1, -1)]
    page.check("#trial-filters input[value=complete]")
    page.select_option("#trial-filters select[name=ttpt]", "failed")
    page.click("#trial-filters button")
    page.wait_for_url(re.compile(r"ttpt=failed"))
    assert cells(page, "#trials-table tbody td.ttpt") == ["failed"] * 5
    assert cells(page, "#trials-table tbody td.num:first-child") == ["24", "18", "12", "6", "0"]
    page.click("#trials-table thead a[data-sort='params.lookback']")
    page.wait_for_url(re.compile(r"params.lookback"))
    assert cells(page, "#trials-table tbody td.num:first-child") == ["24", "18", "12", "6", "0"]
    page.fill("#goto-form input[name=goto]", "17")
    page.click("#goto-form button")
    page.wait_for_url(re.compile(r"/trials/\d+$"))
    assert page.locator("h1").inner_text().startswith("Trial 17")


@pytest.mark.parametrize("store_url", ["json"], indirect=True)
def test_compare_the_selected_experiments(served: tuple[Served, dict[str, int], str], page: Any) -> None:
    server, ids, _ = served
    page.goto(server.url + "/")
    page.check(f"#experiments tr[data-id='{ids['alpha']}'] input[type=checkbox]")
    page.check(f"#experiments tr[data-id='{ids['hostile']}'] input[type=checkbox]")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/compare\?ids="))
    wait_drawn(page, "compare-chart")
    assert cells(page, "#compare-table thead th a") == ["alpha", HOSTILE]
    assert cells(page, "#compare-table tr.differs th")  # the best params differ, and are highlighted
    assert (page.locator("#compare-chart .legend").text_content() or "").count("(") == 2


def test_a_running_study_shows_new_trials_without_a_reload(
    served: tuple[Served, dict[str, int], str], page: Any
) -> None:
    server, ids, url = served
    a = ids["alpha"]
    page.goto(f"{server.url}/experiments/{a}")
    wait_drawn(page, "history-chart")
    page.evaluate("document.body.dataset.loaded = 'first'")  # gone if the page reloads
    writer = (
        "import sys\nfrom tracker import ExperimentTracker\n"
        "with ExperimentTracker(sys.argv[1]) as t:\n"
        "    for n in range(30, 35):\n"
        f"        t.log_trial({a}, n, {{'lookback': n}}, {{'sharpe': 10.0 + n}})\n"
    )
    subprocess.run([sys.executable, "-c", writer, url], check=True, timeout=60)
    page.locator("#facts dd.trials", has_text=re.compile(r"^35 ")).wait_for(timeout=BOUND_MS)
    assert page.locator("#facts dd.best").inner_text().startswith("44")
    wait_drawn(page, "history-chart", times=2)
    assert page.evaluate("document.body.dataset.loaded") == "first"


def test_hostile_names_params_and_code_stay_inert(served: tuple[Served, dict[str, int], str], page: Any) -> None:
    server, ids, _ = served
    h = ids["hostile"]
    for path in ("/", f"/experiments/{h}", f"/trials/{ids['odd']}", f"/compare?ids={ids['alpha']},{h}"):
        page.goto(server.url + path)
        page.wait_for_selector("[data-chart]:not([data-drawn])", state="detached", timeout=BOUND_MS)
        assert page.evaluate("document.body.dataset.pwned") is None, path
        assert page.locator("img[src=x]").count() == 0, path
        assert page.locator("body script:not([src])").count() == 0, path
        assert "<script>document.body.dataset.pwned" in page.locator("main").inner_text(), path
    page.goto(f"{server.url}/trials/{ids['odd']}")
    facts = page.locator("#trial-facts").inner_text()
    assert facts.count("<script>document.body.dataset.pwned") == 2  # strategy template, generation method
    wait_drawn(page, "step-charts")
    assert STEP_KEY in (page.locator("#step-charts .gtitle").text_content() or "")  # a step metric's key
    assert HOSTILE in page.locator("#performance").inner_text()  # a performance key
    assert "<script>document.body.dataset.pwned" in page.locator("#attributes").inner_text()  # a key
    page.goto(f"{server.url}/experiments/{h}")
    page.click("#provenance-box summary")
    assert HOSTILE in page.locator("#provenance").inner_text()  # a provenance value
    for path, note in ((f"/experiments/{h}", "#experiment-note"), (f"/trials/{ids['odd']}", "#trial-note")):
        page.goto(server.url + path)
        assert page.locator(note).inner_text().startswith("<script>document.body.dataset.pwned"), path
        assert page.locator(f"{note} img, {note} script").count() == 0, path
        assert page.evaluate("document.body.dataset.pwned") is None, path


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_with_a_token_the_dashboard_answers_only_to_its_holder(store_url: str, chromium: Any) -> None:
    seed(store_url)
    server = Served(create_app(store_url, token=TOKEN, loopback_only=False))
    context = chromium.new_context()
    try:
        tab = context.new_page()
        response = tab.goto(server.url + "/")
        assert response.status == 401
        assert "needs its token" in tab.locator("body").inner_text()
        tab.goto(f"{server.url}/?token={TOKEN}")
        assert tab.url == server.url + "/"
        assert tab.locator("#experiments tbody tr").count() == 2
        tab.click("#experiments td.name a >> nth=0")
        tab.wait_for_url(re.compile(r"/experiments/\d+"))
        wait_drawn(tab, "history-chart")
        other = chromium.new_context()
        assert other.new_page().goto(server.url + "/api/experiments").status == 401
        other.close()
    finally:
        context.close()
        server.stop()


def test_plotly_labels_are_text(served: tuple[Served, dict[str, int], str], page: Any) -> None:
    """A param value `<a href=...>` and a key `<b>` reach the slice charts, their ticks and
    hover text, and the compare legend as typed: no link, no bold."""
    server, ids, _ = served
    h = ids["hostile"]
    page.goto(f"{server.url}/experiments/{h}")
    for chart in ("history-chart", "ttpt-chart", "parallel-chart", "slice-charts"):
        wait_drawn(page, chart)
    assert page.locator("#slice-charts .slice").count() >= 2
    assert page.locator("svg a[href]").count() == 0
    assert page.locator("svg b, svg tspan[style*='bold']").count() == 0
    ticks = page.locator("#slice-charts .xtick text").all_text_contents()
    assert LINK in ticks  # shown as typed
    titles = page.locator("#slice-charts .gtitle").all_text_contents()
    assert "<b>bold</b>" in titles
    assert page.locator("#history-chart .ytitle").text_content() == "loss (lower is better)"
    page.goto(f"{server.url}/compare?ids={ids['alpha']},{h}")
    wait_drawn(page, "compare-chart")
    assert page.locator("svg a[href]").count() == 0
    assert "<script>document.body.dataset.pwned" in (page.locator("#compare-chart .legend").text_content() or "")


def test_each_security_point_holds_in_the_browser(store_url: str, chromium: Any, tmp_path: Path) -> None:
    """On every backend: the token with cookies SimpleCookie cannot parse beside it, a token
    redirect that stays on this origin, 400/404 in the JSON shape for numbers beyond 64 bits,
    and artifacts in byte ranges."""
    ids = seed(store_url)
    with ExperimentTracker(store_url) as t:
        t.log_artifact(("trial", ids["first"]), bytes(range(256)) * 4096, name="big.bin")
    server = Served(create_app(store_url, token=TOKEN))
    context = chromium.new_context()
    try:
        origin = server.url
        context.add_cookies(
            [
                {"name": "other", "value": "a b", "url": origin},
                {"name": "x", "value": '{"a":1}', "url": origin},
            ]
        )
        tab = context.new_page()
        tab.goto(f"{origin}//evil.example/?token={TOKEN}")
        assert tab.url.startswith(origin + "/"), tab.url  # stayed here (the path answers 404)
        response = tab.goto(f"{origin}/?token={TOKEN}")
        assert response is not None
        assert response.status == 200
        assert tab.url == origin + "/"
        assert tab.locator("#experiments tbody tr").count() == 2  # the cookie carries the token
        big = 2**63
        for path, status in (
            (f"/api/experiments/{big}", 404),
            (f"/api/trials/{big}", 404),
            (f"/api/experiments?offset={big}", 400),
            ("/api/experiments/abc", 404),
        ):
            answer = tab.request.get(origin + path)
            assert answer.status == status, path
            assert set(answer.json()) == {"error", "message"}, path
        assert tab.goto(f"{origin}/experiments/{ids['alpha']}?goto={big}").status == 400
        url = f"{origin}/api/trials/{ids['first']}/artifacts/big.bin"
        part = tab.request.get(url, headers={"range": "bytes=1000-1999"})
        assert part.status == 206
        assert part.body() == (bytes(range(256)) * 4096)[1000:2000]
        assert tab.request.get(url).body() == bytes(range(256)) * 4096
    finally:
        context.close()
        server.stop()


def test_overfitting_badge_panel_line_and_logits(store_url: str, page: Any) -> None:
    """The overfitting badge sits beside the look-ahead badge (list and page), the panel shows the
    numbers the API serves, the history plot has the expected-maximum line when the objective is a
    Sharpe (none otherwise), and CSCV's logits are a histogram; compare shows the family."""
    ids = test_ui_overfitting.seed(store_url)
    server = Served(create_app(store_url))
    try:
        listing = api(page, f"{server.url}/api/experiments")["items"]
        page.goto(server.url + "/")
        assert cells(page, "#experiments tbody .overfitting") == [e["overfitting"] for e in listing]
        a = ids["sharpe"]
        o = api(page, f"{server.url}/api/experiments/{a}")["overfitting"]
        page.goto(f"{server.url}/experiments/{a}")
        assert page.locator("#verdict .overfitting").inner_text() == o["status"]
        assert page.locator("#verdict .verdict").inner_text() != o["status"]  # two badges, never one word
        for key in ("n_trials", "dsr", "pbo", "expected_max_sharpe"):
            assert page.locator(f"#overfitting-panel tr[data-key='{key}'] td.num").inner_text() == number(o[key])
        wait_drawn(page, "history-chart")
        wait_drawn(page, "logits-chart")
        assert "expected max Sharpe" in (page.locator("#history-chart .legend").text_content() or "")
        assert page.locator("#logits-chart .barlayer .point").count() > 3  # the histogram's bars
        page.goto(f"{server.url}/experiments/{ids['other']}")
        wait_drawn(page, "history-chart")
        assert "expected max Sharpe" not in (page.locator("#history-chart").text_content() or "")
        assert "is not a Sharpe ratio" in page.locator("#overfitting-panel").inner_text()
        family = api(page, f"{server.url}/api/compare?ids={a},{ids['other']}")["overfitting"]
        page.goto(f"{server.url}/compare?ids={a},{ids['other']}")
        shown = page.locator("#family-overfitting tr[data-key='n_trials'] td.num").inner_text()
        assert shown == number(family["n_trials"]) == "20"
    finally:
        server.stop()
