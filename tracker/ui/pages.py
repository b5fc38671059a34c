"""The dashboard's HTML pages: each renders the API's own answer (`tracker.ui.payloads`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tracker.errors import ValidationError
from tracker.read.browser import TrialPageQuery
from tracker.ui import params, pareto, payloads
from tracker.ui.dashboard import Dashboard
from tracker.ui.render import render


def experiment_id(request: Request) -> int:
    """The experiment id in the path; NotFoundError beyond what a store's ids can be."""
    return params.path_id(request, "experiment_id", "experiment")


def trial_id(request: Request) -> int:
    return params.path_id(request, "trial_id", "trial")


def root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def trial_query(request: Request) -> TrialPageQuery:
    return params.trial_query(request.query_params, request.query_params.getlist("state"))


def compare_ids(request: Request) -> list[int]:
    raw = request.query_params.getlist("ids")
    if not raw:
        raise ValidationError("ids", "compare takes 2 or more experiment ids, e.g. /compare?ids=1,2")
    return params.id_list(raw, "ids")


def experiments_page(d: Dashboard, request: Request) -> Response:
    query = params.experiment_query(request.query_params)
    data = d.with_badges(payloads.experiments(d.browser, query))
    return HTMLResponse(render("experiments.html", **d.context(request, data=data, query=query)))


def experiment_page(d: Dashboard, request: Request) -> Response:
    eid = experiment_id(request)
    if request.query_params.get("goto"):
        return _goto(d, request, eid)
    query = params.trial_query(request.query_params, request.query_params.getlist("state"), "value")
    view = payloads.experiment_view(d.browser, eid, query, root(request))
    d.with_overfitting(view["experiment"])
    states = request.query_params.getlist("state")
    front, listed = None, view["experiment"]["objectives"]
    if len(listed) > 1 and d.browser.pareto_ready(eid):
        front = pareto.pareto(d.browser, eid, request.query_params)
    elif len(listed) > 1:  # being computed in the background: the charts load it from the API
        front = pareto.pending(listed, request.query_params)
    return HTMLResponse(
        render(
            "experiment.html",
            **d.context(request, e=view["experiment"], table=view["trials"], states=states, pareto=front),
        )
    )


def _goto(d: Dashboard, request: Request, eid: int) -> Response:
    number = params.int_param(request.query_params, "goto", 0)
    if number < 0:
        raise ValidationError("goto", f"must be a trial number (0 or more), got {number}")
    return RedirectResponse(f"{root(request)}/trials/{params.trial_by_number(d.browser, eid, number)}", 303)


def trial_page(d: Dashboard, request: Request) -> Response:
    data = payloads.trial(d.browser, trial_id(request), root(request))
    against = request.query_params.get("diff")
    if against:
        data["diff"] = payloads.strategy_diff(d.browser, data, against)
    return HTMLResponse(render("trial.html", **d.context(request, t=data)))


def compare_page(d: Dashboard, request: Request) -> Response:
    ids = compare_ids(request)
    data = d.with_family(payloads.compare(d.browser, ids))
    return HTMLResponse(render("compare.html", **d.context(request, data=data, ids=",".join(map(str, ids)))))
