"""The /api/v1 endpoints. Add `*api_routes.routes` to the app's routes and
`ApiProblem: handle_problem` to its exception handlers."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal import audit
from portal.api.auth import api_meta, authenticate
from portal.audit import Actor
from portal.db import transaction
from portal.runtime import runtime

PREFIX = "/api/v1"


async def whoami(request: Request) -> Response:
    """Which key is calling and what it may do: the first call an integrator makes."""
    rt = runtime(request)
    key = await run_in_threadpool(authenticate, rt.engine, request, None)
    meta = api_meta(request)

    def work() -> None:
        with transaction(rt.engine) as db:
            audit.record(db, Actor("api", key.name), "api.whoami", "api_key", key.id, meta)

    await run_in_threadpool(work)
    return JSONResponse({"name": key.name, "scopes": key.scopes})


routes: list[BaseRoute] = [Route(f"{PREFIX}/whoami", whoami, methods=["GET"])]
