"""The dashboard's ASGI application: pages and their JSON API over one read-only store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from tracker.errors import NotFoundError, StoreError, TrackerError, ValidationError
from tracker.store.records import OwnerKind
from tracker.ui import download, pages, params, pareto, payloads
from tracker.ui.dashboard import Dashboard
from tracker.ui.pages import compare_ids, experiment_id, root, trial_id, trial_query
from tracker.ui.render import code_css, render
from tracker.ui.security import TOKEN_ENV, Guard, check_token, is_loopback

STATIC = Path(__file__).parent / "static"
IMPORTANCE_TTL_S = 60.0
HISTORY_POINTS = 2_000


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return payloads.dumps(content)


Handler = Callable[[Request], Awaitable[Response]]
Build = Callable[[Dashboard, Request], Any]

API: dict[str, Build] = {
    "/api": lambda d, r: _endpoints(),
    "/api/experiments": lambda d, r: d.with_badges(
        payloads.experiments(d.browser, params.experiment_query(r.query_params))
    ),
    "/api/experiments/{experiment_id:int}": lambda d, r: d.with_overfitting(
        payloads.experiment(d.browser, experiment_id(r), root(r))
    ),
    "/api/experiments/{experiment_id:int}/overfitting": lambda d, r: d.logits(experiment_id(r)),
    "/api/experiments/{experiment_id:int}/trials": lambda d, r: payloads.trials(
        d.browser, experiment_id(r), trial_query(r)
    ),
    "/api/experiments/{experiment_id:int}/history": lambda d, r: payloads.history(
        d.browser, experiment_id(r), params.int_param(r.query_params, "max_points", HISTORY_POINTS)
    ),
    "/api/experiments/{experiment_id:int}/pareto": lambda d, r: pareto.pareto(
        d.browser, experiment_id(r), r.query_params
    ),
    "/api/experiments/{experiment_id:int}/sample": lambda d, r: payloads.sample_of(d.browser, experiment_id(r)),
    "/api/experiments/{experiment_id:int}/importance": lambda d, r: d.importance(experiment_id(r)),
    "/api/trials/{trial_id:int}": lambda d, r: payloads.trial(d.browser, trial_id(r), root(r)),
    "/api/compare": lambda d, r: d.with_family(payloads.compare(d.browser, compare_ids(r))),
}
PAGES: dict[str, Callable[[Dashboard, Request], Response]] = {
    "/": pages.experiments_page,
    "/experiments/{experiment_id:int}": pages.experiment_page,
    "/trials/{trial_id:int}": pages.trial_page,
    "/compare": pages.compare_page,
}
ARTIFACTS: dict[str, OwnerKind] = {
    "/api/experiments/{experiment_id:int}/artifacts/{name:path}": "experiment",
    "/api/trials/{trial_id:int}/artifacts/{name:path}": "trial",
}


def create_app(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    loopback_only: bool = True,
    allowed_hosts: tuple[str, ...] = (),
) -> Any:
    """An ASGI app that serves the store at `url` (default $TRACKER_URL, else ./experiments.db)
    read-only; for any ASGI server, e.g. `uvicorn --factory tracker.ui:create_app`.

    `token` (default $TRACKER_UI_TOKEN): every request must carry it (see `tracker.ui.security`).
    Without one, the app answers only requests that arrive on a loopback address, whatever
    address the server listens on. With `loopback_only`, requests must also be addressed to a
    loopback host name (or one of `allowed_hosts`). Raises ValidationError for a weak token,
    StoreError (or a subclass) when the store cannot be opened; it never creates one."""
    from tracker.stores import open_reader

    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    guard_args = (token, loopback_only, allowed_hosts)
    if token is not None:
        check_token(token)  # before opening the store
    dashboard = Dashboard(open_reader(url))
    routes = [Route(path, _page(dashboard, build)) for path, build in PAGES.items()]
    routes += [Route(path, _api(dashboard, build)) for path, build in API.items()]
    routes += [Route(path, _artifact(dashboard, kind), methods=["GET", "HEAD"]) for path, kind in ARTIFACTS.items()]
    routes += [Route("/static/{name:path}", _static), Route("/favicon.ico", lambda r: Response(status_code=204))]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Build the digests (one pass over the store) while the user opens the page.
        dashboard.warm_up()
        yield
        dashboard.repository.close()

    handlers = {HTTPException: _http_error, Exception: _server_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.dashboard = dashboard
    return Guard(app, *guard_args)


def _endpoints() -> dict[str, Any]:
    return {
        "endpoints": [
            "/api/experiments?offset=&limit=&sort=&order=&q=&max_violation_rate=&min_best=&created_after=&created_before=&tag=",
            "/api/experiments/{id}",
            "/api/experiments/{id}/artifacts/{name}",
            "/api/experiments/{id}/trials?offset=&limit=&sort=&order=&state=&ttpt=&after=",
            "/api/experiments/{id}/history?max_points=",
            "/api/experiments/{id}/pareto?x=&y=&max_points=",
            "/api/experiments/{id}/sample",
            "/api/experiments/{id}/importance",
            "/api/experiments/{id}/overfitting",
            "/api/trials/{id}",
            "/api/trials/{id}/artifacts/{name}",
            "/api/compare?ids=1,2",
        ],
        "docs": "docs/ui.md",
    }


def _status(exc: TrackerError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ValidationError):
        return 400
    return 503 if isinstance(exc, StoreError) else 500


def _in_api(request: Request) -> bool:
    path = str(request.scope["path"])
    path = path.removeprefix(root(request)) if root(request) else path
    return path == "/api" or path.startswith("/api/")


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    """An error in the API's JSON shape under /api/, as an HTML page elsewhere."""
    if _in_api(request):
        return JSONAnswer({"error": kind, "message": message}, status_code=status)
    return HTMLResponse(
        render("error.html", store="", root=root(request), params={}, status=status, message=message),
        status_code=status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    kinds = {404: "NotFound", 405: "MethodNotAllowed"}
    message = f"no such address: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    return _error(request, exc.status_code, kinds.get(exc.status_code, "HTTPError"), message)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(request, 500, "InternalError", f"the dashboard failed on this request ({type(exc).__name__})")


def _api(dashboard: Dashboard, build: Build) -> Handler:
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            answer = await run_in_threadpool(build, dashboard, request)
        except TrackerError as exc:
            return _error(request, _status(exc), type(exc).__name__, str(exc))
        return JSONAnswer(answer, headers={"cache-control": "no-store"})

    return endpoint


def _artifact(dashboard: Dashboard, kind: OwnerKind) -> Handler:
    """The bytes of an artifact, streamed (see `tracker.ui.download`); a missing one answers 404
    in the API's JSON."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(download.respond, dashboard.browser, kind, request)
        except TrackerError as exc:
            return _error(request, _status(exc), type(exc).__name__, str(exc))

    return endpoint


def _page(dashboard: Dashboard, build: Callable[[Dashboard, Request], Response]) -> Handler:
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(build, dashboard, request)
        except TrackerError as exc:
            html = render("error.html", **dashboard.context(request, status=_status(exc), message=str(exc)))
            return HTMLResponse(html, status_code=_status(exc))

    return endpoint


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    cache = {"cache-control": "public, max-age=86400"}
    if name == "plotly.min.js":
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", headers=cache)
    if name == "code.css":
        return Response(code_css(), media_type="text/css", headers=cache)
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, headers={"cache-control": "no-cache"})


__all__ = ["create_app", "is_loopback"]
