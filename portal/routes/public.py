"""Pages anyone may see, and health checks."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.db import transaction
from portal.migrations import SchemaNotCurrent, check_current
from portal.models import Practice
from portal.runtime import runtime
from portal.templating import render

# Load balancers give up on a probe after a second or two; answer within that.
READY_TIMEOUT = 2.0


async def home(request: Request) -> Response:
    rt = runtime(request)

    def work() -> Practice | None:
        with transaction(rt.engine, read_only=True) as db:
            return db.get(Practice, 1)

    return render(request, "public/home.html", {"practice": await run_in_threadpool(work)})


# The liveness answer never changes: encoded once (JSON encoding was a tenth of a probe's cost).
HEALTHY = b'{"status":"ok"}'


async def healthz(request: Request) -> Response:
    return Response(HEALTHY, media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready when the database answers a query now (within READY_TIMEOUT) at the current
    schema; 503 with the reason otherwise. `/healthz` only says the process is alive."""
    rt = runtime(request)

    def work() -> str | None:
        try:
            with rt.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            if not rt.schema_checked:
                check_current(rt.settings, rt.engine)  # once: it reads every migration script
                rt.schema_checked = True
        except SchemaNotCurrent:
            return "database schema is not current"
        except Exception as exc:  # the answer is "not ready", whatever broke
            return f"database unavailable ({type(exc).__name__})"
        return None

    # One probe at a time: a probe stuck on an unanswering server keeps its thread until the
    # connect timeout; checks meanwhile wait on that probe instead of piling up threads.
    probe: asyncio.Future[str | None] | None = getattr(request.app.state, "readiness_probe", None)
    if probe is None or probe.done() or probe.get_loop() is not asyncio.get_running_loop():
        probe = request.app.state.readiness_probe = asyncio.ensure_future(run_in_threadpool(work))
    try:
        problem = await asyncio.wait_for(asyncio.shield(probe), timeout=READY_TIMEOUT)
    except TimeoutError:
        problem = f"database unavailable (no answer within {READY_TIMEOUT:g} s)"
    if problem:
        return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
