"""The /api/v1 endpoints. Add `*api_routes.routes` to the app's routes and
`ApiProblem: handle_problem` to its exception handlers."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal import audit
from portal.api import clients, docs_page, feed, openapi
from portal.api.auth import api_meta, authenticate
from portal.api.keys import ApiKey
from portal.api.problems import ApiProblem, problem_response
from portal.audit import Actor
from portal.runtime import runtime

PREFIX = "/api/v1"


async def whoami(request: Request) -> Response:
    """Which key is calling and what it may do: the first call an integrator makes."""
    rt = runtime(request)
    meta = api_meta(request)

    def work() -> ApiKey:
        key = authenticate(rt.engine, request, None)
        audit.record_alone(rt.engine, Actor("api", key.name), "api.whoami", "api_key", key.id, meta)
        return key

    key = await rt.in_db_thread(work)
    return JSONResponse({"name": key.name, "scopes": key.scopes})


def not_found_problem(
    request: Request, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """The app's 404/405 answer for paths under /api/: problem+json, not the HTML page.

    `headers` are the router's: a 405 carries `Allow`, which RFC 9110 requires."""
    if status == 405:
        problem = ApiProblem(
            405,
            "Method Not Allowed",
            f"{request.method} is not allowed here.",
            headers={k: v for k, v in (headers or {}).items() if k.lower() == "allow"},
        )
    else:
        problem = ApiProblem(
            404, "Not Found", "There is no such endpoint; see /api/v1/openapi.json."
        )
    return problem_response(problem)


routes: list[BaseRoute] = [
    Route(f"{PREFIX}/whoami", whoami, methods=["GET"]),
    Route(f"{PREFIX}/clients", clients.list_clients, methods=["GET"]),
    Route(f"{PREFIX}/clients/{{client_id}}", clients.get_client, methods=["GET"]),
    Route(f"{PREFIX}/clients/{{client_id}}/mrn", clients.put_mrn, methods=["PUT"]),
    Route(f"{PREFIX}/changes", feed.list_changes, methods=["GET"]),
    Route(f"{PREFIX}/openapi.json", openapi.openapi_json, methods=["GET"]),
    Route(f"{PREFIX}/docs", docs_page.docs, methods=["GET"]),
]
