"""What a security review of the dashboard found, each closed and checked on every backend: the
token rule on every entry point (the ASGI factory under uvicorn included), tokens a browser can
carry, the Cookie header as browsers send it, redirects that stay on this origin, no 500s for
numbers beyond 64 bits, the JSON error shape on every /api/ error, and artifacts streamed with
byte ranges."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.test_ui_api import HOSTILE, LOCAL, TOKEN, seed, strict
from tracker import ExperimentTracker, ValidationError
from tracker.read.downloads import CHUNK
from tracker.ui import create_app
from tracker.ui.security import check_binding, cookie_value

BIG = 2**63
ROOT = Path(__file__).resolve().parent.parent


def call(app: Any, path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """The status and headers of one request whose path is sent as given (an HTTP client would
    read `//host/` as another host)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), *(headers or [])],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "http_version": "1.1",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return {"status": start["status"], "headers": {k.decode(): v.decode() for k, v in start["headers"]}}


class TestTokens:
    @pytest.mark.parametrize("token", [" " * 16, "\t" * 20, "sixteen chars ok", "x" * 15, "a;b" * 8, "ü\n" * 9])
    def test_a_token_a_browser_cannot_carry_or_too_short_is_refused(self, token: str, tmp_path: Path) -> None:
        url = str(tmp_path / "t.db")
        seed(url)
        with pytest.raises(ValidationError, match="--token"):
            check_binding("0.0.0.0", token)  # noqa: S104 - never bound
        with pytest.raises(ValidationError, match="--token"):
            create_app(url, token=token)

    def test_the_token_cookie_is_found_beside_cookies_simplecookie_refuses(self, tmp_path: Path) -> None:
        url = str(tmp_path / "t.db")
        seed(url)
        header = f'other=a b; x={{"a":1}}; tracker_token={TOKEN}; last="q"'
        assert cookie_value(header, "tracker_token") == TOKEN
        assert cookie_value(header, "x") == '{"a":1}'
        assert cookie_value("tracker_token_2=no", "tracker_token") is None
        with TestClient(create_app(url, token=TOKEN), base_url=LOCAL) as client:
            assert client.get("/api/experiments", headers={"cookie": header}).status_code == 200
            assert client.get("/api/experiments", headers={"cookie": "other=a b; x={"}).status_code == 401
            wrong = client.get("/api/experiments", headers={"cookie": "tracker_token=wrong-token-0123456"})
            assert wrong.status_code == 401

    @pytest.mark.parametrize("path", ["//evil.example/", "///evil.example/x", "/\\evil.example/", "/\\/evil.example"])
    def test_a_token_redirect_stays_on_this_origin(self, path: str, tmp_path: Path) -> None:
        url = str(tmp_path / "t.db")
        seed(url)
        answer = call(create_app(url, token=TOKEN), path, f"token={TOKEN}&a=1")
        assert answer["status"] == 303
        location = answer["headers"]["location"]
        assert location.startswith("/"), location
        assert location[1:2] not in ("/", "\\"), location
        assert location.endswith("?a=1")


def test_the_json_error_shape_on_every_api_error(store_url: str) -> None:
    ids = seed(store_url)
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        for path in ("/api/experiments/abc", "/api/nothing", "/api/trials/x/artifacts/y", "/api/experiments/1/nope"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/json", path
            assert set(strict(response)) == {"error", "message"}, path
        posted = client.post("/api/experiments")
        assert posted.status_code == 405
        assert strict(posted)["error"] == "MethodNotAllowed"
        assert client.get("/experiments/abc").headers["content-type"].startswith("text/html")
        big = [
            (f"/api/experiments/{BIG}", 404),
            (f"/api/experiments/{BIG * 4}/trials", 404),
            (f"/api/trials/{BIG}", 404),
            (f"/api/trials/{BIG}/artifacts/x.png", 404),
            (f"/api/experiments/{BIG}/artifacts/x.png", 404),
            (f"/api/experiments?offset={BIG}", 400),
            (f"/api/experiments?ids={BIG}", 400),
            (f"/api/experiments?page={BIG}", 400),
            (f"/api/experiments/{ids['alpha']}/trials?offset={BIG}", 400),
            (f"/api/experiments/{ids['alpha']}/history?max_points={BIG}", 400),
            (f"/api/compare?ids=1,{BIG}", 400),
        ]
        for path, status in big:
            response = client.get(path)
            assert response.status_code == status, path
            assert set(strict(response)) == {"error", "message"}, path
        for sort in ("performance.sharpe", "value", "trial_number", "params.kind"):
            last = client.get(f"/api/experiments/{ids['alpha']}/trials?offset={BIG - 1}&sort={sort}")
            assert last.status_code == 200, sort
            assert strict(last)["items"] == [], sort
        for path, status in [
            (f"/experiments/{BIG}", 404),
            (f"/trials/{BIG}", 404),
            (f"/experiments/{ids['alpha']}?goto={BIG}", 400),
            (f"/experiments/{ids['alpha']}?goto={BIG - 1}", 404),
            (f"/experiments/{ids['alpha']}?goto=-{BIG}", 400),
        ]:
            assert client.get(path, follow_redirects=False).status_code == status, path


def test_a_cursor_beyond_64_bits_is_refused() -> None:
    from tracker.read.browser import TrialPageQuery, encode_cursor

    for cursor in ((BIG, 1.0, 1), (0, 1.0, BIG), (0, None, -BIG - 1)):
        with pytest.raises(ValidationError, match="after"):
            TrialPageQuery(after=encode_cursor(cursor))


def test_artifacts_stream_in_pieces_and_answer_byte_ranges(store_url: str) -> None:
    ids = seed(store_url)
    noise = random.Random(7).randbytes(CHUNK * 2 + 12_345)  # stored as it is: zstd cannot shrink it
    text = b"".join(b"row %d\n" % i for i in range(400_000))  # stored zstd-packed
    with ExperimentTracker(store_url) as t:
        t.log_artifact(("trial", ids["first"]), noise, name="noise.bin")
        t.log_artifact(("trial", ids["first"]), text, name="rows.txt")
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        for name, data in (("noise.bin", noise), ("rows.txt", text)):
            url = f"/api/trials/{ids['first']}/artifacts/{name}"
            whole = client.get(url)
            assert whole.status_code == 200, name
            assert whole.content == data, name
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-length"] == str(len(data))
            n = len(data)
            for header, (start, stop) in {
                "bytes=0-99": (0, 100),
                f"bytes={CHUNK - 5}-{CHUNK + 4}": (CHUNK - 5, CHUNK + 5),
                f"bytes={n - 10}-": (n - 10, n),
                "bytes=-7": (n - 7, n),
                f"bytes=5-{n * 2}": (5, n),
            }.items():
                part = client.get(url, headers={"range": header})
                assert part.status_code == 206, (name, header)
                assert part.content == data[start:stop], (name, header)
                assert part.headers["content-range"] == f"bytes {start}-{stop - 1}/{n}"
            refused = client.get(url, headers={"range": f"bytes={n}-"})
            assert refused.status_code == 416
            assert refused.headers["content-range"] == f"bytes */{n}"
            stale = client.get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
            assert stale.status_code == 200
            assert stale.content == data
            assert client.get(url, headers={"range": "bytes=0-1,4-5"}).content == data


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else str(address)


def _get(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:  # noqa: S310
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("with_token", [False, True])
def test_the_asgi_factory_bound_to_every_address_needs_a_token(tmp_path: Path, with_token: bool) -> None:
    """`uvicorn --factory tracker.ui:create_app --host 0.0.0.0`: without a token, a client of
    another machine is refused even when it names localhost in its Host header."""
    outward = _outward_address()
    if outward is None:
        pytest.fail("this test needs a network address other than loopback")
    url = str(tmp_path / "t.db")
    seed(url)
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 - the point of the test
        port = s.getsockname()[1]
    env = {**os.environ, "TRACKER_URL": url}
    env.pop("TRACKER_UI_TOKEN", None)
    if with_token:
        env["TRACKER_UI_TOKEN"] = TOKEN
    command = [sys.executable, "-m", "uvicorn", "--factory", "tracker.ui:create_app", "--host", "0.0.0.0"]  # noqa: S104
    server = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr
                assert time.monotonic() < deadline
                time.sleep(0.1)
        lan = f"http://{outward}:{port}/api/experiments"
        local = f"http://127.0.0.1:{port}/api/experiments"
        if with_token:
            assert _get(lan, {"host": "localhost"}) == 401
            assert _get(lan, {"host": "localhost", "authorization": f"Bearer {TOKEN}"}) == 200
        else:
            assert _get(lan, {"host": "localhost"}) == 403
            assert _get(local, {}) == 200
    finally:
        server.terminate()
        server.wait(20)


def test_the_strategy_diff_is_computed_on_the_server_and_escaped(store_url: str) -> None:
    ids = seed(store_url)
    with ExperimentTracker(store_url) as t:
        changed = t.log_trial(
            ids["alpha"], 30, {"lookback": 1, "kind": "ema"}, {"sharpe": -1.0}, strategy_code=f"# {HOSTILE}\n"
        )
    with TestClient(create_app(store_url), base_url=LOCAL) as client:
        best = client.get(f"/trials/{changed}?diff=best")
        assert best.status_code == 200
        box = best.text.split('id="strategy-diff"', 1)[1].split("</div>\n</div>", 1)[0]
        assert "trial 29" in box  # the best trial
        assert "shift" in box
        assert "&lt;script&gt;" in box
        assert "<script>document" not in box
        assert 'class="gd"' in box
        assert 'class="gi"' in box
        same = client.get(f"/trials/{ids['first']}?diff=5")
        assert "is the same" in same.text
        assert client.get(f"/trials/{changed}?diff=abc").status_code == 400
        assert client.get(f"/trials/{changed}?diff=999").status_code == 404
        assert client.get(f"/trials/{changed}").text.count('id="strategy-diff"') == 0


def test_the_dashboard_reads_sqlite_without_writing_or_leaving_files(tmp_path: Path) -> None:
    """The reader's connections refuse writes, and closing the reader leaves no -wal or -shm file."""
    import sqlite3

    from tracker.stores import open_reader

    url = str(tmp_path / "ro.db")
    seed(url)
    before = sorted(p.name for p in tmp_path.iterdir())
    reader: Any = open_reader(url)
    try:
        with reader.uow.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw.execute("SELECT count(*) FROM experiments").fetchone()[0] > 0
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.execute("CREATE TABLE intruder (a)")
    finally:
        reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
