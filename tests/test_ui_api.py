"""The dashboard's JSON API on every backend: the shape of every answer, strict JSON, errors,
the token and Host guards, the security headers, escaping, and a session that leaves the store
exactly as it was."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from starlette.testclient import TestClient

from tracker import ExperimentTracker, ValidationError
from tracker.ui import create_app
from tracker.ui.render import markdown, render
from tracker.ui.security import check_binding

HOSTILE = '<script>document.body.dataset.pwned="1"</script><img src=x onerror="document.body.dataset.pwned=1">'
LOCAL = "http://127.0.0.1"
TOKEN = "s3cret-token-of-some-length"  # noqa: S105 - a test token


def seed(url: str) -> dict[str, int]:
    with ExperimentTracker(url) as t:
        a = t.create_experiment("alpha", "Momentum", "tpe", {"n_trials": 30})
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
        b = t.create_experiment(HOSTILE, HOSTILE, "grid", objective="loss", direction="minimize")
        odd = t.log_trial(
            b, 0, {HOSTILE: HOSTILE, "inf": math.inf}, {"loss": math.inf, "nan": math.nan}, strategy_code=HOSTILE
        )
        t.log_trial(b, 1, {"x": 1}, {"loss": 2.0})
        t.log_trial(b, 2, {"x": 2}, {"loss": math.nan}, state="failed")
    return {"alpha": a, "hostile": b, "first": trials[0], "odd": odd}


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
    "tags": list,
    "version": str,
}
PAGE = {"items": list, "total": int, "offset": int, "limit": int, "next": (str, type(None))}
TRIAL_ROW = {
    "id": int,
    "trial_number": int,
    "state": str,
    "value": NUMBER,
    "ttpt": (str, type(None)),
    "params": dict,
    "performance": dict,
}


class TestSchema:
    def test_every_endpoint_answers_its_documented_shape(self, api: tuple[TestClient, dict[str, int], str]) -> None:
        client, ids, _ = api
        a = ids["alpha"]
        listing = strict(client.get("/api/experiments"))
        shape(listing, {**PAGE, "items": [EXPERIMENT], "sort": str, "order": str})
        assert listing["total"] == 2
        detail = strict(client.get(f"/api/experiments/{a}"))
        shape(detail, {**EXPERIMENT, "config": dict, "summary": type(None), "best_trial": dict, "improvement": NUMBER})
        assert detail["best_trial"]["trial_number"] == 29
        assert (detail["n_trials"], detail["ttpt_checks"], detail["ttpt_failed"]) == (30, 15, 5)
        trials = strict(client.get(f"/api/experiments/{a}/trials?sort=performance.drawdown&order=asc&limit=5"))
        shape(trials, {**PAGE, "items": [TRIAL_ROW], "sort": str, "order": str, "columns": dict})
        assert [t["trial_number"] for t in trials["items"]] == [29, 28, 27, 26, 25]
        assert trials["columns"] == {"performance": ["sharpe", "drawdown"], "params": ["kind", "lookback"]}
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
        assert trial["performance"] == {"loss": None, "nan": None}
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
            ("/api/experiments/999", 404, None),
            ("/api/experiments/999/trials", 404, None),
            ("/api/trials/99999", 404, None),
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
        from tracker.ui.app import Dashboard
        from tracker.urls import mask_password

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

    def test_tags_notes_and_artifacts_show_when_a_trial_carries_them(self) -> None:
        t = {
            "id": 1,
            "experiment": {"id": 1, "name": "e", "objective": "sharpe"},
            "trial_number": 3,
            "state": "complete",
            "value": 1.0,
            "params": {},
            "performance": {},
            "rank": 1,
            "n_ranked": 1,
            "ttpt_results": [],
            "duration_s": None,
            "tags": ["<b>x</b>"],
            "notes": "*careful* <script>bad()</script>",
            "artifacts": [
                {"name": "equity", "data_uri": "data:image/png;base64,iVBORw0KGgo="},
                {"name": "evil", "data_uri": "javascript:alert(1)"},
            ],
        }
        html = render("trial.html", t=t, store="s", root="", params={})
        assert "<em>careful</em>" in html
        assert "bad()" not in html or "&lt;script&gt;" in html
        assert "<script>bad" not in html
        assert "&lt;b&gt;x&lt;/b&gt;" in html
        assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
        assert "javascript:alert" not in html


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
        with TestClient(
            create_app(store_url, allowed_hosts=("tracker.internal",)), base_url="http://tracker.internal"
        ) as client:
            assert client.get("/api/experiments").status_code == 200

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
    return {
        p.name: p.read_bytes()
        for p in sorted(path.parent.iterdir())
        if p.name.startswith(path.name) and not p.name.endswith(("-wal", "-shm"))
    }


def test_a_session_of_use_leaves_the_store_unchanged(store_url: str, tmp_path: Path) -> None:
    ids = seed(store_url)
    before = snapshot(store_url, tmp_path)
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
            f"/api/compare?ids={a},{h}",
            "/api/experiments/12345",
        ):
            assert client.get(path).status_code in (200, 404), path
    assert snapshot(store_url, tmp_path) == before
