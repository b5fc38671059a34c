"""The dashboard's JSON API on every backend: the shape of every answer, strict JSON, errors,
the token and Host guards, the security headers, escaping, and a session that leaves the store
exactly as it was."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from starlette.testclient import TestClient

from tracker import ExperimentTracker, Owner, ValidationError
from tracker.ui import artifacts, create_app
from tracker.ui.render import markdown, render
from tracker.ui.security import check_binding

STEP_KEY = "sharpe / 63d: rolling"
"""A step metric's key: the tag-name rule keeps markup out of them, so the hostile string cannot be one."""
HOSTILE = '<script>document.body.dataset.pwned="1"</script><img src=x onerror="document.body.dataset.pwned=1">'
LINK = '<a href="https://evil.example/phish">phish</a>'
"""Plotly's labels read a few HTML-like tags: this one would become a live link in a chart."""
BOLD = "<b>bold</b>"
LOCAL = "http://127.0.0.1"
TOKEN = "s3cret-token-of-some-length"  # noqa: S105 - a test token
NOTE = "# Why momentum\n\nA *first* look, with **care**."
CSV = b"day,pnl\n1,0.5\n2,-0.25\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>document.body.dataset.pwned=1</script></svg>'
STEPS = 2_500
"""Steps of the first trial's `sharpe`: more than the API's cap of 2,000 per key."""


def png(width: int = 4, height: int = 3) -> bytes:
    """A valid PNG of a red rectangle."""
    rows = b"".join(b"\x00" + b"\xd6\x27\x28" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def seed(url: str) -> dict[str, int]:
    """Two experiments: `alpha` (30 trials, half checked, tags, a note, an image; its first trial
    with tags, a note, attributes, artifacts and step metrics) and a hostile one whose every
    string, its note and its trial's note included, is markup."""
    with ExperimentTracker(url) as t:
        a = t.create_experiment(
            "alpha", "Momentum", "tpe", {"n_trials": 30}, tags={"desk": "fx", "stage": "final"}, note=NOTE
        )
        trials = t.log_trials(
            a,
            [
                {
                    "trial_number": n,
                    "params": {"lookback": n + 5, "kind": "ema" if n % 2 else "sma"},
                    "performance": {"sharpe": n / 10, "drawdown": -n / 100},
                    "strategy_code": "def signal(data):\n    return data.shift(-1)  # <peek>\n",
                    **({"ttpt": {"passed": n % 3 != 0, "num_violations": 0 if n % 3 else 2}} if n % 2 == 0 else {}),
                }
                for n in range(30)
            ],
        )
        first = trials[0]
        t.set_tags(("trial", first), {"fold": "all"})
        t.set_note(("trial", first), "odd fill on **day 3**")
        t.log_artifact(("experiment", a), png(8, 5), name="history.png")
        t.log_artifact(("trial", first), png(), name="plots/equity curve.png")
        t.log_artifact(("trial", first), CSV, name="trades.csv")
        t.log_artifact(("trial", first), SVG, name="drawing.svg")
        t.log_step_metrics_batch(first, {step: {"sharpe": math.sin(step / 50) + step / 1000} for step in range(STEPS)})
        t.log_step_metrics_batch(first, {step: {"drawdown": -step / 100} for step in range(10)})
        b = t.create_experiment(
            HOSTILE,
            HOSTILE,
            "grid",
            objective="loss",
            direction="minimize",
            tags={"owner": HOSTILE},
            note=HOSTILE,
            data_fingerprint=HOSTILE,
        )
        odd = t.log_trial(
            b,
            0,
            {HOSTILE: HOSTILE, "inf": math.inf},
            {"loss": math.inf, "nan": math.nan, HOSTILE: 1.0},
            strategy_code=HOSTILE,
            strategy_template=HOSTILE,
            generation_method=HOSTILE,
            note=HOSTILE,
            attributes={HOSTILE: HOSTILE},
        )
        with pytest.raises(ValidationError, match="tag name"):  # step keys follow the tag-name rule: no markup
            t.log_step_metrics_batch(odd, {0: {HOSTILE: 1.0}})
        t.log_step_metrics_batch(odd, {0: {STEP_KEY: 1.0}, 1: {STEP_KEY: 2.0}})
        t.log_trial(b, 1, {"x": 1, "kind": LINK, BOLD: BOLD}, {"loss": 2.0})
        t.log_trial(b, 2, {"x": 2}, {"loss": math.nan}, state="failed")
    return {"alpha": a, "hostile": b, "first": first, "odd": odd}


@pytest.fixture
def api(store_url: str) -> Iterator[tuple[TestClient, dict[str, int], str]]:
    ids = seed(store_url)
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        yield client, ids, store_url


def strict(response: Any) -> Any:
    """The body parsed as strict JSON (NaN and Infinity refused)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(response.text, parse_constant=refuse)


def shape(value: Any, expected: Any, where: str = "$") -> None:
    """`value` has every key of `expected` with a value of the given type (a tuple allows several;
    a dict describes a nested object, a one-item list a list of them)."""
    if isinstance(expected, dict):
        assert isinstance(value, dict), where
        for key, kind in expected.items():
            assert key in value, f"{where}.{key} is missing"
            shape(value[key], kind, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            shape(item, expected[0], f"{where}[{i}]")
    else:
        assert isinstance(value, expected), f"{where} is {type(value).__name__}, expected {expected}"


NUMBER = (int, float, type(None))
VERDICT = {"status": str, "coverage": str, "best_k": int, "best_checked": int, "n_ranked": int, "checks": int}
EXPERIMENT = {
    "id": int,
    "name": str,
    "template": str,
    "mode": str,
    "objective": str,
    "direction": str,
    "created_at": str,
    "n_trials": int,
    "n_by_state": dict,
    "best_value": NUMBER,
    "best_trial_id": (int, type(None)),
    "ttpt_checks": int,
    "ttpt_failed": int,
    "violation_rate": NUMBER,
    "verdict": VERDICT,
    "tags": dict,
    "version": str,
}
ARTIFACT = {"name": str, "size": int, "media_type": str, "sha256": str, "created_at": str, "url": str, "inline": bool}
PAGE = {"items": list, "total": int, "offset": int, "limit": int, "next": (str, type(None))}
TRIAL_ROW = {
    "id": int,
    "trial_number": int,
    "state": str,
    "value": NUMBER,
    "ttpt": (str, type(None)),
    "params": dict,
    "performance": dict,
    "tags": dict,
}


class TestSchema:
    def test_every_endpoint_answers_its_documented_shape(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, ids, _ = api
        a = ids["alpha"]
        listing = strict(client.get("/api/experiments"))
        shape(listing, {**PAGE, "items": [EXPERIMENT], "sort": str, "order": str})
        assert listing["total"] == 2
        detail = strict(client.get(f"/api/experiments/{a}"))
        shape(
            detail,
            {
                **EXPERIMENT,
                "config": dict,
                "summary": type(None),
                "best_trial": dict,
                "improvement": NUMBER,
                "note": str,
                "provenance": dict,
                "artifacts": [ARTIFACT],
            },
        )
        assert detail["best_trial"]["trial_number"] == 29
        assert (detail["n_trials"], detail["ttpt_checks"], detail["ttpt_failed"]) == (30, 15, 5)
        trials = strict(client.get(f"/api/experiments/{a}/trials?sort=performance.drawdown&order=asc&limit=5"))
        shape(trials, {**PAGE, "items": [TRIAL_ROW], "sort": str, "order": str, "columns": dict})
        assert [t["trial_number"] for t in trials["items"]] == [29, 28, 27, 26, 25]
        assert trials["columns"] == {"performance": ["drawdown"], "params": ["kind", "lookback"]}
        history = strict(client.get(f"/api/experiments/{a}/history?max_points=20"))
        shape(
            history,
            {
                "n_trials": int,
                "max_points": int,
                "sampled": bool,
                "points": [{"trial_id": int, "trial_number": int, "value": NUMBER, "ttpt": (str, type(None))}],
                "best": [{"trial_id": int, "trial_number": int, "value": NUMBER}],
                "marks": [{"trial_id": int, "trial_number": int, "state": str}],
                "checks": [{"trial_id": int, "trial_number": int, "passed": bool, "num_violations": int}],
            },
        )
        assert len(history["points"]) + len(history["marks"]) + len(history["checks"]) <= 20
        trial = strict(client.get(f"/api/trials/{ids['first']}"))
        shape(
            trial,
            {
                "id": int,
                "experiment": dict,
                "trial_number": int,
                "value": NUMBER,
                "rank": (int, type(None)),
                "n_ranked": int,
                "strategy_code": str,
                "ttpt_results": [{"id": int, "passed": bool, "num_violations": int, "created_at": str}],
                "tags": dict,
                "note": str,
                "attributes": type(None),
                "artifacts": [ARTIFACT],
                "step_metrics": dict,
                "step_counts": dict,
            },
        )
        assert (trial["rank"], trial["n_ranked"]) == (30, 30)
        compare = strict(client.get(f"/api/compare?ids={a},{ids['hostile']}"))
        shape(
            compare,
            {
                "experiments": [{**EXPERIMENT, "improvement": NUMBER, "best_params": dict, "curve": list}],
                "param_keys": list,
                "differing_params": list,
            },
        )
        sample = strict(client.get(f"/api/experiments/{a}/sample"))
        shape(sample, {"description": str, "params": list, "trials": [{"id": int, "value": NUMBER, "params": dict}]})
        importance = strict(client.get(f"/api/experiments/{a}/importance"))
        shape(importance, {"importances": dict, "sample": str, "evaluator": str})
        assert set(importance["importances"]) == {"lookback", "kind"}

    def test_non_finite_numbers_become_null(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, ids, _ = api
        trial = strict(client.get(f"/api/trials/{ids['odd']}"))
        assert trial["value"] is None
        assert trial["performance"] == {"loss": None, "nan": None, HOSTILE: 1.0}
        assert trial["params"]["inf"] is None
        rows = strict(client.get(f"/api/experiments/{ids['hostile']}/trials?sort=value"))["items"]
        assert [r["value"] for r in rows] == [2.0, None, None]  # inf ranks last when minimising

    @pytest.mark.parametrize(
        ("path", "status", "field"),
        [
            ("/api/experiments?sort=nope", 400, "sort"),
            ("/api/experiments?limit=0", 400, "limit"),
            ("/api/experiments?max_violation_rate=lots", 400, "max_violation_rate"),
            ("/api/experiments?created_after=yesterday", 400, "created_after"),
            ("/api/experiments/1/trials?sort=params.", 400, "sort"),
            ("/api/experiments/1/trials?state=done", 400, "state"),
            ("/api/experiments/1/trials?ttpt=maybe", 400, "ttpt"),
            ("/api/experiments/1/trials?after=garbage", 400, "after"),
            ("/api/experiments/1/history?max_points=1", 400, "max_points"),
            ("/api/compare?ids=1", 400, "ids"),
            ("/api/compare?ids=a,b", 400, "ids"),
            ("/api/experiments?tag=no!good", 400, "tag"),
            ("/api/experiments/999", 404, None),
            ("/api/experiments/999/trials", 404, None),
            ("/api/trials/99999", 404, None),
            ("/api/trials/99999/artifacts/x.png", 404, None),
            ("/api/experiments/999/artifacts/x.png", 404, None),
        ],
    )
    def test_bad_requests_say_what_was_wrong(
        self, api: tuple[TestClient, dict[str, int], str], path: str, status: int, field: str | None
    ) -> None:
        client, _, _ = api
        response = client.get(path)
        assert response.status_code == status
        body = strict(response)
        assert body["message"]
        if field is not None:
            assert body["message"].startswith(f"{field}:")
        else:
            assert "does not exist" in body["message"]

    def test_the_version_changes_when_a_trial_is_logged(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, ids, url = api
        before = strict(client.get(f"/api/experiments/{ids['alpha']}"))["version"]
        with ExperimentTracker(url) as t:
            t.log_trial(ids["alpha"], 30, {"lookback": 1}, {"sharpe": 9.0})
        after = strict(client.get(f"/api/experiments/{ids['alpha']}"))
        assert after["version"] != before
        assert (after["n_trials"], after["best_value"]) == (31, 9.0)


class TestAnnotations:
    def test_tags_notes_provenance_and_attributes_are_served_as_recorded(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, _ = api
        e = strict(client.get(f"/api/experiments/{ids['alpha']}"))
        assert e["tags"] == {"desk": "fx", "stage": "final"}
        assert e["note"] == NOTE  # the Markdown source; the page renders it
        assert {"git_commit", "git_dirty", "python", "versions", "host"} <= set(e["provenance"])
        rows = {r["id"]: r for r in strict(client.get("/api/experiments"))["items"]}
        assert rows[ids["alpha"]]["tags"] == {"desk": "fx", "stage": "final"}
        assert rows[ids["hostile"]]["tags"] == {"owner": HOSTILE}
        trial = strict(client.get(f"/api/trials/{ids['first']}"))
        assert (trial["tags"], trial["note"]) == ({"fold": "all"}, "odd fill on **day 3**")
        assert strict(client.get(f"/api/trials/{ids['odd']}"))["attributes"] == {HOSTILE: HOSTILE}
        page = strict(client.get(f"/api/experiments/{ids['alpha']}/trials?limit=2"))["items"]
        assert [r["tags"] for r in page] == [{"fold": "all"}, {}]

    @pytest.mark.parametrize(
        ("tag", "expected"),
        [("desk", ["alpha"]), ("desk=fx", ["alpha"]), ("desk=FX", []), ("owner", ["hostile"]), ("fold", [])],
    )
    def test_the_tag_filter_takes_a_name_or_a_pair(
        self, api: tuple[TestClient, dict[str, int], str], tag: str, expected: list[str]
    ) -> None:
        client, ids, _ = api
        found = strict(client.get("/api/experiments", params={"tag": tag}))
        assert [r["id"] for r in found["items"]] == [ids[name] for name in expected]
        assert found["total"] == len(expected)

    def test_artifacts_are_listed_with_the_url_of_their_bytes(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, _ = api
        listed = strict(client.get(f"/api/trials/{ids['first']}"))["artifacts"]
        recorded = {"drawing.svg": SVG, "plots/equity curve.png": png(), "trades.csv": CSV}
        assert [a["name"] for a in listed] == sorted(recorded)
        for a in listed:
            data = recorded[a["name"]]
            assert (a["size"], a["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
            assert client.get(a["url"]).content == data
        assert [(a["media_type"], a["inline"]) for a in listed] == [
            ("image/svg+xml", False),
            ("image/png", True),
            ("text/csv", False),
        ]
        assert listed[1]["url"] == f"/api/trials/{ids['first']}/artifacts/plots/equity%20curve.png"
        [image] = strict(client.get(f"/api/experiments/{ids['alpha']}"))["artifacts"]
        assert image["url"] == f"/api/experiments/{ids['alpha']}/artifacts/history.png"
        assert client.get(image["url"]).content == png(8, 5)

    def test_images_are_served_for_display_and_anything_else_as_a_download(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, _ = api
        base = f"/api/trials/{ids['first']}/artifacts"
        image = client.get(f"{base}/plots/equity%20curve.png")
        assert image.headers["content-type"] == "image/png"
        assert image.headers["content-disposition"].startswith("inline;")
        for name, media_type, data in (("trades.csv", "text/csv", CSV), ("drawing.svg", "image/svg+xml", SVG)):
            answer = client.get(f"{base}/{name}")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == media_type
            assert answer.headers["content-disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
            assert answer.content == data
        for answer in (image, client.get(f"{base}/drawing.svg")):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in answer.headers["content-security-policy"]
        missing = client.get(f"{base}/nothing.png")
        assert missing.status_code == 404
        assert strict(missing)["message"] == f"trial {ids['first']} has no artifact named 'nothing.png'"

    def test_a_name_a_browser_would_normalise_is_still_reachable_by_its_url(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, url = api
        with ExperimentTracker(url) as t:
            t.log_artifact(("trial", ids["odd"]), b"dot", name="./notes.txt")
        [listed] = strict(client.get(f"/api/trials/{ids['odd']}"))["artifacts"]
        assert listed["url"].endswith("/artifacts/.%2Fnotes.txt")
        assert client.get(listed["url"]).content == b"dot"

    def test_step_metrics_are_capped_per_key_keeping_the_ends_and_extremes(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, url = api
        trial = strict(client.get(f"/api/trials/{ids['first']}"))
        assert trial["step_counts"] == {"drawdown": 10, "sharpe": STEPS}
        assert trial["step_metrics"]["drawdown"] == [[step, -step / 100] for step in range(10)]
        shown = trial["step_metrics"]["sharpe"]
        assert len(shown) <= 2_000
        with ExperimentTracker(url) as t:
            whole = [list(p) for p in t.get_step_metrics(ids["first"])["sharpe"]]
        assert [p[0] for p in shown] == sorted(p[0] for p in shown)
        assert all(p in whole for p in shown)
        assert {tuple(whole[0]), tuple(whole[-1])} <= {tuple(p) for p in shown}
        assert min(whole, key=lambda p: p[1]) in shown
        assert max(whole, key=lambda p: p[1]) in shown
        assert strict(client.get(f"/api/trials/{ids['odd']}"))["step_metrics"] == {STEP_KEY: [[0, 1.0], [1, 2.0]]}


class TestArtifactHeaders:
    @pytest.mark.parametrize(
        ("stored", "served"),
        [
            ("text/csv", "text/csv"),
            ("text/plain; charset=latin-1", "text/plain; charset=latin-1"),
            ("Image/PNG", "Image/PNG"),
            ("text/html\r\nset-cookie: x=1", "application/octet-stream"),
            ("not a type/at all", "application/octet-stream"),
            ("image/pngé", "application/octet-stream"),
        ],
    )
    def test_a_stored_media_type_is_served_only_when_well_formed(self, stored: str, served: str) -> None:
        assert artifacts.content_type(stored) == served

    def test_only_raster_images_are_inline(self) -> None:
        inline = [t for t in ("image/png", "IMAGE/JPEG", "image/gif", "image/webp; q=1") if artifacts.is_inline(t)]
        assert len(inline) == 4
        assert not any(
            artifacts.is_inline(t) for t in ("image/svg+xml", "text/html", "application/pdf", "image/x-icon")
        )

    def test_urls_keep_slashes_unless_a_browser_would_normalise_the_name(self) -> None:
        owner = Owner("trial", 7)
        assert artifacts.url("/p", owner, "plots/a b.png") == "/p/api/trials/7/artifacts/plots/a%20b.png"
        assert artifacts.url("", owner, "./a.png") == "/api/trials/7/artifacts/.%2Fa.png"
        assert artifacts.url("", owner, "a//b.png") == "/api/trials/7/artifacts/a%2F%2Fb.png"

    def test_a_file_name_survives_quotes_and_non_ascii(self) -> None:
        assert artifacts.disposition('dir/ré"port.csv', False) == (
            "attachment; filename=\"r__port.csv\"; filename*=UTF-8''r%C3%A9%22port.csv"
        )


class TestPages:
    def test_pages_escape_every_user_string_and_carry_no_inline_script(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, _ = api
        for path in (
            "/",
            f"/experiments/{ids['hostile']}",
            f"/trials/{ids['odd']}",
            f"/compare?ids=1,{ids['hostile']}",
        ):
            response = client.get(path)
            assert response.status_code == 200, path
            html = response.text
            assert "<img src=x" not in html
            assert "<script>document" not in html
            assert "&lt;script&gt;" in html or "&lt;</span><span" in html, path
            scripts = re.findall(r"<script[^>]*>", html)
            assert scripts
            assert all(re.search(r'src="[^"]+"', s) for s in scripts), scripts
            assert re.findall(r"<script[^>]*>([^<]+)</script>", html) == []
            assert " on" not in "".join(re.findall(r"<[a-z]+ [^>]*>", html)).replace(" one", "")

    def test_the_store_url_shows_its_password_masked(self, tmp_path: Path) -> None:
        from tracker.store.location import mask_password
        from tracker.ui.app import Dashboard

        assert mask_password("postgresql+psycopg://me:hunter2@db/x") == "postgresql+psycopg://me:***@db/x"
        html = render(
            "error.html",
            store=mask_password("postgresql+psycopg://me:hunter2@db/x"),
            root="",
            status=1,
            message="m",
            params={},
        )
        assert "hunter2" not in html
        assert "me:***@db" in html
        assert Dashboard.context  # the pages take `store` from the repository's safe_url

    def test_markdown_notes_are_sanitised(self) -> None:
        html = str(
            markdown(
                "# Note\n\n<script>alert(1)</script> [link](javascript:alert(1)) <img src=x onerror=alert(1)> **ok**"
            )
        )
        assert "<h1>Note</h1>" in html
        assert "<strong>ok</strong>" in html
        assert "<script" not in html
        assert 'href="javascript:' not in html
        assert "<img" not in html

    def test_the_pages_show_the_tags_notes_provenance_and_artifacts_the_api_serves(
        self, api: tuple[TestClient, dict[str, int], str]
    ) -> None:
        client, ids, _ = api
        e = strict(client.get(f"/api/experiments/{ids['alpha']}"))
        html = client.get(f"/experiments/{ids['alpha']}").text
        assert 'href="/?tag=desk%3Dfx">desk=fx</a>' in html  # a tag links to the list filtered by it
        assert '<td class="tags"><span class="tag" title="fold=all">fold=all</span></td>' in html  # trial tags
        assert "<h1>Why momentum</h1>" in html
        assert "<em>first</em>" in html
        assert f"<td>{e['provenance']['python']}</td>" in html
        assert (
            '<img src="/api/experiments/1/artifacts/history.png" alt="history.png">'.replace("/1/", f"/{ids['alpha']}/")
            in html
        )
        trial = strict(client.get(f"/api/trials/{ids['first']}"))
        html = client.get(f"/trials/{ids['first']}").text
        assert '<span class="tag" title="fold=all">fold=all</span>' in html
        assert "<strong>day 3</strong>" in html
        images = re.findall(r'<img src="([^"]+)"', html)
        assert images == [a["url"] for a in trial["artifacts"] if a["inline"]] != []
        for a in trial["artifacts"]:
            assert f'<a href="{a["url"]}">{a["name"]}</a>' in html
        assert 'data-chart="steps"' in html

    def test_a_hostile_note_renders_as_text(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, ids, _ = api
        for path in (f"/experiments/{ids['hostile']}", f"/trials/{ids['odd']}"):
            html = client.get(path).text
            note = html.split('class="note"', 1)[1].split("</div>", 1)[0]
            assert "&lt;script&gt;document.body.dataset.pwned" in note, path
            assert "<script" not in note, path
            assert "<img" not in note, path


class TestGuard:
    def test_security_headers_on_every_answer(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, _, _ = api
        for path in ("/", "/api/experiments", "/static/app.js", "/api/experiments/999"):
            csp = client.get(path).headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
            assert "default-src 'none'" in csp

    def test_a_request_for_another_host_is_refused_on_loopback(self, store_url: str) -> None:
        seed(store_url)
        with TestClient(create_app(store_url), base_url="http://evil.example") as client:
            assert client.get("/api/experiments").status_code == 421
        # A reverse proxy on this machine connects to loopback and names its own host.
        with TestClient(create_app(store_url, allowed_hosts=("tracker.internal",)), base_url=LOCAL) as client:
            assert client.get("/api/experiments", headers={"host": "tracker.internal"}).status_code == 200

    def test_with_a_token_every_request_must_carry_it(self, tmp_path: Path) -> None:
        url = str(tmp_path / "t.db")
        seed(url)
        with TestClient(create_app(url, token=TOKEN), base_url=LOCAL, follow_redirects=False) as client:
            assert client.get("/api/experiments").status_code == 401
            assert client.get("/").status_code == 401
            assert (
                client.get("/api/experiments", headers={"authorization": "Bearer wrong-token-of-length"}).status_code
                == 401
            )
            assert client.get("/api/experiments", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert client.get("/api/experiments", headers={"x-tracker-token": TOKEN}).status_code == 200
            image = "/api/experiments/1/artifacts/history.png"
            assert client.get(image).status_code == 401
            assert client.get(image, headers={"x-tracker-token": TOKEN}).content == png(8, 5)
            first = client.get(f"/experiments/1?token={TOKEN}&sort=value")
            assert first.status_code == 303
            assert first.headers["location"] == "/experiments/1?sort=value"
            assert "HttpOnly" in first.headers["set-cookie"]
            assert client.get("/experiments/1?sort=value").status_code == 200  # the cookie now carries it
            client.cookies.clear()
            assert client.get("/experiments/1").status_code == 401

    @pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.org", "::"])  # noqa: S104 - never bound
    def test_serving_beyond_loopback_needs_a_token(self, host: str) -> None:
        with pytest.raises(ValidationError, match="needs a token"):
            check_binding(host, None)
        check_binding(host, TOKEN)
        for local in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
            check_binding(local, None)
        with pytest.raises(ValidationError, match="at least 16"):
            check_binding(host, "short")


def snapshot(url: str, tmp: Path) -> Any:
    """Everything the store holds: its files' bytes, or every row of every table on a server."""
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            rows = {t: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{t}"')).all())) for t in tables}
            rows["sequences"] = sorted(
                map(
                    repr,
                    conn.execute(
                        text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
                    ).all(),
                )
            )
        engine.dispose()
        return rows
    if url.startswith("mysql"):
        engine = create_engine(url)
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            rows = {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM `{t}`")).all())) for t in tables}
            rows["auto_increment"] = sorted(
                map(
                    repr,
                    conn.execute(
                        text(
                            "SELECT table_name, auto_increment FROM information_schema.tables "
                            "WHERE table_schema = DATABASE()"
                        )
                    ).all(),
                )
            )
        engine.dispose()
        return rows
    path = Path(url.removeprefix("sqlite:///"))
    files = [p for p in sorted(path.parent.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))]
    return {str(p.relative_to(path.parent)): p.read_bytes() for p in files}


def test_a_session_of_use_leaves_the_store_unchanged(store_url: str, tmp_path: Path) -> None:
    ids = seed(store_url)  # with tags, notes, artifacts and step metrics
    before = snapshot(store_url, tmp_path)
    if not store_url.startswith("postgresql"):
        assert any("artifacts" in name for name in before) != store_url.startswith("sqlite")  # the blob files
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        a, h = ids["alpha"], ids["hostile"]
        for path in (
            "/",
            "/?sort=best_value&order=desc&q=al&max_violation_rate=0.5",
            f"/experiments/{a}",
            f"/experiments/{a}?sort=params.kind&state=complete&ttpt=failed",
            f"/experiments/{a}?goto=3",
            f"/trials/{ids['first']}",
            f"/compare?ids={a},{h}",
            "/api/experiments?sort=n_trials",
            f"/api/experiments/{a}/trials?sort=value&limit=3",
            f"/api/experiments/{a}/history?max_points=50",
            f"/api/experiments/{a}/importance",
            f"/api/experiments/{a}/sample",
            f"/api/trials/{ids['odd']}",
            f"/api/trials/{ids['first']}",
            f"/api/trials/{ids['first']}/artifacts/trades.csv",
            f"/api/trials/{ids['first']}/artifacts/plots/equity%20curve.png",
            f"/api/experiments/{a}/artifacts/history.png",
            f"/api/experiments/{a}/artifacts/missing.png",
            "/?tag=desk=fx",
            f"/api/compare?ids={a},{h}",
            "/api/experiments/12345",
        ):
            assert client.get(path).status_code in (200, 404), path
    assert snapshot(store_url, tmp_path) == before


def test_downsampling_keeps_the_ends_and_each_buckets_extremes_and_skips_nan() -> None:
    from tracker.ui.steps import min_max

    points = [(i, math.nan if i % 7 == 0 else math.sin(i / 9)) for i in range(1, 1_001)]
    kept = min_max(points, 100)
    assert len(kept) <= 100
    assert (kept[0], kept[-1]) == (points[0], points[-1])
    finite = [p for p in points if not math.isnan(p[1])]
    assert min(finite, key=lambda p: p[1]) in kept
    assert max(finite, key=lambda p: p[1]) in kept
    assert all(not math.isnan(v) for _, v in kept[1:-1])
    assert min_max(points[:100], 100) == points[:100]
    with pytest.raises(ValidationError, match="max_points"):
        min_max(points, 3)
