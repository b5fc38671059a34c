"""The dashboard's ASGI application: pages and their JSON API over one read-only store."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tracker import stores
from tracker.errors import NotFoundError, StoreError, TrackerError, ValidationError
from tracker.read.browser import ExperimentPageQuery, TrialPageQuery, encode_cursor
from tracker.store.records import Owner, OwnerKind
from tracker.store.repository import Repository
from tracker.ui import artifacts, payloads
from tracker.ui.render import code_css, render
from tracker.ui.security import Guard, is_loopback

STATIC = Path(__file__).parent / "static"
IMPORTANCE_TTL_S = 60.0
HISTORY_POINTS = 2_000


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return payloads.dumps(content)


class Dashboard:
    """The store and what the handlers share."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.browser = stores.browser_of(repository)
        self.store = repository.location.safe_url
        self._importance: dict[int, tuple[int, float, dict[str, Any]]] = {}
        self._importance_lock = threading.Lock()

    def warm_up(self) -> None:
        with contextlib.suppress(TrackerError):
            self.browser.experiments(ExperimentPageQuery(limit=1))

    def context(self, request: Request, **values: Any) -> dict[str, Any]:
        return {"store": self.store, "root": request.scope.get("root_path", ""), "params": _params(request), **values}

    def importance(self, experiment_id: int) -> dict[str, Any]:
        """Parameter importance on the sample, computed at most once a minute per experiment
        while the study grows (it takes a second or two)."""
        from tracker.ui.importance import param_importances

        o = self.browser.overview(experiment_id)
        with self._importance_lock:
            cached = self._importance.get(experiment_id)
            if cached and (cached[0] == o.n_trials or time.monotonic() - cached[1] < IMPORTANCE_TTL_S):
                return cached[2]
        sample = self.browser.sample(experiment_id)
        started = time.perf_counter()
        values = param_importances(sample, o.experiment.direction)
        answer = {
            "evaluator": "optuna.importance.PedAnovaImportanceEvaluator()",
            "sample": sample.description,
            "n": len(sample.trials),
            "importances": values,
            "seconds": round(time.perf_counter() - started, 3),
        }
        with self._importance_lock:
            self._importance[experiment_id] = (o.n_trials, time.monotonic(), answer)
        return answer


def _params(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if key == "state" or len(values) > 1 else values[0]
    return out


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    url: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    loopback_only: bool = True,
    allowed_hosts: tuple[str, ...] = (),
) -> Any:
    """An ASGI app that serves the store at `url` (default $TRACKER_URL, else ./experiments.db)
    read-only. With `token`, every request must carry it (see `tracker.ui.security`). With
    `loopback_only`, requests must be addressed to a loopback host (or one of `allowed_hosts`).
    Raises StoreError (or a subclass) when the store cannot be opened; it never creates one."""
    from tracker.stores import open_reader

    dashboard = Dashboard(open_reader(url))
    routes = [
        Route("/", _page(dashboard, _experiments_page)),
        Route("/experiments/{experiment_id:int}", _page(dashboard, _experiment_page)),
        Route("/trials/{trial_id:int}", _page(dashboard, _trial_page)),
        Route("/compare", _page(dashboard, _compare_page)),
        Route("/api", _api(dashboard, lambda d, r: _endpoints())),
        Route(
            "/api/experiments",
            _api(dashboard, lambda d, r: payloads.experiments(d.browser, payloads.experiment_query(r.query_params))),
        ),
        Route(
            "/api/experiments/{experiment_id:int}",
            _api(dashboard, lambda d, r: payloads.experiment(d.browser, d.repository, _id(r), _root(r))),
        ),
        Route("/api/experiments/{experiment_id:int}/artifacts/{name:path}", _artifact(dashboard, "experiment")),
        Route(
            "/api/experiments/{experiment_id:int}/trials",
            _api(dashboard, lambda d, r: payloads.trials(d.browser, _id(r), _trial_query(r))),
        ),
        Route(
            "/api/experiments/{experiment_id:int}/history",
            _api(
                dashboard,
                lambda d, r: payloads.history(
                    d.browser, _id(r), payloads.int_param(r.query_params, "max_points", HISTORY_POINTS)
                ),
            ),
        ),
        Route(
            "/api/experiments/{experiment_id:int}/sample",
            _api(
                dashboard,
                lambda d, r: payloads.sample(d.browser.sample(_id(r)), d.browser.overview(_id(r)).experiment.direction),
            ),
        ),
        Route("/api/experiments/{experiment_id:int}/importance", _api(dashboard, lambda d, r: d.importance(_id(r)))),
        Route(
            "/api/trials/{trial_id:int}",
            _api(dashboard, lambda d, r: payloads.trial(d.browser, d.repository, r.path_params["trial_id"], _root(r))),
        ),
        Route("/api/trials/{trial_id:int}/artifacts/{name:path}", _artifact(dashboard, "trial")),
        Route("/api/compare", _api(dashboard, lambda d, r: payloads.compare(d.browser, _compare_ids(r)))),
        Route("/static/{name:path}", _static),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Build the digests (one pass over the store) while the user opens the page.
        threading.Thread(target=dashboard.warm_up, name="tracker-ui-warm-up", daemon=True).start()
        yield
        dashboard.repository.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dashboard
    return Guard(app, token, loopback_only, allowed_hosts)


def _id(request: Request) -> int:
    return int(request.path_params["experiment_id"])


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _trial_query(request: Request) -> TrialPageQuery:
    return payloads.trial_query(request.query_params, request.query_params.getlist("state"))


def _compare_ids(request: Request) -> list[int]:
    raw = request.query_params.getlist("ids")
    if not raw:
        raise ValidationError("ids", "compare takes 2 or more experiment ids, e.g. /compare?ids=1,2")
    return payloads.id_list(raw, "ids")


def _endpoints() -> dict[str, Any]:
    return {
        "endpoints": [
            "/api/experiments?offset=&limit=&sort=&order=&q=&max_violation_rate=&min_best=&created_after=&created_before=&tag=",
            "/api/experiments/{id}",
            "/api/experiments/{id}/artifacts/{name}",
            "/api/experiments/{id}/trials?offset=&limit=&sort=&order=&state=&ttpt=&after=",
            "/api/experiments/{id}/history?max_points=",
            "/api/experiments/{id}/sample",
            "/api/experiments/{id}/importance",
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


def _api(dashboard: Dashboard, build: Callable[[Dashboard, Request], Any]) -> Handler:
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            answer = await run_in_threadpool(build, dashboard, request)
        except TrackerError as exc:
            return JSONAnswer({"error": type(exc).__name__, "message": str(exc)}, status_code=_status(exc))
        return JSONAnswer(answer, headers={"cache-control": "no-store"})

    return endpoint


def _artifact(dashboard: Dashboard, kind: OwnerKind) -> Handler:
    """The bytes of an artifact, read-only: raster images for display, anything else as a download
    (see `tracker.ui.artifacts`); a missing one answers 404 in the API's JSON."""
    from starlette.concurrency import run_in_threadpool

    def read(request: Request) -> Response:
        owner = Owner(kind, int(request.path_params[f"{kind}_id"]))
        name = request.path_params["name"]
        found = [a for a in dashboard.repository.list_artifacts(owner) if a.name == name]
        if not found:
            raise NotFoundError(f"{kind} {owner.id} has no artifact named {name!r}")
        data = dashboard.repository.read_artifact(owner, name)
        inline = artifacts.is_inline(found[0].media_type)
        headers = {
            "content-type": artifacts.content_type(found[0].media_type),
            "content-disposition": artifacts.disposition(name, inline),
            "content-security-policy": artifacts.SANDBOX,
            "cache-control": "no-cache",
            "etag": f'"{found[0].sha256}"',
        }
        return Response(data, headers=headers)

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(read, request)
        except TrackerError as exc:
            return JSONAnswer({"error": type(exc).__name__, "message": str(exc)}, status_code=_status(exc))

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
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(path, headers={"cache-control": "no-cache"})


# pages -----------------------------------------------------------------------------------------


def _experiments_page(d: Dashboard, request: Request) -> Response:
    query = payloads.experiment_query(request.query_params)
    data = payloads.experiments(d.browser, query)
    return HTMLResponse(render("experiments.html", **d.context(request, data=data, query=query)))


def _experiment_page(d: Dashboard, request: Request) -> Response:
    experiment_id = _id(request)
    goto = request.query_params.get("goto")
    if goto:
        number = payloads.int_param(request.query_params, "goto", 0)
        cursor = encode_cursor((0, None, number - 1))
        found = d.browser.trials(experiment_id, TrialPageQuery(limit=1, after=cursor))
        if found.items and found.items[0].trial.trial_number == number:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/trials/{found.items[0].trial.id}", 303)
        raise NotFoundError(f"experiment {experiment_id} has no trial number {number}")
    summary = payloads.experiment(d.browser, d.repository, experiment_id, _root(request))
    query = _trial_query(request)
    table = payloads.trials(d.browser, experiment_id, query)
    return HTMLResponse(
        render(
            "experiment.html",
            **d.context(request, e=summary, table=table, query=query, states=request.query_params.getlist("state")),
        )
    )


def _trial_page(d: Dashboard, request: Request) -> Response:
    data = payloads.trial(d.browser, d.repository, request.path_params["trial_id"], _root(request))
    return HTMLResponse(render("trial.html", **d.context(request, t=data)))


def _compare_page(d: Dashboard, request: Request) -> Response:
    ids = _compare_ids(request)
    data = payloads.compare(d.browser, ids)
    return HTMLResponse(render("compare.html", **d.context(request, data=data, ids=",".join(map(str, ids)))))


__all__ = ["create_app", "is_loopback"]
